"""An index for a case's tasks in one state

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 17:10:00

- ``ix_human_task_instance_state`` (instance, state, created, id): every step reads
  the case's ready tasks; without it the read went through all the case's tasks,
  so a step of a case that had looped a thousand times cost twice as much.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_human_task_instance_state", "human_task", ["instance_id", "state", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_human_task_instance_state", table_name="human_task")
