"""The job table and the worker that runs it.

Jobs are leased, not held: a worker leases a batch of due jobs in one statement
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a compare-and-set everywhere) by
writing its name and a lock expiry, then runs each job in its own transaction
that re-checks the lease. A batch holds about ``BATCH_SECONDS`` of work, so a
worker never sits on jobs that idle workers could run, and a batch that runs
late hands back the jobs it has not started. Any number of workers on any
number of machines can share the table; a dead worker's jobs are taken over
when its lease expires. APScheduler only provides the polling interval; its own
job stores are never used, because they must not be shared between schedulers.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from apscheduler.triggers.cron import CronTrigger
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from ._workflow import InstanceOperation, event_definitions, get_user_or_none, timer_due
from .connectors import send_outbox_message
from .definitions import resolve_definition
from .errors import LimitError, NotFoundError, PermissionDeniedError, ProcflowError
from .identity import get_organisation, get_user, membership_of
from .models import AuditEvent, Job, Organisation, ProcessInstance, Schedule, User, utcnow
from .runtime import start_instance

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
MAX_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 10
# A worker leases about this much work at a time, judged by how long its last jobs took: enough
# that one statement leases many quick jobs, few enough that a worker never sits on jobs that
# idle workers could run. Slow jobs (a mail server that takes seconds) are leased one by one.
BATCH_SECONDS = 0.1
MAX_BATCH = 100
# Leases a batch still holds when it has run this long (a job waited on a lock, or was slow)
# are handed back, so that other workers run those jobs meanwhile.
BATCH_OVERDUE_SECONDS = 1.0
_clock = time.monotonic


def default_worker_id() -> str:
    """Return a name unique to this worker process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class RunSummary:
    """What one pass of the worker did."""

    ran: int = 0
    failed: int = 0
    incidents: int = 0


@dataclass(frozen=True)
class Lease:
    """A due job leased to a worker: what it needs to know to run the job before reading its row."""

    id: int
    kind: str
    instance_id: int | None
    due_at: dt.datetime


def _due(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        Job.status == "pending",
        Job.due_at <= now,
        sa.or_(Job.locked_until.is_(None), Job.locked_until < now),
    )


def acquire_jobs(
    session: so.Session,
    worker_id: str,
    *,
    limit: int = MAX_BATCH,
    now: dt.datetime | None = None,
    lease_time: dt.timedelta | None = None,
) -> list[Lease]:
    """Lease up to *limit* due jobs to *worker_id* in one statement; return them, earliest due first.

    The leases last *lease_time* (default ``LEASE``): a worker that dies holding them loses
    them to another worker after that long.

    On PostgreSQL the jobs are picked ``FOR UPDATE SKIP LOCKED``, so workers leasing at the same
    moment take different jobs instead of waiting for each other. SQLite has no row locks (the
    clause is left out there) but runs one writer at a time, and the update repeats the due
    condition, a compare-and-set either way. Commits nothing itself.

    :raises ProcflowError: the database cannot return updated rows (SQLite older than 3.35).
    """
    now = now or utcnow()
    dialect = session.get_bind().dialect
    if not dialect.update_returning:
        raise ProcflowError(
            f"The job table needs UPDATE ... RETURNING, which {dialect.name} "
            f"{'.'.join(map(str, dialect.server_version_info or ()))} lacks (SQLite needs 3.35 or newer)"
        )
    # Materialized: the database picks and locks the jobs once, however it plans the update.
    picked = (
        sa.select(Job.id)
        .where(_due(now))
        .order_by(Job.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )
    rows = session.execute(
        sa.update(Job)
        .where(Job.id.in_(sa.select(picked.c.id)), _due(now))
        .values(locked_by=worker_id, locked_until=now + (LEASE if lease_time is None else lease_time))
        .returning(Job.id, Job.kind, Job.instance_id, Job.due_at)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted((Lease(*row) for row in rows), key=lambda lease: (lease.due_at, lease.id))


def release_jobs(session: so.Session, job_ids: Iterable[int], worker_id: str) -> None:
    """Hand back leases of *worker_id* on *job_ids* it will not run, so any worker can take them now."""
    session.execute(
        sa.update(Job)
        .where(Job.id.in_(list(job_ids)), Job.locked_by == worker_id)
        .values(locked_by=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )


def run_job(session: so.Session, lease: Lease, worker_id: str) -> bool:
    """Run one leased job inside the caller's transaction; return False if the lease was lost.

    A timer locks its instance before the job row is read: user operations lock the instance,
    then change its timer jobs, so the job is read as they left it (a timer that a completed
    task cancelled is gone), and the two never wait for each other in opposite order. A job its
    handler re-armed (a timer taken before it is due) stays, with its lease released.
    """
    operation = None
    if lease.kind in _INSTANCE_HANDLERS and lease.instance_id is not None:
        try:
            operation = InstanceOperation.lock(session, lease.instance_id, actor=None)
        except NotFoundError:
            if session.get(Job, lease.id) is None:
                return False  # the instance was deleted, and its jobs with it
            raise
    job = session.get(Job, lease.id, populate_existing=True)
    if job is None:
        return False
    if job.locked_by != worker_id or job.status != "pending":
        if job.locked_by == worker_id:
            job.locked_by, job.locked_until = None, None  # suspended meanwhile: free it for its resumption
        return False
    if operation is not None:
        outcome = _INSTANCE_HANDLERS[job.kind](operation, job)
    elif job.kind in _INSTANCE_HANDLERS:
        outcome = None  # an instance job without an instance has nothing left to do
    else:
        outcome = _HANDLERS[job.kind](session, job)
    session.flush()
    if outcome is REARMED:
        job.locked_by, job.locked_until = None, None
    elif not sa.inspect(job).was_deleted:
        # Usually the handler has removed the job already (a fired timer's sync does).
        session.execute(sa.delete(Job).where(Job.id == job.id).execution_options(synchronize_session=False))
    return True


class _Rearmed:
    """What a job handler returns when the job must run again later instead of being removed."""


REARMED = _Rearmed()
# A timer taken early (another worker's clock runs ahead) waits at least this long before the next try.
REARM_MIN_DELAY = dt.timedelta(seconds=1)


def _fire_timer(operation: InstanceOperation, job: Job) -> _Rearmed | None:
    # The timer may have been cancelled while we waited for the instance lock (run_job saw to
    # that), or the instance may have stopped meanwhile.
    if operation.instance.status not in ("running", "waiting"):
        return None
    task = operation.task(job.task_uuid or "")
    if task is None:
        return None
    operation.workflow.refresh_timers()
    if task.state == TaskState.WAITING:
        # SpiffWorkflow, on this worker's clock, does not consider the timer due
        # yet: the job was due early by another process's clock. Try again when
        # the timer itself says it is due.
        definitions = [d for d in event_definitions(task) if isinstance(d, TimerEventDefinition)]
        due = timer_due(task, definitions[0]) if definitions else None
        job.due_at = max(due or job.due_at, utcnow() + REARM_MIN_DELAY)
        return REARMED
    operation.audit("timer_fired", element=task.task_spec.bpmn_id, detail={"due": job.due_at.isoformat()})
    operation.advance()
    operation.save()
    return None


def _send_outbox(session: so.Session, job: Job) -> None:
    send_outbox_message(session, int(job.payload["outbox_message_id"]))


def _scheduled_start(session: so.Session, job: Job) -> None:
    schedule = session.get(Schedule, int(job.payload["schedule_id"]))
    if schedule is None or not schedule.active:
        return
    user = session.get(User, schedule.starter_id) if schedule.starter_id else None
    organisation = session.get_one(Organisation, schedule.organisation_id)
    data = dict(schedule.data)
    data.setdefault("scheduled_for", job.due_at.isoformat())
    start_instance(
        session,
        schedule.process_id,
        organisation=organisation.key,
        user=user.username if user else None,
        data=data,
    )
    _queue_next_start(session, schedule, after=job.due_at)


# Jobs that change their instance, run with it locked (see run_job).
_INSTANCE_HANDLERS: dict[str, Callable[[InstanceOperation, Job], _Rearmed | None]] = {
    "timer": _fire_timer,
}
_HANDLERS: dict[str, Callable[[so.Session, Job], None]] = {
    "outbox": _send_outbox,
    "scheduled_start": _scheduled_start,
}


def _queue_next_start(session: so.Session, schedule: Schedule, *, after: dt.datetime) -> Job | None:
    trigger = CronTrigger.from_crontab(schedule.cron, timezone=schedule.timezone)
    next_time = trigger.get_next_fire_time(None, after + dt.timedelta(seconds=1))
    if next_time is None:
        return None
    job = Job(
        kind="scheduled_start",
        organisation_id=schedule.organisation_id,
        due_at=next_time.astimezone(dt.UTC),
        payload={"schedule_id": schedule.id},
    )
    session.add(job)
    return job


def schedule_start(
    session: so.Session,
    process_id: str,
    *,
    organisation: str,
    cron: str,
    timezone: str = "UTC",
    data: dict[str, Any] | None = None,
    user: str | None = None,
    now: dt.datetime | None = None,
) -> Schedule:
    """Start *process_id* for *organisation* on every *cron* time (``"0 6 1 */3 *"``: quarterly).

    Each start is a ``scheduled_start`` job; the next one is queued when it runs.

    :raises ValueError: the cron expression or time zone is invalid.
    """
    org = get_organisation(session, organisation)
    resolve_definition(session, process_id, org.id)
    starter = get_user_or_none(session, user)
    CronTrigger.from_crontab(cron, timezone=timezone)
    schedule = Schedule(
        organisation_id=org.id,
        process_id=process_id,
        cron=cron,
        timezone=timezone,
        data=data or {},
        starter_id=starter.id if starter else None,
    )
    session.add(schedule)
    session.flush()
    _queue_next_start(session, schedule, after=now or utcnow())
    session.flush()
    return schedule


def _record_failure(session: so.Session, job_id: int, worker_id: str, error: BaseException) -> bool:
    """Count a failed attempt; return True when the job became an incident."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.locked_by != worker_id:
        return False
    job.attempts += 1
    job.last_error = f"{type(error).__name__}: {error}"
    job.locked_by = None
    job.locked_until = None
    # A limit of engine/limits.py is reached the same way on every attempt: no use retrying.
    if job.attempts >= MAX_ATTEMPTS or isinstance(error, LimitError):
        job.status = "incident"
        if job.instance_id is not None:
            instance = session.get(ProcessInstance, job.instance_id)
            if instance is not None and instance.status in ("running", "waiting"):
                instance.status = "error"
                if isinstance(error, LimitError):
                    instance.error_message = (
                        f"{error} (job {job.id}, {job.kind}; nothing of the step was stored)"
                    )
                    session.add(
                        AuditEvent(
                            organisation_id=instance.organisation_id,
                            instance_id=instance.id,
                            kind="error",
                            element=error.element,
                            detail={"message": instance.error_message, "limit": error.limit},
                        )
                    )
                else:
                    instance.error_message = (
                        f"Job {job.id} ({job.kind}) failed {job.attempts} times: {job.last_error}"
                    )
        return True
    job.due_at = utcnow() + dt.timedelta(seconds=BACKOFF_BASE_SECONDS * 2 ** (job.attempts - 1))
    return False


def run_due_jobs(
    session_factory: so.sessionmaker[so.Session],
    *,
    worker_id: str | None = None,
    limit: int = MAX_BATCH,
    now: dt.datetime | None = None,
    stop: threading.Event | None = None,
    lease_time: dt.timedelta | None = None,
) -> RunSummary:
    """Lease and run due jobs until none is left (or *stop* is set); each job in its own transaction.

    Jobs are leased in batches of at most *limit*, sized to about ``BATCH_SECONDS`` of work,
    for *lease_time* each (default ``LEASE``); the leases a batch has not started when it is
    overdue or stopped are handed back.
    Failures are retried with exponential backoff; after ``MAX_ATTEMPTS`` the
    job becomes an incident and its instance goes to ``error``.
    """
    worker_id = worker_id or default_worker_id()
    summary = RunSummary()
    size = 1  # until this worker knows how long its jobs take
    while stop is None or not stop.is_set():
        with session_factory.begin() as session:
            leases = acquire_jobs(session, worker_id, limit=min(size, limit), now=now, lease_time=lease_time)
        if not leases:
            break
        began = _clock()
        for done, lease in enumerate(leases):
            if done and (_clock() - began > BATCH_OVERDUE_SECONDS or (stop is not None and stop.is_set())):
                with session_factory.begin() as session:
                    release_jobs(session, (left.id for left in leases[done:]), worker_id)
                break
            _run_leased(session_factory, lease, worker_id, summary)
        else:
            done = len(leases)
        seconds_per_job = max(_clock() - began, 1e-6) / done
        size = max(1, min(limit, round(BATCH_SECONDS / seconds_per_job)))
    return summary


def _run_leased(
    session_factory: so.sessionmaker[so.Session], lease: Lease, worker_id: str, summary: RunSummary
) -> None:
    try:
        with session_factory.begin() as session:
            if run_job(session, lease, worker_id):
                summary.ran += 1
    except Exception as exc:
        log.warning("job %s failed: %s", lease.id, exc)
        summary.failed += 1
        with session_factory.begin() as session:
            if _record_failure(session, lease.id, worker_id, exc):
                summary.incidents += 1


def retry_job(session: so.Session, job_id: int, *, user: str | None) -> Job:
    """Re-arm an incident: due now, attempts reset. *user* must be an admin of the job's organisation.

    :raises NotFoundError: no such job (or it belongs to another organisation).
    :raises PermissionDeniedError: the user is not an admin there.
    """
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"No job {job_id}")
    if user is not None:
        membership = (
            membership_of(session, get_user(session, user), job.organisation_id)
            if job.organisation_id
            else None
        )
        if membership is None:
            raise NotFoundError(f"No job {job_id}")
        if "admin" not in membership.roles:
            raise PermissionDeniedError(f"User {user!r} is not an admin of this organisation")
    job.status = "pending"
    job.attempts = 0
    job.last_error = None
    job.due_at = utcnow()
    job.locked_by = None
    job.locked_until = None
    return job


def incidents(session: so.Session, *, organisation_id: int | None = None) -> list[Job]:
    """Return jobs that failed too often, newest first."""
    stmt = sa.select(Job).where(Job.status == "incident").order_by(Job.id.desc())
    if organisation_id is not None:
        stmt = stmt.where(Job.organisation_id == organisation_id)
    return list(session.scalars(stmt))


def run_worker(
    session_factory: so.sessionmaker[so.Session],
    *,
    interval: float = 1.0,
    worker_id: str | None = None,
    lease_time: dt.timedelta | None = None,
) -> None:
    """Poll the job table every *interval* seconds until interrupted (``procflow worker``).

    Jobs are leased for *lease_time* (default ``LEASE``). On interruption the job running
    finishes and the leases not started are handed back, instead of the pass draining
    every due job first.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    worker_id = worker_id or default_worker_id()
    stop = threading.Event()
    scheduler = BlockingScheduler()
    scheduler.add_job(
        run_due_jobs,
        "interval",
        seconds=interval,
        kwargs={"worker_id": worker_id, "stop": stop, "lease_time": lease_time},
        args=[session_factory],
        max_instances=1,
        coalesce=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    log.info(
        "worker %s polling every %ss, leasing jobs for %ss",
        worker_id,
        interval,
        (LEASE if lease_time is None else lease_time).total_seconds(),
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        stop.set()
        scheduler.shutdown(wait=True)
