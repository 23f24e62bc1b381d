"""Migration 0005 on a database that holds rows: users keep getting e-mails, names start empty."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import engine


def _fill_at_0004(db: sa.Engine) -> None:
    engine.upgrade_database(db, "0004")
    with db.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO organisation (id, key, name, created_at, identity_version, definitions_version) "
                "VALUES (1, 'north', 'North', :now, 1, 2)"
            ),
            {"now": engine.models.utcnow()},
        )
        conn.execute(
            sa.text(
                "INSERT INTO user_account (id, username, display_name, email, is_active, created_at) "
                "VALUES (101, 'ann', 'Ann', 'ann@example.org', :yes, :now)"
            ),
            {"yes": True, "now": engine.models.utcnow()},
        )
        conn.execute(
            sa.text("INSERT INTO user_group (id, organisation_id, key, name) VALUES (1, 1, 'buyers', 'b')")
        )
        conn.execute(
            sa.text(
                "INSERT INTO deployment (id, organisation_id, name, content_hash, deployed_at) "
                "VALUES (1, 1, 'b', 'h', :now)"
            ),
            {"now": engine.models.utcnow()},
        )
        conn.execute(
            sa.text(
                "INSERT INTO process_definition (id, deployment_id, organisation_id, process_id, name, "
                "version, content_hash, message_starts, message_correlations, created_at) "
                "VALUES (1, 1, 1, 'p', 'P', 1, 'h', '[]', '{}', :now)"
            ),
            {"now": engine.models.utcnow()},
        )


def _check_0005(db: sa.Engine) -> None:
    engine.upgrade_database(db, "0005")
    with engine.create_session_factory(db)() as s:
        user = s.get_one(engine.User, 101)
        assert (user.language, user.notify_by_email) == (None, True)
        assert s.get_one(engine.Group, 1).translated_names == {}
        # One column, not the row: later migrations add columns the model already has.
        names = engine.ProcessDefinition.translated_names
        assert s.scalar(sa.select(names).where(engine.ProcessDefinition.id == 1)) == {}
        # New rows get the same defaults from the models.
        s.add(engine.User(username="bo"))
        s.flush()
        assert s.scalar(sa.select(engine.User.notify_by_email).where(engine.User.username == "bo")) is True
        s.rollback()


def test_upgrade_on_sqlite(tmp_path: Path) -> None:
    db = engine.create_db_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        _fill_at_0004(db)
        _check_0005(db)
    finally:
        db.dispose()


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A URL whose connections use a fresh PostgreSQL schema of their own (dropped afterwards)."""
    url = os.environ.get("PROCFLOW_DATABASE_URL", "")
    schema = f"migration_{uuid.uuid4().hex[:8]}"
    admin = engine.create_db_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.mark.postgres
def test_upgrade_on_postgresql(postgres_schema: str) -> None:
    db = engine.create_db_engine(postgres_schema)
    try:
        _fill_at_0004(db)
        _check_0005(db)
    finally:
        db.dispose()
