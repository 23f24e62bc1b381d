"""Migration 0009 on a database that holds cases: search_text is filled from what they reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import engine
from engine.cases import CaseFilter, case_page
from tests.engine.test_migration_0005 import postgres_schema  # noqa: F401  (a fixture)
from tests.engine.test_migration_0007 import _fill_at_0006

REPORTING = {
    "fields": {
        "supplier": {"type": "string", "indexed": True, "search": True},
        "note": {"type": "string", "indexed": True},
    }
}


def _fill_at_0008(db: sa.Engine) -> None:
    _fill_at_0006(db)
    engine.upgrade_database(db, "0008")
    now = engine.models.utcnow()
    with db.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO deployment_file (id, deployment_id, name, kind, content) "
                "VALUES (91, 1, 'reporting.json', 'form', :content)"
            ),
            {"content": json.dumps(REPORTING)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO case_report (instance_id, organisation_id, process_id, status, title, "
                "business_key, started_at, updated_at, fields) "
                "VALUES (7, 1, 'p', 'running', 'Tuolit', 'DNR-1', :now, :now, '{}')"
            ),
            {"now": now},
        )
        for name, value in (("supplier", "Skärgård Oy"), ("note", "Secret")):
            conn.execute(
                sa.text(
                    "INSERT INTO case_report_value (instance_id, name, organisation_id, process_id, "
                    "text_value) VALUES (7, :name, 1, 'p', :value)"
                ),
                {"name": name, "value": value},
            )


def _check_0009_and_downgrade(db: sa.Engine) -> None:
    engine.upgrade_database(db, "0009")
    with db.connect() as conn:
        stored = conn.scalar(sa.text("SELECT search_text FROM case_report WHERE instance_id = 7"))
    assert stored == "tuolit\ndnr-1\nskärgård oy", "title, key and the searchable field, lower-cased"
    with engine.create_session_factory(db)() as s:
        page = case_page(s, organisation_id=1, where=CaseFilter(text="SKÄRGÅRD"))
        assert [row.instance_id for row in page.rows] == [7]
        assert case_page(s, organisation_id=1, where=CaseFilter(text="secret")).rows == []
    config = Config()
    config.set_main_option("script_location", str(engine.db.MIGRATIONS_PATH))
    with db.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0008")
    columns = {c["name"] for c in sa.inspect(db).get_columns("case_report")}
    assert "search_text" not in columns


def test_upgrade_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    db = engine.create_db_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        _fill_at_0008(db)
        _check_0009_and_downgrade(db)
    finally:
        db.dispose()


@pytest.mark.postgres
def test_upgrade_and_downgrade_on_postgresql(postgres_schema: str) -> None:  # noqa: F811
    db = engine.create_db_engine(postgres_schema)
    try:
        _fill_at_0008(db)
        _check_0009_and_downgrade(db)
    finally:
        db.dispose()
