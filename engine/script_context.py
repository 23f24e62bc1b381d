"""The data behind spiff-arena's script helpers, read for one operation on one instance.

Each helper's data is read only when a script names the helper (see
:mod:`engine._script_helpers`), in the operation's transaction, and only from
the instance's organisation: the current user and the starter must be
members of it, ``get_group_members`` knows only its groups, and
``get_localtime`` defaults to its time zone (``engine.time_zones``).
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa
import sqlalchemy.orm as so

from ._script_helpers import ScriptHelper
from .errors import LimitError
from .models import Group, Membership, ProcessInstance, User, group_member

# A group listed beyond this many members is refused rather than sent to every script.
MAX_GROUP_MEMBERS = 10_000


class _Operation(Protocol):
    session: so.Session
    instance: ProcessInstance
    actor: str | None

    def ensure_inserted(self) -> int: ...


def spiff_arena_helpers(operation: _Operation) -> dict[str, ScriptHelper]:
    """Return spiff-arena's script helpers for *operation*, each loading its data on first use."""
    session, instance = operation.session, operation.instance
    organisation_id = instance.organisation_id
    return {
        "get_current_user": ScriptHelper(
            "get_current_user", lambda: _member(session, organisation_id, username=operation.actor)
        ),
        "get_process_initiator_user": ScriptHelper(
            "get_process_initiator_user",
            lambda: _member(session, organisation_id, user_id=instance.started_by_id),
        ),
        "get_group_members": ScriptHelper(
            "get_group_members", lambda: group_members(session, organisation_id)
        ),
        "get_localtime": ScriptHelper("get_localtime", lambda: _time_zone(session, organisation_id)),
        "get_toplevel_process_info": ScriptHelper(
            "get_toplevel_process_info",
            lambda: {
                "process_instance_id": operation.ensure_inserted(),
                "process_model_identifier": instance.process_id,
            },
        ),
    }


def user_as_dict(user: User) -> dict[str, Any]:
    """Return *user* as spiff-arena's scripts see a user."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name or user.username,
        "service": "procflow",
        "service_id": user.username,
        "created_at_in_seconds": int(user.created_at.timestamp()) if user.created_at else None,
    }


def _member(
    session: so.Session, organisation_id: int, *, username: str | None = None, user_id: int | None = None
) -> dict[str, Any] | None:
    if username is None and user_id is None:
        return None  # a timer or the system: nobody
    query = (
        sa.select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == organisation_id)
    )
    query = (
        query.where(User.username == username) if username is not None else query.where(User.id == user_id)
    )
    user = session.scalars(query.limit(1)).first()
    return user_as_dict(user) if user is not None else None


def group_members(session: so.Session, organisation_id: int) -> dict[str, list[str]]:
    """Return the usernames of the active members of each group of the organisation, by group key.

    :raises LimitError: the groups have more than :data:`MAX_GROUP_MEMBERS` members in all.
    """
    rows = session.execute(
        sa.select(Group.key, User.username)
        .select_from(Group)
        .outerjoin(group_member, group_member.c.group_id == Group.id)
        .outerjoin(
            Membership,
            sa.and_(
                Membership.id == group_member.c.membership_id, Membership.organisation_id == organisation_id
            ),
        )
        .outerjoin(User, sa.and_(User.id == Membership.user_id, User.is_active.is_(True)))
        .where(Group.organisation_id == organisation_id)
        .order_by(Group.key, User.username)
        .limit(MAX_GROUP_MEMBERS + 1)
    ).all()
    if len(rows) > MAX_GROUP_MEMBERS:
        raise LimitError(
            f"get_group_members: the organisation's groups have more than {MAX_GROUP_MEMBERS} members",
            limit="group members",
        )
    members: dict[str, list[str]] = {}
    for key, username in rows:
        names = members.setdefault(key, [])
        if username is not None:
            names.append(username)
    return members


def _time_zone(session: so.Session, organisation_id: int) -> str:
    from .time_zones import organisation_time_zone  # it imports the workflow module, which imports this

    return organisation_time_zone(session, organisation_id)
