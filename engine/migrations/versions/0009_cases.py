"""cases and reports: indexes and the search column behind the case list

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:30:00

The case list (engine/cases.py) reads one index range per page: an index per
sort ending in the instance id (the keyset), the default sort also per process
and per status, and a probe per case for "my cases" (tasks completed by a user).
The default sort's index also holds the starter and the search text, so that
"my cases" and the text search test each case there, not in its table row.
Its text search is one LIKE on ``case_report.search_text`` (lower-cased title,
business key and the values of fields declared "search"), filled here for the
cases there are; on PostgreSQL a trigram index (``pg_trgm``) serves rare terms.
"""

from __future__ import annotations

import json
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_CASE_REPORT_INDEXES = {
    "ix_case_report_org_updated": ["organisation_id", "updated_at", "instance_id"],
    "ix_case_report_org_title": ["organisation_id", "title", "instance_id"],
    "ix_case_report_org_process_started": ["organisation_id", "process_id", "started_at", "instance_id"],
    "ix_case_report_org_status_started": ["organisation_id", "status", "started_at", "instance_id"],
}
_BATCH = 1000
_SEARCH_TEXT_BYTES = 2000  # engine.projection.SEARCH_TEXT_BYTES when this was written


def upgrade() -> None:
    op.drop_index("ix_case_report_org_started", table_name="case_report")
    for name, columns in _CASE_REPORT_INDEXES.items():
        op.create_index(name, "case_report", columns)
    op.create_index("ix_human_task_completed_by_instance", "human_task", ["completed_by_id", "instance_id"])
    op.add_column("case_report", sa.Column("search_text", sa.Text(), server_default="", nullable=False))
    _fill_search_text(op.get_bind())
    # The start-date index gains the instance id (the keyset's tie-breaker, read in index order),
    # then the starter and the search text: "my cases" and the text search test a case in the index.
    op.create_index(
        "ix_case_report_org_started",
        "case_report",
        ["organisation_id", "started_at", "instance_id", "started_by_id", "search_text"],
    )
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        # The operator class by its schema: the extension may live outside this search_path.
        schema = connection.scalar(
            sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")
        )
        op.execute(
            f"CREATE INDEX ix_case_report_search_trgm ON case_report USING gin (search_text {schema}.gin_trgm_ops)"
        )
    else:
        # An index of no rows (SQLite has no trigram index): the same schema on both databases.
        op.create_index(
            "ix_case_report_search_trgm", "case_report", ["search_text"], sqlite_where=sa.text("0")
        )


def _searchable(connection: sa.Connection) -> dict[str, set[str]]:
    """The names of the fields declared "search", by process id, over every deployed version."""
    rows = connection.execute(
        sa.text(
            "SELECT DISTINCT d.process_id, f.content FROM process_definition d"
            " JOIN deployment_file f ON f.deployment_id = d.deployment_id"
            " WHERE f.name = 'reporting.json' OR f.name LIKE '%/reporting.json'"
        )
    )
    found: dict[str, set[str]] = defaultdict(set)
    for process_id, content in rows:
        try:
            fields = json.loads(content).get("fields", {})
        except (ValueError, AttributeError):
            continue
        if isinstance(fields, dict):
            found[process_id] |= {
                name for name, spec in fields.items() if isinstance(spec, dict) and spec.get("search") is True
            }
    return found


def _fill_search_text(connection: sa.Connection) -> None:
    """Write search_text as engine.projection.search_text does (a frozen copy: migrations never change)."""
    searchable = _searchable(connection)
    cases = connection.execute(
        sa.text("SELECT instance_id, process_id, title, business_key FROM case_report ORDER BY instance_id")
    ).all()
    update = sa.text("UPDATE case_report SET search_text = :text WHERE instance_id = :id")
    for start in range(0, len(cases), _BATCH):
        batch = cases[start : start + _BATCH]
        values: dict[int, list[str]] = defaultdict(list)
        names = sorted({name for _, process_id, _, _ in batch for name in searchable.get(process_id, ())})
        if names:
            rows = connection.execute(
                sa.text(
                    "SELECT instance_id, name, text_value FROM case_report_value"
                    " WHERE instance_id IN :ids AND name IN :names ORDER BY instance_id, name"
                ).bindparams(sa.bindparam("ids", expanding=True), sa.bindparam("names", expanding=True)),
                {"ids": [row[0] for row in batch], "names": names},
            )
            process_of = {row[0]: row[1] for row in batch}
            for instance_id, name, text_value in rows:
                if text_value and name in searchable.get(process_of[instance_id], ()):
                    values[instance_id].append(text_value)
        updates = []
        for instance_id, _process_id, title, business_key in batch:
            parts = [title or "", business_key or "", *values[instance_id]]
            text = "\n".join(p.lower() for p in parts if p)
            # At most _SEARCH_TEXT_BYTES in UTF-8, cut between characters: it is in a B-tree index.
            text = text.encode(errors="replace")[:_SEARCH_TEXT_BYTES].decode(errors="ignore")
            updates.append({"id": instance_id, "text": text})
        if updates:
            connection.execute(update, updates)


def downgrade() -> None:
    op.drop_index("ix_case_report_search_trgm", table_name="case_report")
    op.drop_index("ix_case_report_org_started", table_name="case_report")
    op.drop_column("case_report", "search_text")
    op.drop_index("ix_human_task_completed_by_instance", table_name="human_task")
    for name in reversed(list(_CASE_REPORT_INDEXES)):
        op.drop_index(name, table_name="case_report")
    op.create_index("ix_case_report_org_started", "case_report", ["organisation_id", "started_at"])
