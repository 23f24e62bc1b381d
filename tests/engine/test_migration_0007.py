"""Migration 0007 on a database that holds rows: what exists is real (not a test), no platform, no drafts."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import engine
from tests.engine.test_migration_0005 import _fill_at_0004, postgres_schema  # noqa: F401  (a fixture)


def _fill_at_0006(db: sa.Engine) -> None:
    _fill_at_0004(db)
    engine.upgrade_database(db, "0006")
    with db.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO process_instance (id, definition_id, organisation_id, process_id, status, "
                "title, created_at, updated_at, state, serializer_version, lock_version) "
                "VALUES (7, 1, 1, 'p', 'running', 't', :now, :now, '{}', '1', 1)"
            ),
            {"now": engine.models.utcnow()},
        )


def _check_0007(db: sa.Engine) -> None:
    engine.upgrade_database(db, "0007")
    with db.connect() as conn:
        # In SQL, not through the models: they hold the columns of later migrations too.
        for query in (
            "SELECT is_platform FROM organisation WHERE id = 1",
            "SELECT is_test FROM process_definition WHERE id = 1",
            "SELECT is_test FROM process_instance WHERE id = 7",
        ):
            assert not conn.scalar(sa.text(query)), query
    with engine.create_session_factory(db)() as s:
        draft = engine.studio.ProcessDraft(organisation_id=1, process_id="p", updated_by="ann")
        draft.files = [engine.studio.ProcessDraftFile(name="p.bpmn", kind="bpmn", content="<x/>")]
        s.add(draft)
        s.flush()
        assert (draft.lock_version, draft.base_definition_id) == (1, None)
        s.add(engine.studio.ProcessDraft(organisation_id=1, process_id="p"))
        with pytest.raises(sa.exc.IntegrityError):
            s.flush()  # one draft per organisation and process
        s.rollback()


def _downgrade(db: sa.Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(engine.db.MIGRATIONS_PATH))
    with db.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
    assert "process_draft" not in sa.inspect(db).get_table_names()


def test_upgrade_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    db = engine.create_db_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        _fill_at_0006(db)
        _check_0007(db)
        _downgrade(db)
    finally:
        db.dispose()


@pytest.mark.postgres
def test_upgrade_and_downgrade_on_postgresql(postgres_schema: str) -> None:  # noqa: F811
    db = engine.create_db_engine(postgres_schema)
    try:
        _fill_at_0006(db)
        _check_0007(db)
        _downgrade(db)
    finally:
        db.dispose()
