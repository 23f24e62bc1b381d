"""The inbox: which human tasks a user may work on, filtered, sorted and paged in SQL.

Every reader of human tasks (the inbox and its counts, the API's and the
command line's task lists, a case page's history, "the next task" after a
step) builds its statement here, so the rule below is written once.

**Visibility** (the rule :func:`engine.check_may_work_on` enforces on a single
task): a user sees a task when

* they are a member of the task's organisation with a role in ``TASK_ROLES``
  (auditors read cases but never get tasks to work on);
* separation of duties does not exclude them (no ``human_task_exclusion`` row
  for them and the task);
* and the task is assigned to them (whatever its candidate group, where
  ``check_may_work_on`` also wants them in it), or it is unassigned and has no
  candidate group or the key of one of their groups in that organisation.

The last point makes *branches*: "assigned to me" (``assignee_id = me``) and
"unassigned" (``assignee_id IS NULL``); the views ``mine`` and ``group`` are
one branch each, ``all`` is both. All of it is one statement: group keys and
roles are subqueries, never fetched first.

**Paging** is by keyset, never OFFSET: a page is the first *limit* rows after
(or before) an opaque cursor holding the sort key of the row it was made from.
Each branch is its own ordered, limited ``SELECT``, and the page is the first
rows of their ``UNION ALL``; the ``due`` order also splits into tasks with a due
date (by date) and without (after them, by creation), because no index keeps
NULLs last on both databases. So a page reads about *limit* index entries per
part (more when few of the unassigned tasks are the user's), however many tasks
the organisation has, and sorts only those.

**Indexes** (``__table_args__`` in :mod:`engine.models`, migration 0004):

* ``ix_human_task_inbox_due`` / ``_created`` / ``_name``: (organisation_id,
  state, assignee_id, sort key…, id, candidate_group). Each part of a page is
  one range of the index of its sort, already in order (``assignee_id = me``
  or ``IS NULL``; ``due_at IS [NOT] NULL``; the cursor as a row-value
  comparison). ``candidate_group`` comes last so the group test is made on the
  index entry: PostgreSQL runs the parts as index-only scans, SQLite as
  covering-index scans.
* ``ix_human_task_inbox_counts`` (organisation_id, state, assignee_id,
  candidate_group, id): the counts add up three ranges, assigned to me,
  unassigned without a group, and unassigned in each of my groups.
* ``ix_human_task_exclusion_user`` (user_id, human_task_id): the counts check
  exclusions once over those ranges, by hashing the user's exclusion rows; a
  page probes the primary key (human_task_id, user_id) per candidate row.
* ``ix_group_member_membership`` (membership_id, group_id): the user's groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from ._driver_sql import DriverStatement, Entity
from ._keyset import decode_cursor, encode_cursor, key_values
from .errors import DataError
from .identity import TASK_ROLES
from .models import (
    Group,
    HumanTask,
    HumanTaskExclusion,
    Membership,
    ProcessInstance,
    group_member,
)

INBOX_SORTS = ("due", "created", "name")
INBOX_VIEWS = ("all", "mine", "group")


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks to read, besides what the user may see.

    ``state=None`` reads tasks in every state (a case's history). ``view``:
    ``all``, ``mine`` (assigned to the user) or ``group`` (unassigned). ``task_id``
    reads one task (a task page, whatever the user may do with it). ``text``
    matches a substring of the task name, the case title or the business key,
    ignoring case, or, when it is a number, the case (instance) id.
    """

    organisation_id: int | None = None
    instance_id: int | None = None
    task_id: int | None = None
    state: str | None = "ready"
    view: str = "all"
    process_id: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class InboxPage:
    """One page of tasks, with the cursors of the pages before and after it (``None``: no such page)."""

    tasks: list[HumanTask]
    previous_cursor: str | None
    next_cursor: str | None


@dataclass(frozen=True)
class InboxCounts:
    """How many tasks the user may work on: assigned to them, unassigned, and both."""

    mine: int
    group: int

    @property
    def all(self) -> int:
        """Return the number of tasks in both views."""
        return self.mine + self.group


class _HoldsTaskRole(FunctionElement[bool]):
    """``membership.roles`` (a JSON list of role names) holds one of ``TASK_ROLES``."""

    type = sa.Boolean()
    inherit_cache = True
    name = "holds_task_role"


# The roles are identifiers of this code base, never user input: safe to write into the SQL.
if not all(role.isidentifier() for role in TASK_ROLES):
    raise ValueError(f"TASK_ROLES must be identifiers to be written into SQL: {sorted(TASK_ROLES)}")
_ROLE_LITERALS = ", ".join(f"'{role}'" for role in sorted(TASK_ROLES))


@compiles(_HoldsTaskRole, "sqlite")
def _holds_task_role_sqlite(element: _HoldsTaskRole, compiler: SQLCompiler, **kw: Any) -> str:
    roles = compiler.process(element.clauses, **kw)
    return f"EXISTS (SELECT 1 FROM json_each({roles}) WHERE json_each.value IN ({_ROLE_LITERALS}))"


@compiles(_HoldsTaskRole, "postgresql")
def _holds_task_role_postgresql(element: _HoldsTaskRole, compiler: SQLCompiler, **kw: Any) -> str:
    roles = compiler.process(element.clauses, **kw)
    return f"(CAST({roles} AS JSONB) ?| ARRAY[{_ROLE_LITERALS}])"


@dataclass(frozen=True)
class _Branches:
    """The ways a task can be visible to a user (the membership and exclusion tests aside).

    ``mine``: assigned to the user. ``unassigned`` and then ``ungrouped`` (no
    candidate group) or ``in_my_groups`` (one of the user's). Each of ``mine``,
    ``unassigned AND ungrouped`` and ``unassigned AND in_my_groups`` is one range
    of an inbox index (the last one per group).
    """

    mine: ColumnElement[bool]
    unassigned: ColumnElement[bool]
    ungrouped: ColumnElement[bool]
    in_my_groups: ColumnElement[bool]

    @classmethod
    def of(cls, user_id: int, organisation_id: int | None) -> _Branches:
        my_groups = (
            sa.select(Membership.organisation_id, Group.key)
            .join(group_member, group_member.c.membership_id == Membership.id)
            .join(Group, Group.id == group_member.c.group_id)
            .where(Membership.user_id == user_id)
        )
        if organisation_id is not None:
            # Redundant with the task's organisation, but it lets the planner see one membership.
            my_groups = my_groups.where(Membership.organisation_id == organisation_id)
        return cls(
            mine=HumanTask.assignee_id == user_id,
            unassigned=HumanTask.assignee_id.is_(None),
            ungrouped=HumanTask.candidate_group.is_(None),
            in_my_groups=sa.tuple_(HumanTask.organisation_id, HumanTask.candidate_group).in_(my_groups),
        )

    def of_view(self, view: str) -> list[ColumnElement[bool]]:
        """Return the view's branches as pages read them: assigned to me, and unassigned."""
        # "unassigned AND (…)", not "(unassigned AND …) OR (unassigned AND …)": SQLite does not
        # take a common term out of an OR, and would not use it to pick the index range.
        unassigned = sa.and_(self.unassigned, sa.or_(self.ungrouped, self.in_my_groups))
        return {"all": [self.mine, unassigned], "mine": [self.mine], "group": [unassigned]}[view]

    def for_counts(self) -> list[ColumnElement[bool]]:
        """Return the three disjoint branches the counts add up, each an index range."""
        return [
            self.mine,
            sa.and_(self.unassigned, self.ungrouped),
            sa.and_(self.unassigned, self.in_my_groups),
        ]


def _view_branches(user_id: int | None, where: TaskFilter) -> list[ColumnElement[bool]]:
    """Return the visibility branches of ``where.view`` (without a user, one: every task).

    :raises DataError: an unknown view, or ``mine``/``group`` without a user.
    """
    if where.view not in INBOX_VIEWS:
        raise DataError(f"Unknown inbox view {where.view!r}; use one of {', '.join(INBOX_VIEWS)}")
    if user_id is None:
        if where.view != "all":
            raise DataError(f"The inbox view {where.view!r} needs a user")
        return [sa.true()]
    return _Branches.of(user_id, where.organisation_id).of_view(where.view)


def _filters(where: TaskFilter) -> list[ColumnElement[bool]]:
    """Return the conditions of *where* other than the view."""
    conditions: list[ColumnElement[bool]] = []
    if where.organisation_id is not None:
        conditions.append(HumanTask.organisation_id == where.organisation_id)
    if where.instance_id is not None:
        conditions.append(HumanTask.instance_id == where.instance_id)
    if where.task_id is not None:
        conditions.append(HumanTask.id == where.task_id)
    if where.state is not None:
        conditions.append(HumanTask.state == where.state)
    if where.process_id:
        conditions.append(HumanTask.process_id == where.process_id)
    text = (where.text or "").strip()
    if text:
        in_case = sa.exists().where(
            ProcessInstance.id == HumanTask.instance_id,
            sa.or_(
                ProcessInstance.title.icontains(text, autoescape=True),
                ProcessInstance.business_key.icontains(text, autoescape=True),
            ),
        )
        matches: list[ColumnElement[bool]] = [HumanTask.name.icontains(text, autoescape=True), in_case]
        if text.isascii() and text.isdigit() and len(text) <= 18:
            matches.append(HumanTask.instance_id == int(text))
        conditions.append(sa.or_(*matches))
    return conditions


def _may_work_on(
    user_id: int, organisation_id: int | None, task_id: Any, task_organisation_id: Any
) -> list[ColumnElement[bool]]:
    """Return the membership (a role in ``TASK_ROLES``) and separation-of-duties conditions.

    *task_id* and *task_organisation_id* are the columns they test: the task's,
    or those of a subquery of tasks.
    """
    works_on_tasks = sa.select(Membership.organisation_id).where(
        Membership.user_id == user_id, _HoldsTaskRole(Membership.roles)
    )
    if organisation_id is None:
        member = task_organisation_id.in_(works_on_tasks)
    else:
        # Not correlated, so PostgreSQL checks it once (an InitPlan) instead of joining
        # memberships first, which would lose the index order and make it sort every row.
        member = works_on_tasks.where(Membership.organisation_id == organisation_id).exists()
    excluded = sa.exists().where(
        HumanTaskExclusion.human_task_id == task_id, HumanTaskExclusion.user_id == user_id
    )
    return [member, ~excluded]


def _conditions(user_id: int | None, where: TaskFilter) -> list[ColumnElement[bool]]:
    """Return what every branch must satisfy: the filters, and for a user membership and exclusion."""
    conditions = _filters(where)
    if user_id is not None:
        conditions += _may_work_on(user_id, where.organisation_id, HumanTask.id, HumanTask.organisation_id)
    return conditions


def matching_tasks(session: so.Session, *, user_id: int | None = None, where: TaskFilter) -> list[HumanTask]:
    """Return every task matching *where* (and visible to *user_id*, if given), oldest first.

    For short lists (one case's tasks); the inbox pages with :func:`inbox_page`.

    :raises DataError: *where* names an unknown view.
    """
    case_only = replace(where, organisation_id=None, instance_id=None, state=None) == TaskFilter(state=None)
    if user_id is None and where.instance_id is not None and case_only:
        # A case's tasks, as each step of the engine's callers reads them: a statement built once.
        params: dict[str, Any] = {"instance_id": where.instance_id}
        if where.organisation_id is not None:
            params["organisation_id"] = where.organisation_id
        if where.state is not None:
            params["state"] = where.state
        statement = _CASE_TASKS[where.organisation_id is not None, where.state is not None]
        return [_TASK.load(session, row) for row in statement.read(session, params)]
    stmt = (
        sa.select(HumanTask)
        .where(*_conditions(user_id, where), sa.or_(*_view_branches(user_id, where)))
        .order_by(HumanTask.created_at, HumanTask.id)
        .options(so.joinedload(HumanTask.assignee))
    )
    return list(session.scalars(stmt))


_TASK = Entity(HumanTask)


def _case_tasks(by_organisation: bool, by_state: bool) -> DriverStatement:
    conditions = [HumanTask.instance_id == sa.bindparam("instance_id")]
    if by_organisation:
        conditions.append(HumanTask.organisation_id == sa.bindparam("organisation_id"))
    if by_state:
        # A range of ix_human_task_instance_state, already in order.
        conditions.append(HumanTask.state == sa.bindparam("state"))
    # No eager assignee: most of a case's tasks have none, and one that has is loaded when read
    # (from the session, if it holds the user). Joining it made this read about a fifth slower.
    return DriverStatement(
        sa.select(*_TASK.columns).where(*conditions).order_by(HumanTask.created_at, HumanTask.id)
    )


# A case's tasks, by whether an organisation and a state are given: each step of the engine's
# callers reads them, on the driver (engine/_driver_sql.py).
_CASE_TASKS = {(org, state): _case_tasks(org, state) for org in (False, True) for state in (False, True)}


def inbox_counts(session: so.Session, *, user_id: int, where: TaskFilter) -> InboxCounts:
    """Count the tasks matching *where* that the user may work on, by view, in one statement.

    ``where.view`` is ignored: the counts are those of every view. Each branch
    is counted from its own index range, and exclusions are checked once over
    their union, so the cost follows the number of tasks the user may see.
    """
    parts = [
        sa.select(HumanTask.id, HumanTask.organisation_id, HumanTask.assignee_id).where(
            *_filters(where), branch
        )
        for branch in _Branches.of(user_id, where.organisation_id).for_counts()
    ]
    visible = sa.union_all(*parts).subquery("visible")
    stmt = sa.select(
        sa.func.count().filter(visible.c.assignee_id.is_not(None)),
        sa.func.count().filter(visible.c.assignee_id.is_(None)),
    ).where(*_may_work_on(user_id, where.organisation_id, visible.c.id, visible.c.organisation_id))
    mine, group = session.execute(stmt).one()
    return InboxCounts(mine=mine, group=group)


# The columns each sort orders by (ending in id, so the order is total).
_ORDER: dict[str, tuple[Any, ...]] = {
    "due": (HumanTask.due_at, HumanTask.created_at, HumanTask.id),
    "created": (HumanTask.created_at, HumanTask.id),
    "name": (HumanTask.name, HumanTask.id),
}
# Each sort's segments, shown one after the other: the condition a task of the segment
# meets (None: every task), and the columns of its key in a cursor. Tasks without a due
# date come after the dated ones; their due_at is NULL, so their key is (created_at, id).
_SEGMENTS: dict[str, list[tuple[ColumnElement[bool] | None, tuple[Any, ...]]]] = {
    "due": [
        (HumanTask.due_at.is_not(None), _ORDER["due"]),
        (HumanTask.due_at.is_(None), (HumanTask.created_at, HumanTask.id)),
    ],
    "created": [(None, _ORDER["created"])],
    "name": [(None, _ORDER["name"])],
}


@dataclass(frozen=True)
class _Position:
    """Where a task stands in a sort: its segment and its key there."""

    sort: str
    segment: int
    key: tuple[Any, ...]


def _position(sort: str, task: HumanTask) -> _Position:
    if sort == "due":
        if task.due_at is not None:
            return _Position(sort, 0, (task.due_at, task.created_at, task.id))
        return _Position(sort, 1, (task.created_at, task.id))
    if sort == "created":
        return _Position(sort, 0, (task.created_at, task.id))
    return _Position(sort, 0, (task.name, task.id))


def inbox_cursor(sort: str, task: HumanTask) -> str:
    """Return the cursor that pages on from *task* in *sort* (``after=``) or back from it (``before=``).

    :raises DataError: unknown sort.
    """
    if sort not in INBOX_SORTS:
        raise DataError(f"Unknown inbox sort {sort!r}; use one of {', '.join(INBOX_SORTS)}")
    return _encode(_position(sort, task))


def _encode(position: _Position) -> str:
    return encode_cursor([position.sort, position.segment, list(position.key)])


def _decode(cursor: str, sort: str) -> _Position:
    """Read a cursor made by :func:`_encode` for *sort*.

    :raises DataError: the cursor is not one (tampered with, cut, or made for another sort).
    """
    refusal = DataError(f"Invalid inbox cursor {cursor[:80]!r} for the sort {sort!r}")
    segments = _SEGMENTS[sort]
    try:
        made_for, segment, values = decode_cursor(cursor)
        if made_for != sort or type(segment) is not int or not 0 <= segment < len(segments):
            raise ValueError("not a cursor of this sort")
        key = key_values(segments[segment][1], values)
    except (ValueError, TypeError) as exc:
        raise refusal from exc
    return _Position(sort, segment, key)


def inbox_page(
    session: so.Session,
    *,
    user_id: int,
    where: TaskFilter,
    sort: str = "due",
    limit: int,
    after: str | None = None,
    before: str | None = None,
) -> InboxPage:
    """Return the *limit* tasks the user may work on that follow the cursor *after* (or precede *before*).

    Without a cursor, the first page. Sorts: ``due`` (due date, tasks without
    one last; then created, id), ``created`` (created, id), ``name`` (name, id).
    A cursor that finds nothing in its direction (the tasks it pointed past
    were completed) gives the first page. Loads each task's case and assignee
    with it.

    :raises DataError: unknown sort or view, both cursors, or a cursor that is not one.
    """
    if sort not in INBOX_SORTS:
        raise DataError(f"Unknown inbox sort {sort!r}; use one of {', '.join(INBOX_SORTS)}")
    if limit < 1:
        raise DataError(f"An inbox page holds at least one task, not {limit}")
    if after and before:
        raise DataError("Give an inbox page a cursor to come after or one to come before, not both")
    backward = before is not None
    cursor = _decode(before, sort) if before is not None else _decode(after, sort) if after else None
    rows = _fetch(session, user_id, where, sort, limit + 1, cursor, backward)
    more = len(rows) > limit
    rows = rows[:limit]
    if cursor is not None and (not rows or (backward and not more)):
        return inbox_page(session, user_id=user_id, where=where, sort=sort, limit=limit)
    if backward:
        rows.reverse()
        return InboxPage(
            rows, _encode(_position(sort, rows[0])) if more else None, _encode(_position(sort, rows[-1]))
        )
    return InboxPage(
        rows,
        _encode(_position(sort, rows[0])) if cursor is not None else None,
        _encode(_position(sort, rows[-1])) if more else None,
    )


def _fetch(
    session: so.Session,
    user_id: int,
    where: TaskFilter,
    sort: str,
    limit: int,
    cursor: _Position | None,
    backward: bool,
) -> list[HumanTask]:
    """Run the page query: each (segment, branch) part ordered and limited, then the first *limit* of all."""
    conditions = _conditions(user_id, where)

    def ordered(columns: Sequence[Any]) -> list[Any]:
        return [c.desc() if backward else c.asc() for c in columns]

    # Each branch fixes assignee_id (= me, IS NULL); ordering by it too lets PostgreSQL see that
    # the index (…, assignee_id, sort columns) is in order after IS NULL, which it treats as no
    # equality. Likewise undated tasks are ordered by due_at (all NULL) before their key.
    part_order = ordered([HumanTask.assignee_id, *_ORDER[sort]])
    parts: list[sa.Select[Any]] = []
    for number, (in_segment, key) in enumerate(_SEGMENTS[sort]):
        segment_conditions = [] if in_segment is None else [in_segment]
        if cursor is not None:
            if (number < cursor.segment and not backward) or (number > cursor.segment and backward):
                continue
            if number == cursor.segment:
                bound = sa.tuple_(*(sa.literal(v, c.type) for v, c in zip(cursor.key, key, strict=True)))
                segment_conditions.append(sa.tuple_(*key) < bound if backward else sa.tuple_(*key) > bound)
        for branch in _view_branches(user_id, where):
            part = (
                sa.select(
                    HumanTask.id.label("task_id"),
                    sa.literal(number).label("segment"),
                    *(column.label(f"k{i}") for i, column in enumerate(_ORDER[sort])),
                )
                .where(*conditions, branch, *segment_conditions)
                .order_by(*part_order)
                .limit(limit)
            )
            parts.append(sa.select(part.subquery()))
    if not parts:
        return []

    def page_order(selectable: sa.Subquery) -> list[Any]:
        return ordered([selectable.c.segment, *(selectable.c[f"k{i}"] for i in range(len(_ORDER[sort])))])

    union = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("parts")
    page = sa.select(union).order_by(*page_order(union)).limit(limit).subquery("page")
    stmt = (
        sa.select(HumanTask)
        .join(page, HumanTask.id == page.c.task_id)
        .order_by(*page_order(page))
        .options(
            so.joinedload(HumanTask.instance).load_only(
                ProcessInstance.title, ProcessInstance.business_key, ProcessInstance.status
            ),
            so.joinedload(HumanTask.assignee),
        )
    )
    return list(session.scalars(stmt))
