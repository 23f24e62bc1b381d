"""Organisations, users, memberships (roles) and groups (lanes map to groups)."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import NotFoundError, ProcflowError
from .models import Group, Membership, Organisation, User

ROLES = ("admin", "process_owner", "case_handler", "requester", "auditor")

# The roles whose members claim and complete tasks. Auditors only read: they
# see every case of their organisation but never move one on, so the record
# they check is not one they made.
TASK_ROLES = frozenset({"admin", "process_owner", "case_handler", "requester"})

_hasher = PasswordHasher()
# Where membership_of remembers its answers in a session (engine/accounts.py forgets them on change).
_MEMBERSHIP_CACHE = "procflow.memberships"


def add_organisation(session: so.Session, key: str, *, name: str) -> Organisation:
    """Create an organisation, or rename it if *key* exists. Runs in the caller's transaction."""
    if not key or not key.replace("-", "").replace("_", "").isalnum():
        raise ProcflowError(f"Invalid organisation key {key!r}: use letters, digits, '-' and '_'")
    org = session.scalar(sa.select(Organisation).where(Organisation.key == key))
    if org is None:
        org = Organisation(key=key, name=name)
        session.add(org)
    else:
        org.name = name
    session.flush()
    return org


def get_organisation(session: so.Session, key: str) -> Organisation:
    """Return the organisation with *key*.

    :raises NotFoundError: there is none.
    """
    org = session.scalar(sa.select(Organisation).where(Organisation.key == key))
    if org is None:
        raise NotFoundError(f"No organisation {key!r}")
    return org


def get_user(session: so.Session, username: str) -> User:
    """Return the user called *username*.

    :raises NotFoundError: there is none.
    """
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"No user {username!r}")
    return user


def add_user(
    session: so.Session,
    username: str,
    *,
    organisation: str,
    roles: list[str] | tuple[str, ...] = (),
    groups: list[str] | tuple[str, ...] = (),
    password: str | None = None,
    display_name: str | None = None,
    email: str | None = None,
) -> User:
    """Create a user (or update one) and make them a member of *organisation*.

    Roles and groups are added to any the user already has there.

    :raises NotFoundError: the organisation does not exist.
    :raises ProcflowError: an unknown role.
    """
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ProcflowError(f"Unknown role(s) {', '.join(unknown)}; known roles: {', '.join(ROLES)}")
    org = get_organisation(session, organisation)
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        user = User(username=username, display_name=display_name or username, email=email)
        session.add(user)
    else:
        if display_name:
            user.display_name = display_name
        if email:
            user.email = email
    if password is not None:
        user.password_hash = _hasher.hash(password)
    session.flush()
    membership = session.scalar(
        sa.select(Membership).where(Membership.user_id == user.id, Membership.organisation_id == org.id)
    )
    if membership is None:
        membership = Membership(user=user, organisation=org, roles=[])
        session.add(membership)
    session.info.pop(_MEMBERSHIP_CACHE, None)
    membership.roles = sorted(set(membership.roles) | set(roles))
    for key in groups:
        group = session.scalar(sa.select(Group).where(Group.organisation_id == org.id, Group.key == key))
        if group is None:
            group = Group(organisation_id=org.id, key=key, name=key)
            session.add(group)
        if group not in membership.groups:
            membership.groups.append(group)
    session.flush()
    return user


def verify_password(session: so.Session, username: str, password: str) -> User | None:
    """Return the active user if *password* is theirs, else ``None`` (same answer for unknown users).

    A user whose every membership is deactivated gets ``None`` too.
    """
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None or not user.is_active or not user.password_hash:
        # Spend the same time as a real check so timing does not reveal which usernames exist.
        _hasher.hash(password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if user.memberships and all(m.deactivated_at is not None for m in user.memberships):
        return None  # deactivated everywhere (engine/accounts.py): the password opens nothing
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def membership_of(session: so.Session, user: User, organisation_id: int) -> Membership | None:
    """Return *user*'s active membership in the organisation, if any (remembered for the session's lifetime).

    A deactivated membership (``deactivated_at`` set) counts as none.
    """
    cache: dict[tuple[int, int], Membership | None] = session.info.setdefault(_MEMBERSHIP_CACHE, {})
    key = (user.id, organisation_id)
    if key not in cache:
        cache[key] = session.scalar(
            sa.select(Membership).where(
                Membership.user_id == user.id,
                Membership.organisation_id == organisation_id,
                Membership.deactivated_at.is_(None),
            )
        )
    return cache[key]


def group_keys(membership: Membership | None) -> set[str]:
    """Return the keys of the groups of a membership (empty without one)."""
    return {group.key for group in membership.groups} if membership else set()
