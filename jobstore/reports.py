"""What a runner writes while it runs a job: heartbeats, progress, stages, metrics, log lines.

Every write names the attempt it belongs to (`_fence`: `id`, `status = 'running'`, `attempt`).
When that matches no row the job was cancelled or claimed again, so the caller gets `LostJob`
(or `None` from a heartbeat) and must stop: a stale attempt can never write over the current
one. None of these writes changes `status`; `jobstore.transitions` ends an attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, and_, bindparam, case, func, insert, select, update

from jobstore.engine import db_later, db_now, reading
from jobstore.ledger import event_row, insert_events
from jobstore.models import Job, JobMetric, JobStage, Runner, StageStatus, Status, table_of
from jobstore.views import Cost
from runlab.errors import LostJob

jobs = table_of(Job)
stages_t = table_of(JobStage)
metrics_t = table_of(JobMetric)
runners_t = table_of(Runner)


@dataclass(frozen=True)
class Lease:
    """What a runner holds while it runs one attempt of a job."""

    job_id: int
    public_id: str
    kind: str
    params: dict[str, Any]
    attempt: int
    runner_id: str
    timeout_seconds: float | None = None
    max_attempts: int = 3
    queue: str = "default"


@dataclass
class Report:
    """A batch of a running job's writes, flushed in one fenced transaction."""

    progress: float | None = None
    stage: str | None = None
    stage_updates: list[StageUpdate] = field(default_factory=list)
    metrics: list[tuple[str, float, float]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    cost: Cost | None = None  # the attempt's tasks so far, in all (cumulative)

    def empty(self) -> bool:
        return (
            self.progress is None
            and self.stage is None
            and self.cost is None
            and not (self.stage_updates or self.metrics or self.logs)
        )


@dataclass(frozen=True)
class StageUpdate:
    idx: int
    name: str
    status: StageStatus | None = None
    progress: float | None = None
    started: bool = False
    finished: bool = False
    cost: Cost | None = None  # the stage's tasks so far (cumulative)


COST_COLUMNS = ("cpu_seconds", "task_seconds", "tasks", "peak_memory_bytes", "task_hosts")
NO_COST = dict.fromkeys(COST_COLUMNS)


def _cost_values(cost: Cost) -> dict[str, Any]:
    return {
        "cpu_seconds": cost.cpu_seconds,
        "task_seconds": cost.task_seconds,
        "tasks": cost.tasks,
        "peak_memory_bytes": cost.peak_memory_bytes,
        "task_hosts": dict(cost.hosts) or None,
    }


def cost_params(cost: Cost | None) -> dict[str, Any]:
    """The cost as bound parameters of an executemany (`b_cpu_seconds`, ...)."""
    return {} if cost is None else {f"b_{c}": v for c, v in _cost_values(cost).items()}


class Asked(NamedTuple):
    """What the user has asked of a running attempt, read back with every write it makes."""

    cancel: bool = False
    stop: bool = False


def fence(lease: Lease) -> Any:
    return and_(
        jobs.c.id == lease.job_id,
        jobs.c.status == Status.RUNNING,
        jobs.c.attempt == lease.attempt,
    )


def heartbeat(
    engine: Engine,
    runner_id: str,
    leases: Iterable[Lease],
    *,
    lease_seconds: float,
    workers: int | None = None,
) -> dict[int, Asked | None]:
    """Renew the runner's heartbeat and each lease.

    `workers` is how many Dask workers the runner's cluster has (None: not known); the
    runner's row keeps since when it has had none, in the database's clock, for the doctor.
    Returns, per job id, what the user asked of it, or None when the attempt lost the job.
    """
    values: dict[str, Any] = {"heartbeat_at": db_now()}
    if workers is not None:
        values["no_workers_since"] = (
            None if workers > 0 else func.coalesce(runners_t.c.no_workers_since, db_now())
        )
    out: dict[int, Asked | None] = {}
    with engine.begin() as conn:
        conn.execute(update(runners_t).where(runners_t.c.id == runner_id).values(**values))
        for lease in leases:
            row = conn.execute(
                update(jobs)
                .where(fence(lease))
                .values(lease_until=db_later(lease_seconds))
                .returning(jobs.c.cancel_requested, jobs.c.stop_requested)
            ).first()
            out[lease.job_id] = None if row is None else as_asked(row)
    return out


def as_asked(row: Any) -> Asked:
    return Asked(bool(row.cancel_requested), bool(row.stop_requested))


def asked(engine: Engine, lease: Lease) -> Asked | None:
    """What the user has asked of a running attempt, or None once the attempt lost the job.

    A read, for a driver that waits on Dask and so writes nothing: a cancel reaches it within
    a second rather than at the next heartbeat.
    """
    with reading(engine) as conn:
        row = conn.execute(
            select(jobs.c.cancel_requested, jobs.c.stop_requested).where(fence(lease))
        ).first()
    return None if row is None else as_asked(row)


def report(engine: Engine, lease: Lease, batch: Report, *, lease_seconds: float) -> Asked:
    """Write a batch of progress, stage changes, metrics and log lines for one attempt.

    Everything goes in one transaction behind the fence, so a stale attempt writes nothing.
    Returns what the user has asked of the job.
    """
    values: dict[str, Any] = {"lease_until": db_later(lease_seconds)}
    if batch.progress is not None:
        progress = min(1.0, max(0.0, batch.progress))
        values["progress"] = progress
        values["progress_at"] = case(
            (jobs.c.progress != progress, db_now()), else_=jobs.c.progress_at
        )
    if batch.stage is not None:
        values["stage"] = batch.stage
    with engine.begin() as conn:
        row = conn.execute(
            update(jobs)
            .where(fence(lease))
            .values(**values)
            .returning(jobs.c.cancel_requested, jobs.c.stop_requested)
        ).first()
        if row is None:
            raise LostJob(lease.job_id, lease.attempt)
        write_batch(conn, lease, batch)
        return as_asked(row)


def _coalesce(updates: Sequence[StageUpdate]) -> list[StageUpdate]:
    """One update per stage, in the order the stages were first touched: a short stage's
    start and end become one statement, with the later status and progress."""
    merged: dict[int, StageUpdate] = {}
    for su in updates:
        was = merged.get(su.idx)
        merged[su.idx] = (
            su
            if was is None
            else StageUpdate(
                su.idx,
                su.name,
                su.status if su.status is not None else was.status,
                su.progress if su.progress is not None else was.progress,
                was.started or su.started,
                was.finished or su.finished,
                su.cost if su.cost is not None else was.cost,
            )
        )
    return list(merged.values())


def _write_stages(conn: Connection, updates: Sequence[tuple[int, StageUpdate]]) -> None:
    """Stage updates as one executemany per stage and shape; a row not there yet is inserted.

    Stages go in the order they run, each statement stamped by the database's clock as it
    runs: a short job's stages that end and start in one batch keep their order in time.
    """
    shapes: dict[tuple[int, bool, bool, bool, bool, bool], list[tuple[int, StageUpdate]]] = {}
    for job_id, su in updates:
        shape = (
            su.idx,
            su.status is not None,
            su.progress is not None,
            su.started,
            su.finished,
            su.cost is not None,
        )
        shapes.setdefault(shape, []).append((job_id, su))
    for shape in sorted(shapes):
        group = shapes[shape]
        _, has_status, has_progress, started, finished, has_cost = shape
        if len(group) > 1 and conn.dialect.supports_sane_multi_rowcount:
            values: dict[str, Any] = {"name": bindparam("b_name")}
            if has_status:
                values["status"] = bindparam("b_status")
            if has_progress:
                values["progress"] = bindparam("b_progress")
            if started:
                values["started_at"] = db_now()
            if finished:
                values["finished_at"] = db_now()
            if has_cost:
                values.update({c: bindparam(f"b_{c}") for c in COST_COLUMNS})
            stmt = (
                update(stages_t)
                .where(
                    stages_t.c.job_id == bindparam("b_job"), stages_t.c.idx == bindparam("b_idx")
                )
                .values(**values)
            )
            params = [
                {
                    "b_job": job_id,
                    "b_idx": su.idx,
                    "b_name": su.name,
                    "b_status": su.status,
                    "b_progress": None if su.progress is None else min(1.0, max(0.0, su.progress)),
                    **cost_params(su.cost),
                }
                for job_id, su in group
            ]
            if conn.execute(stmt, params).rowcount == len(group):
                continue
        for job_id, su in group:  # one at a time: finds and inserts stages not declared up front
            _write_stage(conn, job_id, su)


def _write_stage(conn: Connection, job_id: int, su: StageUpdate) -> None:
    values: dict[str, Any] = {"name": su.name}
    if su.status is not None:
        values["status"] = su.status
    if su.progress is not None:
        values["progress"] = min(1.0, max(0.0, su.progress))
    if su.started:
        values["started_at"] = db_now()
    if su.finished:
        values["finished_at"] = db_now()
    if su.cost is not None:
        values.update(_cost_values(su.cost))
    done = conn.execute(
        update(stages_t)
        .where(stages_t.c.job_id == job_id, stages_t.c.idx == su.idx)
        .values(**values)
        .returning(stages_t.c.id)
    ).first()
    if done is None:  # a stage the kind did not declare up front
        values.setdefault("status", StageStatus.RUNNING)
        conn.execute(insert(stages_t).values(job_id=job_id, idx=su.idx, **values))


def write_batch(conn: Connection, lease: Lease, batch: Report | None) -> None:
    """Stage changes, metrics and log lines of one attempt; the caller has passed the fence."""
    write_batches(conn, [(lease, batch)])


def write_batches(conn: Connection, batches: Sequence[tuple[Lease, Report | None]]) -> None:
    """The reports of several attempts, a few executemany statements for all of them."""
    stages: list[tuple[int, StageUpdate]] = []
    metrics: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    costs: list[dict[str, Any]] = []
    for lease, batch in batches:
        if batch is None:
            continue
        if batch.cost is not None:
            costs.append({"b_job": lease.job_id, **cost_params(batch.cost)})
        stages.extend((lease.job_id, su) for su in _coalesce(batch.stage_updates))
        metrics.extend(
            {"job_id": lease.job_id, "attempt": lease.attempt, "name": n, "step": s, "value": v}
            for n, s, v in batch.metrics
        )
        logs.extend(
            event_row(
                lease.job_id, lease.attempt, msg, runner_id=lease.runner_id, kind="log", level=lvl
            )
            for lvl, msg in batch.logs
        )
    _write_stages(conn, stages)
    if costs:
        conn.execute(_WRITE_COST, costs)
    if metrics:
        conn.execute(insert(metrics_t), metrics)
    insert_events(conn, logs)


# Only ever run after the caller's fenced UPDATE of the same jobs, in the same transaction.
_WRITE_COST = (
    update(jobs)
    .where(jobs.c.id == bindparam("b_job"))
    .values({c: bindparam(f"b_{c}") for c in COST_COLUMNS})
)
