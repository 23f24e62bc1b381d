"""Deploy, start, complete, permissions and persistence through the engine API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from tests.conftest import FIXTURES

APPROVAL = FIXTURES / "approval"


@pytest.fixture
def deployed(session_factory: so.sessionmaker[so.Session], orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL)


def _start(session_factory: so.sessionmaker[so.Session], user: str = "north-req", **data: object) -> int:
    with session_factory.begin() as s:
        return engine.start_instance(s, "approval", organisation="north", user=user, data=dict(data)).id


def _only_task(session_factory: so.sessionmaker[so.Session], instance_id: int) -> engine.HumanTask:
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        return task


def _complete(session_factory: so.sessionmaker[so.Session], task_id: int, user: str, **data: object) -> None:
    with session_factory.begin() as s:
        engine.complete_task(s, task_id, user=user, data=dict(data))


REQUEST = {"subject": "Laptops", "amount": 1000, "requester_email": "req@example.org"}


def test_happy_path_runs_to_completion(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    instance_id = _start(session_factory)
    task = _only_task(session_factory, instance_id)
    assert (task.bpmn_id, task.lane, task.form) == ("request", "requesters", "request.schema.json")
    assert task.due_at is not None and task.due_at > engine.models.utcnow() + dt.timedelta(days=1)
    _complete(session_factory, task.id, "north-req", **REQUEST)

    approve = _only_task(session_factory, instance_id)
    assert approve.bpmn_id == "approve"
    _complete(session_factory, approve.id, "north-boss", approved=True)

    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "completed"
        data = engine.instance_data(s, instance)
        assert data["total"] == "1250.00"
        assert data["notification"]["status"] == "queued"
        kinds = [e.kind for e in engine.instance_events(s, instance_id)]
        assert kinds[0] == "started" and kinds[-1] == "completed"
        assert kinds.count("task_completed") == 2
        outbox = s.scalars(sa.select(engine.OutboxMessage)).one()
        assert outbox.recipient == "req@example.org" and outbox.subject == "Approved: Laptops"


def test_rejection_takes_the_other_branch(
    session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance_id = _start(session_factory)
    _complete(session_factory, _only_task(session_factory, instance_id).id, "north-req", **REQUEST)
    _complete(session_factory, _only_task(session_factory, instance_id).id, "north-boss", approved=False)
    with session_factory() as s:
        assert engine.get_instance(s, instance_id).status == "completed"
        assert s.scalars(sa.select(engine.OutboxMessage)).first() is None


def test_form_validation_names_each_bad_field(
    session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance_id = _start(session_factory)
    task = _only_task(session_factory, instance_id)
    with pytest.raises(engine.FormValidationError) as info:
        _complete(session_factory, task.id, "north-req", subject="x", amount=-5)
    assert set(info.value.errors) == {"subject", "amount", "requester_email"}
    assert "required" in info.value.errors["requester_email"][0]
    # Nothing was stored: the task is still open.
    assert _only_task(session_factory, instance_id).state == "ready"


def test_lane_group_is_enforced(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    instance_id = _start(session_factory)
    _complete(session_factory, _only_task(session_factory, instance_id).id, "north-req", **REQUEST)
    approve = _only_task(session_factory, instance_id)
    with pytest.raises(engine.PermissionDeniedError, match="not in group 'approvers'"):
        _complete(session_factory, approve.id, "north-admin", approved=True)


def test_separation_of_duties_excludes_the_starter(
    session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance_id = _start(session_factory, user="north-boss")
    _complete(session_factory, _only_task(session_factory, instance_id).id, "north-boss", **REQUEST)
    approve = _only_task(session_factory, instance_id)
    with pytest.raises(engine.PermissionDeniedError, match="separation of duties"):
        _complete(session_factory, approve.id, "north-boss", approved=True)
    with session_factory() as s:
        assert approve.id not in [t.id for t in engine.list_tasks(s, user="north-boss")]


def test_other_organisation_sees_nothing(
    session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    instance_id = _start(session_factory)
    task = _only_task(session_factory, instance_id)
    with pytest.raises(engine.NotFoundError):
        _complete(session_factory, task.id, "south-req", **REQUEST)
    with session_factory() as s:
        assert engine.list_tasks(s, user="south-req") == []
        with pytest.raises(engine.NotFoundError):
            south = engine.get_organisation(s, "south")
            engine.get_instance(s, instance_id, organisation_id=south.id)


NO_LANE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="no_lane" name="No lane" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="check" name="Check"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check" />
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_auditors_only_read_even_tasks_without_a_lane(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.add_user(s, "north-auditor", organisation="north", roles=["auditor"])
        engine.deploy_files(s, [engine.BundleFile("no_lane.bpmn", "bpmn", NO_LANE)], name="no_lane")
        instance_id = engine.start_instance(s, "no_lane", organisation="north", user="north-req").id
    task = _only_task(session_factory, instance_id)
    assert task.candidate_group is None
    refused = r"'north-auditor' may not work on task .*: their role \(auditor\) only reads cases"
    with pytest.raises(engine.PermissionDeniedError, match=refused):
        _complete(session_factory, task.id, "north-auditor")
    with pytest.raises(engine.PermissionDeniedError, match="only reads"), session_factory.begin() as s:
        engine.claim_task(s, task.id, user="north-auditor")
    with session_factory() as s:
        assert engine.list_tasks(s, user="north-auditor") == []
        assert [t.id for t in engine.list_tasks(s, user="north-admin")] == [task.id]
    # Every role that works on tasks may (the task has no lane and no assignee).
    _complete(session_factory, task.id, "north-admin")


def test_completing_twice_is_a_conflict(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    instance_id = _start(session_factory)
    task = _only_task(session_factory, instance_id)
    _complete(session_factory, task.id, "north-req", **REQUEST)
    with pytest.raises(engine.ConflictError, match=f"Task {task.id} \\(Describe the purchase\\)"):
        _complete(session_factory, task.id, "north-req", **REQUEST)


def test_claim_and_unclaim(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    instance_id = _start(session_factory)
    task = _only_task(session_factory, instance_id)
    with session_factory.begin() as s:
        engine.claim_task(s, task.id, user="north-req")
    with pytest.raises(engine.ConflictError, match="already claimed"), session_factory.begin() as s:
        engine.claim_task(s, task.id, user="north-boss")
    with pytest.raises(engine.PermissionDeniedError, match="claimed by north-req"):
        _complete(session_factory, task.id, "north-boss", **REQUEST)
    with session_factory.begin() as s:
        engine.unclaim_task(s, task.id, user="north-req")
    _complete(session_factory, task.id, "north-boss", **REQUEST)


def test_decimal_and_date_round_trip(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    instance_id = _start(session_factory, budget=Decimal("12345.67"), deadline=dt.date(2027, 3, 31))
    _complete(session_factory, _only_task(session_factory, instance_id).id, "north-req", **REQUEST)
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        from engine._workflow import InstanceOperation

        data = InstanceOperation(s, instance, actor=None).data()
    assert data["budget"] == Decimal("12345.67") and isinstance(data["budget"], Decimal)
    assert data["deadline"] == dt.date(2027, 3, 31)
    assert data["total"] == Decimal("1250.00")


def test_a_fraction_sent_as_json_is_a_decimal_as_a_forms_would_be(
    session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    # The API and the CLI carry 999.5 as a float; the fixture's script computes amount * Decimal('1.25'),
    # which a float would fail (Decimal and float do not mix) and a web form's Decimal does not.
    instance_id = _start(session_factory)
    task = _only_task(session_factory, instance_id)
    submitted = {**REQUEST, "amount": 999.5, "lines": [{"price": 0.1}]}
    _complete(session_factory, task.id, "north-req", **submitted)
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert instance.status == "running", instance.error_message
        from engine._workflow import InstanceOperation

        data = InstanceOperation(s, instance, actor=None).data()
    assert data["amount"] == Decimal("999.5") and isinstance(data["amount"], Decimal)
    assert data["total"] == Decimal("1249.375")
    assert data["lines"] == [{"price": Decimal("0.1")}], "the float's shortest text, not its binary fraction"


def test_suspend_resume_cancel(session_factory: so.sessionmaker[so.Session], deployed: None) -> None:
    instance_id = _start(session_factory)
    task = _only_task(session_factory, instance_id)
    with session_factory.begin() as s:
        engine.suspend_instance(s, instance_id, user="north-admin")
    with pytest.raises(engine.InvalidStateError, match="suspended"):
        _complete(session_factory, task.id, "north-req", **REQUEST)
    with pytest.raises(engine.PermissionDeniedError), session_factory.begin() as s:
        engine.resume_instance(s, instance_id, user="north-req")
    with session_factory.begin() as s:
        engine.resume_instance(s, instance_id, user="north-admin")
        engine.cancel_instance(s, instance_id, user="north-admin")
    with session_factory() as s:
        assert engine.get_instance(s, instance_id).status == "cancelled"
        assert engine.list_tasks(s, instance_id=instance_id) == []
        assert engine.get_task(s, task.id).state == "cancelled"


def test_each_step_survives_a_fresh_session(
    session_factory: so.sessionmaker[so.Session], deployed: None
) -> None:
    """Every operation restores the workflow from the database (the save/restore round trip)."""
    instance_id = _start(session_factory)
    with session_factory() as s:
        state = engine.get_instance(s, instance_id).state
    assert '"spec"' not in state[:200] and "task_specs" not in state
    engine.SPEC_CACHE.clear()
    _complete(session_factory, _only_task(session_factory, instance_id).id, "north-req", **REQUEST)
    assert _only_task(session_factory, instance_id).bpmn_id == "approve"


def test_start_form_validates_the_initial_data(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "start_form")
        definition = engine.resolve_definition(s, "quick_contact", engine.get_organisation(s, "north").id)
        schema, ui = engine.start_form(s, definition) or ({}, None)
        assert schema["required"] == ["question"] and ui is None
    with pytest.raises(engine.FormValidationError) as info, session_factory.begin() as s:
        engine.start_instance(
            s, "quick_contact", organisation="north", user="north-req", data={"question": "?"}
        )
    assert list(info.value.errors) == ["question"]
    with session_factory.begin() as s:
        instance = engine.start_instance(
            s, "quick_contact", organisation="north", user="north-req", data={"question": "May we join?"}
        )
        assert engine.instance_data(s, instance)["question"] == "May we join?"


@pytest.mark.parametrize(
    ("declarant", "assignee", "group"),
    [("north-boss", "north-boss", None), ("south-boss", None, "approvers")],
)
def test_model_assigns_personal_tasks_only_within_the_organisation(
    session_factory: so.sessionmaker[so.Session],
    orgs: None,
    declarant: str,
    assignee: str | None,
    group: str | None,
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "personal")
        iid = engine.start_instance(
            s, "personal", organisation="north", user="north-req", data={"declarant": declarant}
        ).id
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=iid)
        assert (task.assignee.username if task.assignee else None, task.candidate_group) == (assignee, group)
    if assignee:
        with (
            pytest.raises(engine.PermissionDeniedError, match="assigned by the process"),
            session_factory.begin() as s,
        ):
            engine.unclaim_task(s, task.id, user=assignee)


APPROVAL_CONTEXT = FIXTURES / "approval_context"
PURCHASE = {"subject": "Laptops", "supplier": {"name": "Acme", "contact": "a@acme.example"}, "amount": 50_000}


@pytest.fixture
def limited(session_factory: so.sessionmaker[so.Session], orgs: None) -> int:
    """An approval_context case waiting at its approval step, with north's direct limit at 10 000."""
    with session_factory.begin() as s:
        engine.deploy_path(s, APPROVAL_CONTEXT)
        north = engine.get_organisation(s, "north").id
        engine.set_parameter(s, "direct_limit", 10_000, organisation_id=north, valid_from=dt.date(2020, 1, 1))
        instance_id = engine.start_instance(s, "approval_context", organisation="north", user="north-req").id
    _complete(session_factory, _only_task(session_factory, instance_id).id, "north-req", **PURCHASE)
    return instance_id


def _assert_still_waiting_at(
    session_factory: so.sessionmaker[so.Session], instance_id: int, bpmn_id: str
) -> None:
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        assert (task.bpmn_id, task.state) == (bpmn_id, "ready")
        assert not [e for e in engine.instance_events(s, instance_id) if e.element == bpmn_id]


@pytest.mark.parametrize("key", ["parameters", "date", "Decimal", "len", "sum", "_secret"])
def test_submitted_data_cannot_use_a_sandbox_name(
    session_factory: so.sessionmaker[so.Session], limited: int, key: str
) -> None:
    approve = _only_task(session_factory, limited)
    forged = {"subject": "Laptops", "amount": 50_000, "approved": True, key: {"direct_limit": 10**12}}
    with pytest.raises(engine.FormValidationError) as info:
        _complete(session_factory, approve.id, "north-boss", **forged)
    assert list(info.value.errors) == [key]
    assert "is a reserved name" in info.value.errors[key][0]
    _assert_still_waiting_at(session_factory, limited, "approve")


def test_submitted_parameters_do_not_replace_the_organisations(
    session_factory: so.sessionmaker[so.Session], limited: int
) -> None:
    approve = _only_task(session_factory, limited)
    forged = {
        "subject": "Laptops",
        "amount": 50_000,
        "approved": True,
        "parameters": {"direct_limit": 10**12},
    }
    with pytest.raises(engine.FormValidationError):
        _complete(session_factory, approve.id, "north-boss", **forged)
    _complete(session_factory, approve.id, "north-boss", approved=True)
    with session_factory() as s:
        data = engine.instance_data(s, engine.get_instance(s, limited))
    assert data["over_limit"] is True and "parameters" not in data  # 50 000 is over north's 10 000


def test_start_data_cannot_use_a_sandbox_name(
    session_factory: so.sessionmaker[so.Session], orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "decision")
    with pytest.raises(engine.FormValidationError) as info, session_factory.begin() as s:
        engine.start_instance(
            s,
            "decision",
            organisation="north",
            user="north-req",
            data={"value": 60_000, "parameters": {"direct_limit": 10**12}},
        )
    assert list(info.value.errors) == ["parameters"]
    with session_factory() as s:
        assert s.scalars(sa.select(engine.ProcessInstance)).first() is None


def test_read_only_fields_keep_what_the_case_holds(
    session_factory: so.sessionmaker[so.Session], limited: int
) -> None:
    approve = _only_task(session_factory, limited)
    forged = {
        "subject": "Gold bars",  # readOnly in the schema
        "supplier": {"name": "Cousin Ltd", "contact": "c@acme.example"},  # name is ui:readonly
        "amount": 10**12,  # ui:readonly
        "approved": True,
    }
    _complete(session_factory, approve.id, "north-boss", **forged)
    with session_factory() as s:
        data = engine.instance_data(s, engine.get_instance(s, limited))
        (completed,) = [e for e in engine.instance_events(s, limited) if e.element == "approve"]
    assert data["subject"] == "Laptops" and data["amount"] == 50_000
    assert data["supplier"] == {"name": "Acme", "contact": "c@acme.example"}
    assert data["approved"] is True and data["over_limit"] is True
    assert completed.detail["data"]["subject"] == "Laptops"  # the record shows what the case took


def test_required_read_only_fields_need_not_be_sent_again(
    session_factory: so.sessionmaker[so.Session], limited: int
) -> None:
    approve = _only_task(session_factory, limited)
    with pytest.raises(engine.FormValidationError) as info:
        _complete(session_factory, approve.id, "north-boss", subject="Gold bars")
    assert list(info.value.errors) == ["approved"]  # subject and amount come from the case
    _complete(session_factory, approve.id, "north-boss", approved=False)
    with session_factory() as s:
        assert engine.instance_data(s, engine.get_instance(s, limited))["subject"] == "Laptops"


def test_deeply_nested_submission_is_refused(
    session_factory: so.sessionmaker[so.Session], limited: int
) -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    approve = _only_task(session_factory, limited)
    with pytest.raises(engine.FormValidationError) as info:
        _complete(session_factory, approve.id, "north-boss", approved=True, comment=deep)
    assert info.value.errors == {"": [f"The data is nested more than {engine.MAX_DATA_DEPTH} levels deep."]}
    _assert_still_waiting_at(session_factory, limited, "approve")
