"""Readiness and the operations figures read from the database; a worker's lease time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine import jobs
from engine.models import utcnow

Factory = so.sessionmaker[so.Session]


def test_readiness_compares_the_schema_with_the_migrations_head(session_factory: Factory) -> None:
    with session_factory() as s:
        ready = engine.check_readiness(s)
    assert ready.ready and ready.database_error is None
    assert ready.current == ready.head == engine.migration_heads() != ()
    # Behind head inside a transaction that is rolled back: on PostgreSQL every test shares the
    # database, and a version left behind would make every later readiness check fail.
    with session_factory() as s:
        s.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
        behind = engine.check_readiness(s)
        s.rollback()
    with session_factory() as s:
        assert engine.check_readiness(s).ready
    assert (behind.ready, behind.database_answers, behind.at_head) == (False, True, False)
    assert behind.current == ("0001",) and behind.head == ready.head


def test_readiness_of_a_database_that_does_not_answer(tmp_path: Path) -> None:
    missing = engine.create_db_engine(f"sqlite:///{tmp_path / 'no' / 'folder' / 'db.sqlite3'}")
    try:
        with engine.create_session_factory(missing)() as s:
            readiness = engine.check_readiness(s)
    finally:
        missing.dispose()
    assert not readiness.ready and readiness.database_error == "OperationalError"
    assert readiness.current == () and readiness.head == engine.migration_heads()


def test_job_figures_per_kind(session_factory: Factory, orgs: None) -> None:
    now = utcnow()
    with session_factory.begin() as s:
        north = s.scalar(sa.select(engine.Organisation.id).where(engine.Organisation.key == "north"))
        s.add_all(
            [
                engine.Job(kind="timer", organisation_id=north, due_at=now - dt.timedelta(seconds=30)),
                engine.Job(kind="timer", organisation_id=north, due_at=now - dt.timedelta(seconds=5)),
                engine.Job(kind="timer", organisation_id=north, due_at=now + dt.timedelta(hours=1)),
                engine.Job(
                    kind="outbox", organisation_id=north, due_at=now + dt.timedelta(minutes=1), attempts=2
                ),
                engine.Job(kind="outbox", due_at=now, status="incident", attempts=3),
            ]
        )
    with session_factory() as s:
        snapshot = engine.read_metrics(s, now=now)
    assert [(c.kind, c.status, c.count) for c in snapshot.jobs] == [
        ("outbox", "incident", 1),
        ("outbox", "pending", 1),
        ("timer", "pending", 3),
    ]
    outbox, timer = snapshot.job_kinds
    assert (outbox.kind, outbox.due, outbox.lag_seconds, outbox.retrying, outbox.failed_attempts) == (
        "outbox", 0, 0.0, 1, 5,
    )  # fmt: skip
    assert (timer.kind, timer.due, timer.retrying, timer.failed_attempts) == ("timer", 2, 0, 0)
    assert 29.9 <= timer.lag_seconds <= 30.1
    # The incident without an organisation (and without an instance in error) is counted under ''.
    assert [(i.organisation, i.kind, i.count) for i in snapshot.incidents] == [("", "job", 1)]
    assert snapshot.processes == snapshot.instances == snapshot.open_tasks == snapshot.task_latency == ()


def test_a_shorter_lease_is_taken_over_sooner(session_factory: Factory, orgs: None) -> None:
    now = utcnow()
    with session_factory.begin() as s:
        s.add(engine.Job(kind="timer", due_at=now - dt.timedelta(seconds=1)))
    with session_factory.begin() as s:
        (lease,) = jobs.acquire_jobs(s, "dying-worker", now=now, lease_time=dt.timedelta(seconds=4))
        job = s.get_one(engine.Job, lease.id)
        assert job.locked_until is not None and job.locked_until - now == dt.timedelta(seconds=4)
    with session_factory.begin() as s:
        assert jobs.acquire_jobs(s, "other-worker", now=now + dt.timedelta(seconds=3)) == []
    with session_factory.begin() as s:
        (taken,) = jobs.acquire_jobs(s, "other-worker", now=now + dt.timedelta(seconds=5))
    assert taken.id == lease.id
    # Without lease_time the lease lasts engine.jobs.LEASE.
    with session_factory.begin() as s:
        assert s.get_one(engine.Job, lease.id).locked_until == now + dt.timedelta(seconds=5) + jobs.LEASE
