"""notifications and translated names: users' e-mail and language settings, names by language

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch_op.add_column(
            sa.Column("notify_by_email", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("user_group", schema=None) as batch_op:
        batch_op.add_column(sa.Column("translated_names", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("process_definition", schema=None) as batch_op:
        batch_op.add_column(sa.Column("translated_names", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("process_definition", schema=None) as batch_op:
        batch_op.drop_column("translated_names")
    with op.batch_alter_table("user_group", schema=None) as batch_op:
        batch_op.drop_column("translated_names")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("notify_by_email")
        batch_op.drop_column("language")
