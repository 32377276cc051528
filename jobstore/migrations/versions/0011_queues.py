"""queues and owners: fair turns, aged priority, who did what, and whose presets

A job's place in its queue is its effective priority (its priority, raised as it waits: see
jobstore/queues.py), then its turn (a round between owners, given at submit), then its id.
The claim reads them through `ix_jobs_claim` (every queue) and `ix_jobs_queue_order` (one
queue: its head, a job's place); a submit finds its owner's last turn through
`ix_jobs_owner_turn`. A runner lists the queues it serves (NULL: all of them). An event names
the person who asked for it in `actor`, and a preset the person who saved it in `owner`. Every
job that exists lands in the default queue, at its own priority, in turn 0.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs with a default, as 0009 does: no batch copy of the tables.
    op.add_column(
        "jobs", sa.Column("turn", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
    )
    op.add_column(
        "jobs",
        sa.Column("effective_priority", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("job_events", sa.Column("actor", sa.String(length=100), nullable=True))
    op.add_column("presets", sa.Column("owner", sa.String(length=100), nullable=True))
    op.add_column(
        "runners",
        sa.Column("queues", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True),
    )
    op.execute("UPDATE jobs SET effective_priority = priority")
    op.execute("UPDATE jobs SET queue = 'default' WHERE queue IS NULL OR queue = ''")
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.create_index(
        "ix_jobs_claim", "jobs", ["status", sa.text("effective_priority DESC"), "turn", "id"]
    )
    op.create_index(
        "ix_jobs_queue_order",
        "jobs",
        ["status", "queue", sa.text("effective_priority DESC"), "turn", "id"],
    )
    op.create_index("ix_jobs_owner_turn", "jobs", ["status", "queue", "owner", "turn"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_turn", table_name="jobs")
    op.drop_index("ix_jobs_queue_order", table_name="jobs")
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.create_index("ix_jobs_claim", "jobs", ["status", "queue", "priority", "run_after", "id"])
    # Native on both (SQLite 3.35+): a batch copy would drop the expression indexes.
    op.execute("ALTER TABLE runners DROP COLUMN queues")
    op.execute("ALTER TABLE presets DROP COLUMN owner")
    op.execute("ALTER TABLE job_events DROP COLUMN actor")
    op.execute("ALTER TABLE jobs DROP COLUMN effective_priority")
    op.execute("ALTER TABLE jobs DROP COLUMN turn")
