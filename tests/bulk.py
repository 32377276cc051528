"""The store's bulk path for finished history: many past jobs in a few large writes.

It copies jobs that already ran elsewhere (an older store, a benchmark's seed) with their
stages, events, metrics and results. The rows it writes are those the state machine would
have left: a `submitted` event, a claim and one terminal transition per started job, a result
beside `succeeded` only, so `runlab doctor` finds nothing to say. Only queued and terminal
jobs can be copied: a running job belongs to the runner holding its lease.

PostgreSQL takes the rows through COPY; SQLite through executemany in one transaction.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice, pairwise
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text

from jobstore import jsonb
from jobstore.enqueue import new_public_id
from jobstore.models import (
    TERMINAL,
    Job,
    StageStatus,
    Status,
    Sweep,
    table_of,
)
from jobstore.views import as_utc

jobs = table_of(Job)
sweeps_t = table_of(Sweep)
COPY_CACHE_KIB = 512 * 1024


@dataclass(frozen=True)
class PastJob:
    """One job as it ended; `metrics` maps a series name to its (step, value) points."""

    kind: str
    name: str
    owner: str
    params: dict[str, Any]
    status: Status
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    tags: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    chart: dict[str, Any] | None = None
    metrics: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)
    error_type: str | None = None
    error_message: str | None = None
    priority: int = 0
    # A child of a sweep: the sweep's public id (made with the first of its jobs that is
    # copied) and the point this job computes.
    sweep: str | None = None
    sweep_point: int | None = None

    def check(self) -> None:
        """The shapes the state machine guarantees; a record that breaks one is refused."""
        if self.status is Status.RUNNING:
            raise ValueError("a running job cannot be copied: a runner holds its lease")
        if (self.result is not None) != (self.status is Status.SUCCEEDED):
            raise ValueError(f"a result goes with succeeded only, not with {self.status}")
        if self.status in TERMINAL and self.finished_at is None:
            raise ValueError(f"a {self.status} job needs its finished time")
        if self.status is Status.QUEUED and (self.started_at or self.finished_at):
            raise ValueError("a queued job has neither started nor finished")
        if self.status is Status.SUCCEEDED and self.started_at is None:
            raise ValueError("a succeeded job needs its start time")
        times = [t for t in (self.created_at, self.started_at, self.finished_at) if t]
        if times != sorted(times):
            raise ValueError("created, started and finished times must be in that order")
        if (self.sweep is None) != (self.sweep_point is None):
            raise ValueError("a sweep's job names both its sweep and its point")


def simulated(
    rng: random.Random,
    owners: Sequence[str],
    tags: Sequence[str],
    kind: str,
    name: str,
    params: dict[str, Any],
    status: Status,
    times: tuple[datetime, datetime | None, datetime | None],
    result: dict[str, Any] | None,
    *,
    error: str,
) -> PastJob:
    """A past job of one `simulate` stage, as the history's tests and benchmark seed them.

    `rng` draws its owner from `owners`, then up to three of `tags`. `times` are its created,
    started and finished times. It keeps an estimate series once it started, `result` only if
    it succeeded, and a ValueError saying `error` if it failed.
    """
    created, started, finished = times
    failed = status is Status.FAILED
    return PastJob(
        kind=kind,
        name=name,
        owner=rng.choice(owners),
        params=params,
        status=status,
        created_at=created,
        started_at=started,
        finished_at=finished,
        tags=rng.sample(tags, rng.randint(0, 3)),
        result=result if status is Status.SUCCEEDED else None,
        metrics={"estimate": [(1.0, 0.5), (2.0, 0.25)]} if started else {},
        stages=["simulate"],
        error_type="ValueError" if failed else None,
        error_message=error if failed else None,
    )


def copy_jobs(engine: Engine, records: Iterable[PastJob], *, chunk: int = 20_000) -> list[str]:
    """Store every record, in chunks of one transaction each; return their public ids.

    A chunk's records are all checked before it is written: a bad one raises ValueError
    there, and the chunks before it stay stored.
    """
    out: list[str] = []
    it = iter(records)
    while batch := list(islice(it, chunk)):
        for r in batch:
            r.check()
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # Random keys (ids, names) touch index pages all over the file: keep them in
                # memory for the copy instead of SQLite's 2 MB default.
                conn.exec_driver_sql(f"PRAGMA cache_size=-{COPY_CACHE_KIB}")
            try:
                out += _copy_chunk(conn, batch)
            finally:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("PRAGMA cache_size=-2000")
    return out


def _copy_chunk(conn: Connection, batch: Sequence[PastJob]) -> list[str]:
    postgres = conn.dialect.name == "postgresql"
    first = _reserve_ids(conn, len(batch), postgres)
    public_ids = [new_public_id() for _ in batch]
    stamp = _pg_stamp if postgres else _sqlite_stamp
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
    sweep_ids = _sweeps(conn, batch)
    for i, (r, public_id) in enumerate(zip(batch, public_ids, strict=True)):
        _rows(first + i, public_id, r, rows, stamp, sweep_ids.get(r.sweep or ""))
    raw = conn.connection.driver_connection
    assert raw is not None
    for name, table_rows in rows.items():
        if table_rows:
            _write(raw, name, table_rows, postgres)
    return public_ids


def _sweeps(conn: Connection, batch: Sequence[PastJob]) -> dict[str, int]:
    """The row id of each sweep the batch's jobs name; a sweep not stored yet is stored as its
    first job here describes it: its kind, owner, name (up to " · ") and time."""
    firsts: dict[str, PastJob] = {}
    for r in batch:
        if r.sweep is not None:
            firsts.setdefault(r.sweep, r)
    if not firsts:
        return {}
    known = select(sweeps_t.c.public_id, sweeps_t.c.id).where(
        sweeps_t.c.public_id.in_(list(firsts))
    )
    have = dict(conn.execute(known).all())
    new = [
        {
            "public_id": key,
            "kind": r.kind,
            "name": r.name.split(" · ")[0],
            "owner": r.owner,
            "plan": {"axes": [], "method": None, "count": 0, "seed": None},
            "params": {},
            "idempotency_key": None,
            "queue": "default",
            "priority": r.priority,
            "created_at": r.created_at,
        }
        for key, r in firsts.items()
        if key not in have
    ]
    if new:
        conn.execute(sweeps_t.insert(), new)
        have = dict(conn.execute(known).all())
    return have


def _reserve_ids(conn: Connection, n: int, postgres: bool) -> int:
    """The first of `n` consecutive job ids no one else will take."""
    if postgres:
        seq = conn.execute(text("SELECT pg_get_serial_sequence('jobs', 'id')")).scalar_one()
        # Concurrent copies get disjoint blocks: the two steps run under an advisory lock,
        # held only for them (a sequence ignores transactions, so none need wait for a commit).
        conn.execute(text("SELECT pg_advisory_lock(hashtext(:s))"), {"s": seq})
        try:
            top = conn.execute(
                text("SELECT setval(CAST(:s AS regclass), nextval(CAST(:s AS regclass)) + :n - 1)"),
                {"s": seq, "n": n},
            ).scalar_one()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:s))"), {"s": seq})
        return int(top) - n + 1
    # SQLite: the transaction already holds the write lock (BEGIN IMMEDIATE).
    top = conn.execute(select(func.coalesce(func.max(jobs.c.id), 0))).scalar_one()
    return int(top) + 1


# Rows go to the driver as tuples in these orders: at a million jobs, SQLAlchemy's per-row
# parameter processing would cost more than the database's own work.
COLUMNS: dict[str, tuple[str, ...]] = {
    "jobs": (
        "id", "public_id", "kind", "name", "owner", "tags", "params", "priority", "queue",
        "status", "attempt", "max_attempts", "run_after", "created_at", "started_at",
        "finished_at", "progress", "error_type", "error_message", "cancel_requested",
        "stop_requested", "sweep_id", "sweep_point",
    ),
    "job_stages": (
        "job_id", "idx", "name", "status", "progress", "started_at", "finished_at",
    ),
    "job_events": (
        "job_id", "at", "attempt", "kind", "from_status", "to_status", "message",
    ),
    "job_metrics": ("job_id", "attempt", "name", "step", "value"),
    "job_results": ("job_id", "attempt", "summary", "chart", "created_at"),
}  # fmt: skip


def _sqlite_stamp(ts: datetime | None) -> str | None:
    """The text SQLAlchemy stores for a DateTime on SQLite, which comparisons rely on."""
    if ts is None:
        return None
    t = ts.astimezone(UTC)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}"
    )


def _pg_stamp(ts: datetime | None) -> datetime | None:
    return None if ts is None else as_utc(ts)


def _rows(
    job_id: int,
    public_id: str,
    r: PastJob,
    out: dict[str, list[tuple[Any, ...]]],
    stamp: Any,
    sweep_id: int | None = None,
) -> None:
    created, started, finished = stamp(r.created_at), stamp(r.started_at), stamp(r.finished_at)
    attempt = 1 if started else 0
    status = str(r.status)
    out["jobs"].append(
        (
            job_id,
            public_id,
            r.kind,
            r.name or f"{r.kind} {public_id[:6]}",
            r.owner,
            _dumps(r.tags),
            _dumps(r.params),
            r.priority,
            "default",
            status,
            attempt,
            3,
            created,
            created,
            started,
            finished,
            1.0 if r.status is Status.SUCCEEDED else 0.0,
            r.error_type,
            r.error_message,
            r.status is Status.CANCELLED,
            False,
            sweep_id,
            r.sweep_point,
        )
    )
    done = r.status is Status.SUCCEEDED
    stage_status = str(StageStatus.DONE if done else StageStatus.PENDING)
    spans = _stage_spans(r) if done else [(None, None)] * len(r.stages)
    for idx, (name, (began, ended)) in enumerate(zip(r.stages, spans, strict=True)):
        out["job_stages"].append(
            (
                job_id,
                idx,
                name,
                stage_status,
                1.0 if done else 0.0,
                stamp(began),
                stamp(ended),
            )
        )
    events = out["job_events"]
    events.append((job_id, created, 0, "transition", None, "queued", "submitted"))
    if started:
        events.append((job_id, started, 1, "transition", "queued", "running", "claimed"))
    if r.status in TERMINAL:
        src = "running" if started else "queued"
        events.append((job_id, finished, attempt, "transition", src, status, status))
    for name, points in r.metrics.items():
        out["job_metrics"] += [(job_id, attempt, name, s, v) for s, v in points]
    if r.result is not None:
        out["job_results"].append((job_id, attempt, _dumps(r.result), _dumps(r.chart), finished))


def _stage_spans(r: PastJob) -> list[tuple[datetime, datetime]]:
    """Nothing dates a copied job's stages: they share its run time evenly, end to end, so
    that estimates drawn from copied history see stages of a plausible length."""
    assert r.started_at is not None and r.finished_at is not None  # checked: succeeded
    n = len(r.stages)
    step = (r.finished_at - r.started_at) / max(1, n)
    bounds = [r.started_at + i * step for i in range(n)] + [r.finished_at]
    return list(pairwise(bounds))


def _dumps(value: Any) -> str | None:
    return None if value is None else jsonb.dumps(value)


def _write(raw: Any, name: str, rows: list[tuple[Any, ...]], postgres: bool) -> None:
    columns = ", ".join(COLUMNS[name])
    if postgres:
        with raw.cursor() as cur, cur.copy(f"COPY {name} ({columns}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        return
    marks = ", ".join("?" * len(COLUMNS[name]))
    cur = raw.cursor()
    try:
        cur.executemany(f"INSERT INTO {name} ({columns}) VALUES ({marks})", rows)
    finally:
        cur.close()
