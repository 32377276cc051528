"""partial: a succeeded job whose result covers only part of its planned work

A stop and keep ends a job `succeeded` with what finished. The flag lets the history, its
filters and every page tell that outcome apart without reading each result.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both backends: no batch copy of the table, whose expression
    # indexes SQLite's reflection cannot read back.
    op.add_column(
        "jobs", sa.Column("partial", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    # Only a job asked to stop can have kept a partial result: a few rows to read, each with
    # its result's own mark. Their share done was not recorded, so they keep their progress.
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT j.id, r.summary FROM jobs j JOIN job_results r ON r.job_id = j.id "
            "WHERE j.stop_requested = :yes AND j.status = 'succeeded'"
        ),
        {"yes": True},
    ).all()
    ids = [
        job_id
        for job_id, summary in rows
        if isinstance(doc := json.loads(summary) if isinstance(summary, str) else summary, dict)
        and doc.get("partial") is True
    ]
    if ids:
        conn.execute(
            sa.text("UPDATE jobs SET partial = :yes WHERE id = :id"),
            [{"yes": True, "id": i} for i in ids],
        )


def downgrade() -> None:
    # Native on both (SQLite 3.35+): a batch copy would drop the expression indexes.
    op.execute("ALTER TABLE jobs DROP COLUMN partial")
