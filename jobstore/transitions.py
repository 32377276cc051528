"""Every write that changes a job's state, each one a single fenced statement.

Pages, the CLI and the runner call these verbs; none of them writes `status` itself. A runner's
write names the attempt it belongs to (`WHERE id = :id AND status = :expected AND attempt =
:attempt`). When that matches no row the job was cancelled or claimed again, so the caller gets
`LostJob` and must stop: a stale attempt can never write over the current one.
"""

from __future__ import annotations

import enum
import functools
import logging
import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    case,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from jobstore.engine import db_later, db_now, is_postgres, reading
from jobstore.models import (
    Job,
    JobEvent,
    JobMetric,
    JobResult,
    JobStage,
    Runner,
    StageStatus,
    Status,
    table_of,
)
from jobstore.views import Cost
from runlab.errors import InvalidParams, JobNotFound, LostJob
from runlab.text import bad_character

log = logging.getLogger(__name__)

jobs = table_of(Job)
stages_t = table_of(JobStage)
events_t = table_of(JobEvent)
metrics_t = table_of(JobMetric)
results_t = table_of(JobResult)
runners_t = table_of(Runner)

NOTIFY_CHANNEL = "runlab_jobs"
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
# The columns' own sizes, checked before SQL so that both backends refuse the same input:
# SQLite would store a longer value where PostgreSQL refuses it.
MAX_NAME_LENGTH = 200
MAX_OWNER_LENGTH = 100
MAX_KEY_LENGTH = 200
MAX_PRIORITY = 1_000_000

# The only moves a job can make; a pair missing here cannot happen.
ALLOWED: dict[tuple[Status, Status], str] = {
    (Status.QUEUED, Status.RUNNING): "claimed",
    (Status.QUEUED, Status.CANCELLED): "cancelled while queued",
    (Status.RUNNING, Status.SUCCEEDED): "succeeded",
    (Status.RUNNING, Status.FAILED): "failed",
    (Status.RUNNING, Status.CANCELLED): "cancelled while running",
    (Status.RUNNING, Status.QUEUED): "requeued",
}


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


COST_COLUMNS = ("cpu_seconds", "task_seconds", "tasks", "peak_memory_bytes")
NO_COST = dict.fromkeys(COST_COLUMNS)


def _cost_values(cost: Cost) -> dict[str, Any]:
    return {
        "cpu_seconds": cost.cpu_seconds,
        "task_seconds": cost.task_seconds,
        "tasks": cost.tasks,
        "peak_memory_bytes": cost.peak_memory_bytes,
    }


def _cost_params(cost: Cost | None) -> dict[str, Any]:
    """The cost as bound parameters of an executemany (`b_cpu_seconds`, ...)."""
    return {} if cost is None else {f"b_{c}": v for c, v in _cost_values(cost).items()}


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"
    REQUESTED = "requested"
    ALREADY_FINISHED = "already finished"


class StopOutcome(enum.StrEnum):
    REQUESTED = "requested"
    NOT_STARTED = "not started"
    NOT_STOPPABLE = "not stoppable"
    ALREADY_FINISHED = "already finished"


class Asked(NamedTuple):
    """What the user has asked of a running attempt, read back with every write it makes."""

    cancel: bool = False
    stop: bool = False


def new_public_id() -> str:
    """96 random bits, URL-safe: the only id shown or shared.

    Never with a leading "-", which a command line would read as an option (`runlab show -x…`).
    """
    while True:
        public_id = secrets.token_urlsafe(12)
        if not public_id.startswith("-"):
            return public_id


def _event_row(
    job_id: int,
    attempt: int,
    message: str,
    *,
    kind: str = "transition",
    runner_id: str | None = None,
    from_status: Status | None = None,
    to_status: Status | None = None,
    level: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """One event's parameters for `_insert_events`, which stamps it with the database's clock."""
    return {
        "job_id": job_id,
        "attempt": attempt,
        "runner_id": runner_id,
        "kind": kind,
        "from_status": from_status,
        "to_status": to_status,
        "level": level,
        "message": message,
        "detail": detail,
    }


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Many events in one executemany, each stamped by the database's clock."""
    if rows:
        conn.execute(_INSERT_EVENT, rows)


def _transition(
    conn: Connection,
    job_id: int,
    attempt: int,
    src: Status,
    dst: Status,
    *,
    actor: str | None = None,
    detail: str | None = None,
    message: str | None = None,
    also: Any = None,
    **values: Any,
) -> Row[Any]:
    """The one fenced status write. Zero rows matched means the caller lost the job.

    `also` adds a condition to the fence, such as "the lease has lapsed" for the reaper.
    """
    if (src, dst) not in ALLOWED:
        raise ValueError(f"no transition from {src} to {dst}")
    fence = [jobs.c.id == job_id, jobs.c.status == src, jobs.c.attempt == attempt]
    if also is not None:
        fence.append(also)
    row = conn.execute(
        update(jobs).where(*fence).values(status=dst, **values).returning(jobs.c.id, jobs.c.status)
    ).first()
    if row is None:
        raise LostJob(job_id, attempt)
    _insert_events(
        conn,
        [
            _event_row(
                job_id,
                attempt,
                message or ALLOWED[(src, dst)],
                runner_id=actor,
                from_status=src,
                to_status=dst,
                detail=detail,
            )
        ],
    )
    return row


def _notify(conn: Connection) -> None:
    if is_postgres(conn):
        conn.execute(text("SELECT pg_notify(:ch, '')"), {"ch": NOTIFY_CHANNEL})


# --- submit -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NewJob:
    """A job that passed every check, ready to insert."""

    kind: str
    params: dict[str, Any]
    stage_names: list[str]
    name: str
    owner: str
    tags: list[str]
    priority: int
    max_attempts: int
    timeout_seconds: float | None
    idempotency_key: str | None


def _checked(
    kind: str,
    params: Mapping[str, Any],
    *,
    name: str | None,
    idempotency_key: str | None,
    owner: str,
    tags: Sequence[str],
    priority: int,
    max_attempts: int,
    timeout_seconds: float | None,
) -> _NewJob:
    """Every check a job must pass before anything is stored; InvalidParams names the field."""
    from compute import registry  # the kinds own their parameter models

    spec = registry.get(kind)
    clean = registry.validate(kind, params)
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        errors["name"] = f"must be at most {MAX_NAME_LENGTH} characters"
    elif why := bad_character(name):
        errors["name"] = why
    tags = [str(t).strip() for t in tags if str(t).strip()]
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH for t in tags):
        errors["tags"] = f"at most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} characters each"
    elif why := next(filter(None, map(bad_character, tags)), None):
        errors["tags"] = why
    if len(owner) > MAX_OWNER_LENGTH:
        errors["owner"] = f"must be at most {MAX_OWNER_LENGTH} characters"
    elif why := bad_character(owner):
        errors["owner"] = why
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        errors["priority"] = f"must be an integer between {-MAX_PRIORITY} and {MAX_PRIORITY}"
    if not 1 <= max_attempts <= 100:
        errors["max_attempts"] = "must be an integer between 1 and 100"
    if timeout_seconds is None:
        timeout_seconds = spec.timeout_seconds
    if timeout_seconds is not None and not 1 <= timeout_seconds <= 30 * 86400:
        errors["timeout_seconds"] = "must be a number between 1 and 2592000"
    if idempotency_key is not None:
        if not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
            errors["idempotency_key"] = f"must be 1 to {MAX_KEY_LENGTH} characters"
        elif why := bad_character(idempotency_key):
            errors["idempotency_key"] = why
    if errors:
        raise InvalidParams(errors)
    return _NewJob(
        kind,
        clean,
        spec.stage_names(clean),
        name,
        owner,
        tags,
        priority,
        max_attempts,
        timeout_seconds,
        idempotency_key,
    )


def check(
    kind: str,
    params: Mapping[str, Any],
    *,
    name: str | None = None,
    idempotency_key: str | None = None,
    owner: str = "",
    tags: Sequence[str] = (),
    priority: int = 0,
    max_attempts: int = 3,
    timeout_seconds: float | None = None,
) -> None:
    """Every check `submit` makes, with nothing stored: an edge that keeps a file for the job
    (an upload) keeps it only once the job would be taken."""
    _checked(
        kind,
        params,
        name=name,
        idempotency_key=idempotency_key,
        owner=owner,
        tags=tags,
        priority=priority,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
    )


_INSERT_JOB = (
    insert(jobs)
    .values(run_after=db_now(), created_at=db_now())
    .returning(jobs.c.id, sort_by_parameter_order=True)
)
_INSERT_SUBMITTED = insert(events_t).values(
    at=db_now(), attempt=0, kind="transition", to_status=Status.QUEUED, message="submitted"
)


def _insert_jobs(conn: Connection, new: Sequence[_NewJob]) -> list[str]:
    """Rows, stages and `submitted` events of checked jobs, a few executemany statements."""
    public_ids = [new_public_id() for _ in new]
    rows = [
        {
            "public_id": public_id,
            "kind": j.kind,
            "name": j.name or f"{j.kind} {public_id[:6]}",
            "owner": j.owner,
            "tags": j.tags,
            "params": j.params,
            "idempotency_key": j.idempotency_key,
            "priority": j.priority,
            "queue": "default",
            "status": Status.QUEUED,
            "attempt": 0,
            "max_attempts": j.max_attempts,
            "timeout_seconds": j.timeout_seconds,
            "progress": 0.0,
            "cancel_requested": False,
        }
        for public_id, j in zip(public_ids, new, strict=True)
    ]
    ids = list(conn.execute(_INSERT_JOB, rows).scalars())
    stages = [
        {"job_id": job_id, "idx": i, "name": s, "status": StageStatus.PENDING}
        for job_id, j in zip(ids, new, strict=True)
        for i, s in enumerate(j.stage_names)
    ]
    if stages:
        conn.execute(insert(stages_t), stages)
    conn.execute(_INSERT_SUBMITTED, [{"job_id": job_id} for job_id in ids])
    return public_ids


def submit(
    engine: Engine,
    kind: str,
    params: Mapping[str, Any],
    *,
    name: str | None = None,
    idempotency_key: str | None = None,
    owner: str = "",
    tags: Sequence[str] = (),
    priority: int = 0,
    max_attempts: int = 3,
    timeout_seconds: float | None = None,
) -> str:
    """Validate, store and queue a job; return its public id once it is committed."""
    job = _checked(
        kind,
        params,
        name=name,
        idempotency_key=idempotency_key,
        owner=owner,
        tags=tags,
        priority=priority,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
    )
    if idempotency_key is not None:
        existing = _by_idempotency_key(engine, job, params)
        if existing is not None:
            return existing
    try:
        with engine.begin() as conn:
            (public_id,) = _insert_jobs(conn, [job])
            _notify(conn)
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = _by_idempotency_key(engine, job, params)
        if existing is None:
            raise
        return existing
    return public_id


def submit_many(
    engine: Engine,
    kind: str,
    params: Sequence[Mapping[str, Any]],
    *,
    owner: str = "",
    tags: Sequence[str] = (),
    priority: int = 0,
    max_attempts: int = 3,
    timeout_seconds: float | None = None,
    chunk: int = 1000,
) -> list[str]:
    """Queue many jobs of one kind in one transaction: all of them, or none.

    Every job is checked first; a bad one raises InvalidParams with its fields prefixed by its
    position (`3.samples`), before anything is stored.
    """
    from compute import registry

    registry.get(kind)  # an unknown kind is one error, not one per job
    checked: list[_NewJob] = []
    for i, p in enumerate(params):
        try:
            checked.append(
                _checked(
                    kind,
                    p,
                    name=None,
                    idempotency_key=None,
                    owner=owner,
                    tags=tags,
                    priority=priority,
                    max_attempts=max_attempts,
                    timeout_seconds=timeout_seconds,
                )
            )
        except InvalidParams as exc:
            raise InvalidParams({f"{i}.{k}": v for k, v in exc.errors.items()}) from None
    out: list[str] = []
    with engine.begin() as conn:
        for start in range(0, len(checked), chunk):
            out.extend(_insert_jobs(conn, checked[start : start + chunk]))
        if out:
            _notify(conn)
    return out


def rerun(engine: Engine, public_id: str, *, owner: str = "") -> str:
    """Queue a new job of the same kind with the same parameters, seed included.

    The stored parameters are the validated ones, with the seed the first run drew, so the
    new job computes the same numbers whenever the software versions match.
    """
    with reading(engine) as conn:
        row = conn.execute(
            select(jobs.c.kind, jobs.c.name, jobs.c.params, jobs.c.tags, jobs.c.max_attempts).where(
                jobs.c.public_id == public_id
            )
        ).first()
    if row is None:
        raise JobNotFound(public_id)
    return submit(
        engine,
        row.kind,
        dict(row.params),
        name=f"{row.name} (re-run)"[:MAX_NAME_LENGTH],
        owner=owner,
        tags=list(row.tags or []),
        max_attempts=row.max_attempts,
    )


def _by_idempotency_key(engine: Engine, job: _NewJob, raw: Mapping[str, Any]) -> str | None:
    """The job already stored under `job`'s key, if any; InvalidParams if it is another job.

    The same key must mean the same request: another kind or other parameters under it is a
    mistake worth saying, not a reason to hand back a job the caller did not ask for. A seed
    the caller left out is drawn afresh each time, so it is not compared.
    """
    with reading(engine) as conn:
        row = conn.execute(
            select(jobs.c.public_id, jobs.c.kind, jobs.c.params).where(
                jobs.c.idempotency_key == job.idempotency_key
            )
        ).first()
    if row is None:
        return None
    drawn = {"seed"} if raw.get("seed") is None else set()
    mine = {k: v for k, v in job.params.items() if k not in drawn}
    theirs = {k: v for k, v in dict(row.params).items() if k not in drawn}
    if row.kind != job.kind or mine != theirs:
        what = "a job of another kind" if row.kind != job.kind else "other parameters"
        raise InvalidParams(
            {
                "idempotency_key": f"already used by job {row.public_id}, with {what}; "
                "use a new key for a different job"
            }
        )
    return str(row.public_id)


# --- claim and lease ----------------------------------------------------------------------------


@functools.cache
def _claim_statement(postgres: bool) -> Any:
    """Built once per dialect: the runner's hottest statement skips construction each time."""
    due = (
        select(jobs.c.id)
        .where(jobs.c.status == Status.QUEUED, jobs.c.run_after <= db_now())
        .order_by(jobs.c.priority.desc(), jobs.c.id)
        .limit(bindparam("limit"))
    )
    if postgres:
        # SKIP LOCKED: concurrent claimers pass over each other's rows instead of queueing.
        # MATERIALIZED: evaluated once; as a plain `IN (subquery)` PostgreSQL may re-run the
        # LIMIT per outer row and claim the whole queue.
        picked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        target = jobs.c.id == picked.c.id
    else:
        target = jobs.c.id.in_(due.scalar_subquery())
    return (
        update(jobs)
        .where(target, jobs.c.status == Status.QUEUED)
        .values(
            status=Status.RUNNING,
            attempt=jobs.c.attempt + 1,
            runner_id=bindparam("runner_id"),
            versions=bindparam("versions", type_=Job.__table__.c.versions.type),
            lease_until=db_later(bindparam("lease_seconds")),
            started_at=db_now(),
            progress_at=db_now(),
        )
        .returning(
            jobs.c.id,
            jobs.c.public_id,
            jobs.c.kind,
            jobs.c.params,
            jobs.c.attempt,
            jobs.c.timeout_seconds,
            jobs.c.max_attempts,
        )
    )


def claim(
    engine: Engine,
    runner_id: str,
    *,
    limit: int = 1,
    lease_seconds: float = 30.0,
    versions: Mapping[str, str] | None = None,
) -> list[Lease]:
    """Move up to `limit` due jobs from queued to running, each exactly once across runners.

    `versions` (the claiming runner's software) is recorded on each job claimed.
    """
    if limit <= 0:
        return []
    stmt = _claim_statement(is_postgres(engine))
    params = {
        "limit": limit,
        "runner_id": runner_id,
        "lease_seconds": lease_seconds,
        "versions": dict(versions) if versions else None,
    }
    with engine.begin() as conn:
        rows = conn.execute(stmt, params).all()
        leases = [
            Lease(
                r.id,
                r.public_id,
                r.kind,
                dict(r.params),
                r.attempt,
                runner_id,
                r.timeout_seconds,
                r.max_attempts,
            )
            for r in rows
        ]
        src, dst = Status.QUEUED, Status.RUNNING
        _insert_events(
            conn,
            [
                _event_row(
                    lease.job_id,
                    lease.attempt,
                    ALLOWED[(src, dst)],
                    runner_id=lease.runner_id,
                    from_status=src,
                    to_status=dst,
                )
                for lease in leases
            ],
        )
    leases.sort(key=lambda lease: lease.job_id)
    return leases


def _fence(lease: Lease) -> Any:
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
                .where(_fence(lease))
                .values(lease_until=db_later(lease_seconds))
                .returning(jobs.c.cancel_requested, jobs.c.stop_requested)
            ).first()
            out[lease.job_id] = None if row is None else _asked(row)
    return out


def _asked(row: Any) -> Asked:
    return Asked(bool(row.cancel_requested), bool(row.stop_requested))


def asked(engine: Engine, lease: Lease) -> Asked | None:
    """What the user has asked of a running attempt, or None once the attempt lost the job.

    A read, for a driver that waits on Dask and so writes nothing: a cancel reaches it within
    a second rather than at the next heartbeat.
    """
    with reading(engine) as conn:
        row = conn.execute(
            select(jobs.c.cancel_requested, jobs.c.stop_requested).where(_fence(lease))
        ).first()
    return None if row is None else _asked(row)


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
            .where(_fence(lease))
            .values(**values)
            .returning(jobs.c.cancel_requested, jobs.c.stop_requested)
        ).first()
        if row is None:
            raise LostJob(lease.job_id, lease.attempt)
        _write_batch(conn, lease, batch)
        return _asked(row)


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
    """Stage updates as one executemany per shape; a row not there yet is inserted."""
    shapes: dict[tuple[bool, bool, bool, bool, bool], list[tuple[int, StageUpdate]]] = {}
    for job_id, su in updates:
        shape = (
            su.status is not None,
            su.progress is not None,
            su.started,
            su.finished,
            su.cost is not None,
        )
        shapes.setdefault(shape, []).append((job_id, su))
    for (has_status, has_progress, started, finished, has_cost), group in shapes.items():
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
                    **_cost_params(su.cost),
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


# --- ends of an attempt -------------------------------------------------------------------------


def _end_attempt(
    conn: Connection,
    lease: Lease,
    dst: Status,
    batch: Report | None,
    *,
    detail: str | None = None,
    **values: Any,
) -> None:
    """Move a running attempt to its terminal state, with its last unwritten reports."""
    _transition(
        conn,
        lease.job_id,
        lease.attempt,
        Status.RUNNING,
        dst,
        actor=lease.runner_id,
        detail=detail,
        finished_at=db_now(),
        lease_until=None,
        **values,
    )
    _write_batch(conn, lease, batch)


@dataclass(frozen=True)
class Success:
    """One attempt's result, waiting to be stored."""

    lease: Lease
    summary: dict[str, Any]
    chart: dict[str, Any] | None = None
    batch: Report | None = None


def succeed(
    engine: Engine,
    lease: Lease,
    summary: dict[str, Any],
    chart: dict[str, Any] | None = None,
    batch: Report | None = None,
) -> None:
    """Store the result and end the job in one transaction: no result without `succeeded`."""
    if lease.job_id not in succeed_many(engine, [Success(lease, summary, chart, batch)]):
        raise LostJob(lease.job_id, lease.attempt)


_SUCCEED_JOBS = (
    update(jobs)
    .where(
        jobs.c.status == Status.RUNNING,
        tuple_(jobs.c.id, jobs.c.attempt).in_(bindparam("keys", expanding=True)),
    )
    .values(
        status=Status.SUCCEEDED, finished_at=db_now(), lease_until=None, progress=1.0, stage=None
    )
    .returning(jobs.c.id)
)
_FINISH_STAGES = (
    update(stages_t)
    .where(
        stages_t.c.job_id.in_(bindparam("ids", expanding=True)),
        stages_t.c.status != StageStatus.DONE,
    )
    .values(status=StageStatus.DONE, progress=1.0, finished_at=db_now())
)
_INSERT_RESULT = insert(results_t).values(created_at=db_now())
_INSERT_EVENT = insert(events_t).values(at=db_now())


def succeed_many(engine: Engine, done: Sequence[Success]) -> set[int]:
    """End many attempts as succeeded in one transaction, each behind its own fence.

    A runner's jobs that finish together are stored together (group commit): one fenced
    UPDATE for all of them, then their events, stages and results in a few multi-row
    statements. Returns the ids of the jobs stored; an attempt fenced out is simply not among
    them, and nothing of it is written.
    """
    if not done:
        return set()
    src, dst = Status.RUNNING, Status.SUCCEEDED
    with engine.begin() as conn:
        keys = [(d.lease.job_id, d.lease.attempt) for d in done]
        stored = {r.id for r in conn.execute(_SUCCEED_JOBS, {"keys": keys})}
        ok = [d for d in done if d.lease.job_id in stored]
        if not ok:
            return stored
        _insert_events(
            conn,
            [
                _event_row(
                    d.lease.job_id,
                    d.lease.attempt,
                    ALLOWED[(src, dst)],
                    runner_id=d.lease.runner_id,
                    from_status=src,
                    to_status=dst,
                )
                for d in ok
            ],
        )
        _write_batches(conn, [(d.lease, d.batch) for d in ok])
        conn.execute(_FINISH_STAGES, {"ids": sorted(stored)})
        conn.execute(
            _INSERT_RESULT,
            [
                {
                    "job_id": d.lease.job_id,
                    "attempt": d.lease.attempt,
                    "summary": d.summary,
                    "chart": d.chart,
                }
                for d in ok
            ],
        )
    return stored


def fail(
    engine: Engine,
    lease: Lease,
    error_type: str,
    message: str,
    traceback: str | None = None,
    batch: Report | None = None,
) -> None:
    with engine.begin() as conn:
        _end_attempt(
            conn,
            lease,
            Status.FAILED,
            batch,
            detail=traceback,
            error_type=error_type[:200],
            error_message=message,
        )
        _close_open_stages(conn, lease.job_id, StageStatus.FAILED)


def retry(
    engine: Engine,
    lease: Lease,
    error_type: str,
    message: str,
    traceback: str | None = None,
    batch: Report | None = None,
    *,
    backoff_base: float = 5.0,
) -> Status:
    """A retryable failure: back to the queue after a backoff, or failed on the last attempt.

    Returns the status the job ended up in. The error of every attempt stays in the events.
    """
    if lease.attempt >= lease.max_attempts:
        fail(engine, lease, error_type, message, traceback, batch)
        return Status.FAILED
    with engine.begin() as conn:
        return _requeue(
            conn,
            lease.job_id,
            lease.attempt,
            backoff_base=backoff_base,
            message=f"retrying after {error_type}: {message}",
            actor=lease.runner_id,
            detail=traceback,
            batch=(lease, batch),
        )


def hand_back(
    engine: Engine, lease: Lease, batch: Report | None = None, *, reason: str | None = None
) -> Status:
    """A runner returns a job it cannot finish: it is shutting down, or its cluster has no
    worker left to run the job's tasks.

    The job is queued again at once. The attempt stays in the ledger but is not charged:
    `max_attempts` grows by one, so the job keeps every retry it had. A job whose cancel was
    asked for ends `cancelled`. Returns the status the job moved to.
    """
    why = reason or "as it shut down"
    with engine.begin() as conn:
        return _requeue(
            conn,
            lease.job_id,
            lease.attempt,
            backoff_base=0.0,
            message=f"handed back {why}; not charged",  # the event names the runner
            actor=lease.runner_id,
            batch=(lease, batch),
            max_attempts=jobs.c.max_attempts + 1,
        )


def cancelled(engine: Engine, lease: Lease, batch: Report | None = None) -> None:
    """The driver saw the cancel request and stopped: end the running job as cancelled."""
    with engine.begin() as conn:
        _end_attempt(conn, lease, Status.CANCELLED, batch)
        _close_open_stages(conn, lease.job_id, StageStatus.FAILED)


def _write_batch(conn: Connection, lease: Lease, batch: Report | None) -> None:
    """Stage changes, metrics and log lines of one attempt; the caller has passed the fence."""
    _write_batches(conn, [(lease, batch)])


def _write_batches(conn: Connection, batches: Sequence[tuple[Lease, Report | None]]) -> None:
    """The reports of several attempts, a few executemany statements for all of them."""
    stages: list[tuple[int, StageUpdate]] = []
    metrics: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    costs: list[dict[str, Any]] = []
    for lease, batch in batches:
        if batch is None:
            continue
        if batch.cost is not None:
            costs.append({"b_job": lease.job_id, **_cost_params(batch.cost)})
        stages.extend((lease.job_id, su) for su in _coalesce(batch.stage_updates))
        metrics.extend(
            {"job_id": lease.job_id, "attempt": lease.attempt, "name": n, "step": s, "value": v}
            for n, s, v in batch.metrics
        )
        logs.extend(
            _event_row(
                lease.job_id, lease.attempt, msg, runner_id=lease.runner_id, kind="log", level=lvl
            )
            for lvl, msg in batch.logs
        )
    _write_stages(conn, stages)
    if costs:
        conn.execute(_WRITE_COST, costs)
    if metrics:
        conn.execute(insert(metrics_t), metrics)
    _insert_events(conn, logs)


# Only ever run after the caller's fenced UPDATE of the same jobs, in the same transaction.
_WRITE_COST = (
    update(jobs)
    .where(jobs.c.id == bindparam("b_job"))
    .values({c: bindparam(f"b_{c}") for c in COST_COLUMNS})
)


def _requeue(
    conn: Connection,
    job_id: int,
    attempt: int,
    *,
    backoff_base: float,
    message: str,
    actor: str | None = None,
    detail: str | None = None,
    also: Any = None,
    batch: tuple[Lease, Report | None] | None = None,
    **values: Any,
) -> Status:
    """Running back to queued for the next attempt, after a backoff; the one way back.

    A job whose cancel was asked for ends `cancelled` instead: a request outlives every
    requeue, and no claim clears it. Returns the status the job moved to.
    """
    fence = [also] if also is not None else []
    try:
        _transition(
            conn,
            job_id,
            attempt,
            Status.RUNNING,
            Status.QUEUED,
            actor=actor,
            detail=detail,
            message=message,
            also=and_(jobs.c.cancel_requested.is_(False), *fence),
            run_after=db_later(backoff_seconds(attempt, backoff_base)),
            runner_id=None,
            lease_until=None,
            progress=0.0,
            progress_at=None,
            stage=None,
            **NO_COST,  # a job's cost is its latest attempt's, as its progress and stages are
            **values,
        )
    except LostJob:
        _transition(
            conn,
            job_id,
            attempt,
            Status.RUNNING,
            Status.CANCELLED,
            actor=actor,
            detail=detail,
            message=f"{message}; cancelled, as was asked",
            also=and_(jobs.c.cancel_requested.is_(True), *fence),
            lease_until=None,
            finished_at=db_now(),
        )
        if batch is not None:
            _write_batch(conn, *batch)
        _close_open_stages(conn, job_id, StageStatus.FAILED)
        return Status.CANCELLED
    if batch is not None:
        lease, report = batch  # the ending attempt's last metrics and log lines
        _write_batch(conn, lease, None if report is None else replace(report, cost=None))
    _restart_stages(conn, job_id)
    _notify(conn)
    return Status.QUEUED


def _restart_stages(conn: Connection, job_id: int) -> None:
    """The next attempt starts over, so its stages do too, and their cost."""
    conn.execute(
        update(stages_t)
        .where(stages_t.c.job_id == job_id)
        .values(
            status=StageStatus.PENDING, progress=0.0, started_at=None, finished_at=None, **NO_COST
        )
    )


def _close_open_stages(conn: Connection, job_id: int, status: StageStatus) -> None:
    conn.execute(
        update(stages_t)
        .where(stages_t.c.job_id == job_id, stages_t.c.status == StageStatus.RUNNING)
        .values(status=status, finished_at=db_now())
    )


def request_stop(engine: Engine, public_id: str, stoppable: Iterable[str]) -> StopOutcome:
    """Ask a running job to stop early and keep what it has: it ends `succeeded`, partial.

    Only the `stoppable` kinds know how to keep a partial result. A queued job has nothing to
    keep yet, so it is left alone (cancel it instead).
    """
    kinds = list(stoppable)
    with engine.begin() as conn:
        row = conn.execute(
            update(jobs)
            .where(
                jobs.c.public_id == public_id,
                jobs.c.status == Status.RUNNING,
                jobs.c.kind.in_(kinds),
            )
            .values(stop_requested=True)
            .returning(jobs.c.id, jobs.c.attempt)
        ).first()
        if row is not None:
            _insert_events(
                conn,
                [_event_row(row.id, row.attempt, "stop and keep requested", kind="request")],
            )
            return StopOutcome.REQUESTED
        job = conn.execute(
            select(jobs.c.status, jobs.c.kind).where(jobs.c.public_id == public_id)
        ).first()
    if job is None:
        raise JobNotFound(public_id)
    if Status(job.status).terminal:
        return StopOutcome.ALREADY_FINISHED
    if job.kind not in kinds:
        return StopOutcome.NOT_STOPPABLE
    return StopOutcome.NOT_STARTED


def request_cancel(engine: Engine, public_id: str) -> CancelOutcome:
    """Cancel a queued job at once; ask a running one to stop at its next check."""
    for _ in range(5):  # the job may move between our read and our fenced write
        with engine.begin() as conn:
            row = conn.execute(
                select(jobs.c.id, jobs.c.status, jobs.c.attempt).where(
                    jobs.c.public_id == public_id
                )
            ).first()
            if row is None:
                raise JobNotFound(public_id)
            status = Status(row.status)
            if status.terminal:
                return CancelOutcome.ALREADY_FINISHED
            if status is Status.QUEUED:
                try:
                    _transition(
                        conn,
                        row.id,
                        row.attempt,
                        Status.QUEUED,
                        Status.CANCELLED,
                        finished_at=db_now(),
                    )
                except LostJob:
                    continue
                return CancelOutcome.CANCELLED
            hit = conn.execute(
                update(jobs)
                .where(jobs.c.id == row.id, jobs.c.status == Status.RUNNING)
                .values(cancel_requested=True)
                .returning(jobs.c.id)
            ).first()
            if hit is None:
                continue
            _insert_events(
                conn, [_event_row(row.id, row.attempt, "cancel requested", kind="request")]
            )
            return CancelOutcome.REQUESTED
    raise RuntimeError(f"job {public_id} kept changing state while being cancelled")


# --- the reaper ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reaped:
    public_id: str
    attempt: int
    status: Status


def backoff_seconds(attempt: int, base: float, cap: float = 600.0) -> float:
    """Exponential backoff with jitter: attempt 1 waits about `base`, each next one twice that.

    The jitter (50-100 %) spreads out jobs that lapsed together, so they do not return together.
    """
    return min(cap, base * 2 ** max(0, attempt - 1)) * random.uniform(0.5, 1.0)


def reap(engine: Engine, *, backoff_base: float = 5.0, limit: int = 100) -> list[Reaped]:
    """Take back running jobs whose lease has lapsed in the database's clock.

    Each goes back to `queued` for its next attempt after a backoff, or to `failed` once
    `max_attempts` is used up, or to `cancelled` if a cancel was asked for. The fence includes
    the lapsed lease, so a job whose heartbeat came back in time is left alone.
    """
    lapsed = and_(jobs.c.lease_until.is_not(None), jobs.c.lease_until < db_now())
    out: list[Reaped] = []
    # Looked for in a read-only snapshot: on most heartbeats there is nothing to reap, and a
    # reader never takes SQLite's write lock. The fenced writes below re-check every row.
    with reading(engine) as conn:
        rows = conn.execute(
            select(
                jobs.c.id,
                jobs.c.public_id,
                jobs.c.attempt,
                jobs.c.max_attempts,
                jobs.c.runner_id,
                jobs.c.cancel_requested,
            )
            .where(jobs.c.status == Status.RUNNING, lapsed)
            .order_by(jobs.c.id)
            .limit(limit)
        ).all()
    if not rows:
        return out
    with engine.begin() as conn:
        for r in rows:
            why = f"lease lapsed on runner {r.runner_id} (attempt {r.attempt} of {r.max_attempts})"
            try:
                if r.cancel_requested or r.attempt >= r.max_attempts:
                    dst = Status.CANCELLED if r.cancel_requested else Status.FAILED
                    error = {
                        "error_type": "LeaseExpired",
                        "error_message": f"the runner stopped renewing its lease; {why}",
                    }
                    _transition(
                        conn,
                        r.id,
                        r.attempt,
                        Status.RUNNING,
                        dst,
                        message=why,
                        also=lapsed,
                        lease_until=None,
                        finished_at=db_now(),
                        **(error if dst is Status.FAILED else {}),
                    )
                    _close_open_stages(conn, r.id, StageStatus.FAILED)
                else:
                    dst = _requeue(
                        conn, r.id, r.attempt, backoff_base=backoff_base, message=why, also=lapsed
                    )
            except LostJob:  # renewed or finished meanwhile: not ours to take
                continue
            out.append(Reaped(r.public_id, r.attempt, dst))
    return out


# --- runners ------------------------------------------------------------------------------------


def register_runner(
    engine: Engine,
    runner_id: str,
    *,
    host: str,
    pid: int,
    concurrency: int,
    scheduler_address: str | None,
    dashboard_link: str | None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(runners_t).values(
                id=runner_id,
                host=host,
                pid=pid,
                started_at=db_now(),
                heartbeat_at=db_now(),
                concurrency=concurrency,
                scheduler_address=scheduler_address,
                dashboard_link=dashboard_link,
            )
        )


def runner_stopped(engine: Engine, runner_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(runners_t).where(runners_t.c.id == runner_id).values(stopped_at=db_now())
        )
