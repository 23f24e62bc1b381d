"""/admin/incidents: cases in error and failed jobs, retried one by one or many, and repaired."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from tests.engine.test_admin_incidents import DIVIDE
from tests.web.conftest import LoginAs

Factory = so.sessionmaker[so.Session]


def _failing_cases(session_factory: Factory, count: int = 1, org: str = "north") -> list[int]:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("divide.bpmn", "bpmn", DIVIDE)], name="divide")
        return [
            engine.start_instance(s, "divide", organisation=org, user=f"{org}-req", data={"parts": 0}).id
            for _ in range(count)
        ]


def _status(session_factory: Factory, instance_id: int) -> str:
    with session_factory() as s:
        return engine.get_instance(s, instance_id).status


def test_the_list_shows_process_element_message_and_trace(
    login_as: LoginAs, session_factory: Factory, users: None
) -> None:
    (iid,) = _failing_cases(session_factory)
    page = login_as("admin").get("/admin/incidents").get_data(as_text=True)
    assert f'id="incident-instance-{iid}"' in page
    assert "Divide" in page and "Share the cost" in page and "ZeroDivisionError" in page
    assert "divide.bpmn, line 1" in page and f"/admin/incidents/instances/{iid}" in page
    south = login_as("admin", "south").get("/admin/incidents").get_data(as_text=True)
    assert f"incident-instance-{iid}" not in south and "No incidents" in south
    assert login_as("case_handler").get("/admin/incidents").status_code == 404


def test_retry_one_and_many(login_as: LoginAs, session_factory: Factory, users: None) -> None:
    first, second, third = _failing_cases(session_factory, 3)
    with session_factory.begin() as s:
        for iid in (first, second):
            engine.set_instance_data(s, iid, user="north-admin", data={"parts": 5})
    client = login_as("admin")
    response = client.post(
        "/admin/incidents/retry", data={"one": f"instance-{first}", "incident": f"instance-{second}"}
    )
    assert response.status_code == 303 and "retried=1" in response.location
    assert (_status(session_factory, first), _status(session_factory, second)) == ("completed", "error")
    assert "1 incident was retried." in client.get(response.location).get_data(as_text=True)

    response = client.post(
        "/admin/incidents/retry",
        data={"incident": [f"instance-{second}", f"instance-{third}", f"instance-{first}"]},
    )
    assert "retried=2" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert "2 incidents were retried." in page and f"instance-{first}" in page  # no longer an incident
    assert _status(session_factory, second) == "completed"
    assert _status(session_factory, third) == "error"  # still wrong data: failed again, still listed
    assert f'id="incident-instance-{third}"' in page

    none = client.post("/admin/incidents/retry", data={})
    assert "Tick the incidents to retry first." in client.get(none.location).get_data(as_text=True)
    # Another organisation's incident is not retried, and named as refused.
    (south_case,) = _failing_cases(session_factory, 1, org="south")
    response = client.post("/admin/incidents/retry", data={"one": f"instance-{south_case}"})
    assert "retried=0" in response.location and f"instance-{south_case}" in response.location
    assert _status(session_factory, south_case) == "error"


def test_repair_with_data_then_retry(login_as: LoginAs, session_factory: Factory, users: None) -> None:
    (iid,) = _failing_cases(session_factory)
    client = login_as("admin")
    page = client.get(f"/admin/incidents/instances/{iid}").get_data(as_text=True)
    assert "Repair case" in page and "&#34;parts&#34;: 0" in page and "Share the cost (share)" in page

    refused = client.post(f"/admin/incidents/instances/{iid}/data", data={"data": '{"parts": '})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "This is not valid JSON" in text and "{&#34;parts&#34;: " in text  # the input is kept
    refused = client.post(f"/admin/incidents/instances/{iid}/data", data={"data": '{"2bad": 1}'})
    assert refused.status_code == 422 and "2bad" in refused.get_data(as_text=True)
    refused = client.post(f"/admin/incidents/instances/{iid}/data", data={"data": "[1]"})
    assert refused.status_code == 422 and "must be a JSON object" in refused.get_data(as_text=True)

    saved = client.post(f"/admin/incidents/instances/{iid}/data", data={"data": '{"parts": 4}'})
    assert saved.status_code == 303 and "done=data" in saved.location
    retried = client.post("/admin/incidents/retry", data={"one": f"instance-{iid}", "back": "repair"})
    assert retried.location.endswith(f"/admin/incidents/instances/{iid}?done=retried")
    assert "The case was retried and runs on." in client.get(retried.location).get_data(as_text=True)
    assert _status(session_factory, iid) == "completed"
    with session_factory() as s:
        kinds = list(
            s.scalars(
                sa.select(engine.AuditEvent.kind)
                .where(engine.AuditEvent.kind.startswith("admin."))
                .order_by(engine.AuditEvent.id)
            )
        )
    assert kinds == ["admin.instance_data_set", "admin.incident_retried"]


def test_reset_and_other_organisations(login_as: LoginAs, session_factory: Factory, users: None) -> None:
    (iid,) = _failing_cases(session_factory)
    client = login_as("admin")
    moved = client.post(f"/admin/incidents/instances/{iid}/reset", data={"to": "share"})
    assert moved.status_code == 303 and "done=reset" in moved.location
    assert client.post(f"/admin/incidents/instances/{iid}/reset", data={}).status_code == 400
    assert client.post(f"/admin/incidents/instances/{iid}/reset", data={"to": "nothing"}).status_code == 404
    south = login_as("admin", "south")
    assert south.get(f"/admin/incidents/instances/{iid}").status_code == 404
    assert (
        south.post(f"/admin/incidents/instances/{iid}/data", data={"data": '{"parts": 1}'}).status_code == 404
    )
    assert south.post(f"/admin/incidents/instances/{iid}/reset", data={"to": "share"}).status_code == 404
    with session_factory() as s:
        assert engine.instance_data(s, engine.get_instance(s, iid))["parts"] == 0
