"""The start page and starting a case."""

from __future__ import annotations

import sqlalchemy.orm as so

import engine
from tests.web.conftest import LoginAs


def test_catalogue_lists_the_organisations_processes(login_as: LoginAs, deployed: None) -> None:
    page = login_as("requester").get("/processes/").get_data(as_text=True)
    assert "Small purchase" in page and "Purchase approval" in page
    assert 'action="/processes/web_purchase/start"' in page


def test_starting_opens_the_first_task(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    client = login_as("requester")
    response = client.post("/processes/web_purchase/start", data={"title": "Chairs for room 4"})
    assert response.status_code == 303
    with session_factory() as s:
        (task,) = engine.list_tasks(s, user="north-req")
        assert task.instance.title == "Chairs for room 4" and task.instance.started_by.username == "north-req"
    assert response.headers["Location"] == f"/tasks/{task.id}"


def test_starting_when_the_first_task_is_for_another_group_opens_the_case(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    response = login_as("case_handler").post("/processes/web_purchase/start")
    with session_factory() as s:
        (instance,) = s.query(engine.ProcessInstance).all()
    assert response.headers["Location"] == f"/instances/{instance.id}"


def test_roles_that_may_not_start_see_no_catalogue_and_are_refused(login_as: LoginAs, deployed: None) -> None:
    client = login_as("auditor")
    assert "Your role does not allow starting cases." in client.get("/processes/").get_data(as_text=True)
    assert client.post("/processes/web_purchase/start").status_code == 403


def test_unknown_processes_are_not_found(login_as: LoginAs, deployed: None) -> None:
    assert login_as("requester").post("/processes/no_such_process/start").status_code == 404


def test_an_organisations_own_process_is_invisible_to_others(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    from tests.web.conftest import APPROVAL

    bpmn = (APPROVAL / "approval.bpmn").read_text().replace('id="approval"', 'id="south_only"')
    bpmn = bpmn.replace('name="Purchase approval"', 'name="South only"')
    files = [engine.BundleFile("south.bpmn", "bpmn", bpmn)]
    files += [engine.BundleFile(p.name, "form", p.read_text()) for p in APPROVAL.glob("*.json")]
    with session_factory.begin() as s:
        engine.deploy_files(s, files, name="south", organisation="south")
    assert "South only" in login_as("requester", "south").get("/processes/").get_data(as_text=True)
    client = login_as("requester")
    assert "South only" not in client.get("/processes/").get_data(as_text=True)
    assert client.post("/processes/south_only/start").status_code == 404


def test_start_form_is_shown_validated_and_its_data_starts_the_case(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    from tests.conftest import FIXTURES

    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "start_form")
    client = login_as("requester")
    catalogue = client.get("/processes/").get_data(as_text=True)
    assert 'href="/processes/quick_contact/start"' in catalogue
    page = client.get("/processes/quick_contact/start").get_data(as_text=True)
    assert "Your question" in page and "Cleaning DPS" in page

    refused = client.post("/processes/quick_contact/start", data={"question": "?", "title": "Mine"})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert 'value="?"' in body and 'value="Mine"' in body
    with session_factory() as s:
        assert s.query(engine.ProcessInstance).filter_by(process_id="quick_contact").count() == 0

    started = client.post("/processes/quick_contact/start", data={"question": "May we join the DPS?"})
    assert started.status_code == 303
    with session_factory() as s:
        (instance,) = s.query(engine.ProcessInstance).filter_by(process_id="quick_contact").all()
        assert engine.instance_data(s, instance)["question"] == "May we join the DPS?"


def test_start_page_of_a_process_without_start_form_is_not_found(login_as: LoginAs, deployed: None) -> None:
    assert login_as("requester").get("/processes/web_purchase/start").status_code == 404
