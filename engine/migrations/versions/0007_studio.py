"""studio: drafts of process bundles, test definitions and instances, the platform organisation

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 18:40:00

A draft is an organisation's not yet deployed copy of a process bundle, one
per organisation and process id. Test definitions and instances (``is_test``)
are what "Try it" in the studio starts; no lookup resolves them and reports
leave them out. Existing rows are real: ``is_test`` false, no organisation is
the platform.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN, also on SQLite: a batch copy of a table other rows refer
    # to (organisation) cannot be dropped while foreign keys are on.
    op.add_column(
        "organisation", sa.Column("is_platform", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        "process_definition", sa.Column("is_test", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        "process_instance", sa.Column("is_test", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "process_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("base_definition_id", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_process_draft_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["base_definition_id"],
            ["process_definition.id"],
            name=op.f("fk_process_draft_base_definition_id_process_definition"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_draft")),
        sa.UniqueConstraint("organisation_id", "process_id", name=op.f("uq_process_draft_organisation_id")),
    )
    op.create_table(
        "process_draft_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_id"],
            ["process_draft.id"],
            name=op.f("fk_process_draft_file_draft_id_process_draft"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_draft_file")),
        sa.UniqueConstraint("draft_id", "name", name=op.f("uq_process_draft_file_draft_id")),
    )


def downgrade() -> None:
    op.drop_table("process_draft_file")
    op.drop_table("process_draft")
    for table, column in (
        ("process_instance", "is_test"),
        ("process_definition", "is_test"),
        ("organisation", "is_platform"),
    ):
        if op.get_bind().dialect.name == "sqlite":
            # A batch copy would drop and recreate the table, which the rows referring to it forbid
            # (foreign keys are on); SQLite drops a column without a default constraint in place.
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
