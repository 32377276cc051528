"""history indexes: every sort and filter of the history stays an index walk at a million jobs

Each sort column gets (column, id), which keyset paging walks from either end. PostgreSQL also
gets GIN indexes for containment: tags (`tag:q3`), parameters and results (`method:BCa`), and,
where the pg_trgm extension can be had, trigrams on the name for a word search.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
SORTED = ("owner", "name", "created_at", "started_at", "finished_at")
# The very expressions jobstore.history sorts by: an expression index serves only its own.
DURATION = {
    "sqlite": "(julianday(finished_at) - julianday(started_at))",
    "postgresql": "(finished_at - started_at)",
}


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for column in SORTED:
        op.create_index(f"ix_jobs_{column}_id", "jobs", [column, "id"])
    op.create_index("ix_jobs_duration_id", "jobs", [sa.text(DURATION[dialect]), "id"])
    if dialect != "postgresql":
        return
    for table, column in (("jobs", "tags"), ("jobs", "params"), ("job_results", "summary")):
        op.create_index(
            f"ix_{table}_{column}_gin",
            table,
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "jsonb_path_ops"},
        )
    if _trigrams(bind):
        op.execute("CREATE INDEX ix_jobs_name_trgm ON jobs USING gin (name public.gin_trgm_ops)")


def _trigrams(bind: sa.Connection) -> bool:
    """pg_trgm in the public schema, shared by every schema; without it, word search scans."""
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
    except sa.exc.DBAPIError as exc:
        log.warning("no pg_trgm (%s): a word search of names reads the table", exc.orig)
        return False
    return True


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_jobs_name_trgm")
        for table, column in (("jobs", "tags"), ("jobs", "params"), ("job_results", "summary")):
            op.drop_index(f"ix_{table}_{column}_gin", table_name=table)
    op.drop_index("ix_jobs_duration_id", table_name="jobs")
    for column in SORTED:
        op.drop_index(f"ix_jobs_{column}_id", table_name="jobs")
