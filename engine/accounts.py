"""An organisation's users and groups as its admins manage them (the admin console, the CLI).

Users are global (one username, one password); what a user is *in an
organisation* is their membership there: roles, groups, and whether it is
deactivated (``Membership.deactivated_at``). A deactivated member cannot sign in to
that organisation (:func:`engine.identity.membership_of` treats the membership as
none), and the tasks they had claimed there go back to their groups.

Every change here is recorded with :func:`engine.record_admin_action` in the
caller's transaction. Anything of another organisation does not exist here
(:class:`NotFoundError`), as everywhere else.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from ._workflow import InstanceOperation
from .admin_audit import record_admin_action
from .errors import FormValidationError, InvalidStateError, NotFoundError, PermissionDeniedError
from .identity import _MEMBERSHIP_CACHE, ROLES
from .models import Group, HumanTask, Membership, User, group_member, utcnow
from .notifications import TaskToNotify, queue_task_emails

# The languages a group has a display name in (``Group.translated_names``).
GROUP_NAME_LANGUAGES = ("sv", "fi", "en")
USER_STATUSES = ("all", "active", "deactivated")
USERS_PAGE_SIZE = 50

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,119}$")
_GROUP_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_NAME = 200


def _invalid(field: str, message: str) -> FormValidationError:
    """Return the error for bad input in one field (the web shows it beside that field)."""
    return FormValidationError({field: [message]})


@dataclass(frozen=True)
class MemberRow:
    """One user of an organisation as the users list shows them."""

    username: str
    display_name: str
    email: str | None
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    deactivated_at: dt.datetime | None
    has_password: bool

    @property
    def active(self) -> bool:
        """Whether the membership is active (not deactivated)."""
        return self.deactivated_at is None


@dataclass(frozen=True)
class MemberPage:
    """One page of an organisation's users and how many match in all."""

    rows: list[MemberRow]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class GroupRow:
    """One group of an organisation: key, names by language, how many active members."""

    key: str
    name: str
    names: dict[str, str]
    members: int
    open_tasks: int


@dataclass(frozen=True)
class Deactivated:
    """What deactivating a member did: whether anything changed, the tasks released to their groups."""

    changed: bool
    released_task_ids: list[int]


# -- reading ---------------------------------------------------------------------------------------


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_members(
    session: so.Session,
    organisation_id: int,
    *,
    search: str = "",
    status: str = "all",
    group: str | None = None,
    offset: int = 0,
    limit: int = USERS_PAGE_SIZE,
) -> MemberPage:
    """Return a page of the organisation's users, by username, filtered in SQL.

    *search* matches the username, the display name or the e-mail address (any
    case); *status* is one of ``USER_STATUSES``; *group* keeps the members of that group.

    :raises FormValidationError: an unknown status (field ``status``).
    """
    if status not in USER_STATUSES:
        raise _invalid("status", f"Unknown status {status!r}; use one of {', '.join(USER_STATUSES)}")
    conditions: list[sa.ColumnElement[bool]] = [Membership.organisation_id == organisation_id]
    text = search.strip()
    if text:
        pattern = f"%{_escape_like(text.lower())}%"
        conditions.append(
            sa.or_(
                sa.func.lower(User.username).like(pattern, escape="\\"),
                sa.func.lower(User.display_name).like(pattern, escape="\\"),
                sa.func.lower(sa.func.coalesce(User.email, "")).like(pattern, escape="\\"),
            )
        )
    if status == "active":
        conditions.append(Membership.deactivated_at.is_(None))
    elif status == "deactivated":
        conditions.append(Membership.deactivated_at.is_not(None))
    if group:
        conditions.append(
            sa.exists()
            .where(group_member.c.membership_id == Membership.id)
            .where(group_member.c.group_id == Group.id)
            .where(Group.organisation_id == organisation_id, Group.key == group)
        )
    base = sa.select(User, Membership).join(Membership, Membership.user_id == User.id).where(*conditions)
    total = session.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0
    offset, limit = max(offset, 0), max(1, min(limit, 500))
    found = session.execute(base.order_by(User.username).offset(offset).limit(limit)).all()
    groups = _group_keys_of(session, [membership.id for _user, membership in found])
    rows = [
        MemberRow(
            username=user.username,
            display_name=user.display_name,
            email=user.email,
            roles=tuple(sorted(membership.roles or ())),
            groups=tuple(groups.get(membership.id, ())),
            deactivated_at=membership.deactivated_at,
            has_password=bool(user.password_hash),
        )
        for user, membership in found
    ]
    return MemberPage(rows=rows, total=total, offset=offset, limit=limit)


def _group_keys_of(session: so.Session, membership_ids: Sequence[int]) -> dict[int, list[str]]:
    if not membership_ids:
        return {}
    found: dict[int, list[str]] = {}
    rows = session.execute(
        sa.select(group_member.c.membership_id, Group.key)
        .join(Group, Group.id == group_member.c.group_id)
        .where(group_member.c.membership_id.in_(membership_ids))
        .order_by(Group.key)
    )
    for membership_id, key in rows:
        found.setdefault(membership_id, []).append(key)
    return found


def get_member(session: so.Session, organisation_id: int, username: str) -> Membership:
    """Return *username*'s membership in the organisation (active or not), with its user.

    :raises NotFoundError: no such user in this organisation.
    """
    membership = session.scalar(
        sa.select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organisation_id == organisation_id, User.username == username)
    )
    if membership is None:
        raise NotFoundError(f"No user {username!r}")
    return membership


def claimed_tasks(session: so.Session, membership: Membership) -> list[HumanTask]:
    """Return the open tasks of the member's organisation assigned to them, oldest first."""
    return list(
        session.scalars(
            sa.select(HumanTask)
            .where(
                HumanTask.organisation_id == membership.organisation_id,
                HumanTask.assignee_id == membership.user_id,
                HumanTask.state == "ready",
            )
            .order_by(HumanTask.created_at, HumanTask.id)
        )
    )


def list_groups(session: so.Session, organisation_id: int) -> list[GroupRow]:
    """Return the organisation's groups by key, with their active members and open tasks counted in SQL."""
    members = (
        sa.select(sa.func.count())
        .select_from(group_member)
        .join(Membership, Membership.id == group_member.c.membership_id)
        .where(group_member.c.group_id == Group.id, Membership.deactivated_at.is_(None))
        .scalar_subquery()
    )
    open_tasks = (
        sa.select(sa.func.count())
        .select_from(HumanTask)
        .where(
            HumanTask.organisation_id == organisation_id,
            HumanTask.candidate_group == Group.key,
            HumanTask.state == "ready",
        )
        .scalar_subquery()
    )
    rows = session.execute(
        sa.select(Group, members, open_tasks)
        .where(Group.organisation_id == organisation_id)
        .order_by(Group.key)
    )
    return [
        GroupRow(
            key=group.key,
            name=group.name or group.key,
            names=dict(group.translated_names or {}),
            members=member_count,
            open_tasks=task_count,
        )
        for group, member_count, task_count in rows
    ]


def get_group(session: so.Session, organisation_id: int, key: str) -> Group:
    """Return the organisation's group *key*.

    :raises NotFoundError: the organisation has no such group.
    """
    group = session.scalar(sa.select(Group).where(Group.organisation_id == organisation_id, Group.key == key))
    if group is None:
        raise NotFoundError(f"No group {key!r}")
    return group


# -- users -----------------------------------------------------------------------------------------


def check_roles(roles: Iterable[str]) -> list[str]:
    """Return *roles* sorted and without repeats.

    :raises FormValidationError: an unknown role (field ``roles``).
    """
    chosen = sorted(set(roles))
    unknown = [role for role in chosen if role not in ROLES]
    if unknown:
        raise _invalid("roles", f"Unknown role(s) {', '.join(unknown)}; known roles: {', '.join(ROLES)}")
    return chosen


def _groups_by_key(session: so.Session, organisation_id: int, keys: Iterable[str]) -> list[Group]:
    wanted = sorted(set(keys))
    if not wanted:
        return []
    found = {
        g.key: g
        for g in session.scalars(
            sa.select(Group).where(Group.organisation_id == organisation_id, Group.key.in_(wanted))
        )
    }
    missing = [key for key in wanted if key not in found]
    if missing:
        raise _invalid("groups", f"No group {', '.join(map(repr, missing))} in this organisation")
    return [found[key] for key in wanted]


def create_member(
    session: so.Session,
    organisation_id: int,
    *,
    username: str,
    display_name: str = "",
    email: str | None = None,
    roles: Iterable[str] = (),
    groups: Iterable[str] = (),
    actor: str | None,
) -> Membership:
    """Add a new user to the organisation with *roles* and *groups* (no password: see password links).

    Usernames are unique in the installation: a taken one is refused, whoever has it
    (an admin cannot take in another organisation's user).

    :raises FormValidationError: naming the field: a malformed or taken username, an e-mail
        address that is not one, a name too long, an unknown role or group.
    """
    username = username.strip()
    if not _USERNAME.match(username):
        raise _invalid(
            "username",
            "Use 1 to 120 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
        )
    if session.scalar(sa.select(User.id).where(sa.func.lower(User.username) == username.lower())) is not None:
        raise _invalid("username", f"The username {username!r} is taken")
    display_name = display_name.strip()
    if len(display_name) > _MAX_NAME:
        raise _invalid("display_name", f"Use at most {_MAX_NAME} characters")
    email = _checked_email(email)
    chosen_roles = check_roles(roles)
    chosen_groups = _groups_by_key(session, organisation_id, groups)
    user = User(username=username, display_name=display_name or username, email=email)
    session.add(user)
    session.flush()
    membership = Membership(user_id=user.id, organisation_id=organisation_id, roles=chosen_roles)
    membership.groups.extend(chosen_groups)
    session.add(membership)
    session.flush()
    record_admin_action(
        session,
        organisation_id=organisation_id,
        actor=actor,
        action="user_added",
        target=f"user {username}",
        after={
            "display_name": user.display_name,
            "email": email,
            "roles": chosen_roles,
            "groups": [g.key for g in chosen_groups],
        },
    )
    return membership


def _checked_email(email: str | None) -> str | None:
    email = (email or "").strip()
    if not email:
        return None
    if len(email) > 254 or not _EMAIL.match(email):
        raise _invalid("email", f"{email!r} is not an e-mail address")
    return email


def update_member_details(
    session: so.Session, membership: Membership, *, display_name: str, email: str | None, actor: str | None
) -> None:
    """Change the member's display name and e-mail address (audited when either changes).

    :raises FormValidationError: a name too long (``display_name``) or not an e-mail address (``email``).
    """
    display_name = display_name.strip() or membership.user.username
    if len(display_name) > _MAX_NAME:
        raise _invalid("display_name", f"Use at most {_MAX_NAME} characters")
    checked = _checked_email(email)
    user = membership.user
    before = {"display_name": user.display_name, "email": user.email}
    after = {"display_name": display_name, "email": checked}
    if before == after:
        return
    user.display_name, user.email = display_name, checked
    session.flush()
    _record_change(session, membership, "user_changed", before, after, actor)


def set_member_roles(
    session: so.Session, membership: Membership, roles: Iterable[str], *, actor: str | None
) -> None:
    """Give the member exactly *roles* in their organisation (audited when they change).

    :raises FormValidationError: an unknown role (field ``roles``).
    :raises PermissionDeniedError: *actor* would take away their own admin role.
    """
    chosen = check_roles(roles)
    before = sorted(membership.roles or ())
    if chosen == before:
        return
    if (
        actor is not None
        and membership.user.username == actor
        and "admin" in before
        and "admin" not in chosen
    ):
        raise PermissionDeniedError("You cannot take away your own admin role: ask another admin")
    membership.roles = chosen
    session.flush()
    _record_change(session, membership, "roles_changed", {"roles": before}, {"roles": chosen}, actor)


def set_member_groups(
    session: so.Session, membership: Membership, groups: Iterable[str], *, actor: str | None
) -> None:
    """Make the member a member of exactly *groups* (keys) of their organisation (audited).

    :raises FormValidationError: a group the organisation does not have (field ``groups``).
    """
    chosen = _groups_by_key(session, membership.organisation_id, groups)
    before = sorted(g.key for g in membership.groups)
    after = [g.key for g in chosen]
    if before == after:
        return
    membership.groups = chosen
    session.flush()
    _record_change(session, membership, "groups_changed", {"groups": before}, {"groups": after}, actor)


def _record_change(
    session: so.Session,
    membership: Membership,
    action: str,
    before: Mapping[str, object],
    after: Mapping[str, object],
    actor: str | None,
) -> None:
    record_admin_action(
        session,
        organisation_id=membership.organisation_id,
        actor=actor,
        action=action,
        target=f"user {membership.user.username}",
        before=dict(before),
        after=dict(after),
    )


def deactivate_member(session: so.Session, membership: Membership, *, actor: str | None) -> Deactivated:
    """Deactivate the member in their organisation; the open tasks they claimed there go back to the group.

    Each released task is unclaimed on its locked instance (its lock version moves
    on, an instance audit event ``task_unclaimed`` says why) and the group's members
    are e-mailed as for a new task. A task without a candidate group stays assigned:
    nobody else would see it otherwise; an admin reassigns it on the case page.
    Deactivating a deactivated member changes nothing.

    :raises PermissionDeniedError: *actor* deactivating themselves.
    :raises ConflictError: a task's instance changed meanwhile (try again).
    """
    if membership.deactivated_at is not None:
        return Deactivated(changed=False, released_task_ids=[])
    username = membership.user.username
    if actor is not None and username == actor:
        raise PermissionDeniedError("You cannot deactivate yourself: ask another admin")
    membership.deactivated_at = utcnow()
    session.flush()
    session.info.pop(_MEMBERSHIP_CACHE, None)
    released: list[int] = []
    for task in claimed_tasks(session, membership):
        if task.candidate_group and _release(session, task.id, membership.user_id, username, actor):
            released.append(task.id)
    record_admin_action(
        session,
        organisation_id=membership.organisation_id,
        actor=actor,
        action="user_deactivated",
        target=f"user {username}",
        before={"active": True},
        after={"active": False, "released_tasks": released},
    )
    return Deactivated(changed=True, released_task_ids=released)


def _release(session: so.Session, task_id: int, user_id: int, username: str, actor: str | None) -> bool:
    op, task, _excluded = InstanceOperation.lock_task(session, task_id, actor=actor or username)
    # Read again under the instance's lock: someone may have completed or released it meanwhile.
    if task.state != "ready" or task.assignee_id != user_id:
        return False
    op.write_task_row(task, assignee_id=None)
    op.audit(
        "task_unclaimed",
        element=task.bpmn_id,
        detail={"task_id": task.id, "from": username, "reason": "user deactivated"},
    )
    op.touch()
    op.write_audits()
    queue_task_emails(session, op.instance, op.definition, [TaskToNotify.from_task(task)], actor=actor)
    return True


def reactivate_member(session: so.Session, membership: Membership, *, actor: str | None) -> bool:
    """Make a deactivated member active again; return whether it changed.

    The tasks released when they were deactivated stay with their groups.
    """
    if membership.deactivated_at is None:
        return False
    membership.deactivated_at = None
    session.flush()
    session.info.pop(_MEMBERSHIP_CACHE, None)
    _record_change(session, membership, "user_reactivated", {"active": False}, {"active": True}, actor)
    return True


# -- groups ----------------------------------------------------------------------------------------


def _checked_names(names: Mapping[str, str | None]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for language, name in names.items():
        if language not in GROUP_NAME_LANGUAGES:
            raise _invalid("names", f"Group names are in {', '.join(GROUP_NAME_LANGUAGES)}, not {language!r}")
        text = (name or "").strip()
        if len(text) > _MAX_NAME:
            raise _invalid(f"name_{language}", f"Use at most {_MAX_NAME} characters")
        if text:
            checked[language] = text
    return checked


def save_group(
    session: so.Session,
    organisation_id: int,
    key: str,
    *,
    names: Mapping[str, str | None],
    actor: str | None,
    create: bool | None = None,
) -> Group:
    """Create the organisation's group *key*, or change its names (``{"sv": ..., "fi": ..., "en": ...}``).

    A language left empty shows the group's default name: its English one, else its key.
    With ``create=True`` an existing key is refused, with ``create=False`` a missing one.

    :raises FormValidationError: a malformed or (creating) taken key (field ``key``), a name
        too long (field ``name_<language>``), a language other than sv, fi, en.
    :raises NotFoundError: ``create=False`` and no such group.
    """
    key = key.strip()
    checked = _checked_names(names)
    group = session.scalar(sa.select(Group).where(Group.organisation_id == organisation_id, Group.key == key))
    if group is None:
        if create is False:
            raise NotFoundError(f"No group {key!r}")
        if not _GROUP_KEY.match(key):
            raise _invalid(
                "key",
                "Use 1 to 120 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        group = Group(organisation_id=organisation_id, key=key, name="", translated_names={})
        session.add(group)
        before = None
    elif create:
        raise _invalid("key", f"The organisation has a group {key!r} already")
    else:
        before = {"names": dict(group.translated_names or {})}
    default = checked.get("en") or key
    if before is not None and before["names"] == checked and group.name == default:
        return group
    group.name = default
    group.translated_names = checked
    session.flush()
    record_admin_action(
        session,
        organisation_id=organisation_id,
        actor=actor,
        action="group_added" if before is None else "group_changed",
        target=f"group {key}",
        before=before,
        after={"names": checked},
    )
    return group


def delete_group(session: so.Session, group: Group, *, actor: str | None) -> None:
    """Delete the group (its memberships go with it) if no open task waits for it.

    :raises InvalidStateError: open tasks have the group as their candidate group.
    """
    waiting = session.scalar(
        sa.select(sa.func.count())
        .select_from(HumanTask)
        .where(
            HumanTask.organisation_id == group.organisation_id,
            HumanTask.candidate_group == group.key,
            HumanTask.state == "ready",
        )
    )
    if waiting:
        raise InvalidStateError(
            f"{waiting} open task(s) wait for group {group.key!r}: it cannot be deleted until they are done"
        )
    members = sorted(m.user.username for m in group.members)
    record_admin_action(
        session,
        organisation_id=group.organisation_id,
        actor=actor,
        action="group_deleted",
        target=f"group {group.key}",
        before={"names": dict(group.translated_names or {}), "members": members},
    )
    session.delete(group)
    session.flush()


def group_members(session: so.Session, group: Group) -> list[Membership]:
    """Return the group's memberships (active or not), by username."""
    return list(
        session.scalars(
            sa.select(Membership)
            .join(group_member, group_member.c.membership_id == Membership.id)
            .join(User, User.id == Membership.user_id)
            .where(group_member.c.group_id == group.id)
            .order_by(User.username)
            .options(so.joinedload(Membership.user))
        )
    )


def add_group_member(session: so.Session, group: Group, username: str, *, actor: str | None) -> bool:
    """Make the organisation's user *username* a member of *group*; return whether it changed.

    :raises NotFoundError: no such user in the group's organisation (field-less: a 404 for the web
        is wrong here, so the web shows it beside the field).
    """
    membership = get_member(session, group.organisation_id, username.strip())
    keys = sorted({g.key for g in membership.groups} | {group.key})
    before = len(membership.groups)
    set_member_groups(session, membership, keys, actor=actor)
    return len(membership.groups) != before


def remove_group_member(session: so.Session, group: Group, username: str, *, actor: str | None) -> bool:
    """Take *username* out of *group*; return whether they were in it.

    :raises NotFoundError: no such user in the group's organisation.
    """
    membership = get_member(session, group.organisation_id, username)
    keys = sorted({g.key for g in membership.groups} - {group.key})
    before = len(membership.groups)
    set_member_groups(session, membership, keys, actor=actor)
    return len(membership.groups) != before
