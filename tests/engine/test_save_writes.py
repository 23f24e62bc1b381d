"""How a save writes: on PostgreSQL in one statement, with the same effects as one statement per row kind."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine._workflow import InstanceOperation
from engine.db import is_postgresql
from engine.models import AuditEvent, CaseReport, CaseReportValue, HumanTask, ProcessInstance

TWO_STEPS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="two_steps" name="Two steps" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="Review">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="approve" name="Approve">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="excludeCompletersOf" value="review" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="approve" />
    <bpmn:sequenceFlow id="f3" sourceRef="approve" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""

# The same without separation of duties: no look-up of completers between the writes.
PLAIN_STEPS = TWO_STEPS.replace("two_steps", "plain_steps").replace(
    '<spiffworkflow:property name="excludeCompletersOf" value="review" />', ""
)

Factory = so.sessionmaker[so.Session]


@pytest.fixture
def instance_id(session_factory: Factory, orgs: None) -> int:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("two_steps.bpmn", "bpmn", TWO_STEPS)], name="two_steps")
        return engine.start_instance(s, "two_steps", organisation="north", user="north-req").id


def _ready_task(session_factory: Factory, instance_id: int) -> HumanTask:
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        return task


def _complete(session_factory: Factory, task_id: int, user: str) -> None:
    with session_factory.begin() as s:
        engine.complete_task(s, task_id, user=user, data={})


def test_the_completer_of_the_task_just_completed_is_excluded_from_the_next(
    session_factory: Factory, instance_id: int
) -> None:
    # The completed task's row is written with the rest of the save on PostgreSQL; the look-up
    # of who completed "review" must still see it, in the same transaction.
    review = _ready_task(session_factory, instance_id)
    _complete(session_factory, review.id, "north-boss")
    approve = _ready_task(session_factory, instance_id)
    assert approve.bpmn_id == "approve"
    with pytest.raises(engine.PermissionDeniedError, match="separation of duties"):
        _complete(session_factory, approve.id, "north-boss")
    _complete(session_factory, approve.id, "north-admin")
    with session_factory() as s:
        rows = {t.bpmn_id: t for t in engine.list_tasks(s, instance_id=instance_id, state=None)}
        assert {k: (t.state, t.completed_by and t.completed_by.username) for k, t in rows.items()} == {
            "review": ("completed", "north-boss"),
            "approve": ("completed", "north-admin"),
        }
        assert engine.get_instance(s, instance_id).status == "completed"
        events = engine.instance_events(s, instance_id)
    assert [(e.kind, e.element, e.actor) for e in events] == [
        ("started", None, "north-req"),
        ("task_completed", "review", "north-boss"),
        ("task_completed", "approve", "north-admin"),
        ("completed", None, "north-admin"),
    ]
    assert events[1].detail == {"task_id": review.id, "name": "Review", "data": {}}
    assert all(e.at.tzinfo is not None for e in events)


def test_a_save_finding_the_instance_changed_is_a_conflict_and_writes_nothing(
    session_factory: Factory, instance_id: int
) -> None:
    review = _ready_task(session_factory, instance_id)
    with session_factory() as s:
        events_before = s.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
        task_ids_before = s.scalars(sa.select(HumanTask.id).order_by(HumanTask.id)).all()
    with pytest.raises(engine.ConflictError, match="changed by someone else"), session_factory.begin() as s:
        op, task, _excluded = InstanceOperation.lock_task(s, review.id, actor="north-boss")
        # What another process's committed operation would have done meanwhile (without the lock).
        s.connection().execute(
            sa.update(ProcessInstance)
            .where(ProcessInstance.id == instance_id)
            .values(lock_version=ProcessInstance.lock_version + 1)
        )
        spiff_task = op.task(task.task_uuid)
        assert spiff_task is not None
        spiff_task.run()
        op.write_task_row(task, state="completed", completed_at=engine.models.utcnow())
        op.audit("task_completed", element=task.bpmn_id)
        op.advance()
        op.save(completed_task_uuid=task.task_uuid)
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events_before
        assert s.scalars(sa.select(HumanTask.id).order_by(HumanTask.id)).all() == task_ids_before
        assert s.get(HumanTask, review.id).state == "ready"  # type: ignore[union-attr]
    _complete(session_factory, review.id, "north-boss")  # the instance itself is intact


def test_on_postgresql_a_step_writes_instance_task_rows_and_audit_in_one_statement(
    session_factory: Factory, orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("plain.bpmn", "bpmn", PLAIN_STEPS)], name="plain_steps")
        instance_id = engine.start_instance(s, "plain_steps", organisation="north", user="north-req").id
    review = _ready_task(session_factory, instance_id)
    statements: list[str] = []
    bind = session_factory.kw["bind"]
    if not is_postgresql(bind):
        pytest.skip("one statement per row kind on SQLite")

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(bind, "before_cursor_execute", record)
    try:
        _complete(session_factory, review.id, "north-boss")
    finally:
        sa.event.remove(bind, "before_cursor_execute", record)
    ours = [
        s
        for s in statements
        if s.startswith(("UPDATE process_instance", "UPDATE human_task", "INSERT INTO human_task "))
        or s.startswith(("INSERT INTO audit_event", "INSERT INTO case_report"))
    ]
    assert ours == []
    (combined,) = [s for s in statements if s.startswith("WITH")]
    for part in (
        "UPDATE human_task",
        "UPDATE process_instance",
        "INSERT INTO human_task",
        "INSERT INTO audit_event",
        "INSERT INTO case_report",
    ):
        assert part in combined
    approve = _ready_task(session_factory, instance_id)
    assert approve.bpmn_id == "approve" and approve.id > review.id
    with session_factory() as s:
        (done,) = engine.list_tasks(s, instance_id=instance_id, state="completed")
        assert (done.id, done.completed_by and done.completed_by.username) == (review.id, "north-boss")
        assert [e.kind for e in engine.instance_events(s, instance_id)] == ["started", "task_completed"]
        assert engine.get_instance(s, instance_id).lock_version == 2


def test_on_postgresql_a_start_writes_instance_task_row_and_audit_in_one_statement(
    session_factory: Factory, orgs: None
) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("plain.bpmn", "bpmn", PLAIN_STEPS)], name="plain_steps")
    bind = session_factory.kw["bind"]
    if not is_postgresql(bind):
        pytest.skip("one statement per row kind on SQLite")
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(bind, "before_cursor_execute", record)
    try:
        with session_factory.begin() as s:
            started = engine.start_instance(
                s, "plain_steps", organisation="north", user="north-req", business_key="K-1"
            )
            instance_id = started.id
            assert (started.lock_version, started.status) == (1, "running")
    finally:
        sa.event.remove(bind, "before_cursor_execute", record)
    (insert,) = [s for s in statements if "INSERT INTO process_instance" in s]
    assert insert.startswith("WITH new_instance AS")
    assert "INSERT INTO human_task" in insert and "INSERT INTO audit_event" in insert
    assert "INSERT INTO case_report" in insert
    assert not [s for s in statements if s.startswith("INSERT INTO case_report")]
    with session_factory() as s:
        instance = engine.get_instance(s, instance_id)
        assert (instance.business_key, instance.title, instance.lock_version) == ("K-1", "Two steps", 1)
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        assert (task.bpmn_id, task.organisation_id) == ("review", instance.organisation_id)
        (event,) = engine.instance_events(s, instance_id)
        assert (event.kind, event.actor, event.detail["version"]) == ("started", "north-req", 1)
        report = s.get_one(CaseReport, instance_id)
        assert (report.organisation_id, report.business_key, report.status) == (
            instance.organisation_id,
            "K-1",
            "running",
        )


REPORTING = {
    "fields": {
        "amount": {"type": "number", "indexed": True},
        "due": {"type": "date", "indexed": True},
        "sent": {"type": "date-time", "indexed": True},
        "supplier": {"type": "string", "indexed": True, "search": True},
        "lines": {"type": "json"},
    }
}


def test_the_projection_is_written_with_the_instance_and_keeps_exact_values(
    session_factory: Factory, orgs: None
) -> None:
    # On PostgreSQL the rows travel as JSON in the save's one statement: decimals, dates and
    # times must arrive as they were, in their columns' types.
    files = [
        engine.BundleFile("plain.bpmn", "bpmn", PLAIN_STEPS),
        engine.BundleFile("reporting.json", "form", json.dumps(REPORTING)),
    ]
    with session_factory.begin() as s:
        engine.deploy_files(s, files, name="plain_steps")
        instance_id = engine.start_instance(
            s, "plain_steps", organisation="north", user="north-req", title="Desks Å"
        ).id
    with session_factory() as s:
        report = s.get_one(CaseReport, instance_id)
        assert (report.title, report.status, report.fields["amount"]) == ("Desks Å", "running", None)
        started_at = report.started_at
    review = _ready_task(session_factory, instance_id)
    data = {
        "amount": "1234567.89",
        "due": "2027-02-28",
        "sent": "2027-01-15T09:30:00+02:00",
        "supplier": "Öljy Oy",
        "lines": [{"item": "desk", "count": 2}],
    }
    with session_factory.begin() as s:
        engine.complete_task(s, review.id, user="north-boss", data=data)
    with session_factory() as s:
        report = s.get_one(CaseReport, instance_id)
        assert report.started_at == started_at
        assert report.fields == {
            "amount": 1234567.89,
            "due": "2027-02-28",
            "sent": "2027-01-15T09:30:00+02:00",
            "supplier": "Öljy Oy",
            "lines": [{"item": "desk", "count": 2}],
        }
        assert report.search_text == "desks å\nöljy oy"
        values = {
            v.name: (v.text_value, v.number_value, v.date_value, v.time_value)
            for v in s.scalars(sa.select(CaseReportValue).where(CaseReportValue.instance_id == instance_id))
        }
    assert values == {
        "amount": (None, Decimal("1234567.89"), None, None),
        "due": (None, None, dt.date(2027, 2, 28), None),
        "sent": (None, None, None, dt.datetime(2027, 1, 15, 7, 30, tzinfo=dt.UTC)),
        "supplier": ("Öljy Oy", None, None, None),
    }
