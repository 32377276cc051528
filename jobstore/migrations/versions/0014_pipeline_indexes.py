"""pipeline indexes: a job's or a sweep's step, and an owner's pipelines, found by index

The job and sweep pages ask which step a job or sweep is; a purge that deletes jobs has
PostgreSQL clear `pipeline_steps.job_id` for each of them (ON DELETE SET NULL), which without an
index reads every step; and `/jobs` lists an owner's latest pipelines.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pipeline_steps_job_id", "pipeline_steps", ["job_id"])
    op.create_index("ix_pipeline_steps_sweep_id", "pipeline_steps", ["sweep_id"])
    op.create_index("ix_pipelines_owner_id", "pipelines", ["owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_pipelines_owner_id", table_name="pipelines")
    op.drop_index("ix_pipeline_steps_sweep_id", table_name="pipeline_steps")
    op.drop_index("ix_pipeline_steps_job_id", table_name="pipeline_steps")
