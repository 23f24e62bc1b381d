"""Workers sharing the job table: batched leases, exactly-once runs, take-over, hand-back."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
import time_machine

import engine
from engine import jobs
from tests.conftest import FIXTURES

Factory = so.sessionmaker[so.Session]


StartTimers = Callable[[int], list[int]]


@pytest.fixture
def due_timers(session_factory: Factory, orgs: None) -> StartTimers:
    """Return a function that starts n instances waiting an hour on a timer and returns their ids."""
    with session_factory.begin() as s:
        engine.deploy_path(s, FIXTURES / "wait_timer")

    def start(n: int) -> list[int]:
        with session_factory.begin() as s:
            return [
                engine.start_instance(
                    s,
                    "wait_timer",
                    organisation="north",
                    user="north-req",
                    data={"wait_for": "PT1H", "fired": 0},
                ).id
                for _ in range(n)
            ]

    return start


def _later() -> Any:
    """Travel to when the timers are due (the clock keeps ticking there)."""
    return time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2), tick=True)


def _fired(session_factory: Factory) -> Counter[int]:
    with session_factory() as s:
        return Counter(
            s.scalars(sa.select(engine.AuditEvent.instance_id).where(engine.AuditEvent.kind == "timer_fired"))
        )


def _job_ids(session_factory: Factory) -> list[int]:
    with session_factory() as s:
        return list(s.scalars(sa.select(engine.Job.id).order_by(engine.Job.id)))


def _assert_all_fired_once(session_factory: Factory, instance_ids: list[int]) -> None:
    fired = _fired(session_factory)
    assert fired == Counter(dict.fromkeys(instance_ids, 1))
    with session_factory() as s:
        assert Counter(s.scalars(sa.select(engine.ProcessInstance.status))) == {
            "completed": len(instance_ids)
        }
    assert _job_ids(session_factory) == []


class FakeClock:
    """Stands in for the worker's monotonic clock, so batch timing is decided by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(jobs, "_clock", fake)
    return fake


def _spy_on_timers(monkeypatch: pytest.MonkeyPatch, effect: Any) -> list[tuple[str, int]]:
    """Wrap the timer handler: record (worker, job id) of each firing and call effect(job) first."""
    fired_by: list[tuple[str, int]] = []
    real = jobs._INSTANCE_HANDLERS["timer"]

    def spying(operation: Any, job: engine.Job) -> Any:
        fired_by.append((str(job.locked_by), job.id))
        effect(job)
        return real(operation, job)

    monkeypatch.setitem(jobs._INSTANCE_HANDLERS, "timer", spying)
    return fired_by


def _spy_on_acquisitions(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    leased: list[list[int]] = []
    real = jobs.acquire_jobs

    def spying(*args: Any, **kwargs: Any) -> list[jobs.Lease]:
        leases = real(*args, **kwargs)
        leased.append([lease.id for lease in leases])
        return leases

    monkeypatch.setattr(jobs, "acquire_jobs", spying)
    return leased


def test_two_workers_fire_every_timer_exactly_once(
    session_factory: Factory, due_timers: StartTimers, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_ids = due_timers(40)
    fired_by = _spy_on_timers(monkeypatch, lambda job: None)
    barrier = threading.Barrier(2)
    # Each worker waits, between two transactions, for the other to have run a job too: on
    # SQLite the one that commits can take the write lock again before the other's busy
    # handler wakes up, and drain everything alone.
    meeting = threading.Barrier(2)
    met: set[str] = set()
    run_leased = jobs._run_leased

    def run_and_meet(factory: Factory, lease: jobs.Lease, worker_id: str, summary: jobs.RunSummary) -> None:
        run_leased(factory, lease, worker_id, summary)
        if worker_id not in met:
            met.add(worker_id)
            meeting.wait(timeout=30)

    monkeypatch.setattr(jobs, "_run_leased", run_and_meet)
    summaries: dict[str, engine.jobs.RunSummary] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            barrier.wait(timeout=30)
            summaries[name] = engine.run_due_jobs(session_factory, worker_id=name, limit=3)
        except BaseException as exc:
            errors.append(exc)

    with _later():
        threads = [threading.Thread(target=work, args=(name,)) for name in ("w1", "w2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert sum(s.ran for s in summaries.values()) == 40
    assert all(s.failed == 0 for s in summaries.values())
    assert {worker for worker, _ in fired_by} == {"w1", "w2"}, "the workers did not share the jobs"
    assert len(fired_by) == len({job for _, job in fired_by}) == 40
    _assert_all_fired_once(session_factory, instance_ids)


def test_one_statement_leases_at_most_the_limit_and_workers_get_disjoint_batches(
    session_factory: Factory, due_timers: StartTimers
) -> None:
    due_timers(7)
    with _later():
        with session_factory.begin() as s:
            first = jobs.acquire_jobs(s, "w1", limit=3)
        with session_factory.begin() as s:
            second = jobs.acquire_jobs(s, "w2", limit=3)
        with session_factory.begin() as s:
            third = jobs.acquire_jobs(s, "w3", limit=3)
    assert (len(first), len(second), len(third)) == (3, 3, 1)
    assert {lease.kind for lease in first + second + third} == {"timer"}
    ids = [lease.id for lease in first + second + third]
    assert sorted(ids) == _job_ids(session_factory)
    with session_factory() as s:
        owners = Counter(s.scalars(sa.select(engine.Job.locked_by)))
    assert owners == {"w1": 3, "w2": 3, "w3": 1}


def test_a_stopped_workers_batch_is_taken_over_when_its_lease_expires(
    session_factory: Factory, due_timers: StartTimers
) -> None:
    instance_ids = due_timers(5)
    with _later():
        with session_factory.begin() as s:
            dead = jobs.acquire_jobs(s, "dead-worker", limit=3)
        # The dead worker's leases hold: the live worker runs only the two others.
        assert engine.run_due_jobs(session_factory, worker_id="live").ran == 2
        assert sorted(lease.id for lease in dead) == _job_ids(session_factory)
        expired = engine.models.utcnow() + jobs.LEASE + dt.timedelta(seconds=1)
        assert engine.run_due_jobs(session_factory, worker_id="live", now=expired).ran == 3
    _assert_all_fired_once(session_factory, instance_ids)


def test_a_lost_lease_is_not_run(session_factory: Factory, due_timers: StartTimers) -> None:
    (instance_id,) = due_timers(1)
    with _later():
        with session_factory.begin() as s:
            (lease,) = jobs.acquire_jobs(s, "slow-worker")
        expired = engine.models.utcnow() + jobs.LEASE + dt.timedelta(seconds=1)
        with session_factory.begin() as s:
            (taken,) = jobs.acquire_jobs(s, "new-worker", now=expired)
        assert taken.id == lease.id
        with session_factory.begin() as s:
            assert jobs.run_job(s, lease, "slow-worker") is False
        assert _fired(session_factory) == {}
        with session_factory.begin() as s:
            assert jobs.run_job(s, taken, "new-worker") is True
    _assert_all_fired_once(session_factory, [instance_id])


def test_batches_grow_to_the_limit_for_quick_jobs(
    session_factory: Factory, due_timers: StartTimers, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_ids = due_timers(8)
    leased = _spy_on_acquisitions(monkeypatch)

    def quick(job: engine.Job) -> None:
        clock.now += 0.01

    _spy_on_timers(monkeypatch, quick)
    with _later():
        assert engine.run_due_jobs(session_factory, worker_id="w", limit=3).ran == 8
    # One job first, to learn how long jobs take; then as many as fit, never more than the limit.
    assert [len(batch) for batch in leased] == [1, 3, 3, 1, 0]
    _assert_all_fired_once(session_factory, instance_ids)


def test_slow_jobs_are_leased_one_at_a_time(
    session_factory: Factory, due_timers: StartTimers, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    due_timers(3)
    leased = _spy_on_acquisitions(monkeypatch)

    def slow(job: engine.Job) -> None:
        clock.now += jobs.BATCH_SECONDS * 3

    _spy_on_timers(monkeypatch, slow)
    with _later():
        assert engine.run_due_jobs(session_factory, worker_id="w").ran == 3
    assert [len(batch) for batch in leased] == [1, 1, 1, 0]


def test_an_overdue_batch_hands_back_the_jobs_it_has_not_started(
    session_factory: Factory, due_timers: StartTimers, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_ids = due_timers(4)
    first, second, third, fourth = _job_ids(session_factory)
    leased = _spy_on_acquisitions(monkeypatch)
    unleased_after_hand_back: list[list[str | None]] = []

    def stuck_on_second(job: engine.Job) -> None:
        if job.id == second:
            clock.now += jobs.BATCH_OVERDUE_SECONDS + 1  # as if it had waited on a lock
        elif job.id == third:
            session = so.object_session(job)
            assert session is not None
            unleased_after_hand_back.append([session.get_one(engine.Job, fourth).locked_by])
        else:
            clock.now += 0.01

    _spy_on_timers(monkeypatch, stuck_on_second)
    with _later():
        assert engine.run_due_jobs(session_factory, worker_id="w", limit=3).ran == 4
    assert leased == [[first], [second, third, fourth], [third], [fourth], []]
    # While the third ran in a batch of its own, the fourth was free for any worker.
    assert unleased_after_hand_back == [[None]]
    _assert_all_fired_once(session_factory, instance_ids)


def test_a_stopped_worker_hands_back_its_leases_at_once(
    session_factory: Factory, due_timers: StartTimers, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    due_timers(4)
    stop = threading.Event()
    fired = 0

    def stop_after_the_second(job: engine.Job) -> None:
        nonlocal fired
        clock.now += 0.01
        fired += 1
        if fired == 2:
            stop.set()

    _spy_on_timers(monkeypatch, stop_after_the_second)
    with _later():
        summary = engine.run_due_jobs(session_factory, worker_id="w", limit=3, stop=stop)
    assert summary.ran == 2
    with session_factory() as s:
        left = list(s.scalars(sa.select(engine.Job)))
    assert len(left) == 2 and {(j.status, j.locked_by, j.locked_until) for j in left} == {
        ("pending", None, None)
    }
    assert sum(_fired(session_factory).values()) == 2


def test_a_database_without_update_returning_is_named(
    session_factory: Factory, db_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine.dialect, "update_returning", False)
    with (
        pytest.raises(engine.ProcflowError, match=r"needs UPDATE \.\.\. RETURNING"),
        session_factory.begin() as s,
    ):
        jobs.acquire_jobs(s, "w")
