"""Hot-path writes run on the driver's cursor (engine/_driver_sql.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine._driver_sql import DriverStatement, Entity
from engine.models import HumanTask, User, UTCDateTime
from tests.engine.test_save_writes import TWO_STEPS

Factory = so.sessionmaker[so.Session]
_METADATA = sa.MetaData()
# A temporary table: it lives with the test's connection only.
_SCRATCH = sa.Table(
    "driver_scratch",
    _METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(40), nullable=False, unique=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("at", UTCDateTime),
    sa.Column("payload", sa.JSON),
    sa.Column("tries", sa.Integer, nullable=False, default=3),
    prefixes=["TEMPORARY"],
)
_INSERT = DriverStatement(sa.insert(_SCRATCH).returning(_SCRATCH.c.id))
_INSERT_MANY = DriverStatement(sa.insert(_SCRATCH))
_CLOSE_READY = DriverStatement(
    sa.update(_SCRATCH)
    .where(_SCRATCH.c.name == sa.bindparam("b_name"), _SCRATCH.c.state == "ready")
    .values(state=sa.bindparam("b_state"), at=sa.bindparam("b_at"))
)
AT = dt.datetime(2026, 12, 2, 13, 30, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def _row(name: str, **values: Any) -> dict[str, Any]:
    return {"name": name, "state": "ready", "at": None, "payload": None, "tries": 1, **values}


def _connection(session: so.Session) -> sa.Connection:
    connection = session.connection()
    _METADATA.create_all(connection)
    return connection


def test_a_write_runs_with_the_columns_types_and_the_statements_own_values(session_factory: Factory) -> None:
    with session_factory.begin() as s:
        connection = _connection(s)
        ((first,),) = _INSERT.rows(connection, _row("first", payload={"a": [1, "två"]}))
        ((second,),) = _INSERT.rows(connection, _row("second", state="done"))
        assert second > first
        # The literal "ready" of the WHERE clause goes with the parameters given.
        assert _CLOSE_READY.run(connection, {"b_name": "first", "b_state": "closed", "b_at": AT}) == 1
        assert _CLOSE_READY.run(connection, {"b_name": "second", "b_state": "closed", "b_at": AT}) == 0
        rows = connection.execute(sa.select(_SCRATCH).order_by(_SCRATCH.c.id)).mappings().all()
        assert [(r["name"], r["state"]) for r in rows] == [("first", "closed"), ("second", "done")]
        assert rows[0]["at"] == AT and rows[0]["at"].utcoffset() == dt.timedelta(0)  # stored as UTC
        assert rows[0]["payload"] == {"a": [1, "två"]}
        assert _CLOSE_READY.compiled(connection.dialect, frozenset({"b_name", "b_state", "b_at"})) is not None


def test_many_rows_go_in_one_driver_call_that_listeners_see(session_factory: Factory) -> None:
    seen: list[tuple[str, bool]] = []

    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, many: bool) -> None:
        seen.append((statement.split()[0], many))

    with session_factory.begin() as s:
        connection = _connection(s)
        sa.event.listen(connection, "before_cursor_execute", record)
        try:
            _INSERT_MANY.run_many(connection, [_row(f"n{i}") for i in range(5)])
            _INSERT_MANY.run_many(connection, [])  # nothing to write: no statement
        finally:
            sa.event.remove(connection, "before_cursor_execute", record)
        assert seen == [("INSERT", True)]
        assert connection.scalar(sa.select(sa.func.count()).select_from(_SCRATCH)) == 5


def test_a_column_default_computed_by_sqlalchemy_leaves_the_statement_to_sqlalchemy(
    session_factory: Factory,
) -> None:
    with session_factory.begin() as s:
        connection = _connection(s)
        values = _row("defaulted")
        del values["tries"]  # its default=3 is filled in by SQLAlchemy, not the database
        assert _INSERT.compiled(connection.dialect, frozenset(values)) is None
        ((new_id,),) = _INSERT.rows(connection, values)
        assert connection.scalar(sa.select(_SCRATCH.c.tries).where(_SCRATCH.c.id == new_id)) == 3


def test_a_driver_error_is_raised_as_sqlalchemys_with_the_statement(session_factory: Factory) -> None:
    with session_factory() as s:
        connection = _connection(s)
        _INSERT.rows(connection, _row("twice"))
        with pytest.raises(sa.exc.IntegrityError) as raised:
            _INSERT.rows(connection, _row("twice"))
        assert "INSERT INTO driver_scratch" in str(raised.value.statement)
        s.rollback()


def test_a_missing_value_is_named(session_factory: Factory) -> None:
    with session_factory.begin() as s:
        connection = _connection(s)
        with pytest.raises(sa.exc.ArgumentError, match="'b_at'"):
            _CLOSE_READY.run(connection, {"b_name": "x", "b_state": "closed"})


_TASK = Entity(HumanTask)
_TASK_BY_ID = DriverStatement(sa.select(*_TASK.columns).where(HumanTask.id == sa.bindparam("id")))


@pytest.fixture
def task_id(session_factory: Factory, orgs: None) -> int:
    with session_factory.begin() as s:
        engine.deploy_files(s, [engine.BundleFile("two.bpmn", "bpmn", TWO_STEPS)], name="two_steps")
        instance_id = engine.start_instance(s, "two_steps", organisation="north", user="north-req").id
    with session_factory() as s:
        (task,) = engine.list_tasks(s, instance_id=instance_id)
        return task.id


def test_a_row_becomes_a_persistent_object_with_lazy_relationships(
    session_factory: Factory, task_id: int
) -> None:
    with session_factory() as s:
        (row,) = _TASK_BY_ID.read(s, {"id": task_id})
        task = _TASK.load(s, row)
        assert sa.inspect(task).persistent and not s.dirty and not s.new
        assert (task.id, task.state, task.bpmn_id) == (task_id, "ready", "review")
        assert task.created_at.tzinfo is not None
        assert task.instance.process_id == "two_steps"  # loaded when read
        assert _TASK.load(s, row) is task  # one object per row
        assert s.get(HumanTask, task_id) is task


def test_a_held_object_keeps_its_changes_unless_refreshed(session_factory: Factory, task_id: int) -> None:
    with session_factory() as s:
        boss = s.scalars(sa.select(User).where(User.username == "north-boss")).one()
        held = s.get(HumanTask, task_id)
        assert held is not None and held.assignee is None
        s.commit()  # its objects stay loaded (expire_on_commit is off)
        with session_factory.begin() as other:  # another process claims it meanwhile
            other.execute(sa.update(HumanTask).where(HumanTask.id == task_id).values(assignee_id=boss.id))
        held.name = "Renamed here"
        s.expire(held, ["lane"])
        with s.no_autoflush:
            (row,) = _TASK_BY_ID.rows(s.connection(), {"id": task_id})
            assert _TASK.load(s, row) is held
            # As the ORM loads a row it holds: what it had stays, what it had not is filled in.
            assert (held.name, held.assignee_id, held.assignee) == ("Renamed here", None, None)
            assert "lane" in held.__dict__
            assert _TASK.load(s, row, refresh=True) is held
        # As populate_existing: the row's values, the change dropped, relationships read again.
        assert (held.name, held.assignee_id) == ("Review", boss.id)
        assert held.assignee is boss
        assert not s.dirty


def test_a_loaded_object_is_written_and_expunged_as_one_the_orm_loaded(
    session_factory: Factory, task_id: int
) -> None:
    with session_factory() as s:
        orm_loaded = s.get(HumanTask, task_id)
        assert orm_loaded is not None
        orm_state = sa.inspect(orm_loaded)
        expected = (orm_state.key, orm_state.identity_token, orm_state.persistent, orm_state.modified)
        s.expunge(orm_loaded)
        (row,) = _TASK_BY_ID.read(s, {"id": task_id})
        task = _TASK.load(s, row)
        state = sa.inspect(task)
        assert (state.key, state.identity_token, state.persistent, state.modified) == expected
        assert state.session is s and not state.committed_state and not state.expired_attributes
        task.name = "Renamed"
        assert list(s.dirty) == [task]
        s.commit()
        assert not s.dirty and task.name == "Renamed"
        s.expunge(task)
        assert sa.inspect(task).detached and s.get(HumanTask, task_id) is not task
    with session_factory() as s:
        (row,) = _TASK_BY_ID.read(s, {"id": task_id})
        task = _TASK.load(s, row)
        assert task.name == "Renamed"
        task.name = "Again"
        s.flush()
        s.rollback()
        assert task.name == "Renamed"  # a rollback expires it as one the ORM loaded
