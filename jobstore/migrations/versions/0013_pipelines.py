"""pipelines: a graph of steps, each becoming a job or a sweep once what it needs has ended

A pipeline row holds its spec as submitted (compute/pipelines.py checks it); each step row holds
its part of the spec, the steps it needs with each one's failure policy, and its own status:
`waiting` until it starts, when its job or sweep is made and named here. A purge of that job or
sweep leaves the step, with the reference cleared.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "pipeline_steps",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("pipeline_id", BigId, sa.ForeignKey("pipelines.id"), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("needs", Json, nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("job_id", BigId, sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
        sa.Column(
            "sweep_id", BigId, sa.ForeignKey("sweeps.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("pipeline_id", "name", name="uq_pipeline_steps_pipeline_name"),
    )
    op.create_index("ix_pipeline_steps_status", "pipeline_steps", ["status", "pipeline_id"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_steps_status", table_name="pipeline_steps")
    op.drop_table("pipeline_steps")
    op.drop_table("pipelines")
