"""case projection: one reporting row per instance and its indexed fields

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:10:00

Existing instances get their rows the next time they are saved (any step);
until then lists and reports that read the projection do not see them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_report",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("business_key", sa.String(length=200), nullable=True),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["process_instance.id"],
            name=op.f("fk_case_report_instance_id_process_instance"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_case_report_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["started_by_id"], ["user_account.id"], name=op.f("fk_case_report_started_by_id_user_account")
        ),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_case_report")),
    )
    op.create_index(
        "ix_case_report_org_process_status", "case_report", ["organisation_id", "process_id", "status"]
    )
    op.create_index("ix_case_report_org_started", "case_report", ["organisation_id", "started_at"])
    op.create_table(
        "case_report_value",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("text_value", sa.String(length=300), nullable=True),
        sa.Column("number_value", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("date_value", sa.Date(), nullable=True),
        sa.Column("time_value", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["case_report.instance_id"],
            name=op.f("fk_case_report_value_instance_id_case_report"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_case_report_value_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("instance_id", "name", name=op.f("pk_case_report_value")),
    )
    for kind in ("text", "number", "date", "time"):
        op.create_index(
            f"ix_case_report_value_{kind}",
            "case_report_value",
            ["organisation_id", "process_id", "name", f"{kind}_value"],
        )


def downgrade() -> None:
    op.drop_table("case_report_value")
    op.drop_table("case_report")
