"""Statements of the hot path run on the driver's cursor, each compiled once per dialect.

SQLAlchemy compiles a Core statement once (its compiled cache), but every
``Connection.execute`` still builds an execution context, runs the parameters
through ``construct_params`` and wraps the cursor in a result. For the small
writes of a step (an UPDATE of the instance, an INSERT of a task row or an
audit event) that took about three times what SQLite itself took to run them
(``bench/engine_overhead.py``, profiled). A :class:`DriverStatement` keeps the
compiled SQL with its parameter order and type processors, and runs it on the
DBAPI cursor of the session's connection, inside the session's transaction:
a save's writes, a case's task list, the task lock, the organisation's versions
and SQLite's ``BEGIN`` (:func:`execute_text`). :class:`Entity` makes the rows
read persistent ORM objects.

What SQLAlchemy would do around a statement is kept: the type processors
(times to UTC text on SQLite, JSON), the ``before_cursor_execute`` and
``after_cursor_execute`` events, driver errors raised as
:class:`sqlalchemy.exc.DBAPIError` with the statement, and a connection found
broken is invalidated. A statement that needs more (column defaults computed
in Python, expanding ``IN`` parameters, escaped names) is run through
``Connection.execute`` as before: :meth:`DriverStatement.compiled` says which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

Statement = sa.Insert | sa.Update | sa.Delete | sa.Select[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # The parameter names, in the order of the "?" for a positional driver (SQLite); psycopg
    # takes them by name ("%(name)s").
    names: tuple[str, ...]
    positional: bool
    processors: Mapping[str, Callable[[Any], Any]]
    # Values the statement itself holds (a literal in a WHERE clause), by parameter name.
    constants: Mapping[str, Any]
    # The type processors of the columns it returns (None: the driver's value is the value).
    results: tuple[Callable[[Any], Any] | None, ...] | None
    # Whether it returns rows (a SELECT, RETURNING): known here, so the cursor's description,
    # which psycopg builds anew each time it is read, is not needed.
    returns_rows: bool


class DriverStatement:
    """A Core *statement* run straight on the driver's cursor (see the module's text)."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        # By dialect name and the names of the parameters given; None: not for the driver.
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled | None] = {}

    def compiled(self, dialect: sa.Dialect, keys: frozenset[str]) -> _Compiled | None:
        """Return the statement compiled for *dialect* and parameters *keys*; None: it needs SQLAlchemy."""
        cache_key = (dialect.name, keys)
        try:
            return self._compiled[cache_key]
        except KeyError:
            pass
        compiled = self.statement.compile(dialect=dialect, column_keys=sorted(keys))
        found: _Compiled | None = None
        needs_sqlalchemy = (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.literal_execute_params
            or compiled.post_compile_params
            or compiled.escaped_bind_names
            or (compiled.positional and compiled.positiontup is None)
        )
        if not needs_sqlalchemy:
            processors = {}
            constants = {}
            for name, bind in compiled.binds.items():
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors[name] = processor
                if not bind.required and name not in keys:
                    constants[name] = bind.effective_value
            names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
            results = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.statement.exported_columns
            )
            found = _Compiled(
                compiled.string,
                names,
                compiled.positional,
                processors,
                constants,
                results if any(results) else None,
                bool(results),
            )
        self._compiled[cache_key] = found
        return found

    def rows(self, connection: sa.Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement with *params* and return the rows it gives (RETURNING, SELECT)."""
        rows, _ = self._run(connection, params, fetch=True)
        return rows

    def read(self, session: so.Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Return the rows of this SELECT in *session*'s transaction.

        What the session holds is flushed first, as its autoflush does before
        a query (unless autoflush is off): the rows include its changes.
        """
        if session.autoflush:
            session.flush()
        return self.rows(session.connection(), params)

    def run(self, connection: sa.Connection, params: Mapping[str, Any]) -> int:
        """Run the statement with *params*; return the number of rows it changed."""
        _, count = self._run(connection, params, fetch=False)
        return count

    def run_many(self, connection: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once for each of *rows* (all with the same keys), in one driver call."""
        if not rows:
            return
        compiled = self.compiled(connection.dialect, frozenset(rows[0]))
        if compiled is None:
            connection.execute(self.statement, list(rows))
            return
        parameters = [_driver_parameters(compiled, row) for row in rows]
        self._call(connection, compiled, parameters, many=True, fetch=False)

    def _run(
        self, connection: sa.Connection, params: Mapping[str, Any], *, fetch: bool
    ) -> tuple[list[tuple[Any, ...]], int]:
        compiled = self.compiled(connection.dialect, frozenset(params))
        if compiled is None:
            result = connection.execute(self.statement, dict(params))
            rows = [tuple(row) for row in result] if fetch and result.returns_rows else []
            return rows, result.rowcount
        return self._call(connection, compiled, _driver_parameters(compiled, params), many=False, fetch=fetch)

    @staticmethod
    def _call(
        connection: sa.Connection, compiled: _Compiled, parameters: Any, *, many: bool, fetch: bool
    ) -> tuple[list[tuple[Any, ...]], int]:
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is None:  # pragma: no cover - a closed connection fails in SQLAlchemy
            raise sa.exc.ResourceClosedError("the connection is closed")
        dispatch = connection.dispatch
        cursor = dbapi_connection.cursor()
        sql = compiled.sql
        try:
            if dispatch.before_cursor_execute:
                for listener in dispatch.before_cursor_execute:
                    listener(connection, cursor, sql, parameters, None, many)
            try:
                if many:
                    cursor.executemany(sql, parameters)
                else:
                    cursor.execute(sql, parameters)
                rows = _result_rows(compiled, cursor.fetchall()) if fetch and compiled.returns_rows else []
            except connection.dialect.loaded_dbapi.Error as exc:
                raise _wrapped(connection, exc, sql, parameters, dbapi_connection, cursor) from exc
            if dispatch.after_cursor_execute:
                for listener in dispatch.after_cursor_execute:
                    listener(connection, cursor, sql, parameters, None, many)
            return rows, cursor.rowcount
        finally:
            cursor.close()


def execute_text(connection: sa.Connection, sql: str) -> None:
    """Run *sql*, a statement without parameters (``BEGIN IMMEDIATE``), on the driver's cursor."""
    compiled = _Compiled(sql, (), True, {}, {}, None, False)
    DriverStatement._call(connection, compiled, (), many=False, fetch=False)


def _result_rows(compiled: _Compiled, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    processors = compiled.results
    if processors is None:
        return [tuple(row) for row in rows]
    return [
        tuple(
            processor(value) if processor else value for processor, value in zip(processors, row, strict=True)
        )
        for row in rows
    ]


def _driver_parameters(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    values = {**compiled.constants, **params} if compiled.constants else params
    processors = compiled.processors
    try:
        processed = [
            processors[name](values[name]) if name in processors else values[name] for name in compiled.names
        ]
    except KeyError as exc:
        raise sa.exc.ArgumentError(f"a value is required for parameter {exc.args[0]!r}") from exc
    return tuple(processed) if compiled.positional else dict(zip(compiled.names, processed, strict=True))


def _wrapped(
    connection: sa.Connection, exc: Any, sql: str, parameters: Any, dbapi_connection: Any, cursor: Any
) -> sa.exc.StatementError:
    """Return the driver's error *exc* as SQLAlchemy raises it; invalidate a connection found broken."""
    dialect = connection.dialect
    disconnected = dialect.is_disconnect(exc, dbapi_connection, cursor)
    if disconnected:
        connection.invalidate(exc)
    wrapped: sa.exc.StatementError = sa.exc.DBAPIError.instance(
        sql,
        parameters,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=disconnected,
        dialect=dialect,
    )
    return wrapped


class Entity:
    """How the rows of a :class:`DriverStatement` become persistent objects of mapped class *entity*.

    :attr:`columns` are its table's columns, to select in that order;
    :meth:`load` makes a row's values (those columns, in that order) the
    session's object for the row, as the ORM's own loading would.
    """

    def __init__(self, entity: type[Any]) -> None:
        mapper = sa.inspect(entity)
        self._mapper = mapper
        self.columns = tuple(mapper.local_table.columns)
        self._keys = tuple(mapper.get_property_by_column(column).key for column in self.columns)
        self._identity = tuple(self.columns.index(column) for column in mapper.primary_key)

    def load(self, session: so.Session, values: Sequence[Any], *, refresh: bool = False) -> Any:
        """Return the object whose row holds *values*, in *session*.

        The object the session holds already for the row keeps what it has
        loaded, and gets what it has not. With *refresh* (as the ORM's
        ``populate_existing``) it gets every value of the row, and its
        relationships are loaded again when next read. Otherwise a new object
        joins the session as persistent: nothing to write, relationships
        loaded when read.
        """
        key = self._mapper.identity_key_from_primary_key([values[i] for i in self._identity])
        held = session.identity_map.get(key)
        if held is not None:
            if refresh:
                session.expire(held)  # changes dropped; relationships loaded again when read
            unloaded = sa.inspect(held).unloaded
            for name, value in zip(self._keys, values, strict=True):
                if name in unloaded:
                    so.attributes.set_committed_value(held, name, value)
            return held
        new = self._mapper.class_manager.new_instance()
        new.__dict__.update(zip(self._keys, values, strict=True))
        so.make_transient_to_detached(new)
        session.add(new)
        return new
