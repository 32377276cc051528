"""Every read the pages and the CLI make, each returning plain records from `views`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select

from jobstore import queues
from jobstore.engine import db_now, reading
from jobstore.models import (
    Job,
    JobEvent,
    JobMetric,
    JobResult,
    JobStage,
    Runner,
    Status,
    table_of,
)
from jobstore.views import (
    ActionView,
    AttemptView,
    Cost,
    ErrorView,
    JobCost,
    JobDetail,
    JobPage,
    JobSummary,
    LogLine,
    Overview,
    RunnerView,
    StageCost,
    StageView,
    as_utc,
)
from runlab.errors import InvalidParams, JobNotFound

jobs = table_of(Job)
PUBLIC_ID = re.compile(r"^[A-Za-z0-9_-]{8,32}$")
SUMMARY_COLUMNS = (
    jobs.c.public_id,
    jobs.c.kind,
    jobs.c.name,
    jobs.c.owner,
    jobs.c.status,
    jobs.c.attempt,
    jobs.c.progress,
    jobs.c.stage,
    jobs.c.created_at,
    jobs.c.started_at,
    jobs.c.finished_at,
    jobs.c.progress_at,
    jobs.c.partial,
    jobs.c.error_message,
    jobs.c.queue,
    jobs.c.priority,
)


MAX_ACTIONS = 200  # of a job's requests, the page lists the first this many
ERROR_LINE = 160  # characters of a failed job's message that a list shows


def first_line(message: str | None) -> str | None:
    """The first line of an error, cut to what a table cell shows."""
    if not message:
        return None
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line if len(line) <= ERROR_LINE else line[: ERROR_LINE - 1] + "…"


def _summary(r: Any) -> JobSummary:
    return JobSummary(
        id=r.public_id,
        kind=r.kind,
        name=r.name,
        owner=r.owner,
        status=Status(r.status),
        attempt=r.attempt,
        progress=float(r.progress),
        stage=r.stage,
        created_at=as_utc(r.created_at),
        started_at=as_utc(r.started_at),
        finished_at=as_utc(r.finished_at),
        progress_at=as_utc(r.progress_at),
        partial=bool(r.partial),
        error_line=first_line(r.error_message),
        queue=r.queue,
        priority=r.priority,
    )


def get_job(
    engine: Engine, public_id: str, *, log_lines: int = 50, max_points: int = 2000
) -> JobDetail:
    """One job with its stages, latest metrics, last log lines and result."""
    if not isinstance(public_id, str) or not PUBLIC_ID.match(public_id):
        raise JobNotFound(str(public_id))
    with reading(engine) as conn:
        row = conn.execute(select(jobs).where(jobs.c.public_id == public_id)).first()
        if row is None:
            raise JobNotFound(public_id)
        stages = conn.execute(
            select(JobStage.__table__).where(JobStage.job_id == row.id).order_by(JobStage.idx)
        ).all()
        result = conn.execute(
            select(JobResult.summary, JobResult.chart).where(JobResult.job_id == row.id)
        ).first()
        logs = conn.execute(
            select(JobEvent.at, JobEvent.attempt, JobEvent.level, JobEvent.message)
            .where(JobEvent.job_id == row.id, JobEvent.kind == "log")
            .order_by(JobEvent.id.desc())
            .limit(log_lines)
        ).all()
        traceback = None
        if row.status == Status.FAILED:
            traceback = conn.execute(
                select(JobEvent.detail)
                .where(JobEvent.job_id == row.id, JobEvent.to_status == Status.FAILED)
                .order_by(JobEvent.id.desc())
                .limit(1)
            ).scalar()
        series = _series(conn, row.id, max_points)
        attempts = _attempts(conn, row.id)
        actions = [
            ActionView(as_utc(a.at), a.actor, a.message)
            for a in conn.execute(
                select(JobEvent.at, JobEvent.actor, JobEvent.message)
                .where(JobEvent.job_id == row.id, JobEvent.actor.is_not(None))
                .order_by(JobEvent.id)
                .limit(MAX_ACTIONS)
            )
        ]
        position = _queue_position(conn, row.id) if row.status == Status.QUEUED else None
    base = _summary(row)
    return JobDetail(
        **base.__dict__,
        tags=list(row.tags or []),
        params=dict(row.params or {}),
        max_attempts=row.max_attempts,
        timeout_seconds=row.timeout_seconds,
        versions=dict(row.versions or {}),
        cancel_requested=bool(row.cancel_requested),
        stop_requested=bool(row.stop_requested),
        error=(
            ErrorView(row.error_type or "Error", row.error_message or "")
            if row.error_type or row.error_message
            else None
        ),
        traceback=traceback,
        stages=[
            StageView(
                s.idx,
                s.name,
                s.status,
                float(s.progress),
                as_utc(s.started_at),
                as_utc(s.finished_at),
            )
            for s in stages
        ],
        result=None if result is None else result.summary,
        chart=None if result is None else result.chart,
        series=series,
        logs=[
            LogLine(as_utc(x.at), x.attempt, x.level or "info", x.message) for x in reversed(logs)
        ],
        queue_position=position,
        attempts=attempts,
        actions=actions,
        lease_until=as_utc(row.lease_until),
        cost=_job_cost(row, stages),
    )


def _cost(r: Any) -> Cost:
    """A row's cost columns; NULL (nothing measured) reads as zero, the peak as unknown."""
    return Cost(
        float(r.cpu_seconds or 0.0),
        float(r.task_seconds or 0.0),
        int(r.tasks or 0),
        None if r.peak_memory_bytes is None else int(r.peak_memory_bytes),
        {str(h): int(n) for h, n in (r.task_hosts or {}).items()},
    )


def _job_cost(row: Any, stages: Sequence[Any]) -> JobCost | None:
    """The latest attempt's cost, or None while it has reported none (queued, or run before
    the store kept costs)."""
    if row.tasks is None:
        return None
    return JobCost(_cost(row), [StageCost(s.name, _cost(s)) for s in stages])


def _attempts(conn: Connection, job_id: int) -> list[AttemptView]:
    """Each attempt from the ledger: its claim, and the transition that ended it."""
    rows = conn.execute(
        select(
            JobEvent.attempt,
            JobEvent.runner_id,
            JobEvent.at,
            JobEvent.from_status,
            JobEvent.to_status,
            JobEvent.message,
            Runner.dashboard_link,
        )
        .outerjoin(Runner, and_(Runner.id == JobEvent.runner_id, Runner.stopped_at.is_(None)))
        .where(JobEvent.job_id == job_id, JobEvent.kind == "transition")
        .order_by(JobEvent.id)
    ).all()
    out: list[AttemptView] = []
    for r in rows:
        if r.to_status == Status.RUNNING:
            out.append(
                AttemptView(
                    r.attempt, r.runner_id, as_utc(r.at), None, "running", None, r.dashboard_link
                )
            )
        elif r.from_status == Status.RUNNING and out and out[-1].attempt == r.attempt:
            outcome = "requeued" if r.to_status == Status.QUEUED else r.to_status
            out[-1] = replace(out[-1], ended_at=as_utc(r.at), outcome=outcome, note=r.message)
    return out


def _series(
    conn: Connection, job_id: int, max_points: int
) -> dict[str, tuple[list[float], list[float]]]:
    """The metric series of the latest attempt that wrote any, thinned to `max_points` each."""
    latest = conn.execute(
        select(func.max(JobMetric.attempt)).where(JobMetric.job_id == job_id)
    ).scalar()
    if latest is None:
        return {}
    rows = conn.execute(
        select(JobMetric.name, JobMetric.step, JobMetric.value)
        .where(JobMetric.job_id == job_id, JobMetric.attempt == latest)
        .order_by(JobMetric.name, JobMetric.step, JobMetric.id)
    ).all()
    out: dict[str, tuple[list[float], list[float]]] = {}
    for name, step, value in rows:
        xs, ys = out.setdefault(name, ([], []))
        xs.append(step)
        ys.append(value)
    return {name: thin(xs, ys, max_points) for name, (xs, ys) in out.items()}


def thin(xs: list[float], ys: list[float], max_points: int) -> tuple[list[float], list[float]]:
    """Every k-th point and always the last, so a chart keeps its shape and its latest value."""
    if len(xs) <= max_points:
        return xs, ys
    k = -(-len(xs) // max(1, max_points))
    keep = list(range(0, len(xs), k))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def _queue_position(conn: Connection, job_id: int) -> int:
    """1 for the next job its queue's claim takes (`jobstore.queues`)."""
    return (queues.ahead_of(conn, job_id) or 0) + 1


def owners(engine: Engine, public_ids: Sequence[str]) -> dict[str, str]:
    """The owner of each of these jobs that exists, by public id."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(jobs.c.public_id, jobs.c.owner).where(jobs.c.public_id.in_(list(public_ids)))
        ).all()
    return {r.public_id: r.owner for r in rows}


def queue_position(engine: Engine, public_id: str) -> int | None:
    """Position of a queued job in the queue, or None once it has left it."""
    with reading(engine) as conn:
        row = conn.execute(
            select(jobs.c.id, jobs.c.status).where(jobs.c.public_id == public_id)
        ).first()
        if row is None:
            raise JobNotFound(public_id)
        if row.status != Status.QUEUED:
            return None
        return _queue_position(conn, row.id)


def _filters(status: Sequence[str] | None, kind: Sequence[str] | None) -> list[Any]:
    where = []
    if status:
        known = {s.value for s in Status}
        bad = [s for s in status if s not in known]
        if bad:
            raise InvalidParams({"status": f"unknown status {bad[0]!r}; one of {', '.join(known)}"})
        where.append(jobs.c.status.in_(list(status)))
    if kind:
        where.append(jobs.c.kind.in_(list(kind)))
    return where


def list_jobs(
    engine: Engine,
    *,
    status: Sequence[str] | None = None,
    kind: Sequence[str] | None = None,
    limit: int = 25,
    offset: int = 0,
) -> JobPage:
    """A page of jobs, newest first, filtered and paged in the database."""
    limit = max(1, min(limit, 500))
    offset = max(0, offset)
    where = _filters(status, kind)
    with reading(engine) as conn:
        rows = conn.execute(
            select(*SUMMARY_COLUMNS)
            .where(*where)
            .order_by(jobs.c.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        total = conn.execute(select(func.count()).select_from(jobs).where(*where)).scalar_one()
    return JobPage([_summary(r) for r in rows], int(total), offset, limit)


def queued_jobs(engine: Engine, *, limit: int = 50) -> list[tuple[int, JobSummary]]:
    """The waiting jobs in the claim's order, each with its position in its own queue.

    The first `limit` in the order across queues hold, for each queue, its first jobs in that
    queue's own order, so counting a queue's jobs down the list gives each one's place."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(*SUMMARY_COLUMNS)
            .where(jobs.c.status == Status.QUEUED)
            .order_by(*queues.CLAIM_ORDER)
            .limit(limit)
        ).all()
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        seen[r.queue] = seen.get(r.queue, 0) + 1
        out.append((seen[r.queue], _summary(r)))
    return out


def running_jobs(engine: Engine, *, limit: int = 100) -> list[JobSummary]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(*SUMMARY_COLUMNS)
            .where(jobs.c.status == Status.RUNNING)
            .order_by(jobs.c.id)
            .limit(limit)
        ).all()
    return [_summary(r) for r in rows]


def running_among(engine: Engine, public_ids: Sequence[str]) -> list[JobSummary]:
    """The jobs of `public_ids` that are running now, read through the unique public id."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(*SUMMARY_COLUMNS)
            .where(jobs.c.public_id.in_(list(public_ids)), jobs.c.status == Status.RUNNING)
            .order_by(jobs.c.id)
        ).all()
    return [_summary(r) for r in rows]


def runners(engine: Engine, *, alive_within: float) -> list[RunnerView]:
    """Runners that have not said they stopped; silent ones are reported as not alive."""
    r = table_of(Runner)
    with reading(engine) as conn:
        now = as_utc(conn.execute(select(db_now())).scalar_one())
        rows = conn.execute(
            select(r).where(r.c.stopped_at.is_(None)).order_by(r.c.started_at.desc())
        ).all()
        counts: dict[str | None, int] = dict(
            conn.execute(
                select(jobs.c.runner_id, func.count())
                .where(jobs.c.status == Status.RUNNING)
                .group_by(jobs.c.runner_id)
            ).all()
        )
    out = []
    for x in rows:
        beat = as_utc(x.heartbeat_at)
        age = max(0.0, (now - beat).total_seconds())
        out.append(
            RunnerView(
                id=x.id,
                host=x.host,
                pid=x.pid,
                concurrency=x.concurrency,
                started_at=as_utc(x.started_at),
                heartbeat_at=beat,
                heartbeat_age=age,
                alive=age <= alive_within,
                running_jobs=int(counts.get(x.id, 0)),
                scheduler_address=x.scheduler_address,
                dashboard_link=x.dashboard_link,
                queues=None if x.queues is None else list(x.queues),
            )
        )
    return out


def overview(engine: Engine, *, alive_within: float, recent: int = 10) -> Overview:
    with reading(engine) as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                select(jobs.c.status, func.count())
                .where(jobs.c.status.in_([Status.QUEUED, Status.RUNNING]))
                .group_by(jobs.c.status)
            ).all()
        )
        running = conn.execute(
            select(*SUMMARY_COLUMNS)
            .where(jobs.c.status == Status.RUNNING)
            .order_by(jobs.c.id)
            .limit(20)
        ).all()
        latest = conn.execute(
            select(*SUMMARY_COLUMNS).order_by(jobs.c.id.desc()).limit(recent)
        ).all()
    alive = sum(1 for r in runners(engine, alive_within=alive_within) if r.alive)
    return Overview(
        queued=int(counts.get(Status.QUEUED, 0)),
        running=int(counts.get(Status.RUNNING, 0)),
        runners_alive=alive,
        running_jobs=[_summary(r) for r in running],
        recent_jobs=[_summary(r) for r in latest],
    )


def finished_since(
    engine: Engine, owner: str, since: datetime, *, limit: int = 5
) -> tuple[datetime, list[JobSummary]]:
    """The owner's jobs that ended after `since`, oldest first, and the store's clock now.
    A sweep's jobs are not among them: the sweep is told of as a whole (`sweeps.ended_since`).

    Read through the (finished_at, id) index: a few recent rows, however big the store.
    """
    with reading(engine) as conn:
        now = as_utc(conn.execute(select(db_now())).scalar_one())
        stamp = since.astimezone(UTC)
        if engine.dialect.name != "postgresql":  # SQLite keeps naive UTC text
            stamp = stamp.replace(tzinfo=None)
        rows = conn.execute(
            select(*SUMMARY_COLUMNS)
            .where(jobs.c.finished_at > stamp, jobs.c.owner == owner, jobs.c.sweep_id.is_(None))
            .order_by(jobs.c.finished_at, jobs.c.id)
            .limit(limit)
        ).all()
    return now, [_summary(r) for r in rows]
