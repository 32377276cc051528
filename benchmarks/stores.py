"""A fresh store for a benchmark: a SQLite file in a folder, or a PostgreSQL schema of its own on
the local server, dropped and made again on each run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from jobstore.engine import make_engine, migrate

PG_ADMIN = os.environ.get("RUNLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def store(backend: str, folder: Path, schema: str) -> Iterator[tuple[Engine, str]]:
    """An engine on a migrated, empty store, and its URL for a runner to use."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'{schema}.db'}"
    else:
        admin = create_engine(PG_ADMIN)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    migrate(engine)
    try:
        yield engine, url
    finally:
        engine.dispose()
