"""Timers through the job table, retries and incidents, recurring starts, long loops."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
import time_machine

import engine
from tests.conftest import FIXTURES

Factory = so.sessionmaker[so.Session]


@pytest.fixture
def deployed(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        for name in ("timers", "loop", "approval"):
            engine.deploy_path(s, FIXTURES / name)


def _start(session_factory: Factory, process_id: str, **data: Any) -> int:
    with session_factory.begin() as s:
        return engine.start_instance(s, process_id, organisation="north", user="north-req", data=data).id


def _open(session_factory: Factory, instance_id: int) -> list[str]:
    with session_factory() as s:
        return sorted(t.bpmn_id for t in engine.list_tasks(s, instance_id=instance_id))


def _jobs(session_factory: Factory, instance_id: int) -> list[engine.Job]:
    with session_factory() as s:
        return list(s.scalars(sa.select(engine.Job).where(engine.Job.instance_id == instance_id)))


def _later(hours: float) -> Any:
    return time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours), tick=True)


def test_interrupting_boundary_timer_cancels_the_task(session_factory: Factory, deployed: None) -> None:
    iid = _start(session_factory, "timers", deadline_after="PT1H", reminder_after="PT3H", cool_off="PT0S")
    jobs = _jobs(session_factory, iid)
    assert len(jobs) == 2 and all(j.kind == "timer" for j in jobs)
    assert engine.run_due_jobs(session_factory).ran == 0
    with _later(1.5):
        assert engine.run_due_jobs(session_factory).ran == 1
    with session_factory() as s:
        instance = engine.get_instance(s, iid)
        assert instance.status == "completed"
        (task,) = engine.list_tasks(s, instance_id=iid, state=None)
        assert (task.bpmn_id, task.state) == ("work", "cancelled")
        assert [e.kind for e in engine.instance_events(s, iid)].count("timer_fired") == 1
    assert _jobs(session_factory, iid) == []


def test_non_interrupting_timer_adds_a_branch(session_factory: Factory, deployed: None) -> None:
    iid = _start(session_factory, "timers", deadline_after="PT5H", reminder_after="PT1H", cool_off="PT0S")
    with _later(1.5):
        engine.run_due_jobs(session_factory)
    assert _open(session_factory, iid) == ["remind", "work"]


def test_completing_the_task_removes_its_boundary_timers(session_factory: Factory, deployed: None) -> None:
    iid = _start(session_factory, "timers", deadline_after="PT1H", reminder_after="PT1H", cool_off="PT2H")
    with session_factory() as s:
        (work,) = engine.list_tasks(s, instance_id=iid)
    with session_factory.begin() as s:
        engine.complete_task(s, work.id, user="north-req")
    (cool_off,) = _jobs(session_factory, iid)
    assert cool_off.due_at > engine.models.utcnow() + dt.timedelta(hours=1, minutes=50)
    with _later(1.5):
        assert engine.run_due_jobs(session_factory).ran == 0
    with _later(2.5):
        assert engine.run_due_jobs(session_factory).ran == 1
    with session_factory() as s:
        assert engine.get_instance(s, iid).status == "completed"


def test_suspended_instance_holds_its_timers(session_factory: Factory, deployed: None) -> None:
    iid = _start(session_factory, "timers", deadline_after="PT1H", reminder_after="PT9H", cool_off="PT0S")
    with session_factory.begin() as s:
        engine.suspend_instance(s, iid, user="north-admin")
    with _later(1.5):
        assert engine.run_due_jobs(session_factory).ran == 0
        with session_factory.begin() as s:
            engine.resume_instance(s, iid, user="north-admin")
        assert engine.run_due_jobs(session_factory).ran == 1
    with session_factory() as s:
        assert engine.get_instance(s, iid).status == "completed"


def test_failing_job_retries_with_backoff_then_becomes_an_incident(
    session_factory: Factory, deployed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = _start(session_factory, "timers", deadline_after="PT1H", reminder_after="PT9H", cool_off="PT0S")
    calls = []

    def broken(operation: object, job: engine.Job) -> None:
        calls.append(job.id)
        raise OSError("disk on fire")

    monkeypatch.setitem(engine.jobs._INSTANCE_HANDLERS, "timer", broken)
    with _later(1.5):
        first = engine.run_due_jobs(session_factory)
    assert (first.ran, first.failed, first.incidents) == (0, 1, 0)
    (job,) = [j for j in _jobs(session_factory, iid) if j.attempts]
    assert job.last_error == "OSError: disk on fire" and job.locked_by is None
    with _later(1.5 + 1 / 60):
        engine.run_due_jobs(session_factory)
    with _later(2):
        summary = engine.run_due_jobs(session_factory)
    assert summary.incidents == 1 and len(calls) == 3
    with session_factory() as s:
        assert engine.get_instance(s, iid).status == "error"
        (incident,) = engine.incidents(s)
        assert incident.status == "incident" and incident.attempts == 3

    monkeypatch.undo()
    with session_factory.begin() as s:
        engine.retry_instance(s, iid, user="north-admin")
    with _later(2):
        assert engine.run_due_jobs(session_factory).ran == 1
    with session_factory() as s:
        assert engine.get_instance(s, iid).status == "completed"


def test_scheduled_start_fires_and_queues_the_next(session_factory: Factory, deployed: None) -> None:
    start = dt.datetime(2027, 1, 1, 5, 0, tzinfo=dt.UTC)
    with session_factory.begin() as s:
        engine.schedule_start(
            s,
            "approval",
            organisation="north",
            cron="0 6 1 */3 *",
            user="north-req",
            now=start,
            data={"x": 1},
        )
    with session_factory() as s:
        (job,) = s.scalars(sa.select(engine.Job))
        assert (job.kind, job.due_at) == ("scheduled_start", dt.datetime(2027, 1, 1, 6, 0, tzinfo=dt.UTC))
    with time_machine.travel(dt.datetime(2027, 1, 1, 6, 1, tzinfo=dt.UTC), tick=False):
        assert engine.run_due_jobs(session_factory).ran == 1
        assert engine.run_due_jobs(session_factory).ran == 0
    with session_factory() as s:
        (instance,) = s.scalars(sa.select(engine.ProcessInstance))
        assert instance.process_id == "approval"
        assert engine.instance_data(s, instance)["scheduled_for"].startswith("2027-01-01T06:00")
        (job,) = s.scalars(sa.select(engine.Job))
        assert job.due_at == dt.datetime(2027, 4, 1, 6, 0, tzinfo=dt.UTC)


def test_worker_once_command_runs_due_jobs(session_factory: Factory, deployed: None) -> None:
    iid = _start(session_factory, "timers", deadline_after="PT1H", reminder_after="PT9H", cool_off="PT0S")
    with _later(1.5):
        engine.run_due_jobs(session_factory, worker_id="w1")
    with session_factory() as s:
        assert engine.get_instance(s, iid).status == "completed"


def test_a_two_thousand_pass_loop_completes(session_factory: Factory, deployed: None) -> None:
    iid = _start(session_factory, "loop", limit=2000, with_review=False)
    with session_factory() as s:
        instance = engine.get_instance(s, iid)
        assert instance.status == "completed", instance.error_message
        assert engine.instance_data(s, instance)["counter"] == 2000


def test_state_does_not_grow_with_loop_passes(session_factory: Factory, deployed: None) -> None:
    iid = _start(session_factory, "loop", limit=10_000, with_review=True)
    sizes = {}
    for passes in range(1, 301):
        with session_factory() as s:
            (task,) = engine.list_tasks(s, instance_id=iid)
        with session_factory.begin() as s:
            engine.complete_task(s, task.id, user="north-req")
        if passes in (20, 300):
            with session_factory() as s:
                sizes[passes] = len(engine.get_instance(s, iid).state)
    assert sizes[300] < sizes[20] * 1.2
    with session_factory() as s:
        assert engine.instance_data(s, engine.get_instance(s, iid))["counter"] == 301


def test_element_states_mark_people_timers_and_history(session_factory: Factory, deployed: None) -> None:
    iid = _start(session_factory, "timers", deadline_after="PT5H", reminder_after="PT1H", cool_off="PT1H")
    with session_factory() as s:
        states = engine.element_states(s, engine.get_instance(s, iid))
    assert states == {
        "active": ["work"],
        "waiting": ["deadline", "reminder"],
        "failed": [],
        "completed": ["start"],
    }
    with session_factory.begin() as s:
        (work,) = engine.list_tasks(s, instance_id=iid)
        engine.complete_task(s, work.id, user="north-req")
    with session_factory() as s:
        states = engine.element_states(s, engine.get_instance(s, iid))
    assert states["active"] == [] and states["waiting"] == ["cool_off"]
    assert {"start", "work"} <= set(states["completed"])


def test_retrying_an_incident_needs_an_admin_of_its_organisation(
    session_factory: Factory, deployed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _start(session_factory, "timers", deadline_after="PT1H", reminder_after="PT9H", cool_off="PT0S")

    def broken(operation: object, job: engine.Job) -> None:
        raise OSError("down")

    monkeypatch.setitem(engine.jobs._INSTANCE_HANDLERS, "timer", broken)
    for hours in (1.5, 1.6, 2.0):
        with _later(hours):
            engine.run_due_jobs(session_factory)
    with session_factory() as s:
        (incident,) = engine.incidents(s)
    with pytest.raises(engine.NotFoundError), session_factory.begin() as s:
        engine.retry_job(s, incident.id, user="south-admin")
    with pytest.raises(engine.PermissionDeniedError), session_factory.begin() as s:
        engine.retry_job(s, incident.id, user="north-req")
    with session_factory.begin() as s:
        assert engine.retry_job(s, incident.id, user="north-admin").status == "pending"


def test_a_timer_taken_before_it_is_due_is_rearmed_not_lost(session_factory: Factory, deployed: None) -> None:
    iid = _start(session_factory, "timers", deadline_after="PT1H", reminder_after="PT3H", cool_off="PT0S")
    jobs = {j.id: j.due_at for j in _jobs(session_factory, iid)}
    # Another worker's clock ran ahead: its job row says "due now", SpiffWorkflow says in an hour.
    deadline_job = min(jobs, key=jobs.__getitem__)
    with session_factory.begin() as s:
        s.get_one(engine.Job, deadline_job).due_at = engine.models.utcnow() - dt.timedelta(minutes=5)
    summary = engine.run_due_jobs(session_factory)
    assert (summary.ran, summary.failed) == (1, 0)
    with session_factory() as s:
        assert "timer_fired" not in [e.kind for e in engine.instance_events(s, iid)]
        assert engine.get_instance(s, iid).status == "running"
        job = s.get_one(engine.Job, deadline_job)
        assert (job.status, job.locked_by, job.due_at) == ("pending", None, jobs[deadline_job])
    assert _open(session_factory, iid) == ["work"]
    with _later(1.5):
        assert engine.run_due_jobs(session_factory).ran == 1
    with session_factory() as s:
        assert engine.get_instance(s, iid).status == "completed"
        assert [e.kind for e in engine.instance_events(s, iid)].count("timer_fired") == 1
