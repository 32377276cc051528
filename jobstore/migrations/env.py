"""Alembic environment: always runs on a connection handed in by `jobstore.engine.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from jobstore.models import Base

# An arbitrary constant that names Runlab's migration lock among PostgreSQL advisory locks.
MIGRATION_LOCK = 7_316_244_001

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through jobstore.engine.migrate(engine)")

if connection.dialect.name == "postgresql":
    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
