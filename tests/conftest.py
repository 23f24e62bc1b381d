"""Shared fixtures: a migrated database per test, on SQLite or PostgreSQL.

``PROCFLOW_DATABASE_URL`` picks the database; unset, every test gets its own
SQLite file copied from one migrated template.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

import engine
from engine.models import Base

FIXTURES = Path(__file__).parent / "fixtures"
T = TypeVar("T")
PROCESSES = Path(__file__).parent.parent / "processes"


def bounded(function: Callable[[], T], seconds: float = 5.0, what: str = "it") -> T:
    """Run *function* in a thread; fail the test if it has not finished within *seconds*.

    For what could hang if a limit regressed: the test fails instead of stalling the suite.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what} still running after {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def _postgres_url() -> str | None:
    url = os.environ.get("PROCFLOW_DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _postgres_url():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set PROCFLOW_DATABASE_URL=postgresql+psycopg://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _postgres_url()
    if url:
        db = engine.create_db_engine(url)
        with db.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.upgrade_database(db)
        db.dispose()
        return url
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    db = engine.create_db_engine(f"sqlite:///{path}")
    engine.upgrade_database(db)
    db.dispose()
    return str(path)


@pytest.fixture
def db_url(_template_db: str, tmp_path: Path) -> Iterator[str]:
    """URL of an empty, migrated database for this test."""
    if _postgres_url():
        db = engine.create_db_engine(_template_db)
        with db.begin() as conn:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        db.dispose()
        yield _template_db
        return
    path = tmp_path / "procflow.sqlite3"
    shutil.copy(_template_db, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def db_engine(db_url: str) -> Iterator[sa.Engine]:
    db = engine.create_db_engine(db_url)
    yield db
    db.dispose()


@pytest.fixture
def session_factory(db_engine: sa.Engine) -> so.sessionmaker[so.Session]:
    return engine.create_session_factory(db_engine)


@pytest.fixture
def session(session_factory: so.sessionmaker[so.Session]) -> Iterator[so.Session]:
    """A session whose transactions the test opens with ``session.begin()``."""
    with session_factory() as s:
        yield s


@pytest.fixture
def orgs(session_factory: so.sessionmaker[so.Session]) -> None:
    """Two organisations with a requester, an approver and an admin each."""
    with session_factory.begin() as s:
        for key in ("north", "south"):
            engine.add_organisation(s, key, name=key.title())
            engine.add_user(s, f"{key}-req", organisation=key, roles=["requester"], groups=["requesters"])
            engine.add_user(
                s, f"{key}-boss", organisation=key, roles=["case_handler"], groups=["approvers", "requesters"]
            )
            engine.add_user(s, f"{key}-admin", organisation=key, roles=["admin"], groups=[])
