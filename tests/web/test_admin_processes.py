"""/admin/processes: which processes run the shared version and which the organisation's own."""

from __future__ import annotations

import re

import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from tests.web.conftest import APPROVAL, LoginAs

Factory = so.sessionmaker[so.Session]


def _row(page: str, process_id: str) -> str:
    match = re.search(rf'<tr id="process-{process_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {process_id}"
    return match.group(1)


def _own_approval(session_factory: Factory) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL, organisation="north")


def test_the_page_lists_shared_and_own_processes_with_what_new_cases_get(
    login_as: LoginAs, session_factory: Factory, deployed: None
) -> None:
    _own_approval(session_factory)
    client = login_as("admin")
    page = client.get("/admin/processes").get_data(as_text=True)
    approval = _row(page, "approval")
    assert "Own" in approval and "own version 1" in approval
    assert "Use the shared version again" in approval and "Customise" not in approval
    purchase = _row(page, "web_purchase")
    assert "Shared" in purchase and "shared version 1" in purchase
    assert 'action="/studio/web_purchase/customise"' in purchase
    assert "Use the shared version again" not in purchase


def test_use_the_shared_version_again_and_back(
    login_as: LoginAs, session_factory: Factory, deployed: None
) -> None:
    _own_approval(session_factory)
    client = login_as("admin")
    response = client.post("/admin/processes/approval/use-shared")
    assert response.status_code == 303 and "done=shared" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert "now start on the shared version (shared version 1)" in page
    approval = _row(page, "approval")
    assert "Shared again" in approval and "Use your own version again" in approval
    assert "north-admin" in approval
    with session_factory.begin() as s:
        instance = engine.start_instance(s, "approval", organisation="north", user="north-req")
        assert instance.definition.organisation_id is None

    assert client.post("/admin/processes/approval/use-own").status_code == 303
    with session_factory.begin() as s:
        instance = engine.start_instance(s, "approval", organisation="north", user="north-req")
        assert instance.definition.organisation_id is not None
        kinds = list(
            s.scalars(
                sa.select(engine.AuditEvent.kind)
                .where(engine.AuditEvent.kind.startswith("admin."))
                .order_by(engine.AuditEvent.id)
            )
        )
    assert kinds == ["admin.process_uses_shared", "admin.process_uses_own"]


def test_refusals_and_other_organisations(
    login_as: LoginAs, session_factory: Factory, deployed: None
) -> None:
    _own_approval(session_factory)
    client = login_as("admin", "south")
    # South has no version of its own: nothing to switch, said on a page, nothing stored.
    response = client.post("/admin/processes/approval/use-shared")
    assert response.status_code == 409
    assert "no version of its own" in response.get_data(as_text=True)
    assert client.post("/admin/processes/nothing_such/use-shared").status_code == 404
    assert client.post("/admin/processes/approval/use-own").status_code == 409
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(engine.ProcessSetting)) == 0
    # Only admins see the page at all.
    assert login_as("process_owner").get("/admin/processes").status_code == 404


def test_customise_from_the_page_opens_the_studio_with_an_own_draft(
    login_as: LoginAs, session_factory: Factory, deployed: None
) -> None:
    client = login_as("admin")
    response = client.post("/studio/web_purchase/customise")
    assert response.status_code == 303 and response.location.endswith("/studio/web_purchase")
    page = client.get("/admin/processes").get_data(as_text=True)
    assert "Continue the draft in the studio" in _row(page, "web_purchase")
