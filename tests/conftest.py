"""Fresh stores for every test: a temporary SQLite file, or a fresh PostgreSQL schema.

PostgreSQL tests run wherever the server answers. Under CI=true an unreachable server fails
them; elsewhere they skip with a one-line reason.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from jobstore.engine import make_engine, migrate
from tests.s3 import Place, S3Server, bucket_place, folder_place, s3_server

# No test reads or writes the user's own store: the default data folder (platformdirs reads
# XDG_DATA_HOME) is a fresh one for this run, which every child process inherits.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="runlab-tests-data-")
atexit.register(shutil.rmtree, os.environ["XDG_DATA_HOME"], ignore_errors=True)

PG_ADMIN_URL = os.environ.get(
    "RUNLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_reason() -> str | None:
    try:
        eng = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}"
    return None


_PG_REASON: str | bool | None = False


def require_postgres() -> None:
    global _PG_REASON
    if _PG_REASON is False:
        _PG_REASON = _pg_reason()
    if _PG_REASON:
        if IN_CI:
            pytest.fail(f"CI=true but {_PG_REASON}")
        pytest.skip(_PG_REASON)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runlab.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, pool_pre_ping=True)  # a test may restart the server
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# A test of what happens in Dask or in the runner's process, not in the store, runs on one
# backend: the store's part of it (claims, fences, results) is tested on both in tests/store.
on_sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
# PostgreSQL turns JSON into JSONB: a result's round trip through it is the one worth checking.
on_postgres_only = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty store on each backend in turn."""
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    eng = make_engine(url)
    migrate(eng)
    eng.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(sqlite_url(tmp_path))
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3-compatible server (moto's) for the run; each test takes a bucket of its own."""
    with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


@pytest.fixture(params=["folder", "bucket"])
def artifact_place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    """The artifact store in each of its two forms in turn: a folder, and an S3 bucket."""
    if request.param == "folder":
        return folder_place(tmp_path / "artifacts")
    return bucket_place(request.getfixturevalue("s3"))
