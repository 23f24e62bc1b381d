"""Admin actions in the audit log: who did what, when, to what, and the values before and after.

Every change an admin makes in the console or with the command line (a user
added, a role taken away, a parameter value recorded, a process switched
back to its shared version, an instance migrated...) is one append-only
``audit_event`` of kind ``admin.<action>``, in the same transaction as the
change itself.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy.orm as so

from ._workflow import json_safe
from .models import AuditEvent, utcnow

# The kind of every admin action's event starts with this.
ADMIN_KIND_PREFIX = "admin."


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
