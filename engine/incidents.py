"""Incidents of an organisation: what failed and waits for an admin, and the repairs.

An incident is either an instance in ``error`` (a script, a decision, a form's
post-script or a job of the instance failed; its incident jobs, if any, are part
of it) or a job that failed ``MAX_ATTEMPTS`` times without an instance in error
to show for it (an e-mail of the outbox, a scheduled start, a timer of a case
that was suspended meanwhile). Each has a key, ``instance-<id>`` or ``job-<id>``.

Lists are read in SQL from the instance, job and audit tables: no workflow is
restored to list them. Retrying and repairing reuse the engine's operations
(:func:`engine.retry_instance`, :func:`engine.retry_job`,
:func:`engine.set_instance_data`, :func:`engine.reset_instance`) and record each
as an admin action (:func:`engine.record_admin_action`) in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from .admin_audit import record_admin_action
from .errors import NotFoundError, PermissionDeniedError, ProcflowError
from .jobs import retry_job
from .models import AuditEvent, Job, ProcessDefinition, ProcessInstance
from .repair import reset_instance, set_instance_data
from .runtime import get_instance, instance_data, retry_instance

PAGE_SIZE = 50
# Errors recorded for an incident that its trace shows, newest first.
TRACE_ERRORS = 5


@dataclass(frozen=True)
class TraceEntry:
    """One recorded failure: when, where (element, file, line) and what."""

    at: dt.datetime | None
    message: str
    element: str | None = None
    file: str | None = None
    line: int | None = None
    # SpiffWorkflow's task trace (call activities it went through), when recorded.
    tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Incident:
    """What failed, for the incidents page: one instance in error, or one job that stopped retrying."""

    key: str
    kind: str  # "instance" or "job"
    since: dt.datetime
    message: str
    instance_id: int | None = None
    instance_title: str = ""
    instance_status: str | None = None
    process_id: str | None = None
    process_name: str | None = None
    # The version the instance runs (its names, for the page), None for a job without an instance.
    definition: ProcessDefinition | None = None
    version: int | None = None
    shared: bool = False
    element: str | None = None
    job_ids: tuple[int, ...] = ()
    job_kind: str | None = None
    attempts: int | None = None
    trace: tuple[TraceEntry, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class IncidentPage:
    """One page of an organisation's incidents, newest first, and how many there are."""

    incidents: list[Incident]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, if there is one."""
        after = self.offset + self.limit
        return after if after < self.total else None

    @property
    def previous_offset(self) -> int | None:
        """The offset of the previous page, if this is not the first."""
        return max(0, self.offset - self.limit) if self.offset else None


@dataclass(frozen=True)
class RetryOutcome:
    """What retrying several incidents did: the keys retried, and those refused with why."""

    retried: list[str]
    refused: list[tuple[str, str]]


def _incident_rows(organisation_id: int, *, process_id: str | None, instance_id: int | None) -> sa.Subquery:
    """The organisation's incidents as rows (kind, ref, since), in SQL."""
    latest_attempt = (
        sa.select(sa.func.max(Job.due_at))
        .where(Job.instance_id == ProcessInstance.id, Job.status == "incident")
        .correlate(ProcessInstance)
        .scalar_subquery()
    )
    instances = sa.select(
        sa.literal("instance").label("kind"),
        ProcessInstance.id.label("ref"),
        sa.func.coalesce(latest_attempt, ProcessInstance.updated_at).label("since"),
    ).where(
        ProcessInstance.organisation_id == organisation_id,
        ProcessInstance.status == "error",
        ProcessInstance.is_test.is_(False),
    )
    jobs = (
        sa.select(sa.literal("job").label("kind"), Job.id.label("ref"), Job.due_at.label("since"))
        .outerjoin(ProcessInstance, ProcessInstance.id == Job.instance_id)
        .where(
            Job.organisation_id == organisation_id,
            Job.status == "incident",
            # A job of an instance in error is part of that instance's incident.
            sa.or_(Job.instance_id.is_(None), ProcessInstance.status != "error"),
            sa.or_(ProcessInstance.id.is_(None), ProcessInstance.is_test.is_(False)),
        )
    )
    if process_id is not None:
        instances = instances.where(ProcessInstance.process_id == process_id)
        jobs = jobs.where(ProcessInstance.process_id == process_id)
    if instance_id is not None:
        instances = instances.where(ProcessInstance.id == instance_id)
        jobs = jobs.where(Job.instance_id == instance_id)
    return sa.union_all(instances, jobs).subquery("incident")


def list_incidents(
    session: so.Session,
    organisation_id: int,
    *,
    process_id: str | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> IncidentPage:
    """Return a page of the organisation's incidents (of *process_id* only, if given), newest first.

    Test instances (a studio draft tried out) are left out. Reads only the
    instance, definition, job and audit tables.
    """
    rows = _incident_rows(organisation_id, process_id=process_id, instance_id=None)
    total = session.scalar(sa.select(sa.func.count()).select_from(rows)) or 0
    picked = session.execute(
        sa.select(rows.c.kind, rows.c.ref)
        .order_by(rows.c.since.desc(), rows.c.kind, rows.c.ref.desc())
        .offset(max(0, offset))
        .limit(max(1, limit))
    ).all()
    return IncidentPage(_describe(session, [(k, r) for k, r in picked]), total, max(0, offset), max(1, limit))


def incident_processes(session: so.Session, organisation_id: int) -> list[str]:
    """Return the process ids of the organisation's incidents (for a filter), sorted."""
    rows = _incident_rows(organisation_id, process_id=None, instance_id=None)
    instance_ids = sa.select(rows.c.ref).where(rows.c.kind == "instance")
    job_instances = sa.select(Job.instance_id).where(
        Job.id.in_(sa.select(rows.c.ref).where(rows.c.kind == "job"))
    )
    return sorted(
        session.scalars(
            sa.select(ProcessInstance.process_id)
            .where(sa.or_(ProcessInstance.id.in_(instance_ids), ProcessInstance.id.in_(job_instances)))
            .distinct()
        )
    )


def get_incident(session: so.Session, organisation_id: int, key: str) -> Incident:
    """Return the organisation's incident *key* (``instance-<id>`` or ``job-<id>``).

    :raises NotFoundError: the key is malformed, or names nothing that is an incident
        of the organisation (another organisation's, or repaired meanwhile).
    """
    kind, ref = _parse_key(key)
    rows = _incident_rows(organisation_id, process_id=None, instance_id=None)
    found = session.execute(
        sa.select(rows.c.kind, rows.c.ref).where(rows.c.kind == kind, rows.c.ref == ref)
    ).first()
    if found is None:
        raise NotFoundError(f"No incident {key!r}")
    (incident,) = _describe(session, [(kind, ref)])
    return incident


def instance_incident(session: so.Session, organisation_id: int, instance_id: int) -> Incident | None:
    """Return the incident of an instance of the organisation (it is in error, or has a failed job)."""
    rows = _incident_rows(organisation_id, process_id=None, instance_id=instance_id)
    found = session.execute(sa.select(rows.c.kind, rows.c.ref).limit(1)).first()
    return _describe(session, [(found.kind, found.ref)])[0] if found is not None else None


def _parse_key(key: str) -> tuple[str, int]:
    kind, _, ref = key.partition("-")
    if kind not in ("instance", "job") or not ref.isdigit():
        raise NotFoundError(f"No incident {key!r}")
    return kind, int(ref)


def _describe(session: so.Session, picked: list[tuple[str, int]]) -> list[Incident]:
    """Build the incidents of *picked* (kind, ref) rows, in their order, with a few queries in all."""
    job_ids = [ref for kind, ref in picked if kind == "job"]
    jobs = (
        {job.id: job for job in session.scalars(sa.select(Job).where(Job.id.in_(job_ids)))} if job_ids else {}
    )
    instance_ids = {ref for kind, ref in picked if kind == "instance"} | {
        j.instance_id for j in jobs.values() if j.instance_id is not None
    }
    instances = (
        {
            i.id: i
            for i in session.scalars(
                sa.select(ProcessInstance)
                .options(so.defer(ProcessInstance.state), so.joinedload(ProcessInstance.definition))
                .where(ProcessInstance.id.in_(sorted(instance_ids)))
            )
        }
        if instance_ids
        else {}
    )
    failed_jobs: dict[int, list[Job]] = {}
    errors: dict[int, list[AuditEvent]] = {}
    in_error = sorted(ref for kind, ref in picked if kind == "instance")
    if in_error:
        for job in session.scalars(
            sa.select(Job).where(Job.instance_id.in_(in_error), Job.status == "incident").order_by(Job.id)
        ):
            failed_jobs.setdefault(job.instance_id or 0, []).append(job)
        numbered = (
            sa.select(
                AuditEvent.id,
                sa.func.row_number()
                .over(partition_by=AuditEvent.instance_id, order_by=AuditEvent.id.desc())
                .label("rank"),
            )
            .where(AuditEvent.instance_id.in_(in_error), AuditEvent.kind == "error")
            .subquery()
        )
        for event in session.scalars(
            sa.select(AuditEvent)
            .join(numbered, numbered.c.id == AuditEvent.id)
            .where(numbered.c.rank <= TRACE_ERRORS)
            .order_by(AuditEvent.id.desc())
        ):
            errors.setdefault(event.instance_id or 0, []).append(event)
    described = []
    for kind, ref in picked:
        if kind == "instance" and ref in instances:
            described.append(
                _instance_incident(instances[ref], failed_jobs.get(ref, []), errors.get(ref, []))
            )
        elif kind == "job" and ref in jobs:
            job = jobs[ref]
            described.append(_job_incident(job, instances.get(job.instance_id) if job.instance_id else None))
    return described


def _process_fields(instance: ProcessInstance) -> dict[str, Any]:
    definition = instance.definition
    return {
        "instance_id": instance.id,
        "instance_title": instance.title or "",
        "instance_status": instance.status,
        "process_id": instance.process_id,
        "process_name": definition.name,
        "definition": definition,
        "version": definition.version,
        "shared": definition.organisation_id is None,
    }


def _instance_incident(instance: ProcessInstance, jobs: list[Job], events: list[AuditEvent]) -> Incident:
    message = instance.error_message or (events[0].detail.get("message") if events else "") or ""
    trace = [_trace_entry(event) for event in events]
    # The latest recorded error names the element, if it is the failure the instance is in.
    element = events[0].element if events and events[0].detail.get("message") == message else None
    for job in jobs:
        trace.insert(
            0, TraceEntry(at=job.due_at, message=f"Job {job.id} ({job.kind}): {job.last_error or ''}")
        )
    since = max([instance.updated_at, *(j.due_at for j in jobs)])
    return Incident(
        key=f"instance-{instance.id}",
        kind="instance",
        since=since,
        message=message,
        element=element,
        job_ids=tuple(j.id for j in jobs),
        job_kind=jobs[0].kind if jobs else None,
        attempts=max(j.attempts for j in jobs) if jobs else None,
        trace=tuple(trace),
        **_process_fields(instance),
    )


def _job_incident(job: Job, instance: ProcessInstance | None) -> Incident:
    return Incident(
        key=f"job-{job.id}",
        kind="job",
        since=job.due_at,
        message=job.last_error or "",
        job_ids=(job.id,),
        job_kind=job.kind,
        attempts=job.attempts,
        trace=(TraceEntry(at=job.due_at, message=job.last_error or ""),),
        **(_process_fields(instance) if instance is not None else {}),
    )


def _trace_entry(event: AuditEvent) -> TraceEntry:
    detail = event.detail or {}
    line = detail.get("line")
    tasks = detail.get("trace")
    return TraceEntry(
        at=event.at,
        message=str(detail.get("message") or ""),
        element=event.element,
        file=detail.get("file"),
        line=line if isinstance(line, int) else None,
        tasks=tuple(str(t) for t in tasks) if isinstance(tasks, list) else (),
    )


def retry_incident(session: so.Session, organisation_id: int, key: str, *, user: str | None) -> Incident:
    """Retry one incident: the instance's failed step runs again (and its failed jobs are re-armed),
    or the job is due again now. Audited as ``admin.incident_retried``. Returns the incident as it was.

    :raises NotFoundError: no incident *key* in the organisation.
    :raises PermissionDeniedError: *user* is not an admin of the organisation.
    :raises ConflictError: the instance was changed by someone else meanwhile.
    """
    incident = get_incident(session, organisation_id, key)
    if incident.kind == "instance":
        assert incident.instance_id is not None
        instance = retry_instance(session, incident.instance_id, user=user)
        after: dict[str, Any] = {"status": instance.status}
        if instance.status == "error":
            after["error"] = instance.error_message  # the step failed again at once
    else:
        job = retry_job(session, incident.job_ids[0], user=user)
        after = {"status": job.status, "due_at": job.due_at}
    record_admin_action(
        session,
        organisation_id=organisation_id,
        actor=user,
        action="incident_retried",
        target=f"instance {incident.instance_id}"
        if incident.kind == "instance"
        else f"job {incident.job_ids[0]}",
        before={"status": "error" if incident.kind == "instance" else "incident", "error": incident.message},
        after=after,
        instance_id=incident.instance_id,
    )
    return incident


def retry_incidents(
    session: so.Session, organisation_id: int, keys: Iterable[str], *, user: str | None
) -> RetryOutcome:
    """Retry each incident of *keys* (see :func:`retry_incident`), each in a savepoint of the
    caller's transaction: one that is refused (repaired meanwhile, changed by someone else)
    leaves the others retried.

    :raises PermissionDeniedError: *user* is not an admin of the organisation (nothing is retried).
    """
    retried: list[str] = []
    refused: list[tuple[str, str]] = []
    for key in dict.fromkeys(keys):
        try:
            with session.begin_nested():
                retry_incident(session, organisation_id, key, user=user)
        except PermissionDeniedError:
            raise
        except ProcflowError as exc:
            refused.append((key, str(exc)))
        else:
            retried.append(key)
    return RetryOutcome(retried, refused)


def repair_instance_data(
    session: so.Session, organisation_id: int, instance_id: int, *, data: dict[str, Any], user: str | None
) -> ProcessInstance:
    """Correct fields of an instance's data (:func:`engine.set_instance_data`), as an admin action.

    Audited twice, as the case's own ``data_changed`` event and as ``admin.instance_data_set``
    with the fields' values before and after.

    :raises NotFoundError: no such instance in the organisation.
    :raises PermissionDeniedError: *user* is not an admin of the organisation.
    :raises InvalidStateError: the instance has ended.
    :raises FormValidationError: a field name or value is refused (by field).
    """
    instance = get_instance(session, instance_id, organisation_id=organisation_id)
    before = instance_data(session, instance)
    changed = set_instance_data(session, instance_id, user=user, data=data)
    record_admin_action(
        session,
        organisation_id=organisation_id,
        actor=user,
        action="instance_data_set",
        target=f"instance {instance_id}",
        before={key: before.get(key) for key in data},
        after=data,
        instance_id=instance_id,
    )
    return changed


def repair_reset(
    session: so.Session, organisation_id: int, instance_id: int, *, to: str, user: str | None
) -> ProcessInstance:
    """Move an instance back to element *to* (:func:`engine.reset_instance`), as an admin action.

    Audited as the case's ``reset`` event and as ``admin.instance_reset``.

    :raises NotFoundError: no such instance in the organisation, or no element *to*.
    :raises PermissionDeniedError: *user* is not an admin of the organisation.
    :raises InvalidStateError: the instance is suspended or has ended, or *to* has not run.
    :raises ProcflowError: readying the element failed; nothing is changed.
    """
    instance = get_instance(session, instance_id, organisation_id=organisation_id)
    status = instance.status
    moved = reset_instance(session, instance_id, to=to, user=user)
    record_admin_action(
        session,
        organisation_id=organisation_id,
        actor=user,
        action="instance_reset",
        target=f"instance {instance_id}",
        before={"status": status},
        after={"to": to, "status": moved.status},
        instance_id=instance_id,
    )
    return moved
