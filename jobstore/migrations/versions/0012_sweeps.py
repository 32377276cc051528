"""sweeps: many jobs of one kind as one piece of work

A sweep row holds what its children share and the plan that made their parameters; each child
is an ordinary job whose `sweep_id` names its sweep and whose `sweep_point` numbers the point it
computes (a re-run of a failed child computes the same point), listed in order through
`ix_jobs_sweep_point`. A sweep cannot be deleted while a child names it.

The column is added in place, with its reference, on both backends: a batch copy of `jobs`
would cost minutes at a million jobs and drop the expression indexes of migration 0005, which
batch mode cannot reflect.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("plan", Json, nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its reference in place when its default is NULL.
        op.execute("ALTER TABLE jobs ADD COLUMN sweep_id INTEGER REFERENCES sweeps (id)")
    else:
        op.add_column("jobs", sa.Column("sweep_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key("jobs_sweep_id_fkey", "jobs", "sweeps", ["sweep_id"], ["id"])
    op.add_column("jobs", sa.Column("sweep_point", sa.Integer(), nullable=True))
    op.create_index("ix_jobs_sweep_point", "jobs", ["sweep_id", "sweep_point", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_sweep_point", table_name="jobs")
    op.drop_column("jobs", "sweep_point")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE jobs DROP COLUMN sweep_id")
    else:
        op.drop_constraint("jobs_sweep_id_fkey", "jobs", type_="foreignkey")
        op.drop_column("jobs", "sweep_id")
    op.drop_table("sweeps")
