"""The case list: an organisation's cases from the reporting projection, filtered, sorted and paged in SQL.

Reads only ``case_report`` (:class:`~engine.models.CaseReport`),
``human_task`` (for "my cases") and ``user_account`` (the starter's name);
never a serialized workflow.

**Filters** (:class:`CaseFilter`): process, status (one of
:data:`CASE_STATUSES`, or ``open`` for every status but completed and
cancelled), the start date (UTC, inclusive at both ends), text, and a
participant. The text matches a substring of the title, the business key or a
field the process's ``reporting.json`` declares ``"search": true``, ignoring
case, or, when it is a number, the case (instance) id: the projection keeps
those lower-cased in one column, ``search_text``
(:func:`engine.projection.search_text`, at most 2 000 bytes of them), so the
test is one ``LIKE`` on the row.
A participant's cases ("my cases") are those they started or where they
completed a task.

**Paging** is by keyset, never OFFSET: a page is the first *limit* rows after
an opaque cursor holding the sort key (sort column, instance id) of the last
row of the page before, and how many rows the pages before held (so a page
knows its rows' numbers, :attr:`CasePage.first`). A page is read in two
steps in one statement: the instance ids of the page (conditions, order,
limit; from the index alone where it can), then those rows.

**No total per page**: a count of an organisation's matching cases reads all
of them, however few a page shows; :func:`count_cases` is there for who needs
it, the case list does not call it. A page knows whether there are more
(``next_cursor``), and a first page without a next one how many cases match.

**Indexes** (``__table_args__`` in :mod:`engine.models`, migration 0009). Each
sort has an index that starts with the organisation and ends with the sort
key, so a page is one range of it, read in order and stopped after *limit*
matching rows, however many cases the organisation has:

* ``ix_case_report_org_started`` (organisation_id, started_at, instance_id,
  started_by_id, search_text), ``ix_case_report_org_updated`` and
  ``ix_case_report_org_title`` (organisation_id, updated_at | title, instance_id);
* ``ix_case_report_org_process_started`` and ``ix_case_report_org_status_started``
  (organisation_id, process_id | status, started_at, instance_id): the default
  sort with a process or a status filter stays one ordered range;
* the participant and text tests are made on each entry of that range:
  ``ix_case_report_org_started`` also holds the starter and ``search_text``
  (after the instance id), so the default sort tests them in the index without
  reading the table row (a covering index); a completed task is one probe of
  ``ix_human_task_completed_by_instance`` (completed_by_id, instance_id). So a
  page costs about *limit* / (share of matching cases) index entries, plus
  *limit* table rows;
* on PostgreSQL, ``ix_case_report_search_trgm`` (GIN, ``pg_trgm``) lets the
  planner find a rare term (three letters or more) through its trigrams
  instead of reading the organisation's whole range; on SQLite, and for a
  participant who took part in almost nothing, that range is read once,
  without a sort.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.sql.elements import ColumnElement

from ._keyset import decode_cursor, encode_cursor, key_values
from .errors import DataError
from .models import CaseReport, HumanTask, User

CASE_STATUSES = ("running", "waiting", "completed", "error", "suspended", "cancelled")
# "open" is every status but these.
FINISHED = ("completed", "cancelled")
CASE_SORTS = ("-started", "started", "-updated", "updated", "title", "-title")
MAX_PAGE = 500

# The columns of each sort's key (ending in the instance id, so the order is total).
_KEYS: dict[str, tuple[Any, ...]] = {
    "started": (CaseReport.started_at, CaseReport.instance_id),
    "updated": (CaseReport.updated_at, CaseReport.instance_id),
    "title": (CaseReport.title, CaseReport.instance_id),
}


# What a page reads of each of its cases (columns, not ORM objects: a page is read, never changed).
_ROW_COLUMNS = (
    CaseReport.instance_id,
    CaseReport.process_id,
    CaseReport.title,
    CaseReport.business_key,
    CaseReport.status,
    CaseReport.started_at,
    CaseReport.completed_at,
    CaseReport.updated_at,
)


@dataclass(frozen=True)
class CaseFilter:
    """Which of an organisation's cases to list (every field ``None``: all of them)."""

    process_id: str | None = None
    status: str | None = None
    started_from: dt.date | None = None  # inclusive
    started_to: dt.date | None = None  # inclusive
    text: str | None = None  # title, business key, and the fields declared "search"
    participant_id: int | None = None  # "my cases": started by, or completed a task in; None = all


@dataclass(frozen=True)
class CaseRow:
    """One case as the list shows it: the projection's columns and the starter's username."""

    instance_id: int
    process_id: str
    title: str
    business_key: str | None
    status: str
    started_at: dt.datetime
    completed_at: dt.datetime | None
    updated_at: dt.datetime
    started_by: str | None
    fields: dict[str, Any]


@dataclass(frozen=True)
class CasePage:
    """One page of cases and the cursor of the next page (``None``: this is the last)."""

    rows: list[CaseRow]
    next_cursor: str | None
    first: int = 1  # the number of the page's first row in the list (1 on the first page)


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _conditions(organisation_id: int, where: CaseFilter) -> list[ColumnElement[bool]]:
    """Return the SQL conditions of *where* for the organisation's cases.

    :raises DataError: an unknown status, or a period that ends before it starts.
    """
    conditions: list[ColumnElement[bool]] = [CaseReport.organisation_id == organisation_id]
    if where.process_id:
        conditions.append(CaseReport.process_id == where.process_id)
    if where.status:
        if where.status == "open":
            conditions.append(CaseReport.status.not_in(FINISHED))
        elif where.status in CASE_STATUSES:
            conditions.append(CaseReport.status == where.status)
        else:
            raise DataError(
                f"Unknown case status {where.status!r}; use open or one of {', '.join(CASE_STATUSES)}"
            )
    if where.started_from and where.started_to and where.started_to < where.started_from:
        raise DataError(
            f"The period ends ({where.started_to.isoformat()}) before it starts "
            f"({where.started_from.isoformat()})"
        )
    if where.started_from:
        conditions.append(CaseReport.started_at >= _start_of(where.started_from))
    if where.started_to:
        conditions.append(CaseReport.started_at < _start_of(where.started_to + dt.timedelta(days=1)))
    if where.participant_id is not None:
        completed_a_task = sa.exists().where(
            HumanTask.instance_id == CaseReport.instance_id,
            HumanTask.completed_by_id == where.participant_id,
        )
        conditions.append(sa.or_(CaseReport.started_by_id == where.participant_id, completed_a_task))
    text = (where.text or "").strip()
    if text:
        conditions.append(sa.or_(*_text_matches(text)))
    return conditions


def _text_matches(text: str) -> list[ColumnElement[bool]]:
    matches = [CaseReport.search_text.contains(text.lower(), autoescape=True)]
    if text.isascii() and text.isdigit() and len(text) <= 18:
        matches.append(CaseReport.instance_id == int(text))
    return matches


def _split_sort(sort: str) -> tuple[str, bool]:
    """Return the sort's key name and whether it is descending.

    :raises DataError: an unknown sort.
    """
    if sort not in CASE_SORTS:
        raise DataError(f"Unknown case sort {sort!r}; use one of {', '.join(CASE_SORTS)}")
    return sort.lstrip("-"), sort.startswith("-")


def _encode(sort: str, key: tuple[Any, ...], shown: int) -> str:
    return encode_cursor([sort, list(key), shown])


def _decode(cursor: str, sort: str) -> tuple[tuple[Any, ...], int]:
    """Read a cursor made by :func:`_encode` for *sort*: the last key, and how many rows came before.

    :raises DataError: the cursor is not one (tampered with, cut, or made for another sort).
    """
    refusal = DataError(f"Invalid case list cursor {cursor[:80]!r} for the sort {sort!r}")
    try:
        made_for, values, shown = decode_cursor(cursor)
        if made_for != sort or not isinstance(shown, int) or isinstance(shown, bool) or not 0 < shown < 2**53:
            raise ValueError("not a cursor of this sort")
        key = key_values(_KEYS[sort.lstrip("-")], values)
    except (ValueError, TypeError) as exc:
        raise refusal from exc
    return key, shown


def page_statement(
    session: so.Session, *, organisation_id: int, where: CaseFilter, sort: str, cursor: str | None
) -> sa.Select[int]:
    """Return the ordered statement of the page's instance ids before its limit (the tests read its plan).

    :raises DataError: unknown sort or status, a bad cursor, a reversed period.
    """
    key_name, descending = _split_sort(sort)
    columns = _KEYS[key_name]
    conditions = _conditions(organisation_id, where)
    if cursor:
        after, _shown = _decode(cursor, sort)
        bound = sa.tuple_(*(sa.literal(v, c.type) for v, c in zip(after, columns, strict=True)))
        conditions.append(sa.tuple_(*columns) < bound if descending else sa.tuple_(*columns) > bound)
    return (
        sa.select(CaseReport.instance_id)
        .where(*conditions)
        .order_by(*(c.desc() if descending else c.asc() for c in columns))
    )


def case_page(
    session: so.Session,
    *,
    organisation_id: int,
    where: CaseFilter,
    sort: str = "-started",
    cursor: str | None = None,
    limit: int = 50,
    with_fields: bool = True,
) -> CasePage:
    """Return the first *limit* of the organisation's cases matching *where* after *cursor*, in *sort*.

    Sorts (:data:`CASE_SORTS`): ``started``, ``updated``, ``title``, each
    ascending or, with a leading ``-``, descending; ties by instance id in the
    same direction. Without a cursor, the first page; ``next_cursor`` pages on.
    Not *with_fields*: the rows' ``fields`` are left empty, not read (decoding
    them is most of what a page costs, for a list that does not show them).

    :raises DataError: unknown sort or status, a cursor that is not one (or is
        for another sort), a reversed period, or *limit* outside 1..500.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise DataError(f"A case page holds 1 to {MAX_PAGE} cases, not {limit}")
    shown = _decode(cursor, sort)[1] if cursor else 0
    ids = (
        page_statement(session, organisation_id=organisation_id, where=where, sort=sort, cursor=cursor)
        .limit(limit + 1)
        .subquery("page")
    )
    key_name, descending = _split_sort(sort)
    columns = _KEYS[key_name]
    # The ids first (from the index alone where it can), then only those rows: the rows a filter
    # rejects are never read from the table.
    stmt = (
        sa.select(*_ROW_COLUMNS, CaseReport.fields if with_fields else sa.null(), User.username)
        .join(ids, ids.c.instance_id == CaseReport.instance_id)
        .outerjoin(User, User.id == CaseReport.started_by_id)
        .order_by(*(c.desc() if descending else c.asc() for c in columns))
    )
    found = session.execute(stmt).all()
    rows = [
        CaseRow(
            instance_id=row.instance_id,
            process_id=row.process_id,
            title=row.title,
            business_key=row.business_key,
            status=row.status,
            started_at=row.started_at,
            completed_at=row.completed_at,
            updated_at=row.updated_at,
            started_by=row.username,
            fields=dict(row[len(_ROW_COLUMNS)] or {}),
        )
        for row in found[:limit]
    ]
    next_cursor = None
    if len(found) > limit:
        last = rows[limit - 1]
        next_cursor = _encode(sort, tuple(getattr(last, c.key) for c in columns), shown + limit)
    return CasePage(rows=rows, next_cursor=next_cursor, first=shown + 1)


def count_cases(session: so.Session, *, organisation_id: int, where: CaseFilter) -> int:
    """Return how many of the organisation's cases match *where*.

    Reads every matching case (the case list does not call it, see the module's notes).

    :raises DataError: unknown status or a reversed period.
    """
    stmt = sa.select(sa.func.count()).select_from(CaseReport).where(*_conditions(organisation_id, where))
    return int(session.scalar(stmt) or 0)
