"""Database connection: engine construction, SQLite tuning, sessions, migrations."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from ._driver_sql import execute_text

DATABASE_URL_ENV = "PROCFLOW_DATABASE_URL"
INSTANCE_PATH_ENV = "PROCFLOW_INSTANCE_PATH"
MIGRATIONS_PATH = Path(__file__).parent / "migrations"


def instance_path() -> Path:
    """Return the folder holding local state (the default SQLite file, attachments)."""
    return Path(os.environ.get(INSTANCE_PATH_ENV) or Path.cwd() / "instance")


def database_url() -> str:
    """Return the configured database URL: ``PROCFLOW_DATABASE_URL`` or a SQLite file."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    folder = instance_path()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'procflow.sqlite3'}"


def is_postgresql(bind: sa.Engine | sa.Connection | so.Session) -> bool:
    """Tell whether *bind* talks to PostgreSQL (row locks, SKIP LOCKED available)."""
    if isinstance(bind, so.Session):
        engine = bind.get_bind()
        return engine.dialect.name == "postgresql"
    return bind.dialect.name == "postgresql"


def create_db_engine(url: str | None = None, *, ping_after_idle: float = 5.0, **kwargs: Any) -> sa.Engine:
    """Create a SQLAlchemy engine for *url* (default: :func:`database_url`).

    A pooled connection idle for *ping_after_idle* seconds or more is checked
    before use (see :func:`_ping_after_idle`); SQLite files need no check.

    SQLite gets WAL mode, a busy timeout, foreign keys, and ``BEGIN IMMEDIATE``
    transactions: SQLite has no row locks, so taking the write lock at the start
    of every transaction is what serialises two operations on the same instance
    (the second waits, then sees the first's result) instead of failing late.
    """
    url = url or database_url()
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {})
        kwargs["connect_args"].setdefault("timeout", 30)
        kwargs["connect_args"].setdefault("check_same_thread", False)
        engine = sa.create_engine(url, **kwargs)
        _tune_sqlite(engine)
        return engine
    engine = sa.create_engine(url, **kwargs)
    _ping_after_idle(engine, ping_after_idle)
    return engine


_IDLE_SINCE = "procflow_idle_since"


def _ping_after_idle(engine: sa.Engine, seconds: float) -> None:
    """Check a pooled connection is alive before use, if it sat idle for *seconds* or more.

    As the pool's ``pre_ping`` does (a database restart or a dropped idle
    connection costs no failed request), but without a round trip for a
    connection that was in use a moment ago: pinging on every checkout cost a
    PostgreSQL operation about a tenth of its time.
    """

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < seconds:
            return  # just connected, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool replaces the connection and checks out again.
            raise sa.exc.DisconnectionError(f"pooled connection is gone: {exc}") from exc


def _tune_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (see SQLAlchemy's pysqlite notes).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # On the driver's cursor: through SQLAlchemy this cost a twentieth of a short step.
        if connection.get_execution_options().get(_READS_ONLY):
            execute_text(connection, "BEGIN")
        else:
            execute_text(connection, "BEGIN IMMEDIATE")


_READS_ONLY = "procflow_reads_only"


def reading_engine(engine: sa.Engine) -> sa.Engine:
    """Return *engine* for transactions that only read (a page being shown).

    On SQLite they begin deferred, without the write lock: in WAL mode they read
    the last committed state while another transaction writes, so a long step of
    one organisation (a script using its whole time limit) does not hold up the
    pages of another. Writes still take the lock first (see :func:`create_db_engine`);
    should such a transaction write after all, SQLite takes the lock then.
    PostgreSQL behaves the same either way.
    """
    return engine.execution_options(**{_READS_ONLY: True})


def create_session_factory(engine: sa.Engine) -> so.sessionmaker[so.Session]:
    """Return a session factory bound to *engine* (objects stay usable after commit)."""
    return so.sessionmaker(bind=engine, expire_on_commit=False)


def upgrade_database(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema up to *revision* with the engine's Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
