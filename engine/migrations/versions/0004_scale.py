"""speed at scale: exclusions as rows, cache versions on organisations

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:40:00
"""

from __future__ import annotations

import json
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity_version", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("definitions_version", sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    for (organisation_id,) in connection.execute(sa.text("SELECT id FROM organisation")).all():
        connection.execute(
            sa.text("UPDATE organisation SET identity_version = :i, definitions_version = :d WHERE id = :id"),
            {"i": secrets.randbits(62), "d": secrets.randbits(62), "id": organisation_id},
        )
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.alter_column("identity_version", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("definitions_version", existing_type=sa.BigInteger(), nullable=False)
    op.create_table(
        "human_task_exclusion",
        sa.Column("human_task_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["human_task_id"],
            ["human_task.id"],
            name=op.f("fk_human_task_exclusion_human_task_id_human_task"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_human_task_exclusion_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("human_task_id", "user_id", name=op.f("pk_human_task_exclusion")),
    )
    rows = connection.execute(sa.text("SELECT id, excluded_user_ids FROM human_task")).all()
    exclusions: list[dict[str, int]] = []
    for task_id, users in rows:
        users = json.loads(users) if isinstance(users, str) else users
        exclusions.extend({"human_task_id": task_id, "user_id": int(u)} for u in sorted(set(users or [])))
    if exclusions:
        connection.execute(
            sa.text(
                "INSERT INTO human_task_exclusion (human_task_id, user_id) VALUES (:human_task_id, :user_id)"
            ),
            exclusions,
        )
    with op.batch_alter_table("human_task", schema=None) as batch_op:
        batch_op.drop_column("excluded_user_ids")
    _create_inbox_indexes()


# The inbox query's indexes (engine/inbox.py says which serves which part); they replace
# ix_human_task_inbox (organisation_id, state, candidate_group), which none of its parts uses.
INBOX_PREFIX = ["organisation_id", "state", "assignee_id"]
INBOX_INDEXES = {
    "ix_human_task_inbox_due": [*INBOX_PREFIX, "due_at", "created_at", "id", "candidate_group"],
    "ix_human_task_inbox_created": [*INBOX_PREFIX, "created_at", "id", "candidate_group"],
    "ix_human_task_inbox_name": [*INBOX_PREFIX, "name", "id", "candidate_group"],
    "ix_human_task_inbox_counts": [*INBOX_PREFIX, "candidate_group", "id"],
}


def _create_inbox_indexes() -> None:
    op.drop_index("ix_human_task_inbox", table_name="human_task")
    for name, columns in INBOX_INDEXES.items():
        op.create_index(name, "human_task", columns)
    op.create_index("ix_human_task_exclusion_user", "human_task_exclusion", ["user_id", "human_task_id"])
    op.create_index("ix_group_member_membership", "group_member", ["membership_id", "group_id"])


def _drop_inbox_indexes() -> None:
    op.drop_index("ix_group_member_membership", table_name="group_member")
    op.drop_index("ix_human_task_exclusion_user", table_name="human_task_exclusion")
    for name in INBOX_INDEXES:
        op.drop_index(name, table_name="human_task")
    op.create_index("ix_human_task_inbox", "human_task", ["organisation_id", "state", "candidate_group"])


def downgrade() -> None:
    _drop_inbox_indexes()
    with op.batch_alter_table("human_task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("excluded_user_ids", sa.JSON(), server_default="[]", nullable=False))
    connection = op.get_bind()
    by_task: dict[int, list[int]] = {}
    for task_id, user_id in connection.execute(
        sa.text("SELECT human_task_id, user_id FROM human_task_exclusion ORDER BY user_id")
    ):
        by_task.setdefault(task_id, []).append(user_id)
    for task_id, users in by_task.items():
        connection.execute(
            sa.text("UPDATE human_task SET excluded_user_ids = :users WHERE id = :id"),
            {"users": json.dumps(users), "id": task_id},
        )
    op.drop_table("human_task_exclusion")
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_column("definitions_version")
        batch_op.drop_column("identity_version")
