"""The store's own cost of the claim order: one queue against 8 queues, priorities and owners.

`bench_dispatch.py` times real runners, whose figures mix the store's work with the runner's
threads. This takes the runners away. For each store, `--jobs` zero-work jobs are queued
through the bulk path, either in one queue (one owner, one priority: the claim takes them in
the order they were stored) or as `bench_dispatch.py`'s queues run draws them (8 queues,
priorities 0-10, 20 owners). Then one thread claims them `--claim` at a time and stores their
results `--group` at a time (about what `bench_dispatch.py`'s busy runner does on average),
through `transitions.claim` and `transitions.succeed_many`.

Printed for each store and order, medians of `--repeats` fresh stores:
- milliseconds of store time per job, claim and result together;
- what the store wrote per job: on SQLite, WAL frames (each one a whole page, counted in a
  pass of its own with automatic checkpoints off); on PostgreSQL, bytes of WAL;
- on SQLite, the same once every index of `jobs` except the claim's is dropped after queuing:
  what is left is each job's own row, its events, its stage and its result.

The mixed order takes jobs in an order unrelated to the order they were stored in, so each
claim and each group commit touches as many table and index pages as it has jobs, where one
queue's touch a few neighbouring pages. SQLite writes every touched page whole into its WAL at
each commit; PostgreSQL's WAL holds mostly the changed rows.
Run: .venv/bin/python benchmarks/bench_claim_order.py [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_dispatch import (  # noqa: E402
    KIND,
    KIND_MODULE,
    PG_DEFAULT,
    _drawn,
    fresh_store,
    pg_reachable,
)
from compute import intake, registry  # noqa: E402
from jobstore import transitions  # noqa: E402
from jobstore.enqueue import enqueue_many  # noqa: E402

ORDERS = ("one queue", "8 queues, 20 owners")
RUNNER = "bench-claim-order"


def queue_jobs(engine: Engine, count: int, mixed: bool, seed: int) -> None:
    if mixed:
        draw = random.Random(seed)
        enqueue_many(engine, [intake.check(KIND, {}, **_drawn(draw, True)) for _ in range(count)])
    else:
        intake.submit_many(engine, KIND, [{}] * count)


def keep_only_claim_index(engine: Engine) -> None:
    """Drop every index of `jobs` but the claim's and the unique keys: what a job costs at least."""
    with engine.begin() as conn:
        names = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' "
            "AND sql IS NOT NULL AND name != 'ix_jobs_claim'"
        ).scalars()
        for name in list(names):
            conn.exec_driver_sql(f'DROP INDEX "{name}"')


def drain(engine: Engine, claim: int, group: int) -> tuple[int, float]:
    """Claim and succeed every queued job; returns (jobs, seconds)."""
    done = 0
    started = time.perf_counter()
    while True:
        leases: list[transitions.Lease] = []
        while len(leases) < group:
            got = transitions.claim(engine, RUNNER, limit=min(claim, group - len(leases)))
            if not got:
                break
            leases += got
        if not leases:
            return done, time.perf_counter() - started
        ok = [transitions.Success(lease, {"ok": 1}) for lease in leases]
        done += len(transitions.succeed_many(engine, ok))


def sqlite_file(engine: Engine) -> str:
    path = make_url(str(engine.url)).database
    assert path
    return path


def wal_frames(engine: Engine, run: Callable[[], int]) -> float:
    """WAL frames written per job by `run`, with automatic checkpoints off meanwhile."""

    @event.listens_for(engine, "connect")
    def _no_checkpoints(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    engine.dispose()
    path = sqlite_file(engine)
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = raw.execute("PRAGMA page_size").fetchone()[0]
    jobs = run()
    wal = Path(path + "-wal")
    frames = max(0, wal.stat().st_size - 32) // (24 + page) if wal.exists() else 0
    return frames / max(1, jobs)


def wal_position(engine: Engine) -> str:
    """PostgreSQL's WAL insert position: with `wal_since`, what a run wrote (other sessions'
    writes included, so the server should be otherwise idle)."""
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar())


def wal_since(engine: Engine, before: str) -> float:
    with engine.connect() as conn:
        return float(
            conn.execute(
                text("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :b)"), {"b": before}
            ).scalar_one()
        )


@contextlib.contextmanager
def queued(
    backend: str, pg_url: str, tmp: Path, label: str, opts: dict[str, Any], seed: int
) -> Iterator[Engine]:
    """A fresh store with the run's jobs queued, and on `floor` its other indexes dropped."""
    with fresh_store(backend, pg_url, tmp, label) as (_url, engine):
        queue_jobs(engine, opts["jobs"], opts["order"] != ORDERS[0], seed=seed)
        if opts["floor"]:
            keep_only_claim_index(engine)
        yield engine


def drained(engine: Engine, label: str, opts: dict[str, Any]) -> tuple[int, float]:
    """(jobs, ms per job) of draining every queued job; SystemExit if one was not stored."""
    n, seconds = drain(engine, opts["claim"], opts["group"])
    if n != opts["jobs"]:
        raise SystemExit(f"{label}: {n} of {opts['jobs']} jobs stored")
    return n, seconds / n * 1e3


def measure(
    backend: str, pg_url: str, tmp: Path, label: str, opts: dict[str, Any]
) -> tuple[float, float]:
    """(ms of store time per job, writes per job), each the median of the repeats."""
    times: list[float] = []
    writes: list[float] = []
    for r in range(opts["repeats"]):
        with queued(backend, pg_url, tmp, f"{label}-t{r}", opts, r) as engine:
            before = wal_position(engine) if backend == "postgres" else None
            n, ms = drained(engine, label, opts)
            times.append(ms)
            if before is not None:
                writes.append(wal_since(engine, before) / n)
                continue
        # SQLite's frames in a pass of their own: with checkpoints off the WAL grows, which
        # changes the time.
        with queued(backend, pg_url, tmp, f"{label}-w{r}", opts, r) as engine:
            writes.append(wal_frames(engine, lambda e=engine: drained(e, label, opts)[0]))
    return statistics.median(times), statistics.median(writes)


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgres", "both"]),
    default=None,
    help="Default: both when PostgreSQL answers, else sqlite.",
)
@click.option("--database-url", default=PG_DEFAULT, show_default=True)
@click.option("--jobs", default=5000, show_default=True, help="Jobs per store.")
@click.option("--claim", default=10, show_default=True, help="Jobs per claim.")
@click.option("--group", default=20, show_default=True, help="Results per commit.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1, 20))
def main(
    backend: str | None, database_url: str, jobs: int, claim: int, group: int, repeats: int
) -> None:
    if backend is None:
        backend = "both" if pg_reachable(database_url) else "sqlite"
    elif backend != "sqlite" and not pg_reachable(database_url):
        raise SystemExit(f"PostgreSQL does not answer at {database_url}")
    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    registry.load([KIND_MODULE])
    print(
        f"{jobs} jobs per store, claimed {claim} and stored {group} at a time; medians of {repeats}"
    )
    rows: list[tuple[str, str, float, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-claim-order-") as folder:
        tmp = Path(folder)
        for b in backends:
            variants = [False, True] if b == "sqlite" else [False]
            for floor in variants:
                base = float("nan")
                for order in ORDERS:
                    opts = {
                        "order": order,
                        "jobs": jobs,
                        "claim": claim,
                        "group": group,
                        "repeats": repeats,
                        "floor": floor,
                    }
                    label = f"{b}-{'floor-' if floor else ''}{ORDERS.index(order)}"
                    ms, written = measure(b, database_url, tmp, label, opts)
                    base = ms if order == ORDERS[0] else base
                    unit = f"{written:.1f} WAL frames" if b == "sqlite" else f"{written:,.0f} B"
                    store = b + (", only the claim's index" if floor else "")
                    rows.append((store, order, ms, unit, f"{base / ms:.0%}"))
                    print(f"{store}: {order} done", flush=True)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'store':<{width}}  {'order':<20}  {'ms/job':>7}  {'written/job':>16}  speed")
    for store, order, ms, unit, speed in rows:
        print(f"{store:<{width}}  {order:<20}  {ms:7.3f}  {unit:>16}  {speed:>5}")
    print("speed: one queue's store time per job over this row's (100 % on one queue's rows)")


if __name__ == "__main__":
    main()
