"""The job table and the worker that runs it.

Jobs are leased, not held: a worker claims due jobs in one short transaction
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a compare-and-set everywhere) by
writing its name and a lock expiry, then runs each job in its own transaction
that re-checks the lease. Any number of workers on any number of machines can
share the table; a dead worker's jobs are taken over when its lease expires.
APScheduler only provides the polling interval; its own job stores are never
used, because they must not be shared between schedulers.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from apscheduler.triggers.cron import CronTrigger
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from ._workflow import InstanceOperation, event_definitions, get_user_or_none, timer_due
from .connectors import send_outbox_message
from .db import is_postgresql
from .definitions import resolve_definition
from .errors import LimitError, NotFoundError, PermissionDeniedError
from .identity import get_organisation, get_user, membership_of
from .models import AuditEvent, Job, Organisation, ProcessInstance, Schedule, User, utcnow
from .runtime import start_instance

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
MAX_ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 10


def default_worker_id() -> str:
    """Return a name unique to this worker process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class RunSummary:
    """What one pass of the worker did."""

    ran: int = 0
    failed: int = 0
    incidents: int = 0


def acquire_jobs(
    session: so.Session, worker_id: str, *, limit: int = 20, now: dt.datetime | None = None
) -> list[int]:
    """Lease up to *limit* due jobs to *worker_id*; return their ids. Commits nothing itself."""
    now = now or utcnow()
    due = sa.and_(
        Job.status == "pending",
        Job.due_at <= now,
        sa.or_(Job.locked_until.is_(None), Job.locked_until < now),
    )
    stmt = sa.select(Job.id).where(due).order_by(Job.due_at, Job.id).limit(limit)
    if is_postgresql(session):
        stmt = stmt.with_for_update(skip_locked=True)
    candidates = list(session.scalars(stmt))
    acquired = []
    for job_id in candidates:
        # Compare-and-set: only one worker's update matches when two race on SQLite.
        result = session.execute(
            sa.update(Job)
            .where(Job.id == job_id, due)
            .values(locked_by=worker_id, locked_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            acquired.append(job_id)
    return acquired


def run_job(session: so.Session, job_id: int, worker_id: str) -> bool:
    """Run one leased job inside the caller's transaction; return False if the lease was lost.

    A job its handler re-armed (a timer taken before it is due) stays, with its lease released.
    """
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.locked_by != worker_id or job.status != "pending":
        return False
    handler = _HANDLERS[job.kind]
    rearmed = handler(session, job) is REARMED
    # The handler may already have removed the job (a fired timer's sync does).
    session.flush()
    if rearmed:
        session.execute(
            sa.update(Job)
            .where(Job.id == job_id)
            .values(locked_by=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )
    else:
        session.execute(sa.delete(Job).where(Job.id == job_id).execution_options(synchronize_session=False))
    return True


class _Rearmed:
    """What a job handler returns when the job must run again later instead of being removed."""


REARMED = _Rearmed()
# A timer taken early (another worker's clock runs ahead) waits at least this long before the next try.
REARM_MIN_DELAY = dt.timedelta(seconds=1)


def _fire_timer(session: so.Session, job: Job) -> _Rearmed | None:
    if job.instance_id is None:
        return None
    op = InstanceOperation.lock(session, job.instance_id, actor=None)
    # The instance lock serialises us with user operations; the timer may have
    # been cancelled (job deleted) while we waited for it.
    if session.get(Job, job.id, populate_existing=True) is None or op.instance.status not in (
        "running",
        "waiting",
    ):
        return None
    task = op.task(job.task_uuid or "")
    if task is None:
        return None
    op.workflow.refresh_timers()
    if task.state == TaskState.WAITING:
        # SpiffWorkflow, on this worker's clock, does not consider the timer due
        # yet: the job was due early by another process's clock. Try again when
        # the timer itself says it is due.
        definitions = [d for d in event_definitions(task) if isinstance(d, TimerEventDefinition)]
        due = timer_due(task, definitions[0]) if definitions else None
        job.due_at = max(due or job.due_at, utcnow() + REARM_MIN_DELAY)
        return REARMED
    op.audit("timer_fired", element=task.task_spec.bpmn_id, detail={"due": job.due_at.isoformat()})
    op.advance()
    op.save()
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


_HANDLERS: dict[str, Callable[[so.Session, Job], _Rearmed | None]] = {
    "timer": _fire_timer,
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
    limit: int = 20,
    now: dt.datetime | None = None,
) -> RunSummary:
    """Lease and run due jobs until none is left; each job in its own transaction.

    Failures are retried with exponential backoff; after ``MAX_ATTEMPTS`` the
    job becomes an incident and its instance goes to ``error``.
    """
    worker_id = worker_id or default_worker_id()
    summary = RunSummary()
    while True:
        with session_factory.begin() as session:
            job_ids = acquire_jobs(session, worker_id, limit=limit, now=now)
        if not job_ids:
            return summary
        for job_id in job_ids:
            try:
                with session_factory.begin() as session:
                    if run_job(session, job_id, worker_id):
                        summary.ran += 1
            except Exception as exc:
                log.warning("job %s failed: %s", job_id, exc)
                summary.failed += 1
                with session_factory.begin() as session:
                    if _record_failure(session, job_id, worker_id, exc):
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
    session_factory: so.sessionmaker[so.Session], *, interval: float = 1.0, worker_id: str | None = None
) -> None:
    """Poll the job table every *interval* seconds until interrupted (``procflow worker``)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    worker_id = worker_id or default_worker_id()
    scheduler = BlockingScheduler()
    scheduler.add_job(
        run_due_jobs,
        "interval",
        seconds=interval,
        kwargs={"worker_id": worker_id},
        args=[session_factory],
        max_instances=1,
        coalesce=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    log.info("worker %s polling every %ss", worker_id, interval)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
