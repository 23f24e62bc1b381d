"""Admin actions in the audit log: who did what, when, to what, and the values before and after.

Every change an admin makes in the console or with the command line (a user
added, a role taken away, a parameter value recorded, a process switched
back to its shared version, an instance migrated...) is one append-only
``audit_event`` of kind ``admin.<action>``, in the same transaction as the
change itself.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from ._workflow import json_safe
from .errors import DataError
from .models import AuditEvent, utcnow

# The kind of every admin action's event starts with this.
ADMIN_KIND_PREFIX = "admin."

# What an admin (or a case handler with the right) does to a running instance, recorded in the
# instance's own audit trail (engine/runtime.py, engine/repair.py): the audit page shows these too.
INSTANCE_ADMIN_KINDS = ("suspended", "resumed", "cancelled", "retried", "reset", "data_changed")

# Entries on one page of the audit page; the most a caller may ask for.
AUDIT_PAGE_SIZE = 50
MAX_AUDIT_PAGE_SIZE = 500


def record_admin_action(
    session: so.Session,
    *,
    organisation_id: int | None,
    actor: str | None,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    instance_id: int | None = None,
) -> AuditEvent:
    """Append the audit event of one admin action and return it (flushed).

    :param action: what was done, in snake case (``user_added``, ``parameter_set``...);
        the event's kind is ``admin.<action>``.
    :param target: what it was done to, as the audit page shows it (``user alice``,
        ``parameter three_quotes_threshold``, ``instance 12``).
    :param before: the values before (``None`` for something new), JSON-safe or made so.
    :param after: the values after (``None`` for something removed).

    Runs in the caller's transaction, which also holds the change.
    """
    kind = f"{ADMIN_KIND_PREFIX}{action}"
    if len(kind) > 40:
        raise ValueError(f"Admin action name {action!r} is too long for an audit kind")
    event = AuditEvent(
        organisation_id=organisation_id,
        instance_id=instance_id,
        at=utcnow(),
        actor=actor,
        kind=kind,
        element=target[:200],
        detail={"before": json_safe(before), "after": json_safe(after)},
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class AuditFilter:
    """Which admin events to show: by whom, of which kind, from and to which day (inclusive).

    Days are calendar days in the organisation's time zone; ``None`` filters nothing.
    """

    actor: str | None = None
    kind: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise DataError(f"The period starts ({self.since}) after it ends ({self.until})")
        if self.kind is not None and not is_admin_kind(self.kind):
            raise DataError(f"{self.kind!r} is no kind of admin action")


@dataclass(frozen=True)
class AdminAuditEntry:
    """One admin action as the audit page shows it."""

    id: int
    at: dt.datetime
    actor: str | None
    kind: str
    target: str
    instance_id: int | None
    before: Any
    after: Any

    @property
    def action(self) -> str:
        """The kind without the ``admin.`` prefix (``user_added``, ``suspended``...)."""
        return self.kind.removeprefix(ADMIN_KIND_PREFIX)


@dataclass(frozen=True)
class AuditPage:
    """One page of admin events, newest first, with the cursors of its neighbours.

    ``older`` is the ``before`` cursor of the next (older) page, ``newer`` the
    ``after`` cursor of the previous (newer) one; ``None`` when there is none.
    """

    entries: list[AdminAuditEntry]
    older: int | None
    newer: int | None


def is_admin_kind(kind: str) -> bool:
    """Tell whether events of *kind* are admin actions the audit page shows."""
    return kind.startswith(ADMIN_KIND_PREFIX) or kind in INSTANCE_ADMIN_KINDS


_COLUMNS = (
    AuditEvent.id,
    AuditEvent.at,
    AuditEvent.actor,
    AuditEvent.kind,
    AuditEvent.element,
    AuditEvent.instance_id,
    AuditEvent.detail,
)


def _admin_events(organisation_id: int, where: AuditFilter, time_zone: str) -> sa.Select[Any]:
    query = sa.select(*_COLUMNS).where(
        AuditEvent.organisation_id == organisation_id,
        sa.or_(
            AuditEvent.kind.startswith(ADMIN_KIND_PREFIX, autoescape=True),
            AuditEvent.kind.in_(INSTANCE_ADMIN_KINDS),
        ),
    )
    if where.actor:
        query = query.where(sa.func.lower(AuditEvent.actor) == where.actor.strip().lower())
    if where.kind:
        query = query.where(AuditEvent.kind == where.kind)
    zone = zoneinfo.ZoneInfo(time_zone)
    if where.since is not None:
        query = query.where(AuditEvent.at >= dt.datetime.combine(where.since, dt.time(), zone))
    if where.until is not None:
        end = dt.datetime.combine(where.until + dt.timedelta(days=1), dt.time(), zone)
        query = query.where(AuditEvent.at < end)
    return query


def _entry(event: sa.Row[Any]) -> AdminAuditEntry:
    detail = event.detail if isinstance(event.detail, dict) else {}
    if event.kind.startswith(ADMIN_KIND_PREFIX):
        target = event.element or ""
        before, after = detail.get("before"), detail.get("after")
    else:
        target = f"instance {event.instance_id}"
        before = detail.get("before")
        if "after" in detail:
            after = detail["after"]
        else:
            rest = {key: value for key, value in detail.items() if key != "before"}
            after = rest or None
    return AdminAuditEntry(
        id=event.id,
        at=event.at,
        actor=event.actor,
        kind=event.kind,
        target=target,
        instance_id=event.instance_id,
        before=before,
        after=after,
    )


def admin_audit_page(
    session: so.Session,
    organisation_id: int,
    where: AuditFilter | None = None,
    *,
    time_zone: str = "UTC",
    before: int | None = None,
    after: int | None = None,
    limit: int = AUDIT_PAGE_SIZE,
) -> AuditPage:
    """Return one page of the organisation's admin events matching *where*, newest first.

    Admin events are the ``admin.*`` events of :func:`record_admin_action` and
    the instance actions of :data:`INSTANCE_ADMIN_KINDS`. Pages are cut in
    SQL by event id (keyset): *before* gives the page of events older than that
    id, *after* the page of events just newer than it; neither, the newest page.
    *time_zone* (IANA) says where the filter's days begin and end.

    :raises DataError: both *before* and *after* given, or *limit* is not
        between 1 and :data:`MAX_AUDIT_PAGE_SIZE`.
    """
    if before is not None and after is not None:
        raise DataError("Give the page's cursor 'before' or 'after', not both")
    if not 1 <= limit <= MAX_AUDIT_PAGE_SIZE:
        raise DataError(f"The page size must be between 1 and {MAX_AUDIT_PAGE_SIZE}, not {limit}")
    query = _admin_events(organisation_id, where or AuditFilter(), time_zone)
    if after is not None:
        rows = list(
            session.execute(query.where(AuditEvent.id > after).order_by(AuditEvent.id).limit(limit + 1))
        )
        has_newer = len(rows) > limit
        events = list(reversed(rows[:limit]))
        has_older = bool(events) and _exists(session, query.where(AuditEvent.id < events[-1].id))
    else:
        query_page = query.where(AuditEvent.id < before) if before is not None else query
        rows = list(session.execute(query_page.order_by(AuditEvent.id.desc()).limit(limit + 1)))
        has_older = len(rows) > limit
        events = rows[:limit]
        has_newer = (
            before is not None
            and bool(events)
            and _exists(session, query.where(AuditEvent.id > events[0].id))
        )
    return AuditPage(
        entries=[_entry(event) for event in events],
        older=events[-1].id if has_older else None,
        newer=events[0].id if has_newer else None,
    )


def _exists(session: so.Session, query: sa.Select[Any]) -> bool:
    return bool(session.scalar(sa.select(query.exists())))


def admin_audit_entries(
    session: so.Session,
    organisation_id: int,
    where: AuditFilter | None = None,
    *,
    time_zone: str = "UTC",
    batch: int = 500,
) -> Iterator[AdminAuditEntry]:
    """Yield every admin event of the organisation matching *where*, newest first (for the CSV export).

    Reads rows (not ORM objects) in keyset batches of *batch* events, so a long
    log is never held in memory at once. Runs in the caller's transaction.
    """
    query = _admin_events(organisation_id, where or AuditFilter(), time_zone).order_by(AuditEvent.id.desc())
    cursor: int | None = None
    while True:
        page = query if cursor is None else query.where(AuditEvent.id < cursor)
        events = list(session.execute(page.limit(batch)))
        for event in events:
            yield _entry(event)
        if len(events) < batch:
            return
        cursor = events[-1].id


def admin_audit_kinds(session: so.Session, organisation_id: int) -> list[str]:
    """Return the kinds of admin events the organisation has, sorted (for the page's filter)."""
    return list(
        session.scalars(
            sa.select(AuditEvent.kind)
            .where(
                AuditEvent.organisation_id == organisation_id,
                sa.or_(
                    AuditEvent.kind.startswith(ADMIN_KIND_PREFIX, autoescape=True),
                    AuditEvent.kind.in_(INSTANCE_ADMIN_KINDS),
                ),
            )
            .distinct()
            .order_by(AuditEvent.kind)
        )
    )
