"""The admin console's migration page: choose versions, dry run, move the movable cases."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from tests.web.conftest import APPROVAL, LoginAs

DATA = {"subject": "Chairs", "amount": 10, "requester_email": "a@example.org"}


def _versions(session_factory: so.sessionmaker[so.Session], tmp_path: Path) -> tuple[int, int, int, int]:
    """North's own approval v1 with a case at each task, and a v2 that requires a new approval field."""
    folder = tmp_path / "v2" / "approval"
    shutil.copytree(APPROVAL, folder)
    schema = json.loads((folder / "approve.schema.json").read_text())
    schema["required"].append("cost_centre")
    schema["properties"]["cost_centre"] = {"type": "string"}
    (folder / "approve.schema.json").write_text(json.dumps(schema))
    bpmn = folder / "approval.bpmn"
    bpmn.write_text(
        bpmn.read_text().replace('name="Describe the purchase"', 'name="Describe the purchase (v2)"')
    )
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL, organisation="north")
        at_request = engine.start_instance(s, "approval", organisation="north", user="north-req").id
        at_approve = engine.start_instance(s, "approval", organisation="north", user="north-req").id
    with session_factory.begin() as s:
        (task,) = engine.list_tasks(s, instance_id=at_approve)
        engine.complete_task(s, task.id, user="north-req", data=dict(DATA))
    with session_factory.begin() as s:
        engine.deploy_path(s, folder, organisation="north")
        ids = {
            d.version: d.id
            for d in s.scalars(
                sa.select(engine.ProcessDefinition).where(
                    engine.ProcessDefinition.organisation_id.is_not(None)
                )
            )
        }
    return ids[1], ids[2], at_request, at_approve


def _version_of(session_factory: so.sessionmaker[so.Session], instance_id: int) -> int:
    engine.SPEC_CACHE.clear()
    with session_factory() as s:
        instance = s.get(engine.ProcessInstance, instance_id)
        assert instance is not None
        return instance.definition.version


def test_dry_run_lists_each_case_and_moves_only_the_movable(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], tmp_path: Path
) -> None:
    v1, v2, at_request, at_approve = _versions(session_factory, tmp_path)
    client = login_as("admin")
    page = client.get("/admin/migrations")
    assert page.status_code == 200 and 'value="approval"' in page.get_data(as_text=True)
    page = client.get("/admin/migrations?process=approval")
    text = page.get_data(as_text=True)
    assert (
        f'<option value="{v1}">Version 1</option>' in text
        and f'<option value="{v2}">Version 2</option>' in text
    )

    page = client.get(f"/admin/migrations?process=approval&from={v1}&to={v2}&dry_run=1")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "1 of 2 cases can move." in text
    row = re.search(rf'data-instance="{at_approve}">(.*?)</tr>', text, re.S)
    assert row is not None
    assert (
        "The field cost_centre of its open step “Approve the purchase” is required in version 2"
        in row.group(1)
    )
    assert (
        f'name="instance" value="{at_request}:' in text
        and f'name="instance" value="{at_approve}:' not in text
    )
    assert _version_of(session_factory, at_request) == 1

    form = re.findall(r'name="(from|to|instance)" value="([^"]+)"', text.split('class="migration-run"')[1])
    response = client.post(
        "/admin/migrations",
        data={"from": str(v1), "to": str(v2), "instance": [v for k, v in form if k == "instance"]},
    )
    assert response.status_code == 302
    assert f"moved={at_request}" in response.headers["Location"]
    assert _version_of(session_factory, at_request) == 2 and _version_of(session_factory, at_approve) == 1

    page = client.get(response.headers["Location"])
    text = page.get_data(as_text=True)
    assert "Moved 1 case to Version 2:" in text
    assert "0 of 1 cases can move." in text  # only the refused one is still on version 1
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=at_request)
        assert task.name == "Describe the purchase (v2)"
        kinds = [e.kind for e in engine.instance_events(s, at_request)]
        assert "migrated" in kinds
        actors = s.scalars(
            sa.select(engine.AuditEvent.actor).where(engine.AuditEvent.kind == "admin.instance_migrated")
        ).all()
        assert actors == ["north-admin"]


def test_a_case_changed_after_the_dry_run_stays(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], tmp_path: Path
) -> None:
    v1, v2, at_request, _ = _versions(session_factory, tmp_path)
    client = login_as("admin")
    with session_factory() as s:
        version = s.get(engine.ProcessInstance, at_request).lock_version  # type: ignore[union-attr]
    response = client.post(
        "/admin/migrations",
        data={"from": str(v1), "to": str(v2), "instance": [f"{at_request}:{version - 1}"]},
    )
    assert response.status_code == 302 and f"refused={at_request}" in response.headers["Location"]
    assert _version_of(session_factory, at_request) == 1


def test_the_same_version_twice_is_an_error_beside_the_field(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], tmp_path: Path
) -> None:
    v1, _, _, _ = _versions(session_factory, tmp_path)
    page = login_as("admin").get(f"/admin/migrations?process=approval&from={v1}&to={v1}&dry_run=1")
    assert page.status_code == 422
    assert 'id="to-error"' in page.get_data(as_text=True)


def test_other_organisations_versions_and_shared_ones_are_not_found(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], tmp_path: Path
) -> None:
    v1, v2, at_request, _ = _versions(session_factory, tmp_path)
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL)  # shared: only the platform organisation's admins move its cases
        shared = s.scalar(
            sa.select(engine.ProcessDefinition.id).where(engine.ProcessDefinition.organisation_id.is_(None))
        )
    client = login_as("admin", "south")
    assert client.get(f"/admin/migrations?from={v1}&to={v2}").status_code == 404
    assert client.get("/admin/migrations?process=approval").status_code == 404
    response = client.post(
        "/admin/migrations", data={"from": str(v1), "to": str(v2), "instance": [f"{at_request}:1"]}
    )
    assert response.status_code == 404
    north = login_as("admin")
    assert north.get(f"/admin/migrations?from={shared}&to={v2}").status_code == 404
    assert login_as("requester").get("/admin/migrations").status_code == 404
    assert _version_of(session_factory, at_request) == 1
