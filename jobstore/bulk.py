"""The store's bulk path for finished history: many past jobs in a few large writes.

It copies jobs that already ran elsewhere (an older store, a benchmark's seed) with their
stages, events, metrics and results. The rows it writes are those the state machine would
have left: a `submitted` event, a claim and one terminal transition per started job, a result
beside `succeeded` only, so `runlab doctor` finds nothing to say. Only queued and terminal
jobs can be copied: a running job belongs to the runner holding its lease.

PostgreSQL takes the rows through COPY; SQLite through executemany in one transaction.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text

from jobstore.models import (
    TERMINAL,
    Job,
    JobEvent,
    JobMetric,
    JobResult,
    JobStage,
    StageStatus,
    Status,
)
from jobstore.transitions import new_public_id
from jobstore.views import as_utc

jobs = Job.__table__


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


def copy_jobs(engine: Engine, records: Iterable[PastJob], *, chunk: int = 20_000) -> list[str]:
    """Store every record, in chunks of one transaction each; return their public ids."""
    out: list[str] = []
    it = iter(records)
    while batch := list(islice(it, chunk)):
        for r in batch:
            r.check()
        with engine.begin() as conn:
            out += _copy_chunk(conn, batch)
    return out


def _copy_chunk(conn: Connection, batch: Sequence[PastJob]) -> list[str]:
    postgres = conn.dialect.name == "postgresql"
    first = _reserve_ids(conn, len(batch), postgres)
    public_ids = [new_public_id() for _ in batch]
    tables: dict[str, list[dict[str, Any]]] = {
        "jobs": [],
        "job_stages": [],
        "job_events": [],
        "job_metrics": [],
        "job_results": [],
    }
    for i, (r, public_id) in enumerate(zip(batch, public_ids, strict=True)):
        _rows(first + i, public_id, r, tables)
    for name, rows in tables.items():
        if rows:
            _write(conn, name, rows, postgres)
    return public_ids


def _reserve_ids(conn: Connection, n: int, postgres: bool) -> int:
    """The first of `n` consecutive job ids no one else will take."""
    if postgres:
        seq = conn.execute(text("SELECT pg_get_serial_sequence('jobs', 'id')")).scalar_one()
        # Under an advisory lock, so that concurrent copies get disjoint blocks.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": seq})
        top = conn.execute(
            text("SELECT setval(CAST(:s AS regclass), nextval(CAST(:s AS regclass)) + :n - 1)"),
            {"s": seq, "n": n},
        ).scalar_one()
        return int(top) - n + 1
    # SQLite: the transaction already holds the write lock (BEGIN IMMEDIATE).
    top = conn.execute(select(func.coalesce(func.max(jobs.c.id), 0))).scalar_one()
    return int(top) + 1


def _rows(job_id: int, public_id: str, r: PastJob, out: dict[str, list[dict[str, Any]]]) -> None:
    r = dataclasses.replace(
        r,
        created_at=as_utc(r.created_at),
        started_at=as_utc(r.started_at),
        finished_at=as_utc(r.finished_at),
    )
    started = r.started_at is not None
    attempt = 1 if started else 0
    out["jobs"].append(
        {
            "id": job_id,
            "public_id": public_id,
            "kind": r.kind,
            "name": r.name or f"{r.kind} {public_id[:6]}",
            "owner": r.owner,
            "tags": r.tags,
            "params": r.params,
            "idempotency_key": None,
            "priority": r.priority,
            "queue": "default",
            "status": str(r.status),
            "attempt": attempt,
            "max_attempts": 3,
            "run_after": r.created_at,
            "lease_until": None,
            "runner_id": None,
            "created_at": r.created_at,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "progress": 1.0 if r.status is Status.SUCCEEDED else 0.0,
            "stage": None,
            "error_type": r.error_type,
            "error_message": r.error_message,
            "cancel_requested": r.status is Status.CANCELLED,
            "stop_requested": False,
            "timeout_seconds": None,
            "versions": None,
        }
    )
    done = r.status is Status.SUCCEEDED
    for idx, name in enumerate(r.stages):
        out["job_stages"].append(
            {
                "job_id": job_id,
                "idx": idx,
                "name": name,
                "status": StageStatus.DONE if done else StageStatus.PENDING,
                "progress": 1.0 if done else 0.0,
                "started_at": r.started_at if done else None,
                "finished_at": r.finished_at if done else None,
                "message": None,
            }
        )
    events = out["job_events"]
    events.append(_event(job_id, 0, r.created_at, None, Status.QUEUED, "submitted"))
    if started:
        events.append(_event(job_id, 1, r.started_at, Status.QUEUED, Status.RUNNING, "claimed"))
    if r.status in TERMINAL:
        src = Status.RUNNING if started else Status.QUEUED
        events.append(_event(job_id, attempt, r.finished_at, src, r.status, str(r.status)))
    for name, points in r.metrics.items():
        out["job_metrics"] += [
            {"job_id": job_id, "attempt": attempt, "name": name, "step": s, "value": v}
            for s, v in points
        ]
    if r.result is not None:
        out["job_results"].append(
            {
                "job_id": job_id,
                "attempt": attempt,
                "summary": r.result,
                "chart": r.chart,
                "created_at": r.finished_at,
            }
        )


def _event(
    job_id: int, attempt: int, at: datetime | None, src: Status | None, dst: Status, msg: str
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "at": at,
        "attempt": attempt,
        "runner_id": None,
        "kind": "transition",
        "from_status": None if src is None else str(src),
        "to_status": str(dst),
        "level": None,
        "message": msg,
        "detail": None,
    }


TABLES = {
    "jobs": jobs,
    "job_stages": JobStage.__table__,
    "job_events": JobEvent.__table__,
    "job_metrics": JobMetric.__table__,
    "job_results": JobResult.__table__,
}
JSON_COLUMNS = {"tags", "params", "versions", "summary", "chart"}


def _write(conn: Connection, name: str, rows: list[dict[str, Any]], postgres: bool) -> None:
    table = TABLES[name]
    if not postgres:
        conn.execute(insert(table), rows)
        return
    columns = list(rows[0])
    if name != "jobs":
        columns = [c for c in columns if c != "id"]
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row([_pg_value(c, row[c]) for c in columns])


def _pg_value(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS:
        return None if value is None else json.dumps(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
