"""Several processes on one store: migrating it at once, and racing to claim one queue.

The workers run in fresh interpreters (the 'spawn' start method), as separate runners do, so
they share nothing with the test but the database. They are top-level functions so that a
spawned child can import them by name.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select, text

from compute.intake import submit
from jobstore.engine import MIGRATIONS, make_engine, migrate, reading
from jobstore.models import MIGRATION_ONLY_INDEXES, Base, Job, JobEvent, Status
from jobstore.queries import get_job, list_jobs
from jobstore.transitions import claim

START_TIMEOUT = 60.0  # spawned interpreters import numpy and SQLAlchemy before they are ready
RUN_TIMEOUT = 60.0


# --- workers, run in spawned processes ----------------------------------------------------------


def _child(fn: Callable[..., Any], out: Any, index: int, barrier: Any, args: Sequence[Any]) -> None:
    """Run `fn(barrier, *args)` and hand its result, or its traceback, back to the test."""
    try:
        out.put((index, fn(barrier, *args), None))
    except BaseException:
        out.put((index, None, traceback.format_exc()))


def migrate_store(barrier: Any, url: str) -> str:
    engine = make_engine(url)
    try:
        barrier.wait(timeout=START_TIMEOUT)
        migrate(engine)
        with reading(engine) as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def claim_until_empty(barrier: Any, url: str, runner_id: str, limit: int) -> list[str]:
    """Claim `limit` at a time until the store has no queued job left; the ids claimed."""
    engine = make_engine(url)
    try:
        with engine.connect():  # connected before the start, so that all begin together
            pass
        barrier.wait(timeout=START_TIMEOUT)
        got: list[str] = []
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            leases = claim(engine, runner_id, limit=limit)
            got.extend(lease.public_id for lease in leases)
            # An empty claim alone is not enough on PostgreSQL: SKIP LOCKED also passes over
            # jobs that another claimer holds but has not committed yet.
            if not leases and list_jobs(engine, status=[Status.QUEUED], limit=1).total == 0:
                return got
        raise AssertionError(f"{runner_id}: jobs still queued after {RUN_TIMEOUT:.0f}s")
    finally:
        engine.dispose()


def run_in_processes(fn: Callable[..., Any], arg_lists: Sequence[Sequence[Any]]) -> list[Any]:
    """Start one spawned process per argument list, released together; their results in order."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    barrier = ctx.Barrier(len(arg_lists))
    procs = [
        ctx.Process(target=_child, args=(fn, out, i, barrier, args), daemon=True)
        for i, args in enumerate(arg_lists)
    ]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    errors: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT + RUN_TIMEOUT
    try:
        while len(results) + len(errors) < len(procs):
            try:
                index, result, error = out.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                codes = [p.exitcode for p in procs]
                raise AssertionError(
                    f"timed out waiting for {fn.__name__} in {len(procs)} processes; "
                    f"{len(results)} answered, exit codes {codes}"
                ) from None
            if error is None:
                results[index] = result
            else:
                errors.append(f"process {index}:\n{error}")
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    assert not errors, "\n".join(errors)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return [results[i] for i in range(len(procs))]


# --- migrations ---------------------------------------------------------------------------------


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def versions(engine: Engine) -> list[str]:
    with reading(engine) as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store that no one has migrated yet: a file not yet made, or an empty schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'new' / 'runlab.db'}"
    return request.getfixturevalue("pg_url")


def test_migrate_again_is_a_no_op(engine: Engine) -> None:
    public_id = submit(engine, "demo_stages", {})
    tables = set(inspect(engine).get_table_names())

    migrate(engine)
    migrate(engine)

    assert versions(engine) == [head_revision()]
    assert set(inspect(engine).get_table_names()) == tables
    assert get_job(engine, public_id).status is Status.QUEUED
    assert list_jobs(engine).total == 1


def test_three_processes_migrating_one_fresh_store_all_succeed(fresh_url: str) -> None:
    seen = run_in_processes(migrate_store, [(fresh_url,)] * 3)

    assert seen == [head_revision()] * 3
    engine = make_engine(fresh_url)
    try:
        assert versions(engine) == [head_revision()]
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        public_id = submit(engine, "demo_stages", {})
        (lease,) = claim(engine, "after-migrate")
        assert lease.public_id == public_id
    finally:
        engine.dispose()


# --- the claim race -----------------------------------------------------------------------------

JOBS = 500
RACERS = 4


def test_four_processes_claim_each_of_500_jobs_exactly_once(engine: Engine, db_url: str) -> None:
    submitted = {submit(engine, "demo_stages", {}) for _ in range(JOBS)}
    assert len(submitted) == JOBS

    racers = [f"racer-{i}" for i in range(RACERS)]
    claimed = run_in_processes(
        claim_until_empty, [(db_url, r, 1 + i % 3) for i, r in enumerate(racers)]
    )

    twice = [pid for pid, n in Counter(p for ids in claimed for p in ids).items() if n > 1]
    assert twice == [], f"{len(twice)} jobs claimed more than once"
    assert set().union(*claimed) == submitted
    owner = {pid: racer for racer, ids in zip(racers, claimed, strict=True) for pid in ids}
    with reading(engine) as conn:
        rows = conn.execute(select(Job.public_id, Job.status, Job.attempt, Job.runner_id)).all()
        claim_events = conn.execute(
            select(func.count()).select_from(JobEvent).where(JobEvent.to_status == Status.RUNNING)
        ).scalar_one()
    assert len(rows) == JOBS
    for public_id, status, attempt, runner_id in rows:
        assert (status, attempt, runner_id) == (Status.RUNNING, 1, owner[public_id]), public_id
    assert claim_events == JOBS


def test_the_migrations_build_exactly_the_models_schema(engine: Engine) -> None:
    """A model change without its migration (or the reverse) fails here."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)

    with engine.connect() as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        context = MigrationContext.configure(conn, opts={"include_object": include})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
