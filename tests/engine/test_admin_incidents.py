"""The incidents of an organisation, for its admins: listed in SQL, retried one by one or many, repaired."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
import time_machine

import engine

Factory = so.sessionmaker[so.Session]

DIVIDE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="divide" name="Divide" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="share" name="Share the cost">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>share = 100 / parts</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="share" />
    <bpmn:sequenceFlow id="f2" sourceRef="share" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""

WAIT_THEN_CHECK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="w" targetNamespace="x">
  <bpmn:process id="delivery" name="Delivery" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait" name="Wait for the delivery">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:userTask id="check" name="Check the delivery">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="check" />
    <bpmn:sequenceFlow id="f3" sourceRef="check" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture
def deployed(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("divide.bpmn", "bpmn", DIVIDE)], name="divide")
        engine.deploy_files(s, [engine.BundleFile("delivery.bpmn", "bpmn", WAIT_THEN_CHECK)], name="delivery")


def _org(session_factory: Factory, key: str = "north") -> int:
    with session_factory() as s:
        return engine.get_organisation(s, key).id


def _start(session_factory: Factory, process_id: str, org: str = "north", **data: Any) -> int:
    with session_factory.begin() as s:
        return engine.start_instance(s, process_id, organisation=org, user=f"{org}-req", data=data).id


def fail_timer_until_incident(
    session_factory: Factory, monkeypatch: pytest.MonkeyPatch, instance_id: int
) -> None:
    """Make the instance's timer job fail on every attempt until it becomes an incident, then fix it."""

    def broken(operation: object, job: engine.Job) -> None:
        raise OSError("the archive server did not answer")

    monkeypatch.setitem(engine.jobs._INSTANCE_HANDLERS, "timer", broken)
    for _ in range(engine.jobs.MAX_ATTEMPTS):
        with session_factory.begin() as s:
            for job in s.scalars(sa.select(engine.Job).where(engine.Job.instance_id == instance_id)):
                job.due_at = engine.models.utcnow() - dt.timedelta(seconds=5)
        engine.run_due_jobs(session_factory)
    monkeypatch.undo()


def _admin_events(session_factory: Factory) -> list[engine.AuditEvent]:
    with session_factory() as s:
        return list(
            s.scalars(
                sa.select(engine.AuditEvent)
                .where(engine.AuditEvent.kind.startswith("admin."))
                .order_by(engine.AuditEvent.id)
            )
        )


def test_a_failed_script_is_an_incident_with_element_file_line_and_message(
    session_factory: Factory, deployed: None
) -> None:
    north, south = _org(session_factory), _org(session_factory, "south")
    iid = _start(session_factory, "divide", parts=0)
    with session_factory() as s:
        page = engine.list_incidents(s, north)
    (incident,) = page.incidents
    assert page.total == 1 and incident.key == f"instance-{iid}" and incident.kind == "instance"
    assert (incident.process_id, incident.process_name, incident.version, incident.shared) == (
        "divide",
        "Divide",
        1,
        True,
    )
    assert incident.element == "share" and "ZeroDivisionError" in incident.message
    assert incident.attempts is None and incident.job_ids == ()
    (entry,) = incident.trace
    assert (entry.element, entry.file, entry.line) == ("share", "divide.bpmn", 1)
    assert entry.tasks == ("Share the cost (divide.bpmn)",)  # SpiffWorkflow's task trace
    with session_factory() as s:
        assert engine.list_incidents(s, south).total == 0


def test_a_job_that_failed_is_retried_and_the_case_moves_on(
    session_factory: Factory, deployed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    north = _org(session_factory)
    iid = _start(session_factory, "delivery")
    fail_timer_until_incident(session_factory, monkeypatch, iid)
    with session_factory() as s:
        (incident,) = engine.list_incidents(s, north).incidents
    # The failed job is part of its instance's incident, not a second row.
    assert incident.key == f"instance-{iid}" and incident.job_kind == "timer"
    assert incident.attempts == engine.jobs.MAX_ATTEMPTS
    assert "the archive server did not answer" in incident.message
    assert any("OSError: the archive server did not answer" in t.message for t in incident.trace)

    with session_factory.begin() as s:
        engine.retry_incident(s, north, incident.key, user="north-admin")
    with session_factory() as s:
        assert engine.list_incidents(s, north).total == 0
    with time_machine.travel(engine.models.utcnow() + dt.timedelta(hours=2), tick=True):
        assert engine.run_due_jobs(session_factory).ran == 1
    with session_factory() as s:
        instance = engine.get_instance(s, iid)
        assert instance.status == "running"
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=iid)] == ["check"]
    (event,) = _admin_events(session_factory)
    assert (event.kind, event.element, event.instance_id, event.actor) == (
        "admin.incident_retried",
        f"instance {iid}",
        iid,
        "north-admin",
    )
    assert event.detail["before"]["status"] == "error" and event.detail["after"]["status"] == "waiting"


def test_a_job_without_an_instance_in_error_is_its_own_incident(
    session_factory: Factory, deployed: None
) -> None:
    north, south = _org(session_factory), _org(session_factory, "south")
    with session_factory.begin() as s:
        job = engine.Job(
            kind="outbox",
            status="incident",
            organisation_id=north,
            due_at=engine.models.utcnow(),
            attempts=3,
            last_error="SMTPServerDisconnected: Connection unexpectedly closed",
            payload={"outbox_message_id": 1},
        )
        s.add(job)
        s.flush()
        job_id = job.id
    with session_factory() as s:
        (incident,) = engine.list_incidents(s, north).incidents
        assert (incident.key, incident.job_kind, incident.attempts, incident.instance_id) == (
            f"job-{job_id}",
            "outbox",
            3,
            None,
        )
        assert incident.message.startswith("SMTPServerDisconnected")
    with pytest.raises(engine.NotFoundError), session_factory.begin() as s:
        engine.retry_incident(s, south, f"job-{job_id}", user="south-admin")
    with pytest.raises(engine.PermissionDeniedError), session_factory.begin() as s:
        engine.retry_incident(s, north, f"job-{job_id}", user="north-req")
    with session_factory.begin() as s:
        engine.retry_incident(s, north, f"job-{job_id}", user="north-admin")
    with session_factory() as s:
        job = s.get_one(engine.Job, job_id)
        assert (job.status, job.attempts, job.last_error) == ("pending", 0, None)


def test_retrying_many_retries_each_and_names_those_refused(session_factory: Factory, deployed: None) -> None:
    north = _org(session_factory)
    first, second = _start(session_factory, "divide", parts=0), _start(session_factory, "divide", parts=0)
    with session_factory.begin() as s:
        engine.set_instance_data(s, first, user="north-admin", data={"parts": 4})
    with session_factory.begin() as s:
        outcome = engine.retry_incidents(
            s,
            north,
            [f"instance-{first}", f"instance-{second}", "instance-999", "nonsense"],
            user="north-admin",
        )
    assert outcome.retried == [f"instance-{first}", f"instance-{second}"]
    assert [key for key, _ in outcome.refused] == ["instance-999", "nonsense"]
    assert all("No incident" in why for _, why in outcome.refused)
    with session_factory() as s:
        assert engine.get_instance(s, first).status == "completed"
        # Its data is still wrong: it failed again, and stays an incident.
        assert engine.get_instance(s, second).status == "error"
        assert [i.key for i in engine.list_incidents(s, north).incidents] == [f"instance-{second}"]
    assert [e.kind for e in _admin_events(session_factory)] == ["admin.incident_retried"] * 2


def test_repair_with_set_data_and_reset_is_audited_as_admin_actions(
    session_factory: Factory, deployed: None
) -> None:
    north, south = _org(session_factory), _org(session_factory, "south")
    iid = _start(session_factory, "divide", parts=0)
    with session_factory.begin() as s:
        engine.repair_instance_data(s, north, iid, data={"parts": 2}, user="north-admin")
    with session_factory.begin() as s:
        engine.retry_incident(s, north, f"instance-{iid}", user="north-admin")
    with session_factory() as s:
        instance = engine.get_instance(s, iid)
        assert instance.status == "completed" and engine.instance_data(s, instance)["share"] == 50

    other = _start(session_factory, "divide", parts=0)
    with session_factory.begin() as s:
        engine.repair_reset(s, north, other, to="share", user="north-admin")
    with session_factory() as s:
        assert engine.get_instance(s, other).status == "error"  # ran again with the same data
    with pytest.raises(engine.NotFoundError), session_factory.begin() as s:
        engine.repair_instance_data(s, south, other, data={"parts": 2}, user="south-admin")
    events = _admin_events(session_factory)
    assert [(e.kind, e.element) for e in events] == [
        ("admin.instance_data_set", f"instance {iid}"),
        ("admin.incident_retried", f"instance {iid}"),
        ("admin.instance_reset", f"instance {other}"),
    ]
    assert events[0].detail == {"before": {"parts": 0}, "after": {"parts": 2}}
    with session_factory() as s:
        kinds = [e.kind for e in engine.instance_events(s, iid)]
        assert "data_changed" in kinds and "retried" in kinds


def test_incidents_page_and_filter_in_sql(session_factory: Factory, deployed: None) -> None:
    north = _org(session_factory)
    ids = [_start(session_factory, "divide", parts=0) for _ in range(5)]
    with session_factory.begin() as s:
        s.add(
            engine.Job(
                kind="outbox",
                status="incident",
                organisation_id=north,
                due_at=engine.models.utcnow(),
                attempts=3,
            )
        )
    with session_factory() as s:
        first = engine.list_incidents(s, north, limit=2)
        second = engine.list_incidents(s, north, offset=2, limit=2)
        last = engine.list_incidents(s, north, offset=4, limit=2)
        only_divide = engine.list_incidents(s, north, process_id="divide")
        assert engine.incident_processes(s, north) == ["divide"]
    assert first.total == 6 and first.next_offset == 2 and first.previous_offset is None
    keys = [i.key for i in (*first.incidents, *second.incidents, *last.incidents)]
    assert len(set(keys)) == 6 and last.next_offset is None
    assert sorted(i.instance_id for i in only_divide.incidents if i.instance_id) == ids
    assert only_divide.total == 5


def test_a_test_instance_is_not_an_incident(session_factory: Factory, deployed: None) -> None:
    north = _org(session_factory)
    iid = _start(session_factory, "divide", parts=0)
    with session_factory() as s:
        assert engine.instance_incident(s, north, iid) is not None
    with session_factory.begin() as s:
        s.get_one(engine.ProcessInstance, iid).is_test = True
    with session_factory() as s:
        assert engine.list_incidents(s, north).total == 0
        assert engine.instance_incident(s, north, iid) is None


def test_retrying_a_timer_that_fell_due_meanwhile_moves_the_case_on(
    session_factory: Factory, deployed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    north = _org(session_factory)
    iid = _start(session_factory, "delivery")
    with time_machine.travel(engine.models.utcnow() + dt.timedelta(hours=2), tick=True):
        fail_timer_until_incident(session_factory, monkeypatch, iid)
        with session_factory.begin() as s:
            engine.retry_incident(s, north, f"instance-{iid}", user="north-admin")
        engine.run_due_jobs(session_factory)
    with session_factory() as s:
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=iid)] == ["check"]
