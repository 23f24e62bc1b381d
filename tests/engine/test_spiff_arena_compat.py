"""A model folder made in spiff-arena deploys unchanged and runs: forms, script helpers, HTTP connector.

The fixture (tests/fixtures/spiff_arena/vendor-check) is written as spiff-arena
writes a model: ``process_model.json``, a ``.bpmn20.xml`` diagram with
``spiffworkflow:properties`` forms, a ``http/GetRequestV2`` service task, a
script calling ``get_current_user()`` and friends, JSON Schema and UI schema
files, and a ``messageRef="[object Object]"`` leftover that the BPMN schema
refuses. Each step runs cold: the spec cache is cleared and the instance is
restored from the database.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from engine.bundle_import import read_uploaded_files
from tests.conftest import FIXTURES

MODEL = FIXTURES / "spiff_arena" / "vendor-check"
PROCESS_ID = "Process_vendor_check_7d1x3qk"


class _Registry(BaseHTTPRequestHandler):
    """A vendor registry: GET /vendors/<id> answers the vendor's status as JSON."""

    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        type(self).seen.append({"path": self.path, "accept": self.headers.get("Accept")})
        vendor_id = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
        body = json.dumps({"vendor_id": vendor_id, "status": "active"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[str]:
    _Registry.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _upload() -> engine.bundle_import.ImportedBundle:
    return read_uploaded_files(
        [(f"vendor-check/{p.name}", p.read_bytes()) for p in sorted(MODEL.iterdir()) if p.is_file()]
    )


@pytest.fixture
def deployed(session_factory: so.sessionmaker[so.Session], orgs: None, registry: str) -> list[engine.Problem]:
    imported = _upload()
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north")
        engine.set_parameter(
            s, "http_allowed_hosts", [registry], organisation_id=north.id, valid_from=dt.date(2020, 1, 1)
        )
        results = engine.deploy_files(s, imported.files, name="vendor-check", organisation="north")
    assert [r.process_id for r in results] == [imported.process_id]
    return list(results[0].warnings)


def _cold_task(session_factory: so.sessionmaker[so.Session], instance_id: int) -> engine.HumanTask:
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        return task


def test_the_model_folder_imports_with_its_metadata() -> None:
    imported = _upload()
    assert imported.process_id == PROCESS_ID
    assert imported.display_name == "Vendor check"
    assert imported.description and imported.description.startswith("Check a new vendor")
    assert [f.name for f in imported.files if f.kind == "bpmn"] == ["vendor_check.bpmn20.xml"]
    assert "process_model.json" not in [f.name for f in imported.files]
    assert imported.warnings == []


def test_it_deploys_with_a_warning_for_the_schema_leftover(deployed: list[engine.Problem]) -> None:
    (warning,) = deployed
    assert warning.severity == "warning"
    assert (warning.file, warning.element) == ("vendor_check.bpmn20.xml", "Flow_registry_lookup")
    assert warning.line == 6
    assert "messageRef" in warning.message and "[object Object]" in warning.message


def test_it_runs_to_completion_with_the_script_helpers_and_the_http_connector(
    session_factory: so.sessionmaker[so.Session], deployed: list[engine.Problem], registry: str
) -> None:
    with session_factory.begin() as s:
        instance_id = engine.start_instance(
            s, PROCESS_ID, organisation="north", user="north-req", data={"registry_url": registry}
        ).id

    enter = _cold_task(session_factory, instance_id)
    assert (enter.bpmn_id, enter.form, enter.form_ui) == (
        "Activity_enter_vendor",
        "vendor-details-schema.json",
        "vendor-details-uischema.json",
    )
    with session_factory.begin() as s:
        engine.complete_task(
            s, enter.id, user="north-req", data={"vendor_id": "556677-8899", "vendor_name": "Acme AB"}
        )

    approve = _cold_task(session_factory, instance_id)
    assert approve.bpmn_id == "Activity_approve_vendor"
    assert _Registry.seen == [{"path": "/vendors/556677-8899?name=Acme+AB", "accept": "application/json"}]
    with session_factory() as s:
        data = engine.instance_data(s, engine.get_instance(s, instance_id))
    assert data["vendor_lookup"]["http_status"] == 200
    assert data["vendor_lookup"]["operator_identifier"] == "http/GetRequestV2"
    assert json.loads(data["vendor_lookup"]["body"]) == {"vendor_id": "556677-8899", "status": "active"}
    assert data["vendor_status"] == "active"
    assert data["requested_by"] == "north-req"
    assert data["initiator"]["username"] == "north-req"
    assert set(data["initiator"]) >= {"id", "username", "email", "display_name"}
    assert data["approvers"] == ["north-boss"]
    assert data["process_info"] == {
        "process_instance_id": instance_id,
        "process_model_identifier": PROCESS_ID,
    }
    assert dt.datetime.fromisoformat(data["checked_at"]).utcoffset() == dt.timedelta(0)  # UTC: no zone set
    with session_factory() as s:
        (called,) = [e for e in engine.instance_events(s, instance_id) if e.kind == "service_called"]
    assert called.element == "Activity_lookup_vendor"
    assert called.detail["operation"] == "http/GetRequestV2"
    assert called.detail["params"]["url"] == f"{registry}/vendors/556677-8899"

    with session_factory.begin() as s:
        engine.complete_task(s, approve.id, user="north-boss", data={"approved": True})
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "completed", instance.error_message
        data = engine.instance_data(s, instance)
    assert data["decided_by"] == "north-boss"
    assert data["initiator"]["username"] == "north-req"


def test_a_host_the_organisation_does_not_allow_stops_the_case(
    session_factory: so.sessionmaker[so.Session], deployed: list[engine.Problem]
) -> None:
    with session_factory.begin() as s:
        instance_id = engine.start_instance(
            s,
            PROCESS_ID,
            organisation="north",
            user="north-req",
            data={"registry_url": "https://example.org"},
        ).id
    enter = _cold_task(session_factory, instance_id)
    with session_factory.begin() as s:
        engine.complete_task(s, enter.id, user="north-req", data={"vendor_id": "123456", "vendor_name": "X"})
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
    assert instance.status == "error"
    assert "https://example.org:443 is not an allowed host" in (instance.error_message or "")
    assert _Registry.seen == []
