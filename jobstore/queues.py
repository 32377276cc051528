"""A queued job's place in its queue: priority raised as it waits, turns between owners, and
the queue-wide limits that the claim enforces.

The claim takes a queue's jobs in this order:

1. **effective priority**, highest first. It starts as the job's own priority, and rises by one
   for every `aging_seconds` the job has waited since it was due, up to the highest priority
   waiting in its queue, and no further. So a job of priority p is ranked with the highest
   priority P waiting in its queue within (P - p) × `aging_seconds` (plus one heartbeat of the
   runner that ages it), whatever stream of higher-priority work arrives meanwhile.
2. **turn**, lowest first: a round between the queue's owners. An owner's first waiting job
   takes the turn of the job at the head of the queue, and each next one the turn after the
   owner's last. One person's 2,000 queued jobs therefore take turns 0 to 1,999, and a
   colleague's single job submitted meanwhile takes the head's turn: it starts as soon as a
   slot frees after the job now first in line.
3. **id**, oldest first.

Aging never raises a job past the top of its queue, so jobs of one priority stay in their turns
however long they wait. A limit of running jobs per queue holds across every runner together:
the claim counts the queue's running jobs in the same transaction, under a lock of the queue
(`lock_queues`, an advisory lock on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serialises
writers).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    text,
    update,
)

from jobstore.engine import is_postgres, reading, seconds_since, whole
from jobstore.models import Job, Status, table_of
from jobstore.views import RunnerView

jobs = table_of(Job)

# The claim order, as `ORDER BY` terms: what `ix_jobs_claim` is built for.
CLAIM_ORDER = (jobs.c.effective_priority.desc(), jobs.c.turn, jobs.c.id)
_LOCK_SPACE = 0x52554E4C  # "RUNL": the high half of every queue lock's key


def lock_queues(conn: Connection, queues: Iterable[str]) -> None:
    """Hold the queues' locks until the transaction ends, in one order so that two claimers
    never wait on each other in a cycle. On SQLite the writer's lock already holds them."""
    if not is_postgres(conn):
        return
    keys = sorted({_signed(zlib.crc32(q.encode())) for q in queues})
    # One round trip for them all, taken in the keys' order.
    conn.execute(_LOCK, {"space": _LOCK_SPACE, "keys": keys})


def _signed(key: int) -> int:
    """A 32-bit hash as the signed int4 an advisory lock's key is."""
    return key - 2**32 if key >= 2**31 else key


# Built once: the claim runs it on every round that may take from a limited queue.
_RUNNING = (
    select(jobs.c.queue, func.count())
    .where(jobs.c.status == Status.RUNNING, jobs.c.queue.in_(bindparam("names", expanding=True)))
    .group_by(jobs.c.queue)
)
_LOCK = text(
    "SELECT count(pg_advisory_xact_lock(:space, k)) "
    "FROM (SELECT unnest(CAST(:keys AS integer[])) AS k ORDER BY 1) AS ordered"
)


def running_counts(conn: Connection, queues: Iterable[str]) -> dict[str, int]:
    rows = conn.execute(_RUNNING, {"names": list(queues)}).all()
    return {q: int(n) for q, n in rows}


def turn_bounds(queue: Any, owner: Any) -> tuple[Select[Any], Select[Any]]:
    """What a new job's turn is placed by: the turn at the head of `queue`, and the owner's
    last waiting turn in it (each NULL if none). `queue` and `owner` are values or bound
    parameters."""
    waiting = (jobs.c.status == Status.QUEUED, jobs.c.queue == queue)
    head = select(jobs.c.turn).where(*waiting).order_by(*CLAIM_ORDER).limit(1)
    last = select(func.max(jobs.c.turn)).where(*waiting, jobs.c.owner == owner)
    return head, last


def next_turns(conn: Connection, queue: str, owner: str, count: int) -> list[int]:
    """The turns of an owner's `count` new jobs in `queue`: after the owner's last waiting one,
    and never before the head of the queue."""
    head_q, last_q = turn_bounds(queue, owner)
    head, last = conn.execute(select(head_q.scalar_subquery(), last_q.scalar_subquery())).one()
    first = max(head or 0, -1 if last is None else last + 1)
    return list(range(first, first + count))


def before(queue: str, effective_priority: int, turn: int, job_id: int) -> Any:
    """The queued jobs the claim takes before the job at this place in `queue`."""
    eff, turns = jobs.c.effective_priority, jobs.c.turn
    return and_(
        jobs.c.status == Status.QUEUED,
        jobs.c.queue == queue,
        or_(
            eff > effective_priority,
            and_(eff == effective_priority, turns < turn),
            and_(eff == effective_priority, turns == turn, jobs.c.id < job_id),
        ),
    )


def ahead_of(conn: Connection, job_id: int) -> int | None:
    """How many queued jobs of its queue the claim takes before this one; None once it is no
    longer queued."""
    me = conn.execute(
        select(jobs.c.queue, jobs.c.effective_priority, jobs.c.turn).where(
            jobs.c.id == job_id, jobs.c.status == Status.QUEUED
        )
    ).first()
    if me is None:
        return None
    where = before(me.queue, me.effective_priority, me.turn, job_id)
    return int(conn.execute(select(func.count()).where(where)).scalar_one())


def age(engine: Engine, step: float) -> int:
    """Raise waiting jobs' effective priority by their wait, up to the top of their queue;
    lower any left above a top that has since fallen. Returns the jobs changed.

    A read finds the queues that need it first, so a store where no waiting job is due a
    step takes no write lock: most heartbeats only read.
    """
    eff = jobs.c.effective_priority
    # A job due its next step: it has waited one more `step` than its raises so far.
    due = seconds_since(jobs.c.run_after) >= (eff - jobs.c.priority + 1) * step
    with reading(engine) as conn:
        tops = conn.execute(
            select(
                jobs.c.queue,
                func.max(jobs.c.priority),
                func.max(eff),
                func.min(case((due, eff))),
            )
            .where(jobs.c.status == Status.QUEUED)
            .group_by(jobs.c.queue)
        ).all()
    work = [
        (q, int(top))
        for q, top, high, due_low in tops
        if high > top or (due_low is not None and due_low < top)
    ]
    if not work:
        return 0
    changed = 0
    steps = whole(seconds_since(jobs.c.run_after) / step)
    with engine.begin() as conn:
        for queue, top in work:
            mine = and_(jobs.c.status == Status.QUEUED, jobs.c.queue == queue)
            changed += conn.execute(
                update(jobs).where(mine, eff > top).values(effective_priority=top)
            ).rowcount
            raised = case(
                (jobs.c.priority + steps >= top, literal(top)), else_=jobs.c.priority + steps
            )
            changed += conn.execute(
                update(jobs).where(mine, eff < top, due).values(effective_priority=raised)
            ).rowcount
    return changed


@dataclass(frozen=True)
class QueueState:
    """One queue as `/runners` shows it."""

    name: str
    queued: int
    running: int
    limit: int | None
    oldest_wait: float | None  # seconds its longest-waiting job has waited
    runners: list[str]


def states(
    engine: Engine,
    names: Sequence[str],
    limits: dict[str, int],
    runners: Sequence[RunnerView],
) -> list[QueueState]:
    """Every named queue and every queue a job names, with those of `runners` (as
    `queries.runners` reads them) that are alive and serve it."""
    with reading(engine) as conn:
        counts = conn.execute(
            select(
                jobs.c.queue,
                func.sum(case((jobs.c.status == Status.QUEUED, 1), else_=0)),
                func.sum(case((jobs.c.status == Status.RUNNING, 1), else_=0)),
                func.max(case((jobs.c.status == Status.QUEUED, seconds_since(jobs.c.created_at)))),
            )
            .where(jobs.c.status.in_([Status.QUEUED, Status.RUNNING]))
            .group_by(jobs.c.queue)
        ).all()
    seen = {
        q: (int(a or 0), int(b or 0), None if w is None else max(0.0, float(w)))
        for q, a, b, w in counts
    }
    order = list(dict.fromkeys([*names, *sorted(seen)]))
    out = []
    for name in order:
        queued, running, oldest = seen.get(name, (0, 0, None))
        serving = [r.id for r in runners if r.alive and r.serves(name)]
        out.append(QueueState(name, queued, running, limits.get(name), oldest, serving))
    return out
