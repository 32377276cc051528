"""runners.no_workers_since: since when a runner's Dask cluster has had no worker

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL while the cluster has workers, and for runners from before: nothing to report.
    with op.batch_alter_table("runners") as batch:
        batch.add_column(sa.Column("no_workers_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runners") as batch:
        batch.drop_column("no_workers_since")
