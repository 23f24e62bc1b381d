"""admin console: organisation settings, parameter history, password links, process settings, SSO

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:10:00

- ``membership.deactivated_at``: an admin deactivated the user in that organisation.
- ``organisation`` gets the settings an admin edits (organisation number,
  country, currency, time zone, default language); NULL means "not set".
- ``parameter`` rows become append-only history: who recorded a row and when,
  a note (why a correction was made) and ``uses_shared`` (from this date the
  organisation uses the shared value again). Existing rows were recorded now.
- ``password_link``: one-time links to set a password, stored hashed.
- ``process_setting``: an organisation that has its own versions of a shared
  process may start new cases on the shared one again.
- ``external_identity``: (issuer, subject) of a user at an OpenID Connect provider.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ORGANISATION_COLUMNS = (
    ("organisation_number", 40),
    ("country", 2),
    ("currency", 3),
    ("time_zone", 64),
    ("default_language", 8),
)


def upgrade() -> None:
    # Plain ADD COLUMN, also on SQLite (see 0007: a batch copy of organisation is refused).
    for name, length in _ORGANISATION_COLUMNS:
        op.add_column("organisation", sa.Column(name, sa.String(length=length), nullable=True))
    op.add_column("membership", sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "parameter",
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.add_column("parameter", sa.Column("created_by", sa.String(length=120), nullable=True))
    op.add_column("parameter", sa.Column("note", sa.Text(), nullable=True))
    op.add_column(
        "parameter", sa.Column("uses_shared", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_index("ix_audit_event_organisation", "audit_event", ["organisation_id", "id"])
    op.create_table(
        "password_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_password_link_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_link_token_hash")),
    )
    op.create_table(
        "process_setting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("use_shared", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_process_setting_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_setting")),
        sa.UniqueConstraint("organisation_id", "process_id", name=op.f("uq_process_setting_organisation_id")),
    )
    op.create_table(
        "external_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_external_identity_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_identity")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_external_identity_issuer")),
    )


def downgrade() -> None:
    op.drop_table("external_identity")
    op.drop_table("process_setting")
    op.drop_table("password_link")
    op.drop_index("ix_audit_event_organisation", table_name="audit_event")
    columns = [("parameter", c) for c in ("uses_shared", "note", "created_by", "created_at")]
    columns += [("membership", "deactivated_at")]
    columns += [("organisation", name) for name, _length in _ORGANISATION_COLUMNS]
    for table, column in columns:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
