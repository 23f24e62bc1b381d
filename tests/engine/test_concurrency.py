"""Races: two users completing one task, several workers sharing the job table."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from tests.conftest import FIXTURES

Factory = so.sessionmaker[so.Session]
REQUEST = {"subject": "Laptops", "amount": 1000, "requester_email": "req@example.org"}


def test_two_concurrent_completions_exactly_one_wins(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "approval")
        iid = engine.start_instance(s, "approval", organisation="north", user="north-req").id
        (task,) = engine.list_tasks(s, instance_id=iid)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def complete(user: str) -> None:
        barrier.wait()
        try:
            with session_factory.begin() as s:
                engine.complete_task(s, task.id, user=user, data=REQUEST)
            outcomes.append("ok")
        except engine.ConflictError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=complete, args=(u,)) for u in ("north-req", "north-boss")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("ok") == 1
    (conflict,) = [o for o in outcomes if isinstance(o, engine.ConflictError)]
    assert f"Task {task.id} (Describe the purchase)" in str(conflict)
    with session_factory() as s:
        events = [e.kind for e in engine.instance_events(s, iid)]
        assert events.count("task_completed") == 1
        assert [t.bpmn_id for t in engine.list_tasks(s, instance_id=iid)] == ["approve"]


def test_a_claim_made_while_another_waits_for_the_lock_is_seen(session_factory: Factory, orgs: None) -> None:
    """The second claimer waits for the instance lock, then must see the first claim, not its stale read."""
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "approval")
        iid = engine.start_instance(s, "approval", organisation="north", user="north-req").id
        (task,) = engine.list_tasks(s, instance_id=iid)
    claimed = threading.Event()
    outcome: list[object] = []

    def second() -> None:
        claimed.wait(10)
        try:
            with session_factory.begin() as s:
                engine.claim_task(s, task.id, user="north-boss")
            outcome.append("claimed")
        except engine.ConflictError as exc:
            outcome.append(exc)

    other = threading.Thread(target=second)
    other.start()
    with session_factory.begin() as s:
        engine.claim_task(s, task.id, user="north-req")
        claimed.set()
        time.sleep(0.5)  # the second claim is now waiting for this transaction's instance lock
    other.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], engine.ConflictError), outcome
    assert "already claimed by north-req" in str(outcome[0])
    with session_factory() as s:
        assert engine.get_task(s, task.id).assignee_id == engine.get_user(s, "north-req").id


def test_stale_instance_write_is_a_conflict(session_factory: Factory, orgs: None) -> None:
    """The version counter catches a writer that loaded the instance before another committed."""
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "approval")
        iid = engine.start_instance(s, "approval", organisation="north", user="north-req").id
    from engine._workflow import InstanceOperation

    with session_factory() as stale_session:
        stale = InstanceOperation(stale_session, engine.get_instance(stale_session, iid), actor=None)
        stale_session.commit()
        with session_factory.begin() as s:
            engine.suspend_instance(s, iid, user="north-admin")
        with pytest.raises(engine.ConflictError, match=f"Instance {iid} was changed"):
            stale.save()


WORKER = """
import os, sys, time, engine
factory = engine.create_session_factory(engine.create_db_engine(sys.argv[1]))
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):  # start together, so every worker meets the others
    time.sleep(0.01)
summary = engine.run_due_jobs(factory, worker_id=sys.argv[2], limit=5)
print(summary.ran)
"""


@pytest.mark.postgres
def test_three_workers_fire_three_hundred_timers_exactly_once(
    session_factory: Factory, db_url: str, orgs: None, tmp_path: Path
) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "wait_timer")
        for _ in range(300):
            engine.start_instance(
                s, "wait_timer", organisation="north", user="north-req", data={"wait_for": "PT2S", "fired": 0}
            )
    with session_factory() as s:
        latest = s.scalar(sa.select(sa.func.max(engine.Job.due_at)))
        assert s.scalar(sa.select(sa.func.count(engine.Job.id))) == 300
    assert latest is not None
    time.sleep(max(0.0, (latest - dt.datetime.now(dt.UTC)).total_seconds()) + 0.5)

    root = Path(__file__).resolve().parents[2]
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, f"worker-{n}", str(go)],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    go.touch()
    ran = [int(w.communicate(timeout=300)[0].strip().splitlines()[-1]) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert sum(ran) == 300
    assert all(count > 0 for count in ran), f"one worker did nothing: {ran}"

    with session_factory() as s:
        fired = Counter(
            s.scalars(sa.select(engine.AuditEvent.instance_id).where(engine.AuditEvent.kind == "timer_fired"))
        )
        assert len(fired) == 300 and set(fired.values()) == {1}
        statuses = Counter(s.scalars(sa.select(engine.ProcessInstance.status)))
        assert statuses == {"completed": 300}
        assert s.scalar(sa.select(sa.func.count(engine.Job.id))) == 0
        instance = s.scalars(sa.select(engine.ProcessInstance)).first()
        assert instance is not None and engine.instance_data(s, instance)["fired"] == 1


@pytest.mark.postgres
def test_expired_lease_is_taken_over(session_factory: Factory, orgs: None) -> None:
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "wait_timer")
        engine.start_instance(
            s, "wait_timer", organisation="north", user="north-req", data={"wait_for": "PT0.1S", "fired": 0}
        )
    time.sleep(0.3)
    with session_factory.begin() as s:
        assert engine.jobs.acquire_jobs(s, "dead-worker") != []
    assert engine.run_due_jobs(session_factory, worker_id="live").ran == 0
    later = dt.datetime.now(dt.UTC) + engine.jobs.LEASE + dt.timedelta(seconds=1)
    assert engine.run_due_jobs(session_factory, worker_id="live", now=later).ran == 1
