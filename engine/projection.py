"""The reporting projection: what lists and reports read instead of serialized workflows.

Every instance has one ``case_report`` row (:class:`~engine.models.CaseReport`):
its organisation, process, status, title, business key, starter, start, end
and last change, plus ``fields``, a JSON object with the values the bundle's
``reporting.json`` declares (see :mod:`engine._reporting_file`). A field
declared ``indexed`` is also a ``case_report_value`` row in the column of its
type, so a query can filter on it with an index
(``organisation_id, process_id, name, <type>_value``).

:func:`write_case_report` runs at the end of every instance save, in the same
transaction: the projection is never behind the instance. A value that does
not have its declared type (a text where a number is declared) is stored as
NULL rather than failing the step; a missing key is NULL too.

Reads are scoped to one organisation: :func:`sum_reported` is what the
``reporting.sum`` connector gives a process (the same-kind spend of a direct
procurement: the sum of a field over the organisation's other cases whose
indexed fields have the given values).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql, sqlite

from ._driver_sql import DriverStatement
from ._reporting_file import REPORTING_FILE, ReportingField, check_reporting_file
from .caches import BoundedCache
from .connectors import ConnectorContext
from .db import is_postgresql
from .definitions import load_parsed
from .errors import ConnectorError
from .models import CaseReport, CaseReportValue, ProcessDefinition, ProcessInstance, utcnow

# Parsed reporting.json per bundle content hash (a deployed bundle never changes).
_FIELDS: BoundedCache[str, tuple[ReportingField, ...]] = BoundedCache()
_REPORT_TABLE = CaseReport.__table__
_VALUE_TABLE = CaseReportValue.__table__
REPORT_TABLE_NAME = "case_report"
VALUE_TABLE_NAME = "case_report_value"
REPORT_KEY = ("instance_id",)
VALUE_KEY = ("instance_id", "name")
REPORT_COLUMNS = (
    "status",
    "title",
    "business_key",
    "started_by_id",
    "completed_at",
    "updated_at",
    "fields",
    "search_text",
)
VALUE_COLUMNS = ("text_value", "number_value", "date_value", "time_value")
_TABLES: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {
    REPORT_TABLE_NAME: (_REPORT_TABLE, REPORT_KEY, REPORT_COLUMNS),
    VALUE_TABLE_NAME: (_VALUE_TABLE, VALUE_KEY, VALUE_COLUMNS),
}
# The longest search text (engine/cases.py), in UTF-8 bytes: see search_text.
SEARCH_TEXT_BYTES = 2000


def declared_fields(session: so.Session, definition: ProcessDefinition) -> tuple[ReportingField, ...]:
    """Return the reporting fields the bundle of *definition* declares (none without ``reporting.json``)."""

    def parse() -> tuple[ReportingField, ...]:
        item = load_parsed(session, definition).file(REPORTING_FILE)
        return check_reporting_file(item.content) if item is not None else ()

    return _FIELDS.get(definition.content_hash, parse)


@dataclass(frozen=True)
class CaseReportRows:
    """The projection of one instance as rows: its ``case_report`` row and its indexed values.

    ``instance_id`` is None in them while the instance has no id yet (it is
    inserted by the same statement, see :meth:`engine._workflow.InstanceOperation.save`).
    """

    report: dict[str, Any]
    values: list[dict[str, Any]]

    def for_instance(self, instance_id: int) -> CaseReportRows:
        """Return these rows with *instance_id* as theirs."""
        return CaseReportRows(
            {**self.report, "instance_id": instance_id},
            [{**row, "instance_id": instance_id} for row in self.values],
        )


def case_report_rows(
    session: so.Session,
    instance: ProcessInstance,
    definition: ProcessDefinition,
    data: Callable[[], Mapping[str, Any]],
) -> CaseReportRows | None:
    """Return the projection of *instance* with the data it holds now, or None for a test instance.

    *data* returns that data; it is called only when the bundle declares fields.
    A test instance (tried from the studio) gets no row: no list or report ever counts it.
    """
    if instance.is_test:
        return None
    fields = declared_fields(session, definition)
    current = data() if fields else {}
    values = {f.name: _typed(f.type, _lookup(current, f.path)) for f in fields}
    report = {
        "instance_id": instance.id,
        "organisation_id": instance.organisation_id,
        "process_id": instance.process_id,
        "status": instance.status,
        "title": instance.title or "",
        "business_key": instance.business_key,
        "started_by_id": instance.started_by_id,
        "started_at": instance.created_at or utcnow(),
        "completed_at": instance.completed_at,
        "updated_at": utcnow(),
        "fields": {name: _json_value(value) for name, value in values.items()},
        "search_text": search_text(
            instance.title or "",
            instance.business_key,
            [values[f.name] for f in fields if f.search],
        ),
    }
    indexed = [
        {
            "instance_id": instance.id,
            "name": f.name,
            "organisation_id": instance.organisation_id,
            "process_id": instance.process_id,
            **_columns(f.type, values[f.name]),
        }
        for f in fields
        if f.indexed
    ]
    return CaseReportRows(report, indexed)


def write_case_report(
    session: so.Session,
    instance: ProcessInstance,
    definition: ProcessDefinition,
    data: Callable[[], Mapping[str, Any]],
) -> None:
    """Write (insert or replace) the projection of *instance* with the data it holds now.

    Expects to run inside the transaction that saves the instance, after its row was written.
    """
    rows = case_report_rows(session, instance, definition, data)
    if rows is not None:
        write_case_report_rows(session, rows)


def write_case_report_rows(session: so.Session, rows: CaseReportRows) -> None:
    """Insert or replace *rows*, whose instance has its id (one or two statements)."""
    connection = session.connection()
    on_postgresql = is_postgresql(session)
    _upsert_statement(on_postgresql, _REPORT_TABLE, REPORT_KEY, REPORT_COLUMNS).run(connection, rows.report)
    _upsert_statement(on_postgresql, _VALUE_TABLE, VALUE_KEY, VALUE_COLUMNS).run_many(connection, rows.values)


def upsert_from_rows(table_name: str, keys: tuple[str, ...], rows: Any) -> Any:
    """Return the PostgreSQL upsert into projection table *table_name* of *rows*, a SELECT of *keys*.

    For the statement that writes the projection with its instance (see
    ``engine._workflow._combined_write``).
    """
    table, key, columns = _TABLES[table_name]
    insert = postgresql.insert(table).from_select(keys, rows, include_defaults=False)
    return insert.on_conflict_do_update(
        index_elements=list(key), set_={name: insert.excluded[name] for name in columns}
    )


def search_text(title: str, business_key: str | None, searchable: list[Any]) -> str:
    """Return what the case list's text search looks in: title, business key and searchable values.

    Lower-cased here (Python folds å, ä and ö; SQLite's ``lower`` would not), one per line
    so that a search never matches across two of them. At most :data:`SEARCH_TEXT_BYTES` in
    UTF-8, cut between two characters: the text is a column of a B-tree index (PostgreSQL
    refuses an index entry of more than about 2 700 bytes), so a search does not find what
    comes after that in a case with very long searchable values.
    """
    parts = [title, business_key or "", *(value for value in searchable if isinstance(value, str))]
    text = "\n".join(part.lower() for part in parts if part)
    return text.encode(errors="replace")[:SEARCH_TEXT_BYTES].decode(errors="ignore")


@functools.cache
def _upsert_statement(
    on_postgresql: bool, table: Any, keys: tuple[str, ...], columns: tuple[str, ...]
) -> DriverStatement:
    # Built once: building it took as long as running it, at every save.
    insert = postgresql.insert(table) if on_postgresql else sqlite.insert(table)
    return DriverStatement(
        insert.on_conflict_do_update(
            index_elements=list(keys), set_={name: insert.excluded[name] for name in columns}
        )
    )


def _lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _typed(kind: str, value: Any) -> Any:
    """Return *value* as the declared *kind*, or None when it is missing or not of that kind."""
    if value is None:
        return None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind in ("number", "integer"):
        if isinstance(value, bool):
            return None
        try:
            number = Decimal(str(value)) if isinstance(value, int | float | str | Decimal) else None
        except InvalidOperation:
            return None
        if number is None or not number.is_finite():
            return None
        return number if kind == "number" or number == number.to_integral_value() else None
    if kind == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            return None
    if kind == "date-time":
        if isinstance(value, dt.datetime):
            moment = value
        else:
            try:
                moment = dt.datetime.fromisoformat(str(value))
            except ValueError:
                return None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    if kind == "json":
        return _plain_json(value)
    return value if isinstance(value, str) else None


def _plain_json(value: Any) -> Any:
    """*value* as plain JSON (lists, objects, text, numbers, booleans); other values become text."""
    if isinstance(value, Mapping):
        return {str(key): _plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(_json_value(value))


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _columns(kind: str, value: Any) -> dict[str, Any]:
    columns: dict[str, Any] = dict.fromkeys(VALUE_COLUMNS)
    if value is None:
        return columns
    if kind == "boolean":
        columns["text_value"] = "true" if value else "false"
    elif kind in ("number", "integer"):
        columns["number_value"] = value
    elif kind == "date":
        columns["date_value"] = value
    elif kind == "date-time":
        columns["time_value"] = value
    else:
        columns["text_value"] = value[:300]
    return columns


def _value_condition(value_row: Any, name: str, value: Any) -> sa.ColumnElement[bool]:
    """The condition that the indexed field *name* equals *value*, on the column of its type."""
    wanted: Any
    if isinstance(value, bool):
        column, wanted = value_row.text_value, "true" if value else "false"
    elif isinstance(value, int | float | Decimal):
        column, wanted = value_row.number_value, Decimal(str(value))
    elif isinstance(value, dt.datetime):
        column, wanted = value_row.time_value, value
    elif isinstance(value, dt.date):
        column, wanted = value_row.date_value, value
    elif isinstance(value, str):
        column, wanted = value_row.text_value, value
    else:
        raise ConnectorError(
            f"reporting.sum: the value of {name!r} must be text, a number, a date or true/false"
        )
    return sa.and_(value_row.name == name, column == wanted)


@dataclass(frozen=True)
class ReportedSum:
    """The sum of one field over the matching cases, and the cases with their fields."""

    total: Decimal
    cases: list[dict[str, Any]]


def sum_reported(
    session: so.Session,
    *,
    organisation_id: int,
    process_id: str,
    where: Mapping[str, Any],
    field: str,
    exclude_instance_id: int | None = None,
) -> ReportedSum:
    """Sum reporting field *field* over the organisation's cases of *process_id* matching *where*.

    *where* maps indexed field names to the value each must have. Only cases
    where *field* holds a number count, and only those are listed (instance
    id, title, status and every reported field). Reads the projection only.
    """
    stmt = sa.select(CaseReport).where(
        CaseReport.organisation_id == organisation_id, CaseReport.process_id == process_id
    )
    if exclude_instance_id is not None:
        stmt = stmt.where(CaseReport.instance_id != exclude_instance_id)
    for name, value in sorted(where.items()):
        row = so.aliased(CaseReportValue)
        stmt = stmt.join(
            row,
            sa.and_(
                row.instance_id == CaseReport.instance_id,
                row.organisation_id == organisation_id,
                row.process_id == process_id,
                _value_condition(row, name, value),
            ),
        )
    total = Decimal(0)
    cases = []
    for report in session.scalars(stmt.order_by(CaseReport.started_at, CaseReport.instance_id)):
        amount = _typed("number", report.fields.get(field))
        if amount is None:
            continue
        total += amount
        cases.append(
            {
                "instance_id": report.instance_id,
                "title": report.title,
                "status": report.status,
                **report.fields,
            }
        )
    return ReportedSum(total=total, cases=cases)


class ReportedSumConnector:
    """Connector ``reporting.sum``: :func:`sum_reported` over the calling instance's organisation.

    Parameters: ``process_id``, ``where`` (indexed field name → value), ``field``
    (the field summed). The calling instance itself is never counted. Returns
    ``{"total": <number>, "count": N, "cases": [...]}``.
    """

    def __call__(
        self, context: ConnectorContext, *, process_id: str, where: Any, field: str
    ) -> dict[str, Any]:
        if not isinstance(where, Mapping):
            raise ConnectorError(f"reporting.sum: 'where' must be a mapping of field to value, got {where!r}")
        found = sum_reported(
            context.session,
            organisation_id=context.organisation_id,
            process_id=str(process_id),
            where=where,
            field=str(field),
            exclude_instance_id=context.instance_id,
        )
        return {"total": _json_value(found.total), "count": len(found.cases), "cases": found.cases}
