"""The inbox and task pages: listing, claiming, forms, validation, completion and conflicts."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable

import sqlalchemy.orm as so
from flask import Flask

import engine
from tests.web.conftest import LoginAs, complete, open_task

REQUEST = {
    "subject": "Laptops",
    "category": "goods",
    "estimated_value": "12 500,50",
    "needed_by": "2027-03-31",
}


def test_inbox_lists_group_tasks_with_counts(login_as: LoginAs, start: Callable[..., int]) -> None:
    instance_id = start()
    page = login_as("requester").get("/").get_data(as_text=True)
    assert "Describe the purchase" in page and "Small purchase" in page and f"#{instance_id}" in page
    assert re.search(r'id="inbox-count"[^>]*>1<', page)


def test_inbox_hides_other_groups_and_organisations(login_as: LoginAs, start: Callable[..., int]) -> None:
    start()
    start(user="south-req", org="south")
    handler_page = login_as("case_handler").get("/").get_data(as_text=True)
    assert "Describe the purchase" not in handler_page
    south_page = login_as("requester", "south").get("/").get_data(as_text=True)
    assert south_page.count("Describe the purchase") == 1


def _case(instance_id: int) -> str:
    """The inbox row's link text of a case."""
    return f">#{instance_id}</a>"


def _link(page: str, rel: str) -> str | None:
    """The URL of the inbox's previous or next page link, if there is one."""
    match = re.search(rf'<a href="([^"]+)" rel="{rel}"', page)
    return html.unescape(match.group(1)) if match else None


def test_inbox_filters_sorts_and_pages(
    app: Flask, login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    app.config["INBOX_PAGE_SIZE"] = 2
    purchases = [start() for _ in range(3)]
    approval = start("approval")
    client = login_as("requester")
    only_approval = client.get("/?process=approval").get_data(as_text=True)
    assert _case(approval) in only_approval and _case(purchases[0]) not in only_approval
    assert "1 task<" in only_approval
    by_number = client.get(f"/?q={purchases[1]}").get_data(as_text=True)
    assert _case(purchases[1]) in by_number and _case(purchases[0]) not in by_number
    assert "No tasks match the filter." in client.get("/?q=nothing-like-this").get_data(as_text=True)
    first = client.get("/?sort=created").get_data(as_text=True)
    assert [_case(i) in first for i in (*purchases, approval)] == [True, True, False, False]
    assert "4 tasks" in first and _link(first, "prev") is None
    next_url = _link(first, "next")
    assert next_url is not None and "page=" not in next_url
    second = client.get(next_url).get_data(as_text=True)
    assert [_case(i) in second for i in (*purchases, approval)] == [False, False, True, True]
    assert _link(second, "next") is None and "4 tasks" in second
    previous_url = _link(second, "prev")
    assert previous_url is not None
    assert client.get(previous_url).get_data(as_text=True).count("</tr>") == first.count("</tr>")
    assert _case(purchases[0]) in client.get(previous_url).get_data(as_text=True)
    by_name = client.get("/?sort=name").get_data(as_text=True)
    assert by_name.index("Describe the purchase") < by_name.index("<tbody>") + 10_000
    assert client.get("/?sort=created&after=not-a-cursor").status_code == 400


def test_htmx_requests_get_only_the_results(login_as: LoginAs, start: Callable[..., int]) -> None:
    start()
    client = login_as("requester")
    partial = client.get("/?q=Describe", headers={"HX-Request": "true", "HX-Target": "inbox-results"})
    text = partial.get_data(as_text=True)
    assert "<table" in text and "<html" not in text


def test_overdue_tasks_are_marked(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    with session_factory.begin() as s:
        task = engine.list_tasks(s, instance_id=instance_id)[0]
        task.due_at = engine.models.utcnow() - dt.timedelta(days=1)
    page = login_as("requester").get("/").get_data(as_text=True)
    assert "Overdue" in page and 'class="is-overdue"' in page


def test_claim_and_release(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    client = login_as("requester")
    assert client.post(f"/tasks/{task.id}/claim", data={"next": "/"}).headers["Location"] == "/"
    inbox = client.get("/").get_data(as_text=True)
    assert 'Assigned to me <span class="count" id="inbox-count-mine">1<' in inbox
    row = client.post(f"/tasks/{task.id}/unclaim", headers={"HX-Request": "true"})
    assert row.status_code == 200 and row.get_data(as_text=True).lstrip().startswith("<tr")
    with session_factory() as s:
        assert engine.get_task(s, task.id).assignee_id is None


def test_claiming_a_task_someone_else_claimed_is_a_conflict(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    with session_factory.begin() as s:
        engine.claim_task(s, task.id, user="north-boss")
    response = login_as("requester").post(f"/tasks/{task.id}/claim")
    assert response.status_code == 409


def test_claiming_outside_ones_groups_is_forbidden(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    response = login_as("case_handler").post(f"/tasks/{task.id}/claim")
    assert response.status_code == 403
    assert "not in group 'requesters'" in html.unescape(response.get_data(as_text=True))


def test_task_form_renders_every_widget(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    page = login_as("requester").get(f"/tasks/{task.id}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and "novalidate" in page
    assert '<textarea id="f-description" name="description"' in page
    assert 'type="radio" name="category" value="goods"' in page
    assert 'inputmode="decimal"' in page and ">SEK<" in page
    assert 'type="date" id="f-needed_by"' in page
    assert 'type="checkbox" role="switch" id="f-urgent"' in page
    assert 'type="file" id="f-specification"' in page
    assert "Describe what you need" in page  # instructions
    assert "What do you need?" in page  # help text from the UI schema


def test_labels_follow_the_language(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    client = login_as("requester")
    client.post("/language", data={"lang": "sv"})
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Ämne" in page and "Vad behöver du?" in page and "Slutför uppgiften" in page


def test_validation_errors_keep_input_and_sit_beside_fields(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    client = login_as("requester")
    response = client.post(
        f"/tasks/{task.id}",
        data={
            "subject": "La",
            "description": "Two <b>fast</b> ones",
            "category": "goods",
            "estimated_value": "12x",
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'value="La"' in page and "Two &lt;b&gt;fast&lt;/b&gt; ones</textarea>" in page
    assert 'value="12x"' in page and 'value="goods" checked' in page
    assert re.search(r'id="f-subject-error"[^>]*>Must be at least 3 characters long\.<', page)
    assert re.search(r'id="f-estimated_value-error"[^>]*>Enter a number\.<', page)
    assert re.search(r'id="f-needed_by-error"[^>]*>This field is required\.<', page)
    assert 'aria-invalid="true"' in page
    assert open_task(session_factory, instance_id).id == task.id  # nothing was completed


def test_validation_messages_are_translated(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    client = login_as("requester")
    client.post("/language", data={"lang": "fi"})
    page = client.post(f"/tasks/{task.id}", data={"subject": "La"}).get_data(as_text=True)
    assert "Pituuden on oltava vähintään 3 merkkiä." in page and "Tämä kenttä on pakollinen." in page


def test_engine_validation_errors_come_back_beside_fields(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    data = dict(REQUEST, estimated_value="200000")  # converts fine, but the schema's maximum refuses it
    response = login_as("requester").post(f"/tasks/{task.id}", data=data)
    assert response.status_code == 422
    assert re.search(
        r'id="f-estimated_value-error"[^>]*>Must be at most 100000\.<', response.get_data(as_text=True)
    )


def test_completing_moves_the_instance_on(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    response = login_as("requester").post(f"/tasks/{task.id}", data=dict(REQUEST, urgent="on"))
    assert (response.status_code, response.headers["Location"]) == (303, f"/instances/{instance_id}")
    with session_factory() as s:
        data = engine.instance_data(s, engine.get_instance(s, instance_id))
    assert (
        data["estimated_value"] == "12500.50" and data["urgent"] is True and data["needed_by"] == "2027-03-31"
    )
    assert open_task(session_factory, instance_id).bpmn_id == "review"


def test_repeating_rows_add_remove_and_submit(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    complete(
        session_factory,
        instance_id,
        "north-req",
        subject="Chairs",
        category="goods",
        estimated_value=900,
        needed_by="2027-01-01",
    )
    task = open_task(session_factory, instance_id)
    client = login_as("case_handler")
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Chairs" in page and 'name="quotes/0/supplier"' in page and 'name="quotes/1/supplier"' not in page
    rows = {"quotes/__rows": "1", "quotes/0/supplier": "Acme", "quotes/0/price": "850"}
    added = client.post(f"/tasks/{task.id}", data=dict(rows, _action="add:quotes")).get_data(as_text=True)
    assert 'name="quotes/1/supplier"' in added and 'value="Acme"' in added
    two = dict(rows, **{"quotes/__rows": "2", "quotes/1/supplier": "Bolt", "quotes/1/price": "870"})
    removed = client.post(f"/tasks/{task.id}", data=dict(two, _action="remove:quotes/0")).get_data(
        as_text=True
    )
    assert 'value="Bolt"' in removed and 'value="Acme"' not in removed
    bad = client.post(f"/tasks/{task.id}", data=dict(two, **{"quotes/1/price": "lots"}))
    assert bad.status_code == 422
    assert re.search(r'id="f-quotes-0-supplier-error"', bad.get_data(as_text=True)) is None
    assert re.search(r'id="f-quotes-1-price-error"[^>]*>Enter a number\.<', bad.get_data(as_text=True))
    done = client.post(f"/tasks/{task.id}", data=dict(two, chosen_supplier="Acme"))
    assert done.status_code == 303
    with session_factory() as s:
        data = engine.instance_data(s, engine.get_instance(s, instance_id))
    assert data["quotes"] == [{"supplier": "Acme", "price": 850}, {"supplier": "Bolt", "price": 870}]


def test_empty_required_rows_are_reported_on_the_list(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    complete(
        session_factory,
        instance_id,
        "north-req",
        subject="Chairs",
        category="goods",
        estimated_value=900,
        needed_by="2027-01-01",
    )
    task = open_task(session_factory, instance_id)
    response = login_as("case_handler").post(
        f"/tasks/{task.id}", data={"quotes/__rows": "1", "quotes/0/supplier": "", "chosen_supplier": "x"}
    )
    assert response.status_code == 422
    assert re.search(r'id="f-quotes-error"[^>]*>Add at least 1 row\(s\)\.<', response.get_data(as_text=True))


def test_separation_of_duties_is_shown_and_enforced(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start(user="north-boss")
    complete(
        session_factory,
        instance_id,
        "north-boss",
        subject="Desks",
        category="goods",
        estimated_value=100,
        needed_by="2027-01-01",
    )
    complete(
        session_factory,
        instance_id,
        "north-handler",
        quotes=[{"supplier": "A", "price": 1}],
        chosen_supplier="A",
    )
    approve = open_task(session_factory, instance_id)
    client = login_as("approver")
    page = client.get(f"/tasks/{approve.id}").get_data(as_text=True)
    assert "You cannot work on this task." in page and "separation of duties" in html.unescape(page)
    assert "Complete task" not in page
    assert client.post(f"/tasks/{approve.id}", data={"approved": "true"}).status_code == 403


def test_a_task_completed_meanwhile_is_a_plain_409(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    client = login_as("approver")  # north-boss is also in the requesters group
    assert client.get(f"/tasks/{task.id}").status_code == 200
    complete(
        session_factory,
        instance_id,
        "north-req",
        subject="Pens",
        category="goods",
        estimated_value=10,
        needed_by="2027-01-01",
    )
    response = client.post(f"/tasks/{task.id}", data=dict(REQUEST, subject="My own pens"))
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Someone else completed this task meanwhile" in page
    assert "My own pens" in page  # the user's entries are shown, not lost
    with session_factory() as s:
        assert engine.instance_data(s, engine.get_instance(s, instance_id))["subject"] == "Pens"


def test_a_completed_task_page_says_who_completed_it(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = complete(
        session_factory,
        instance_id,
        "north-req",
        subject="Pens",
        category="goods",
        estimated_value=10,
        needed_by="2027-01-01",
    )
    page = login_as("approver").get(f"/tasks/{task.id}").get_data(as_text=True)
    assert (
        "This task was completed by north-req" in page and '<form method="post" action="/tasks/' not in page
    )


def test_a_suspended_instance_cannot_be_worked_on(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    with session_factory.begin() as s:
        engine.suspend_instance(s, instance_id, user="north-admin")
    response = login_as("requester").post(f"/tasks/{task.id}", data=REQUEST)
    assert response.status_code == 409 and "suspended" in response.get_data(as_text=True)


def test_other_organisations_tasks_are_not_found(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    task = open_task(session_factory, start())
    client = login_as("requester", "south")
    assert client.get(f"/tasks/{task.id}").status_code == 404
    assert client.post(f"/tasks/{task.id}", data=REQUEST).status_code == 404
    assert client.post(f"/tasks/{task.id}/claim").status_code == 404
    assert client.post(f"/tasks/{task.id}/unclaim").status_code == 404
    assert client.get("/tasks/99999").status_code == 404


def test_a_task_without_form_completes_with_no_data(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    bpmn = (PURCHASE_DIR / "purchase.bpmn").read_text()
    for name in ("request", "review", "approve"):
        bpmn = re.sub(rf'<spiffworkflow:property name="form\w+" value="{name}\.\w+\.json" />', "", bpmn)
    with session_factory.begin() as s:
        engine.deploy_files(
            s, [engine.BundleFile("plain.bpmn", "bpmn", bpmn.replace("web_purchase", "plain"))], name="plain"
        )
        instance_id = engine.start_instance(s, "plain", organisation="north", user="north-req").id
    task = open_task(session_factory, instance_id)
    client = login_as("requester")
    assert "This task has no form" in client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert client.post(f"/tasks/{task.id}", data={}).status_code == 303


def test_auditors_see_tasks_without_a_lane_but_cannot_claim_or_complete_them(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    bpmn = (PURCHASE_DIR / "purchase.bpmn").read_text()
    bpmn = re.sub(r"<bpmn:laneSet .*?</bpmn:laneSet>", "", bpmn, flags=re.S)
    bpmn = bpmn.replace("web_purchase", "no_lane")
    files = [engine.BundleFile("no_lane.bpmn", "bpmn", bpmn)] + [
        engine.BundleFile(path.name, "form", path.read_text()) for path in sorted(PURCHASE_DIR.glob("*.json"))
    ]
    with session_factory.begin() as s:
        engine.deploy_files(s, files, name="no_lane")
        instance_id = engine.start_instance(s, "no_lane", organisation="north", user="north-req").id
    task = open_task(session_factory, instance_id)
    assert task.candidate_group is None
    client = login_as("auditor")
    assert f"/tasks/{task.id}" not in client.get("/").get_data(as_text=True)
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "You cannot work on this task." in page and "only reads cases" in page
    assert "Complete task" not in page and "Claim" not in page
    assert client.post(f"/tasks/{task.id}/claim").status_code == 403
    assert client.post(f"/tasks/{task.id}", data={"subject": "Desks"}).status_code == 403
    assert "Claim" in login_as("admin").get("/").get_data(as_text=True)


from tests.web.conftest import PURCHASE as PURCHASE_DIR  # noqa: E402
