"""What operations watch, read from the database: readiness and the figures behind ``/metrics``.

Every figure is counted from the tables when asked for (:func:`read_metrics`), so
that every web node and worker process gives the same answer and none keeps state
of its own. The values are plain frozen dataclasses: the web layer turns them into
Prometheus metric families (``web/ops.py``); this module knows nothing of Prometheus.

:func:`check_readiness` says whether the database answers and its schema is at the
head of the engine's migrations, for a readiness probe.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from .db import MIGRATIONS_PATH
from .models import HumanTask, Job, Organisation, ProcessInstance, utcnow

log = logging.getLogger(__name__)

# Seconds from a task's creation to its completion: minutes to weeks.
TASK_LATENCY_BUCKETS: tuple[float, ...] = (
    60,
    300,
    900,
    3600,
    4 * 3600,
    8 * 3600,
    86400,
    2 * 86400,
    5 * 86400,
    10 * 86400,
    30 * 86400,
)


# --- readiness ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    """Whether the database answers and is at the migrations' head.

    *database_error* names the exception type when the database did not answer
    (nothing more: the probe is anonymous); *current* is then empty.
    """

    database_error: str | None
    current: tuple[str, ...]
    head: tuple[str, ...]

    @property
    def database_answers(self) -> bool:
        return self.database_error is None

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def ready(self) -> bool:
        return self.database_answers and self.at_head


@cache
def migration_heads() -> tuple[str, ...]:
    """Return the head revision(s) of the engine's Alembic migrations (read once per process)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    return tuple(sorted(ScriptDirectory.from_config(config).get_heads()))


def check_readiness(session: so.Session) -> Readiness:
    """Ask the database through *session* whether it answers and which revision its schema is at.

    Never raises for a database that does not answer: that is an answer (not ready).
    Reads only; the caller closes *session*.
    """
    from alembic.runtime.migration import MigrationContext

    head = migration_heads()
    try:
        connection = session.connection()
        connection.execute(sa.text("SELECT 1"))
        current = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
    except Exception as exc:  # any failure to talk to the database means: not ready
        log.warning("readiness: the database does not answer: %s", exc)
        return Readiness(database_error=type(exc).__name__, current=(), head=head)
    return Readiness(database_error=None, current=current, head=head)


# --- metrics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessCount:
    """Instances of one process in one organisation: started (test runs excluded) and completed."""

    organisation: str
    process: str
    started: int
    completed: int


@dataclass(frozen=True, order=True)
class InstanceCount:
    """Instances of one process in one organisation with one current status."""

    organisation: str
    process: str
    status: str
    count: int


@dataclass(frozen=True, order=True)
class OpenTaskCount:
    """Human tasks waiting to be completed in one organisation, for one candidate group ('' for none)."""

    organisation: str
    group: str
    count: int


@dataclass(frozen=True)
class TaskLatency:
    """Seconds from creation to completion of one process's completed human tasks.

    *buckets* pairs each bound of :data:`TASK_LATENCY_BUCKETS` with the number of
    tasks completed within that many seconds (cumulative, as Prometheus counts).
    """

    process: str
    count: int
    seconds: float
    buckets: tuple[tuple[float, int], ...]


@dataclass(frozen=True, order=True)
class JobCount:
    """Jobs of one kind with one status in the job table."""

    kind: str
    status: str
    count: int


@dataclass(frozen=True)
class JobKindHealth:
    """How the jobs of one kind are doing.

    *due*: pending jobs due now; *lag_seconds*: how long the oldest of them has
    waited past its due time (0 when none waits); *retrying*: pending jobs that
    failed at least once; *failed_attempts*: failed attempts of the jobs still in
    the table (pending retries and incidents).
    """

    kind: str
    due: int
    lag_seconds: float
    retrying: int
    failed_attempts: int


@dataclass(frozen=True, order=True)
class IncidentCount:
    """Open incidents of one organisation ('' for a job of none) and kind.

    *kind* ``instance``: instances in error; ``job``: failed jobs whose instance is not in error.
    """

    organisation: str
    kind: str
    count: int


@dataclass(frozen=True)
class MetricsSnapshot:
    """Every figure of :func:`read_metrics`, sorted by their labels; *query_seconds*: what reading took."""

    processes: tuple[ProcessCount, ...]
    instances: tuple[InstanceCount, ...]
    open_tasks: tuple[OpenTaskCount, ...]
    task_latency: tuple[TaskLatency, ...]
    jobs: tuple[JobCount, ...]
    job_kinds: tuple[JobKindHealth, ...]
    incidents: tuple[IncidentCount, ...]
    query_seconds: float


def read_metrics(session: so.Session, *, now: dt.datetime | None = None) -> MetricsSnapshot:
    """Count instances, open tasks, task completion latency, jobs and incidents in the database.

    A handful of grouped queries, whatever the number of rows; reads only (give it a
    session of :func:`engine.reading_engine` so that SQLite takes no write lock).
    """
    began = time.perf_counter()
    now = now or utcnow()
    processes, instances = _instances(session)
    open_tasks = _open_tasks(session)
    latency = _task_latency(session)
    jobs, kinds = _jobs(session, now)
    incidents = _incidents(session)
    return MetricsSnapshot(
        processes=processes,
        instances=instances,
        open_tasks=open_tasks,
        task_latency=latency,
        jobs=jobs,
        job_kinds=kinds,
        incidents=incidents,
        query_seconds=time.perf_counter() - began,
    )


def _instances(session: so.Session) -> tuple[tuple[ProcessCount, ...], tuple[InstanceCount, ...]]:
    rows = session.execute(
        sa.select(Organisation.key, ProcessInstance.process_id, ProcessInstance.status, sa.func.count())
        .select_from(ProcessInstance)
        .join(Organisation, Organisation.id == ProcessInstance.organisation_id)
        .where(ProcessInstance.is_test.is_(False))
        .group_by(Organisation.key, ProcessInstance.process_id, ProcessInstance.status)
    ).all()
    by_status = tuple(
        sorted(InstanceCount(org, process, status, count) for org, process, status, count in rows)
    )
    started: dict[tuple[str, str], int] = {}
    completed: dict[tuple[str, str], int] = {}
    for row in by_status:
        key = (row.organisation, row.process)
        started[key] = started.get(key, 0) + row.count
        if row.status == "completed":
            completed[key] = row.count
    processes = tuple(
        ProcessCount(org, process, count, completed.get((org, process), 0))
        for (org, process), count in sorted(started.items())
    )
    return processes, by_status


def _open_tasks(session: so.Session) -> tuple[OpenTaskCount, ...]:
    rows = session.execute(
        sa.select(Organisation.key, HumanTask.candidate_group, sa.func.count())
        .select_from(HumanTask)
        .join(Organisation, Organisation.id == HumanTask.organisation_id)
        .where(HumanTask.state == "ready")
        .group_by(Organisation.key, HumanTask.candidate_group)
    )
    return tuple(sorted(OpenTaskCount(org, group or "", count) for org, group, count in rows))


def _seconds_between(start: Any, end: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def _task_latency(session: so.Session) -> tuple[TaskLatency, ...]:
    seconds = _seconds_between(HumanTask.created_at, HumanTask.completed_at, session.get_bind().dialect.name)
    below = [sa.func.sum(sa.case((seconds <= bound, 1), else_=0)) for bound in TASK_LATENCY_BUCKETS]
    rows = session.execute(
        sa.select(HumanTask.process_id, sa.func.count(), sa.func.sum(seconds), *below)
        .where(HumanTask.state == "completed", HumanTask.completed_at.is_not(None))
        .group_by(HumanTask.process_id)
        .order_by(HumanTask.process_id)
    )
    return tuple(
        TaskLatency(
            process=process,
            count=int(count),
            seconds=float(total or 0),
            buckets=tuple(
                (float(bound), int(n or 0)) for bound, n in zip(TASK_LATENCY_BUCKETS, counts, strict=True)
            ),
        )
        for process, count, total, *counts in rows
    )


def _jobs(session: so.Session, now: dt.datetime) -> tuple[tuple[JobCount, ...], tuple[JobKindHealth, ...]]:
    counts: list[JobCount] = []
    retrying: dict[str, int] = {}
    attempts: dict[str, int] = {}
    for kind, status, count, failed, failing in session.execute(
        sa.select(
            Job.kind,
            Job.status,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(Job.attempts), 0),
            sa.func.sum(sa.case((Job.attempts > 0, 1), else_=0)),
        ).group_by(Job.kind, Job.status)
    ):
        counts.append(JobCount(kind, status, count))
        attempts[kind] = attempts.get(kind, 0) + int(failed)
        if status == "pending":
            retrying[kind] = int(failing or 0)
    due: dict[str, tuple[int, float]] = {}
    for kind, oldest, count in session.execute(
        sa.select(Job.kind, sa.func.min(Job.due_at), sa.func.count())
        .where(Job.status == "pending", Job.due_at <= now)
        .group_by(Job.kind)
    ):
        oldest_at = _aware(oldest)
        due[kind] = (count, max(0.0, (now - oldest_at).total_seconds()) if oldest_at else 0.0)
    kinds = tuple(
        JobKindHealth(
            kind=kind,
            due=due.get(kind, (0, 0.0))[0],
            lag_seconds=due.get(kind, (0, 0.0))[1],
            retrying=retrying.get(kind, 0),
            failed_attempts=failed,
        )
        for kind, failed in sorted(attempts.items())
    )
    return tuple(sorted(counts)), kinds


def _aware(value: dt.datetime | str | None) -> dt.datetime | None:
    # Aggregates (min) bypass the column type: SQLite gives back text, without a zone.
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _incidents(session: so.Session) -> tuple[IncidentCount, ...]:
    instances = session.execute(
        sa.select(Organisation.key, sa.func.count())
        .select_from(ProcessInstance)
        .join(Organisation, Organisation.id == ProcessInstance.organisation_id)
        .where(ProcessInstance.status == "error")
        .group_by(Organisation.key)
    )
    in_error = sa.select(ProcessInstance.id).where(
        ProcessInstance.id == Job.instance_id, ProcessInstance.status == "error"
    )
    jobs = session.execute(
        sa.select(sa.func.coalesce(Organisation.key, ""), sa.func.count())
        .select_from(Job)
        .outerjoin(Organisation, Organisation.id == Job.organisation_id)
        .where(Job.status == "incident", ~in_error.exists())
        .group_by(Organisation.key)
    )
    return tuple(
        sorted(
            [IncidentCount(org, "instance", count) for org, count in instances]
            + [IncidentCount(org, "job", count) for org, count in jobs]
        )
    )
