"""The verbs that move a job through its states: claim, the ends of an attempt, the user's
requests and the reaper.

Every statement here that changes `status` is built by `jobstore.states.move`, which enforces
`ALLOWED`; the requests that only set a flag (`cancel_requested`, `stop_requested`) on a
running job leave `status` alone. A runner's write names the attempt it belongs to (`WHERE
status = :expected AND id = :id AND attempt = :attempt`). When that matches no row the job was
cancelled or claimed again, so the caller gets `LostJob` and must stop: a stale attempt can
never write over the current one.
"""

from __future__ import annotations

import enum
import functools
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    func,
    insert,
    select,
    true,
    tuple_,
    update,
)

from jobstore import queues
from jobstore.engine import db_later, db_now, is_postgres, reading
from jobstore.ledger import event_row, insert_events, notify
from jobstore.models import Job, JobResult, JobStage, StageStatus, Status, Sweep, table_of
from jobstore.reports import NO_COST, Lease, Report, write_batch, write_batches
from jobstore.states import move, moved_events, transition
from jobstore.views import Cost
from runlab.errors import Forbidden, JobNotFound, LostJob, SweepNotFound
from runlab.identity import SYSTEM, Actor

jobs = table_of(Job)
stages_t = table_of(JobStage)
results_t = table_of(JobResult)
sweeps_t = table_of(Sweep)


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"
    REQUESTED = "requested"
    ALREADY_FINISHED = "already finished"


class StopOutcome(enum.StrEnum):
    REQUESTED = "requested"
    NOT_STARTED = "not started"
    NOT_STOPPABLE = "not stoppable"
    ALREADY_FINISHED = "already finished"


class _Scope(enum.Enum):
    """Which queues a claim statement takes from."""

    ALL = "all"
    ONLY = "only"  # the queues named in `queues`
    EXCEPT = "except"  # every queue but those named


@functools.cache
def _claim_statement(postgres: bool, scope: _Scope = _Scope.ALL) -> Any:
    """Built once per dialect and scope: the runner's hottest statement skips construction
    each time. The order is the queues' (`jobstore.queues`): effective priority, turn, id."""
    due = select(jobs.c.id).where(jobs.c.status == Status.QUEUED, jobs.c.run_after <= db_now())
    if scope is _Scope.ONLY:
        due = due.where(jobs.c.queue.in_(bindparam("queues", expanding=True)))
    elif scope is _Scope.EXCEPT:
        due = due.where(jobs.c.queue.not_in(bindparam("queues", expanding=True)))
    due = due.order_by(*queues.CLAIM_ORDER).limit(bindparam("limit"))
    if postgres:
        # SKIP LOCKED: concurrent claimers pass over each other's rows instead of queueing.
        # MATERIALIZED: evaluated once; as a plain `IN (subquery)` PostgreSQL may re-run the
        # LIMIT per outer row and claim the whole queue.
        picked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        target = jobs.c.id == picked.c.id
    else:
        target = jobs.c.id.in_(due.scalar_subquery())
    return move(
        Status.QUEUED,
        Status.RUNNING,
        target,
        attempt=jobs.c.attempt + 1,
        runner_id=bindparam("runner_id"),
        versions=bindparam("versions", type_=Job.__table__.c.versions.type),
        lease_until=db_later(bindparam("lease_seconds")),
        started_at=db_now(),
        progress_at=db_now(),
    ).returning(
        jobs.c.id,
        jobs.c.public_id,
        jobs.c.kind,
        jobs.c.params,
        jobs.c.attempt,
        jobs.c.timeout_seconds,
        jobs.c.max_attempts,
        jobs.c.queue,
    )


def claim(
    engine: Engine,
    runner_id: str,
    *,
    limit: int = 1,
    lease_seconds: float = 30.0,
    versions: Mapping[str, str] | None = None,
    serve: Collection[str] | None = None,
    limits: Mapping[str, int] | None = None,
    full: set[str] | None = None,
) -> list[Lease]:
    """Move up to `limit` due jobs from queued to running, each exactly once across runners.

    `serve` names the queues to take from (None: every queue). `limits` caps a queue's running
    jobs across every runner together: the queue's running jobs are counted in this same
    transaction, under the queue's lock, so two runners can never both take its last slot.
    `full`, when given, is filled with the limited queues left without a free slot: a job of
    one of them that ends frees a slot another runner may be waiting for.
    `versions` (the claiming runner's software) is recorded on each job claimed.
    """
    if limit <= 0 or (serve is not None and not serve):
        return []
    postgres = is_postgres(engine)
    params: dict[str, Any] = {
        "runner_id": runner_id,
        "lease_seconds": lease_seconds,
        "versions": dict(versions) if versions else None,
    }
    capped = {q: n for q, n in (limits or {}).items() if serve is None or q in serve}
    with engine.begin() as conn:
        rooms: dict[str, int] = {}
        if capped:
            queues.lock_queues(conn, capped)
            running = queues.running_counts(conn, capped)
            rooms = {q: max(0, n - running.get(q, 0)) for q, n in capped.items()}
        rows: list[Any] = []
        want = limit
        while want > 0:
            no_room = sorted(q for q, room in rooms.items() if room == 0)
            tight = any(0 < room < want for room in rooms.values())
            if serve is None:
                scope, names = (_Scope.EXCEPT, no_room) if no_room else (_Scope.ALL, [])
            else:
                names = sorted(set(serve) - set(no_room))
                scope = _Scope.ONLY
                if not names:
                    break
            # A queue with fewer free slots than wanted: one job at a time, so that no single
            # statement takes more of it than its room.
            take = 1 if tight else want
            got = conn.execute(
                _claim_statement(postgres, scope),
                {**params, "limit": take, **({"queues": names} if names else {})},
            ).all()
            rows.extend(got)
            want -= len(got)
            for r in got:
                if r.queue in rooms:
                    rooms[r.queue] -= 1
            if len(got) < take or not tight:
                break
        if full is not None:
            full.update(q for q, room in rooms.items() if room == 0)
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
                r.queue,
            )
            for r in rows
        ]
        insert_events(
            conn,
            moved_events(
                Status.QUEUED, Status.RUNNING, [(le.job_id, le.attempt, runner_id) for le in leases]
            ),
        )
    leases.sort(key=lambda lease: lease.job_id)
    return leases


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
    transition(
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
    write_batch(conn, lease, batch)


@dataclass(frozen=True)
class Success:
    """One attempt's result, waiting to be stored."""

    lease: Lease
    summary: dict[str, Any]
    chart: dict[str, Any] | None = None
    batch: Report | None = None
    # For a result that covers only part of the planned work (a stop and keep): that share,
    # which becomes the job's progress, and the job is marked partial. None: the whole work.
    covered: float | None = None


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


def _costed(batch: Report | None) -> Report | None:
    """The final batch without its cost when the attempt ran no task: `_SUCCEED_JOBS` has
    already made a cost not yet written zero, so most short jobs write no cost row at all."""
    if batch is None or batch.cost is None or batch.cost != NO_TASKS:
        return batch
    return replace(batch, cost=None)


NO_TASKS = Cost()
_SUCCEED_JOBS = move(
    Status.RUNNING,
    Status.SUCCEEDED,
    tuple_(jobs.c.id, jobs.c.attempt).in_(bindparam("keys", expanding=True)),
    finished_at=db_now(),
    lease_until=None,
    progress=1.0,
    stage=None,
    # An attempt that ran no task costs zero, not "not measured"; one that did has its cost
    # written by its final batch, after this, in the same transaction.
    cpu_seconds=func.coalesce(jobs.c.cpu_seconds, 0.0),
    task_seconds=func.coalesce(jobs.c.task_seconds, 0.0),
    tasks=func.coalesce(jobs.c.tasks, 0),
).returning(jobs.c.id)
_FINISH_STAGES = (
    update(stages_t)
    .where(
        stages_t.c.job_id.in_(bindparam("ids", expanding=True)),
        stages_t.c.status != StageStatus.DONE,
    )
    .values(status=StageStatus.DONE, progress=1.0, finished_at=db_now())
)
_INSERT_RESULT = insert(results_t).values(created_at=db_now())
# Not a status write: the job has just been moved to `succeeded` in the same transaction.
_MARK_PARTIAL = (
    update(jobs)
    .where(jobs.c.id == bindparam("b_id"))
    .values(partial=True, progress=bindparam("b_covered"))
)


def succeed_many(engine: Engine, done: Sequence[Success], *, wake: bool = False) -> set[int]:
    """End many attempts as succeeded in one transaction, each behind its own fence.

    A runner's jobs that finish together are stored together (group commit): one fenced
    UPDATE for all of them, then their events, stages and results in a few multi-row
    statements. Returns the ids of the jobs stored; an attempt fenced out is simply not among
    them, and nothing of it is written. `wake` tells every listening runner as it commits (a
    limited queue's slot is free).
    """
    if not done:
        return set()
    with engine.begin() as conn:
        keys = [(d.lease.job_id, d.lease.attempt) for d in done]
        stored = {r.id for r in conn.execute(_SUCCEED_JOBS, {"keys": keys})}
        ok = [d for d in done if d.lease.job_id in stored]
        if not ok:
            return stored
        insert_events(
            conn,
            moved_events(
                Status.RUNNING,
                Status.SUCCEEDED,
                [(d.lease.job_id, d.lease.attempt, d.lease.runner_id) for d in ok],
            ),
        )
        write_batches(conn, [(d.lease, _costed(d.batch)) for d in ok])
        partial = [
            {"b_id": d.lease.job_id, "b_covered": min(1.0, max(0.0, d.covered))}
            for d in ok
            if d.covered is not None
        ]
        if partial:
            conn.execute(_MARK_PARTIAL, partial)
        conn.execute(_FINISH_STAGES, {"ids": sorted(stored)})
        if wake:
            notify(conn)
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
        transition(
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
        transition(
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
            write_batch(conn, *batch)
        _close_open_stages(conn, job_id, StageStatus.FAILED)
        return Status.CANCELLED
    if batch is not None:
        lease, report = batch  # the ending attempt's last metrics and log lines
        write_batch(conn, lease, None if report is None else replace(report, cost=None))
    _restart_stages(conn, job_id)
    notify(conn)
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


def _owned_by(actor: Actor) -> Any:
    """The fence a person's request adds: the job is theirs, unless they are an admin."""
    return true() if actor.admin else jobs.c.owner == actor.name


def request_stop(
    engine: Engine, public_id: str, stoppable: Iterable[str], *, actor: Actor = SYSTEM
) -> StopOutcome:
    """Ask a running job to stop early and keep what it has: it ends `succeeded`, partial.

    Only the `stoppable` kinds know how to keep a partial result. A queued job has nothing to
    keep yet, so it is left alone (cancel it instead). Only the job's owner or an admin may
    (`Forbidden`).
    """
    kinds = list(stoppable)
    with engine.begin() as conn:
        row = conn.execute(
            update(jobs)
            .where(
                jobs.c.public_id == public_id,
                jobs.c.status == Status.RUNNING,
                jobs.c.kind.in_(kinds),
                _owned_by(actor),
            )
            .values(stop_requested=True)
            .returning(jobs.c.id, jobs.c.attempt)
        ).first()
        if row is not None:
            insert_events(
                conn,
                [
                    event_row(
                        row.id,
                        row.attempt,
                        "stop and keep requested",
                        kind="request",
                        actor=actor.name,
                    )
                ],
            )
            return StopOutcome.REQUESTED
        job = conn.execute(
            select(jobs.c.status, jobs.c.kind, jobs.c.owner).where(jobs.c.public_id == public_id)
        ).first()
    if job is None:
        raise JobNotFound(public_id)
    if Status(job.status).terminal:
        return StopOutcome.ALREADY_FINISHED
    if not actor.may_act_on(job.owner):
        raise Forbidden(public_id, job.owner, "stop it")
    if job.kind not in kinds:
        return StopOutcome.NOT_STOPPABLE
    return StopOutcome.NOT_STARTED


def request_cancel(engine: Engine, public_id: str, *, actor: Actor = SYSTEM) -> CancelOutcome:
    """Cancel a queued job at once; ask a running one to stop at its next check. Only the job's
    owner or an admin may (`Forbidden`, and nothing changes)."""
    mine = _owned_by(actor)
    for _ in range(5):  # the job may move between our read and our fenced write
        with engine.begin() as conn:
            row = conn.execute(
                select(jobs.c.id, jobs.c.status, jobs.c.attempt, jobs.c.owner).where(
                    jobs.c.public_id == public_id
                )
            ).first()
            if row is None:
                raise JobNotFound(public_id)
            status = Status(row.status)
            if status.terminal:
                return CancelOutcome.ALREADY_FINISHED
            if not actor.may_act_on(row.owner):
                raise Forbidden(public_id, row.owner, "cancel it")
            if status is Status.QUEUED:
                try:
                    transition(
                        conn,
                        row.id,
                        row.attempt,
                        Status.QUEUED,
                        Status.CANCELLED,
                        also=mine,
                        by=actor.name,
                        finished_at=db_now(),
                    )
                except LostJob:
                    continue
                return CancelOutcome.CANCELLED
            hit = conn.execute(
                update(jobs)
                .where(jobs.c.id == row.id, jobs.c.status == Status.RUNNING, mine)
                .values(cancel_requested=True)
                .returning(jobs.c.id)
            ).first()
            if hit is None:
                continue
            insert_events(
                conn,
                [
                    event_row(
                        row.id, row.attempt, "cancel requested", kind="request", actor=actor.name
                    )
                ],
            )
            return CancelOutcome.REQUESTED
    raise RuntimeError(f"job {public_id} kept changing state while being cancelled")


@dataclass(frozen=True)
class SweepCancel:
    """What a sweep's cancel did: queued children cancelled, running ones asked to stop."""

    cancelled: int
    asked: int


def cancel_sweep(engine: Engine, public_id: str, *, actor: Actor = SYSTEM) -> SweepCancel:
    """Cancel every queued child of a sweep at once and ask every running one to stop, in one
    transaction: no child is left waiting. Only the sweep's owner or an admin may."""
    mine = _owned_by(actor)
    with engine.begin() as conn:
        sweep = conn.execute(
            select(sweeps_t.c.id, sweeps_t.c.owner).where(sweeps_t.c.public_id == public_id)
        ).first()
        if sweep is None:
            raise SweepNotFound(public_id)
        if not actor.may_act_on(sweep.owner):
            raise Forbidden(public_id, sweep.owner, "cancel it", of="sweep")
        ended = conn.execute(
            move(
                Status.QUEUED,
                Status.CANCELLED,
                jobs.c.sweep_id == sweep.id,
                mine,
                finished_at=db_now(),
            ).returning(jobs.c.id, jobs.c.attempt)
        ).all()
        asked = conn.execute(
            update(jobs)
            .where(
                jobs.c.sweep_id == sweep.id,
                jobs.c.status == Status.RUNNING,
                jobs.c.cancel_requested.is_(False),
                mine,
            )
            .values(cancel_requested=True)
            .returning(jobs.c.id, jobs.c.attempt)
        ).all()
        events = moved_events(
            Status.QUEUED,
            Status.CANCELLED,
            [(r.id, r.attempt, None) for r in ended],
            by=actor.name,
        )
        events += [
            event_row(r.id, r.attempt, "cancel requested", kind="request", actor=actor.name)
            for r in asked
        ]
        insert_events(conn, events)
    return SweepCancel(len(ended), len(asked))


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
        # On PostgreSQL, a row still locked by a writer is left for a later pass: its writer
        # may be a runner cut off mid-transaction, whose session the server ends only after
        # `engine.IDLE_IN_TRANSACTION_SECONDS`. SQLite writes no FOR UPDATE: this transaction
        # holds the whole file's write lock.
        free = set(
            conn.execute(
                select(jobs.c.id)
                .where(jobs.c.id.in_([r.id for r in rows]), jobs.c.status == Status.RUNNING, lapsed)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        for r in rows:
            if r.id not in free:
                continue
            why = f"lease lapsed on runner {r.runner_id} (attempt {r.attempt} of {r.max_attempts})"
            try:
                if r.cancel_requested or r.attempt >= r.max_attempts:
                    dst = Status.CANCELLED if r.cancel_requested else Status.FAILED
                    error = {
                        "error_type": "LeaseExpired",
                        "error_message": f"the runner stopped renewing its lease; {why}",
                    }
                    transition(
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
