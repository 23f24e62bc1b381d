"""Message delivery: correlation, message starts, events thrown by instances."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy.orm as so

import engine
from tests.conftest import FIXTURES

Factory = so.sessionmaker[so.Session]


@pytest.fixture
def deployed(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "messages")
        engine.deploy_path(s, FIXTURES / "thrower")


def _start(session_factory: Factory, process_id: str, org: str = "north", **data: Any) -> int:
    with session_factory.begin() as s:
        return engine.start_instance(s, process_id, organisation=org, user=f"{org}-req", data=data).id


def _send(session_factory: Factory, name: str, org: str = "north", **payload: Any) -> list[int]:
    with session_factory.begin() as s:
        return [i.id for i in engine.send_message(s, name, payload, organisation=org)]


def test_message_reaches_only_the_correlated_instance(session_factory: Factory, deployed: None) -> None:
    a = _start(session_factory, "order", order_id="A-1")
    b = _start(session_factory, "order", order_id="B-2")
    with session_factory() as s:
        (sub,) = engine.instance_subscriptions(s, a)
        assert (sub.message_name, sub.correlation_key) == ("customer_reply", '{"order_id":"A-1"}')
    assert _send(session_factory, "customer_reply", order_id="B-2", text="Yes please") == [b]
    with session_factory() as s:
        assert engine.get_instance(s, a).status == "waiting"
        instance = engine.get_instance(s, b)
        assert instance.status == "running"
        assert engine.instance_data(s, instance)["reply"] == {"order_id": "B-2", "text": "Yes please"}
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=b)] == ["read_reply"]
        assert engine.instance_subscriptions(s, b) == []
        assert "message_received" in [e.kind for e in engine.instance_events(s, b)]


def test_uncorrelated_message_is_refused(session_factory: Factory, deployed: None) -> None:
    _start(session_factory, "order", order_id="A-1")
    with pytest.raises(engine.NotFoundError, match="No instance waits for message 'customer_reply'"):
        _send(session_factory, "customer_reply", order_id="Z-9")


def test_message_does_not_cross_organisations(session_factory: Factory, deployed: None) -> None:
    _start(session_factory, "order", org="south", order_id="A-1")
    with pytest.raises(engine.NotFoundError):
        _send(session_factory, "customer_reply", org="north", order_id="A-1")


def test_message_start_event_starts_a_process(session_factory: Factory, deployed: None) -> None:
    (iid,) = _send(session_factory, "contact_received", email="buyer@kommun.se", topic="cleaning DPS")
    with session_factory() as s:
        instance = engine.get_instance(s, iid)
        assert (instance.process_id, instance.status, instance.started_by) == ("intake", "running", None)
        assert engine.instance_data(s, instance)["contact"]["topic"] == "cleaning DPS"
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=iid)] == ["triage"]


def test_thrown_message_is_routed_in_the_same_transaction(session_factory: Factory, deployed: None) -> None:
    other = _start(session_factory, "tracker", case_id=7)
    tracker = _start(session_factory, "tracker", case_id=42)
    buyer = _start(session_factory, "buyer", case_id=42)
    with session_factory() as s:
        assert engine.get_instance(s, buyer).status == "completed"
        done = engine.get_instance(s, tracker)
        assert done.status == "completed"
        assert engine.instance_data(s, done)["outcome"] == {"case_id": 42, "result": "ordered"}
        assert engine.get_instance(s, other).status == "waiting"


def test_suspended_instance_receives_nothing(session_factory: Factory, deployed: None) -> None:
    a = _start(session_factory, "order", order_id="A-1")
    with session_factory.begin() as s:
        engine.suspend_instance(s, a, user="north-admin")
    with pytest.raises(engine.NotFoundError):
        _send(session_factory, "customer_reply", order_id="A-1")


def test_process_with_manual_and_message_starts_supports_both(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "two_starts")
    (by_message,) = _send(session_factory, "web_form_sent", question="Can we join?")
    by_hand = _start(session_factory, "two_starts")
    with session_factory() as s:
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=by_message)] == ["triage"]
        assert engine.instance_data(s, engine.get_instance(s, by_message))["form"] == {
            "question": "Can we join?"
        }
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=by_hand)] == ["enter"]


def test_event_based_gateway_waits_for_message_or_timer(session_factory: Factory, orgs: None) -> None:
    import datetime as dt

    import time_machine

    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "race")
    answered = _start(session_factory, "race", case_ref="C-1")
    silent = _start(session_factory, "race", case_ref="C-2")
    with session_factory() as s:
        (sub,) = engine.instance_subscriptions(s, answered)
        assert (sub.message_name, sub.correlation_key) == ("customer_answer", '{"case_ref":"C-1"}')
    assert _send(session_factory, "customer_answer", case_ref="C-1", text="Here it is") == [answered]
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=3), tick=True):
        assert engine.run_due_jobs(session_factory).ran == 1
    with session_factory() as s:
        events = {
            iid: [
                e.element
                for e in engine.instance_events(s, iid)
                if e.kind in ("message_received", "timer_fired")
            ]
            for iid in (answered, silent)
        }
        assert engine.get_instance(s, answered).status == "completed"
        assert engine.get_instance(s, silent).status == "completed"
        assert engine.instance_data(s, engine.get_instance(s, answered))["answer"]["text"] == "Here it is"
        assert engine.instance_subscriptions(s, silent) == []
    assert events[silent] == ["which_first"]


def test_messages_start_event_subprocesses_each_time(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "questions")
    tender = _start(session_factory, "tender", tender_ref="T-1")
    other = _start(session_factory, "tender", tender_ref="T-2")
    with session_factory() as s:
        (sub,) = engine.instance_subscriptions(s, tender)
        assert (sub.message_name, sub.correlation_key) == ("supplier_question", '{"tender_ref":"T-1"}')
    assert _send(session_factory, "supplier_question", tender_ref="T-1", text="Lot 2?") == [tender]
    assert _send(session_factory, "supplier_question", tender_ref="T-1", text="Deadline?") == [tender]
    with session_factory() as s:
        open_tasks = sorted(t.bpmn_id for t in engine.list_tasks(s, instance_id=tender))
        assert open_tasks == ["answer_all", "answer_all", "open_tenders"]
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=other)] == ["open_tenders"]
    with session_factory.begin() as s:
        opening = next(t for t in engine.list_tasks(s, instance_id=tender) if t.bpmn_id == "open_tenders")
        engine.complete_task(s, opening.id, user="north-req")
    with session_factory() as s:
        # The main flow has ended, but questions in progress keep the case open.
        assert engine.get_instance(s, tender).status == "running"


def _instances(session_factory: Factory) -> list[tuple[str, str]]:
    with session_factory() as s:
        return [(i.process_id, i.status) for i in s.query(engine.ProcessInstance).order_by("id")]


def test_a_reply_thrown_back_within_the_same_operation_reaches_the_sender(
    session_factory: Factory, orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "conversation")
    requester = _start(session_factory, "requester", case_id="C-1", item="desk")
    assert _instances(session_factory) == [("requester", "running"), ("responder", "completed")]
    with session_factory() as s:
        instance = engine.get_instance(s, requester)
        assert engine.instance_data(s, instance)["reply"] == {"case_id": "C-1", "price": 40}
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=requester)] == ["read_price"]
        assert engine.instance_subscriptions(s, requester) == []
        assert [e.kind for e in engine.instance_events(s, requester)].count("message_received") == 1


def test_a_process_that_starts_on_a_message_with_a_form_starts_by_hand_through_that_message(
    session_factory: Factory, orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "message_form")
        definition = engine.resolve_definition(s, "registration", engine.get_organisation(s, "north").id)
        schema, _ui = engine.start_form(s, definition) or ({}, None)
        assert schema["title"] == "Supplier"
    with session_factory.begin() as s, pytest.raises(engine.FormValidationError) as refused:
        engine.start_instance(s, "registration", organisation="north", user="north-req", data={"name": "A"})
    assert set(refused.value.errors) == {"name", "org_number"}
    supplier = {"name": "Kontorsmöbler AB", "org_number": "556000-0002"}
    iid = _start(session_factory, "registration", **supplier)
    with session_factory() as s:
        instance = engine.get_instance(s, iid)
        assert instance.status == "running" and instance.started_by is not None
        assert engine.instance_data(s, instance)["supplier"] == supplier
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=iid)] == ["vet"]
        assert engine.instance_subscriptions(s, iid) == []


def test_a_message_start_checks_the_payload_against_the_start_form(
    session_factory: Factory, orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "message_form")
    with session_factory.begin() as s, pytest.raises(engine.FormValidationError) as refused:
        payload = {"name": "Sittbra AB", "org_number": "five"}
        engine.send_message(s, "supplier_registered", payload, organisation="north")
    assert list(refused.value.errors) == ["org_number"]
    assert _instances(session_factory) == []
    with session_factory.begin() as s:
        payload = {"name": "Sittbra AB", "org_number": "556000-0003"}
        engine.send_message(s, "supplier_registered", payload, organisation="north")
    assert _instances(session_factory) == [("registration", "running")]


@pytest.mark.parametrize("key", ["parameters", "math", "len", "_guard"])
def test_message_payload_cannot_use_a_sandbox_name(
    session_factory: Factory, deployed: None, key: str
) -> None:
    order = _start(session_factory, "order", order_id="A-1")
    with pytest.raises(engine.DataError, match=f"'customer_reply'.*'{key}' is a reserved name"):
        _send(session_factory, "customer_reply", order_id="A-1", **{key: {"direct_limit": 10**12}})
    with session_factory() as s:
        assert engine.get_instance(s, order).status == "waiting"
        assert "message_received" not in [e.kind for e in engine.instance_events(s, order)]


def test_deeply_nested_message_payload_is_refused(session_factory: Factory, deployed: None) -> None:
    deep: dict[str, Any] = {}
    for _ in range(100_000):
        deep = {"a": deep}
    with pytest.raises(engine.DataError, match="nested more than 64 levels"):
        _send(session_factory, "contact_received", body=deep)
