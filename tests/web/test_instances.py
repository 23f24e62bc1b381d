"""Instance pages, diagrams, attachments and admin actions."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
from collections.abc import Callable

import sqlalchemy.orm as so
from flask import Flask

import engine
from tests.conftest import FIXTURES
from tests.web.conftest import LoginAs, WebClient, complete, open_task

REQUEST = {"subject": "Laptops", "category": "goods", "estimated_value": "1000", "needed_by": "2027-03-31"}


def _diagram_state(page: str) -> dict[str, list[str]]:
    match = re.search(r"data-state='([^']*)'", page)
    assert match
    return dict(json.loads(match.group(1)))


def test_instance_page_shows_status_diagram_state_and_history(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    complete(
        session_factory,
        instance_id,
        "north-req",
        subject="Pens <script>alert(1)</script>",
        category="goods",
        estimated_value=10,
        needed_by="2027-01-01",
    )
    page = login_as("approver").get(f"/instances/{instance_id}").get_data(as_text=True)
    assert _diagram_state(page) == {
        "active": ["review"],
        "waiting": [],
        "completed": ["request", "start"],
        "failed": [],
    }
    assert f'data-diagram-url="/instances/{instance_id}/diagram.bpmn"' in page
    assert "Running" in page and "Compare quotes" in page
    assert "Task completed" in page and "north-req" in page and "Submitted values" in page
    assert "<script>alert(1)</script>" not in page and "Pens &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Administration" not in page


def test_diagram_is_the_bpmn_of_the_instances_version(login_as: LoginAs, start: Callable[..., int]) -> None:
    instance_id = start()
    response = login_as("requester").get(f"/instances/{instance_id}/diagram.bpmn")
    # Plain text, never rendered: see tests/web/test_security_headers.py.
    assert response.mimetype == "text/plain"
    assert 'process id="web_purchase"' in response.get_data(as_text=True)
    assert "bpmndi:BPMNDiagram" in response.get_data(as_text=True)


def test_other_organisations_instances_are_not_found(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    client = login_as("admin", "south")
    for url in (f"/instances/{instance_id}", f"/instances/{instance_id}/diagram.bpmn", "/instances/9999"):
        assert client.get(url).status_code == 404, url
    for action in ("suspend", "resume", "cancel", "retry", "data", "reset"):
        assert client.post(f"/instances/{instance_id}/{action}").status_code == 404, action


CHOOSE_AGAIN = "Choose the file again: files are saved only when the task is completed."


def _spec() -> dict[str, tuple[io.BytesIO, str, str]]:
    return {"specification": (io.BytesIO(b"%PDF-1.4 spec"), "../../Spec <1>.pdf", "application/pdf")}


def test_an_upload_with_a_form_the_engine_refuses_is_not_stored(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    client = login_as("requester")
    refused = client.post(
        f"/tasks/{task.id}", data={"subject": "La", **_spec()}, content_type="multipart/form-data"
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert CHOOSE_AGAIN in page and "attachment:" not in page
    with session_factory() as s:
        assert engine.list_attachments(s, instance_id) == []


def test_an_upload_with_a_form_that_cannot_be_read_is_not_stored(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    client = login_as("requester")
    data = dict(REQUEST, estimated_value="a lot", **_spec())
    refused = client.post(f"/tasks/{task.id}", data=data, content_type="multipart/form-data")
    assert refused.status_code == 422
    assert CHOOSE_AGAIN in refused.get_data(as_text=True)
    with session_factory() as s:
        assert engine.list_attachments(s, instance_id) == []


def test_an_upload_is_stored_with_the_completed_task_and_downloadable(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    client = login_as("requester")
    done = client.post(f"/tasks/{task.id}", data=dict(REQUEST, **_spec()), content_type="multipart/form-data")
    assert done.status_code == 303
    with session_factory() as s:
        (attachment,) = engine.list_attachments(s, instance_id)
        reference = engine.instance_data(s, engine.get_instance(s, instance_id))["specification"]
    assert attachment.filename == "Spec <1>.pdf" and attachment.size == len(b"%PDF-1.4 spec")
    assert reference == f"attachment:{attachment.id}"
    url = f"/instances/{instance_id}/attachments/{attachment.id}"
    download = login_as("approver").get(url)
    assert download.data == b"%PDF-1.4 spec"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    instance_page = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert url in instance_page and "File attached" in instance_page
    assert login_as("requester", "south").get(url).status_code == 404
    assert login_as("requester").get(f"/instances/{instance_id}/attachments/9999").status_code == 404


def test_a_request_over_the_size_limit_is_refused_before_it_is_read(
    app: Flask, login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    client = login_as("requester")
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    # Refused from the Content-Length alone, before the body is parsed (or the CSRF token read).
    body = b"--x\r\n" + b"y" * (2 * 1024 * 1024) + b"\r\n--x--\r\n"
    response = client.post(f"/tasks/{task.id}", data=body, content_type="multipart/form-data; boundary=x")
    assert response.status_code == 413
    assert "The upload is larger than this server accepts (at most 1 MB)." in response.get_data(as_text=True)
    with session_factory() as s:
        assert engine.list_attachments(s, instance_id) == []
        assert engine.get_task(s, task.id).state == "ready"


def test_uploading_to_a_task_one_may_not_work_on_is_forbidden(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    task = open_task(session_factory, instance_id)
    upload = {"specification": (io.BytesIO(b"x"), "x.txt")}
    response = login_as("case_handler").post(
        f"/tasks/{task.id}", data=upload, content_type="multipart/form-data"
    )
    assert response.status_code == 403
    with session_factory() as s:
        assert engine.list_attachments(s, instance_id) == []


def test_admin_suspends_resumes_and_cancels(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    client = login_as("admin")
    page = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "Administration" in page and f'action="/instances/{instance_id}/suspend"' in page
    assert client.post(f"/instances/{instance_id}/suspend").status_code == 303
    assert "Suspended" in client.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert client.post(f"/instances/{instance_id}/suspend").status_code == 409
    assert client.post(f"/instances/{instance_id}/resume").status_code == 303
    assert client.post(f"/instances/{instance_id}/cancel").status_code == 303
    with session_factory() as s:
        assert engine.get_instance(s, instance_id).status == "cancelled"
        kinds = [e.kind for e in engine.instance_events(s, instance_id)]
    assert kinds[-3:] == ["suspended", "resumed", "cancelled"]


def test_only_admins_may_use_admin_actions(login_as: LoginAs, start: Callable[..., int]) -> None:
    instance_id = start()
    client = login_as("approver")
    for action in ("suspend", "resume", "cancel", "retry", "data", "reset"):
        assert client.post(f"/instances/{instance_id}/{action}").status_code == 403, action


def test_admin_retries_a_failed_instance_and_an_incident(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    failing = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="failing" name="Failing" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="divide" name="Divide">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>x = 1 / divisor</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="divide" />
    <bpmn:sequenceFlow id="f2" sourceRef="divide" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("failing.bpmn", "bpmn", failing)], name="failing")
        instance = engine.start_instance(
            s, "failing", organisation="north", user="north-req", data={"divisor": 0}
        )
        instance_id = instance.id
        job = engine.Job(
            kind="timer",
            status="incident",
            organisation_id=instance.organisation_id,
            instance_id=instance_id,
            due_at=engine.models.utcnow(),
            attempts=5,
            last_error="boom",
        )
        s.add(job)
        s.flush()
        job_id = job.id
    client = login_as("admin")
    page = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert _diagram_state(page)["failed"] == ["divide"] and "Retry the failed step" in page and "boom" in page
    assert client.post(f"/instances/{instance_id}/incidents/{job_id}/retry").status_code == 303
    assert client.post(f"/instances/{instance_id}/incidents/{job_id}/retry").status_code == 404
    assert client.post(f"/instances/{instance_id}/retry").status_code == 303
    with session_factory() as s:
        kinds = [e.kind for e in engine.instance_events(s, instance_id)]
        assert "retried" in kinds and s.get(engine.Job, job_id).status == "pending"


def test_completed_instance_shows_ended_and_all_done(
    login_as: LoginAs, start: Callable[..., int], session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = start()
    complete(
        session_factory,
        instance_id,
        "north-req",
        subject="Pens",
        category="goods",
        estimated_value=10,
        needed_by="2027-01-01",
    )
    complete(
        session_factory,
        instance_id,
        "north-handler",
        quotes=[{"supplier": "A", "price": 9}],
        chosen_supplier="A",
    )
    complete(session_factory, instance_id, "north-boss", approved=True)
    page = login_as("auditor").get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "Completed" in page and "Ended" in page
    assert _diagram_state(page) == {
        "active": [],
        "waiting": [],
        "completed": ["approve", "decided", "end_approved", "request", "review", "start"],
        "failed": [],
    }


def _failed_repair(session_factory: so.sessionmaker[so.Session]) -> int:
    """A ``repair`` instance (tests/fixtures/repair) in error: its script divides by ``parts``, which is 0."""
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "repair")
        instance_id = engine.start_instance(
            s, "repair", organisation="north", user="north-req", data={"parts": 0}
        ).id
    complete(session_factory, instance_id, "north-req", total=100)
    with session_factory() as s:
        assert engine.get_instance(s, instance_id).status == "error"
    return instance_id


def test_admin_corrects_the_data_of_a_failed_case_and_retries(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance_id = _failed_repair(session_factory)
    client = login_as("admin")
    page = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert f'action="/instances/{instance_id}/data"' in page and "&#34;parts&#34;: 0" in page
    assert re.findall(r'<option value="(\w+)">([^<]+)</option>', page) == [
        ("compute", "Compute the share"),
        ("enter", "Enter the total"),
    ]
    # The whole data comes back from the textarea; only what changed is recorded.
    edited = json.dumps({"parts": 4, "total": 100})
    response = client.post(f"/instances/{instance_id}/data", data={"data": edited})
    assert response.status_code == 303
    with session_factory() as s:
        (event,) = [e for e in engine.instance_events(s, instance_id) if e.kind == "data_changed"]
        assert (event.actor, event.detail) == ("north-admin", {"before": {"parts": 0}, "after": {"parts": 4}})
    page = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "The case data is saved: parts." in page and "Data corrected" in page
    assert client.post(f"/instances/{instance_id}/retry").status_code == 303
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "running" and engine.instance_data(s, instance)["share"] == 25
    unchanged = client.post(f"/instances/{instance_id}/data", data={"data": edited}, follow_redirects=True)
    assert "Nothing was changed." in unchanged.get_data(as_text=True)


def test_bad_case_data_is_shown_beside_the_field_with_the_input_kept(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance_id = _failed_repair(session_factory)
    client = login_as("admin")
    for text, message in (
        ('{"parts": 4,', "This is not valid JSON"),
        ("[4]", "The data must be a JSON object of field names and values"),
        ('{"parts": 4, "parameters": {"x": 1}}', "parameters: &#39;parameters&#39; is a reserved name"),
        ('{"parts": 4, "two words": 1}', "two words: &#39;two words&#39; is not a valid field name"),
    ):
        response = client.post(f"/instances/{instance_id}/data", data={"data": text})
        page = response.get_data(as_text=True)
        assert response.status_code == 422, text
        error = re.search(r'<small id="case-data-error" class="field-error" role="alert">(.*?)</small>', page)
        assert error and message in error.group(1), (text, error and error.group(1))
        assert 'aria-invalid="true"' in page
        kept = re.search(r'<textarea id="case-data"[^>]*>(.*?)</textarea>', page, re.DOTALL)
        assert kept and kept.group(1) == text.replace('"', "&#34;"), "the input is kept"
    with session_factory() as s:
        assert engine.instance_data(s, engine.get_instance(s, instance_id))["parts"] == 0
        assert not [e for e in engine.instance_events(s, instance_id) if e.kind == "data_changed"]


def test_admin_moves_a_case_back_to_an_earlier_step(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance_id = _failed_repair(session_factory)
    client = login_as("admin")
    response = client.post(f"/instances/{instance_id}/reset", data={"to": "enter"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "The case was moved back to “Enter the total”." in page and "Moved back" in page
    assert open_task(session_factory, instance_id).bpmn_id == "enter"
    with session_factory() as s:
        assert engine.get_instance(s, instance_id).status == "running"
    assert client.post(f"/instances/{instance_id}/reset", data={"to": "nowhere"}).status_code == 404
    not_run = client.post(f"/instances/{instance_id}/reset", data={"to": "check"})
    assert not_run.status_code == 409 and "has not run" in not_run.get_data(as_text=True)
    assert client.post(f"/instances/{instance_id}/reset", data={}).status_code == 400


def test_repair_forms_only_for_admins_on_open_cases(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance_id = _failed_repair(session_factory)
    page = login_as("approver").get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "/data" not in page and "/reset" not in page
    client = login_as("admin")
    assert client.post(f"/instances/{instance_id}/cancel").status_code == 303
    page = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "Administration" in page and f"/instances/{instance_id}/data" not in page and "/reset" not in page
    assert client.post(f"/instances/{instance_id}/data", data={"data": '{"parts": 4}'}).status_code == 409


# -- what the case waits for, its summary, its forms so far, messages registered by hand -----------

CASE_PAGE = FIXTURES / "case_page"
ASKED = {
    "ref": "R-1",
    "question": "Shall we deliver on Monday?",
    "urgent": True,
    "channel": "phone",
    "answer_by": "2030-01-31",
    "contacts": [{"name": "Maija", "primary": True}, {"name": "Anna", "primary": False}],
}


def _waiting_case(session_factory: so.sessionmaker[so.Session], *, jurisdiction: str | None = "FI") -> int:
    """Start the case-page fixture in north and complete its form: it waits for a reply or a time."""
    with session_factory.begin() as s:
        engine.deploy_path(s, CASE_PAGE)
        north = engine.get_organisation(s, "north")
        if jurisdiction:
            engine.set_parameter(
                s, "jurisdiction", jurisdiction, organisation_id=north.id, valid_from=dt.date(2000, 1, 1)
            )
        instance_id = engine.start_instance(s, "follow_up", organisation="north", user="north-req").id
    complete(session_factory, instance_id, "north-handler", **ASKED)
    return instance_id


def _text(page: str) -> str:
    """The page's text without tags (attribute values, such as ``datetime``, left out)."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", page)))


def _speak(client: WebClient, lang: str) -> None:
    assert client.post("/language", data={"lang": lang, "next": "/"}).status_code in (302, 303)


def test_case_page_says_what_the_case_waits_for_and_until_when(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = _waiting_case(session_factory)
    page = login_as("case_handler").get(f"/instances/{instance_id}").get_data(as_text=True)
    text = _text(page)
    assert "What the case waits for" in text
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
    assert f'href="/tasks/{task.id}">Await the customer&#39;s answer</a>' in page
    assert "Group: handlers" in text
    # The timer fires at 12:00 UTC; north is in Finland (EET in January).
    assert "Time: No reply in time · at Jan 15, 2030, 2:00:00 PM" in text
    assert "Message: Customer's reply (R-1)" in text
    assert "2030-01-15T12:00:00" not in text, "no raw ISO time is shown"


def test_times_follow_the_organisations_time_zone_parameter(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = _waiting_case(session_factory, jurisdiction="SE")
    client = login_as("case_handler")
    assert "at Jan 15, 2030, 1:00:00 PM" in _text(
        client.get(f"/instances/{instance_id}").get_data(as_text=True)
    )
    with session_factory.begin() as s:
        north = engine.get_organisation(s, "north")
        engine.set_parameter(
            s, "time_zone", "America/New_York", organisation_id=north.id, valid_from=dt.date(2000, 1, 1)
        )
    assert "at Jan 15, 2030, 7:00:00 AM" in _text(
        client.get(f"/instances/{instance_id}").get_data(as_text=True)
    )


def test_case_summary_shows_the_declared_fields_and_that_a_period_was_extended(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = _waiting_case(session_factory)
    client = login_as("case_handler")
    text = _text(client.get(f"/instances/{instance_id}").get_data(as_text=True))
    assert "Reference R-1" in text
    assert "Closes at Jan 15, 2030, 2:00:00 PM Extended to the minimum of 10 days." in text
    assert "Never shown" not in text, "a declared key the data lacks is left out"
    _speak(client, "sv")
    text = _text(client.get(f"/instances/{instance_id}").get_data(as_text=True))
    assert "Ärendenummer R-1" in text and "Förlängd till minst 10 dagar." in text
    assert "Vad ärendet väntar på" in text


def test_case_so_far_shows_the_completed_forms_fields_with_labels_and_formatted_values(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = _waiting_case(session_factory)
    client = login_as("case_handler")
    page = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    so_far = _text(page.split('id="so-far-heading"', 1)[1].split("</section>", 1)[0])
    assert "Ask the customer" in so_far and "north-handler" in so_far
    assert (
        "Reference R-1 Question Shall we deliver on Monday? Urgent Yes Channel By phone "
        "Answer by Jan 31, 2030 Contacts Name Primary Maija Yes Anna No"
    ) in so_far
    assert "All case data" not in page, "the raw data is for admins"
    _speak(client, "fi")
    so_far = _text(client.get(f"/instances/{instance_id}").get_data(as_text=True))
    assert "Kysy asiakkaalta" in so_far
    assert "Kiireellinen Kyllä Kanava Puhelimitse Vastaus viimeistään 31.1.2030" in so_far
    admin = login_as("admin")
    _speak(admin, "en")
    assert "All case data (for admins)" in admin.get(f"/instances/{instance_id}").get_data(as_text=True)


def test_a_case_handler_registers_the_awaited_message_from_the_case_page(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = _waiting_case(session_factory)
    client = login_as("case_handler")
    page = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert f'action="/instances/{instance_id}/messages/customer_reply"' in page
    assert "Register the customer&#39;s reply" in page and 'name="message"' in page
    response = client.post(
        f"/instances/{instance_id}/messages/customer_reply", data={"message": "Monday is fine."}
    )
    assert response.status_code == 303 and response.location.endswith(f"/instances/{instance_id}")
    page = client.get(response.location).get_data(as_text=True)
    assert "“Customer&#39;s reply” is registered on the case." in page
    so_far = _text(page.split('id="so-far-heading"', 1)[1].split("</section>", 1)[0])
    assert (
        "Message received: Customer's reply" in so_far and "What the customer wrote Monday is fine." in so_far
    )
    with session_factory() as s:
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=instance_id)] == ["read_reply"]
        instance = engine.get_instance(s, instance_id)
        assert engine.instance_data(s, instance)["customer_reply"] == {
            "message": "Monday is fine.",
            "ref": "R-1",
        }
        (received,) = [e for e in engine.instance_events(s, instance_id) if e.kind == "message_received"]
        assert received.actor == "north-handler" and received.detail["message"] == "customer_reply"


def test_a_payload_the_form_refuses_comes_back_with_the_message_beside_its_field(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = _waiting_case(session_factory)
    client = login_as("case_handler")
    response = client.post(f"/instances/{instance_id}/messages/customer_reply", data={"message": "OK"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'<input[^>]*name="message"[^>]*value="OK"', page), "the input is kept"
    assert 'aria-invalid="true"' in page
    assert re.search(r'<details class="register-message"[^>]*\bopen\b', page), "the form is shown opened"
    with session_factory() as s:
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=instance_id)] == ["await_customer"]


def test_only_the_lane_group_and_admins_may_register_a_message(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = _waiting_case(session_factory)
    url = f"/instances/{instance_id}/messages/customer_reply"
    requester = login_as("requester")
    assert "Register the customer" not in requester.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert requester.post(url, data={"message": "Monday is fine."}).status_code == 403
    assert login_as("case_handler", "south").post(url, data={"message": "Monday is fine."}).status_code == 404
    admin = login_as("admin")
    assert admin.post(url, data={"message": "Monday is fine."}, csrf=False).status_code == 400
    assert admin.post(f"/instances/{instance_id}/messages/other", data={}).status_code == 409
    assert admin.post(url, data={"message": "Monday is fine."}).status_code == 303
    assert admin.post(url, data={"message": "Again."}).status_code == 409, "the case no longer waits for it"


def test_the_task_page_shows_the_case_so_far_as_labelled_forms(
    login_as: LoginAs, deployed: None, session_factory: so.sessionmaker[so.Session]
) -> None:
    instance_id = _waiting_case(session_factory)
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
    page = login_as("case_handler").get(f"/tasks/{task.id}").get_data(as_text=True)
    so_far = _text(page.split('<details class="case-data">', 1)[1])
    assert "Ask the customer" in so_far and "Urgent Yes Channel By phone Answer by Jan 31, 2030" in so_far
    assert "wait_extended" not in so_far and "All case data" not in so_far
