"""job cost: CPU seconds, task seconds, task count and peak memory, per job and per stage

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("jobs", "job_stages")


def _columns() -> list[sa.Column]:
    # Nullable, no default: NULL means "not measured" (a queued job, or one run before 0006).
    return [
        sa.Column("cpu_seconds", sa.Float(), nullable=True),
        sa.Column("task_seconds", sa.Float(), nullable=True),
        sa.Column("tasks", sa.Integer(), nullable=True),
        sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True),
    ]


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in _columns():
                batch.add_column(column)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in reversed(_columns()):
                batch.drop_column(column.name)
