"""Caches every process may keep, kept correct by versions the database holds.

Production runs several web processes and workers against one database, so a
cache in one process must see at once what another process changed. Each
organisation row carries two versions, random numbers replaced on every change
(random, so that two databases, or a database and its restored backup, never
share one):

- ``identity_version``, replaced by any change to the organisation's memberships
  and groups, or to a user who is a member of it;
- ``definitions_version``, replaced by any deployment it runs (its own, or a
  shared one: those replace every organisation's), and by a change of its
  choice between its own and the shared version of a process (``ProcessSetting``).

Every operation reads the versions with a row it needs anyway (the organisation
by key when starting, the instance being locked otherwise), and looks up users,
roles, groups and resolved definitions under keys that include them. A change
committed by another process replaces the version in the same transaction, so
the next operation anywhere misses the cache and reads the new rows.

The versions are replaced by a ``before_flush`` listener on every ORM session
(:func:`_bump_versions`), so a change made through the models is never missed;
code that changes memberships, groups, users, definitions or process settings with Core
statements must call :func:`bump_identity` or :func:`bump_definitions` itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as so

from ._driver_sql import DriverStatement
from .errors import NotFoundError
from .models import (
    Group,
    Membership,
    Organisation,
    ProcessDefinition,
    ProcessSetting,
    User,
    group_member,
    new_version,
)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_ENTRIES = 10_000


class BoundedCache(Generic[K, V]):
    """A thread-safe mapping that forgets its least recently used entries beyond *size*."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        """Return the value under *key*, calling *load* (outside the lock) on a miss."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything (tests that simulate a fresh process)."""
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class OrganisationRef:
    """What an operation needs of an organisation: its id and its cache versions."""

    id: int
    key: str
    identity_version: int
    definitions_version: int


@dataclass(frozen=True)
class Actor:
    """A user as a member of one organisation: roles and group keys."""

    user_id: int
    username: str
    organisation_id: int
    roles: frozenset[str]
    groups: frozenset[str]


# Cached answer for a user who exists but is not a member of the organisation.
_NOT_A_MEMBER = "not a member"


_ORGANISATION_COLUMNS = (
    Organisation.id,
    Organisation.key,
    Organisation.identity_version,
    Organisation.definitions_version,
)
_ORGANISATION_BY_KEY = DriverStatement(
    sa.select(*_ORGANISATION_COLUMNS).where(Organisation.key == sa.bindparam("key"))
)
_ORGANISATION_BY_ID = DriverStatement(
    sa.select(*_ORGANISATION_COLUMNS).where(Organisation.id == sa.bindparam("id"))
)


def organisation_by_key(session: so.Session, key: str) -> OrganisationRef | None:
    """Return the organisation with *key* and its current versions (one indexed read)."""
    rows = _ORGANISATION_BY_KEY.read(session, {"key": key})
    return OrganisationRef(*rows[0]) if rows else None


def organisation_by_id(session: so.Session, organisation_id: int) -> OrganisationRef | None:
    """Return organisation *organisation_id* and its current versions."""
    rows = _ORGANISATION_BY_ID.read(session, {"id": organisation_id})
    return OrganisationRef(*rows[0]) if rows else None


_ACTORS: BoundedCache[tuple[int, int, str], Actor | str | None] = BoundedCache()
_MEMBER = (
    sa.select(User.id, Membership.id, Membership.roles)
    .outerjoin(
        Membership,
        sa.and_(
            Membership.user_id == User.id,
            Membership.organisation_id == sa.bindparam("organisation_id"),
            # A member an admin deactivated is no member: no task, no claim, no e-mail there.
            Membership.deactivated_at.is_(None),
        ),
    )
    .where(User.username == sa.bindparam("username"))
)
_GROUP_KEYS = (
    sa.select(Group.key)
    .join(group_member, group_member.c.group_id == Group.id)
    .where(group_member.c.membership_id == sa.bindparam("membership_id"))
)


def member(session: so.Session, organisation: OrganisationRef, username: str, *, otherwise: str) -> Actor:
    """Return *username* as a member of *organisation* (cached under its identity version).

    :raises NotFoundError: there is no such user (``No user ...``), or they are
        not a member, with the message *otherwise* (another organisation's
        tasks and cases do not exist for them).
    """
    key = (organisation.id, organisation.identity_version, username)

    def load() -> Actor | str | None:
        row = session.execute(_MEMBER, {"organisation_id": organisation.id, "username": username}).first()
        if row is None:
            return None
        user_id, membership_id, roles = row
        if membership_id is None:
            return _NOT_A_MEMBER
        groups = session.scalars(_GROUP_KEYS, {"membership_id": membership_id})
        return Actor(user_id, username, organisation.id, frozenset(roles or ()), frozenset(groups))

    found = _ACTORS.get(key, load)
    if found is None:
        raise NotFoundError(f"No user {username!r}")
    if not isinstance(found, Actor):
        raise NotFoundError(otherwise)
    return found


_DEFINITIONS: BoundedCache[tuple[int, int, str], ProcessDefinition | None] = BoundedCache()


def resolved_definition(
    session: so.Session, organisation: OrganisationRef, process_id: str
) -> ProcessDefinition | None:
    """Return the definition *process_id* resolves to for *organisation*, attached to *session*.

    Own versions win over shared ones, the latest of each, unless the organisation
    chose the shared version again (see :func:`engine.definitions.resolve_definition`;
    a change of that choice replaces the definitions version). The cached row is
    merged into the session without a query; definitions never change once written.
    """
    from .definitions import definition_for_new_cases

    def load() -> ProcessDefinition | None:
        found = definition_for_new_cases(session, process_id, organisation.id)
        return _detached(found) if found is not None else None

    cached = _DEFINITIONS.get((organisation.id, organisation.definitions_version, process_id), load)
    if cached is None:
        return None
    return session.merge(cached, load=False)


_DEFINITIONS_BY_ID: BoundedCache[tuple[int, int, int], ProcessDefinition | None] = BoundedCache()


def definition_by_id(
    session: so.Session, organisation: OrganisationRef, definition_id: int
) -> ProcessDefinition | None:
    """Return definition *definition_id* of an instance of *organisation*, attached to *session*.

    A definition row never changes, but ids repeat between databases: the
    organisation's (random) definitions version keeps them apart.
    """

    def load() -> ProcessDefinition | None:
        found = session.get(ProcessDefinition, definition_id)
        return _detached(found) if found is not None else None

    key = (organisation.id, organisation.definitions_version, definition_id)
    cached = _DEFINITIONS_BY_ID.get(key, load)
    return session.merge(cached, load=False) if cached is not None else None


def _detached(definition: ProcessDefinition) -> ProcessDefinition:
    copy = ProcessDefinition(
        **{c.key: getattr(definition, c.key) for c in sa.inspect(ProcessDefinition).column_attrs}
    )
    so.make_transient_to_detached(copy)
    return copy


_IDENTITY_DERIVED: BoundedCache[tuple[int, int, str, Hashable], Any] = BoundedCache()


def by_identity(organisation: OrganisationRef, what: str, key: Hashable, load: Callable[[], V]) -> V:
    """Return what *load* reads of the organisation's users, memberships and groups, per identity version.

    *what* names the question and *key* its arguments. A change to any of those
    rows, by any process, gives the organisation a new identity version, so a
    cached answer is never used after it.
    """
    value: V = _IDENTITY_DERIVED.get((organisation.id, organisation.identity_version, what, key), load)
    return value


def clear() -> None:
    """Forget every cached entry (as a freshly started process would have none)."""
    _IDENTITY_DERIVED.clear()
    _ACTORS.clear()
    _DEFINITIONS.clear()
    _DEFINITIONS_BY_ID.clear()


# -- keeping the versions ---------------------------------------------------------


def bump_identity(session: so.Session, organisation_ids: set[int] | None) -> None:
    """Bump the identity version of *organisation_ids* (all organisations for ``None``)."""
    _bump(session, Organisation.identity_version, organisation_ids)


def bump_definitions(session: so.Session, organisation_ids: set[int] | None) -> None:
    """Bump the definitions version of *organisation_ids* (all organisations for ``None``)."""
    _bump(session, Organisation.definitions_version, organisation_ids)


def _bump(session: so.Session, column: Any, organisation_ids: set[int] | None) -> None:
    if organisation_ids is not None and not organisation_ids:
        return
    stmt = sa.update(Organisation).values({column: new_version()})
    if organisation_ids is not None:
        stmt = stmt.where(Organisation.id.in_(sorted(organisation_ids)))
    # Through the connection: an ORM-enabled statement would autoflush inside this flush.
    session.connection().execute(stmt)


@sa.event.listens_for(so.Session, "before_flush")
def _bump_versions(session: so.Session, _context: Any, _instances: Any) -> None:
    changed = [*session.new, *session.dirty, *session.deleted]
    identity: set[int] = set()
    all_identity = False
    definitions: set[int] = set()
    all_definitions = False
    users: set[int] = set()
    for obj in changed:
        if isinstance(obj, Membership):
            org_id = (
                obj.organisation_id
                if obj.organisation_id is not None
                else getattr(obj.organisation, "id", None)
            )
            if org_id is None:
                all_identity = True
            else:
                identity.add(org_id)
        elif isinstance(obj, Group):
            if obj.organisation_id is None:
                all_identity = True
            else:
                identity.add(obj.organisation_id)
        elif isinstance(obj, User):
            if obj.id is not None:
                users.add(obj.id)
        elif isinstance(obj, ProcessDefinition):
            if obj.organisation_id is None:
                all_definitions = True
            else:
                definitions.add(obj.organisation_id)
        elif isinstance(obj, ProcessSetting):
            # Which version new cases get: the organisation's resolved definitions change.
            definitions.add(obj.organisation_id)
    if users and not all_identity:
        identity.update(
            session.connection().scalars(
                sa.select(Membership.organisation_id).where(Membership.user_id.in_(sorted(users)))
            )
        )
    if all_identity or identity:
        bump_identity(session, None if all_identity else identity)
    if all_definitions or definitions:
        bump_definitions(session, None if all_definitions else definitions)
