"""task hosts: how many of a job's (and a stage's) tasks each Dask worker host ran

On many hosts, where a job's work ran is part of what it cost. A JSON object of host name to
task count, beside the other cost columns of 0006; NULL where nothing was measured.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("jobs", "job_stages")


def upgrade() -> None:
    # A plain ADD COLUMN on both backends, as 0009 does: no batch copy of the tables.
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("task_hosts", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True),
        )


def downgrade() -> None:
    # Native on both (SQLite 3.35+): a batch copy would drop the expression indexes.
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN task_hosts")
