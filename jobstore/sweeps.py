"""Storing a sweep: its row and every child job, in one transaction, and reading it back.

A sweep is many jobs of one kind as one piece of work. `compute.intake.check_sweep` makes its
plan and checks every child; this only stores them: the sweep's row, then the children through
the same bulk path as `enqueue_many`, each naming the sweep in `sweep_id` and numbering its
point in `sweep_point`. A crash leaves the whole sweep or nothing. Under an idempotency key
already used for the same sweep, the sweep stored then is the answer, and nothing more is
stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from jobstore.engine import db_now, reading
from jobstore.enqueue import CHUNK, NewJob, insert_jobs
from jobstore.history import sweep_head
from jobstore.ledger import notify
from jobstore.models import Job, JobResult, Status, Sweep, table_of
from jobstore.queries import first_line
from jobstore.views import as_utc
from runlab.errors import InvalidParams, SweepNotFound

OPEN = (Status.QUEUED, Status.RUNNING)
sweeps_t = table_of(Sweep)
jobs = table_of(Job)
results = table_of(JobResult)

MAX_CHILDREN = 10_000


@dataclass(frozen=True)
class NewSweep:
    """A sweep that passed every check, ready to store with its children."""

    public_id: str
    kind: str
    name: str
    owner: str
    # The swept parameters' texts and the sampling: what makes the children's points again.
    plan: dict[str, Any]
    # The parameters every child shares, as the kind's model read them (the seed only if given).
    params: dict[str, Any]
    queue: str
    priority: int
    idempotency_key: str | None = None
    # The plan's keys that were drawn for this submission (its seed), which a resubmission
    # under the same key draws afresh: not a different request.
    drawn: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SweepView:
    public_id: str
    kind: str
    name: str
    owner: str
    plan: dict[str, Any]
    params: dict[str, Any]
    queue: str
    priority: int
    created_at: datetime
    children: int  # its points: a point whose job was re-run counts once
    # Points by the status of their latest job: {"succeeded": 40, "running": 2, …}.
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def axes(self) -> dict[str, str]:
        """Each swept parameter's text, in the plan's order."""
        return dict(self.plan.get("axes", ()))

    @property
    def ended(self) -> int:
        return sum(n for s, n in self.statuses.items() if Status(s).terminal)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.public_id,
            "type": "sweep",
            "kind": self.kind,
            "name": self.name,
            "owner": self.owner,
            "plan": {**self.plan, "axes": self.axes},
            "params": self.params,
            "queue": self.queue,
            "priority": self.priority,
            "created_at": self.created_at.isoformat(),
            "children": self.children,
            "ended": self.ended,
            "statuses": self.statuses,
        }


def create(engine: Engine, sweep: NewSweep, children: Sequence[NewJob]) -> str:
    """Store the sweep and its children; return the sweep's public id once committed."""
    if not 0 < len(children) <= MAX_CHILDREN:
        raise InvalidParams(
            {"sweep": f"a sweep has 1 to {MAX_CHILDREN:,} jobs; this one has {len(children):,}"}
        )
    if sweep.idempotency_key is not None:
        existing = _by_idempotency_key(engine, sweep)
        if existing is not None:
            return existing
    try:
        with engine.begin() as conn:
            insert_sweep(conn, sweep, children)
    except IntegrityError:
        if sweep.idempotency_key is None:
            raise
        existing = _by_idempotency_key(engine, sweep)
        if existing is None:
            raise
        return existing
    return sweep.public_id


def insert_sweep(conn: Connection, sweep: NewSweep, children: Sequence[NewJob]) -> int:
    """The sweep's row and its children, in the caller's transaction; the sweep's row id."""
    sweep_id: int = conn.execute(
        insert(sweeps_t).values(created_at=db_now()).returning(sweeps_t.c.id),
        {
            "public_id": sweep.public_id,
            "kind": sweep.kind,
            "name": sweep.name,
            "owner": sweep.owner,
            "plan": sweep.plan,
            "params": sweep.params,
            "idempotency_key": sweep.idempotency_key,
            "queue": sweep.queue,
            "priority": sweep.priority,
        },
    ).scalar_one()
    for start in range(0, len(children), CHUNK):
        chunk = children[start : start + CHUNK]
        insert_jobs(conn, chunk, sweep_id, range(start, start + len(chunk)))
    notify(conn)
    return sweep_id


def get(engine: Engine, public_id: str) -> SweepView:
    """The sweep, with its points counted by the status of each one's latest job: a point
    whose failed job was re-run counts once, as its re-run."""
    with reading(engine) as conn:
        row = conn.execute(select(sweeps_t).where(sweeps_t.c.public_id == public_id)).first()
        if row is None:
            raise SweepNotFound(public_id)
        counts = Counter(point_counts(conn, row.id))
    return SweepView(
        row.public_id,
        row.kind,
        row.name,
        row.owner,
        dict(row.plan),
        dict(row.params),
        row.queue,
        row.priority,
        as_utc(row.created_at),
        sum(counts.values()),
        {s.value: counts[s.value] for s in Status if counts[s.value]},
    )


@dataclass(frozen=True)
class Child:
    """A point of a sweep and its latest job."""

    point: int
    public_id: str
    status: Status
    params: dict[str, Any]
    name: str
    tags: list[str]
    max_attempts: int
    timeout_seconds: float | None


def latest(engine: Engine, public_id: str) -> list[Child]:
    """Each point's latest job, in the points' order."""
    with reading(engine) as conn:
        sweep_id = _id_of(conn, public_id)
        rows = conn.execute(
            select(
                jobs.c.sweep_point,
                jobs.c.public_id,
                jobs.c.status,
                jobs.c.params,
                jobs.c.name,
                jobs.c.tags,
                jobs.c.max_attempts,
                jobs.c.timeout_seconds,
            )
            .where(jobs.c.id.in_(_latest_ids(sweep_id)))
            .order_by(jobs.c.sweep_point)
        ).all()
    return [
        Child(
            r.sweep_point,
            r.public_id,
            Status(r.status),
            dict(r.params),
            r.name,
            list(r.tags or []),
            r.max_attempts,
            r.timeout_seconds,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Point:
    """A point of a sweep as its page shows it: its latest job, with the job's result."""

    point: int
    public_id: str
    name: str
    status: Status
    partial: bool
    params: dict[str, Any]
    result: dict[str, Any] | None  # the stored summary; None until the job succeeds
    started_at: datetime | None
    finished_at: datetime | None
    error_line: str | None


def points(engine: Engine, public_id: str) -> list[Point]:
    """Each point's latest job and result, in the points' order: one statement, by the
    `ix_jobs_sweep_point` index and the unique `job_results.job_id`."""
    with reading(engine) as conn:
        sweep_id = _id_of(conn, public_id)
        rows = conn.execute(
            select(
                jobs.c.sweep_point,
                jobs.c.public_id,
                jobs.c.name,
                jobs.c.status,
                jobs.c.partial,
                jobs.c.params,
                jobs.c.started_at,
                jobs.c.finished_at,
                jobs.c.error_message,
                results.c.summary,
            )
            .select_from(jobs.outerjoin(results, results.c.job_id == jobs.c.id))
            .where(jobs.c.id.in_(_latest_ids(sweep_id)))
            .order_by(jobs.c.sweep_point)
        ).all()
    return [
        Point(
            r.sweep_point,
            r.public_id,
            r.name,
            Status(r.status),
            bool(r.partial),
            dict(r.params),
            None if r.summary is None else dict(r.summary),
            as_utc(r.started_at),
            as_utc(r.finished_at),
            first_line(r.error_message),
        )
        for r in rows
    ]


def version(engine: Engine, public_id: str) -> tuple[Any, ...]:
    """A stamp that changes whenever any of the sweep's jobs is added, starts, ends or is tried
    again: its pages read the points again only then. One range of `ix_jobs_sweep_point`."""
    with reading(engine) as conn:
        sweep_id = _id_of(conn, public_id)
        row = conn.execute(
            select(
                func.count(),
                func.max(jobs.c.id),
                func.sum(jobs.c.attempt),
                func.max(jobs.c.started_at),
                func.max(jobs.c.finished_at),
            ).where(jobs.c.sweep_id == sweep_id)
        ).one()
    return tuple(str(v) for v in row)


def children(engine: Engine, public_id: str) -> list[str]:
    """The public ids of every job of a sweep, re-runs included, by point and then age."""
    with reading(engine) as conn:
        sweep_id = _id_of(conn, public_id)
        return list(
            conn.execute(
                select(jobs.c.public_id)
                .where(jobs.c.sweep_id == sweep_id)
                .order_by(jobs.c.sweep_point, jobs.c.id)
            ).scalars()
        )


def add(
    engine: Engine,
    public_id: str,
    new: Sequence[NewJob],
    points: Sequence[int],
    *,
    plan: dict[str, Any] | None = None,
    was: dict[str, Any] | None = None,
) -> list[str]:
    """More jobs of a sweep, at the given points, in one transaction: the re-runs of failed
    points, or the new points of an extension, whose `plan` replaces the one it was made from
    (`was`) unless another extension replaced it first."""
    with engine.begin() as conn:
        sweep_id = _id_of(conn, public_id)
        if plan is not None:
            changed = conn.execute(
                update(sweeps_t)
                .where(sweeps_t.c.id == sweep_id, sweeps_t.c.plan == was)
                .values(plan=plan)
            ).rowcount
            if changed != 1:
                raise InvalidParams(
                    {"sweep": f"sweep {public_id} was changed meanwhile; open it again"}
                )
        out: list[str] = []
        for start in range(0, len(new), CHUNK):
            stop = start + CHUNK
            out += insert_jobs(conn, new[start:stop], sweep_id, points[start:stop])
        if out:
            notify(conn)
    return out


@dataclass(frozen=True)
class Ended:
    """A sweep whose last job ended: when, and its points by status."""

    public_id: str
    name: str
    at: datetime
    statuses: dict[str, int]


def ended_since(engine: Engine, owner: str, since: datetime, *, limit: int = 5) -> list[Ended]:
    """The owner's sweeps whose last open job ended after `since`, oldest first: those with a
    job ended since then and none still queued or running."""
    stamp = since.astimezone(UTC)
    if engine.dialect.name != "postgresql":  # SQLite keeps naive UTC text
        stamp = stamp.replace(tzinfo=None)
    other = jobs.alias("open_job")
    open_ = (
        select(other.c.id)
        .where(other.c.sweep_id == sweeps_t.c.id, other.c.status.in_(OPEN))
        .correlate(sweeps_t)
        .exists()
    )
    with reading(engine) as conn:
        rows = conn.execute(
            select(sweeps_t.c.public_id, sweeps_t.c.name, func.max(jobs.c.finished_at).label("at"))
            .select_from(jobs.join(sweeps_t, sweeps_t.c.id == jobs.c.sweep_id))
            .where(jobs.c.finished_at > stamp, jobs.c.owner == owner, ~open_)
            .group_by(sweeps_t.c.id, sweeps_t.c.public_id, sweeps_t.c.name)
            .order_by("at")
            .limit(limit)
        ).all()
    return [
        Ended(r.public_id, r.name, as_utc(r.at), get(engine, r.public_id).statuses) for r in rows
    ]


@dataclass(frozen=True)
class Row:
    """A sweep as one row of the history: its points, how many have ended, and when its jobs
    ran, from the first start to the last end (None while one is still open)."""

    public_id: str
    name: str
    children: int
    ended: int
    started_at: datetime | None = None
    finished_at: datetime | None = None


def rows_of(engine: Engine, job_ids: Collection[str]) -> dict[str, Row]:
    """The sweeps whose history row stands on one of the jobs `job_ids`, by that job's id.
    Three statements, however many sweeps: the heads, their points by status, their spans."""
    if not job_ids:
        return {}
    with reading(engine) as conn:
        heads = conn.execute(
            select(jobs.c.public_id, jobs.c.sweep_id, sweeps_t.c.public_id.label("sweep"))
            .add_columns(sweeps_t.c.name)
            .select_from(jobs.join(sweeps_t, sweeps_t.c.id == jobs.c.sweep_id))
            .where(jobs.c.public_id.in_(sorted(job_ids)), sweep_head(jobs))
        ).all()
        if not heads:
            return {}
        latest = (
            select(func.max(jobs.c.id))
            .where(jobs.c.sweep_id.in_([h.sweep_id for h in heads]))
            .group_by(jobs.c.sweep_id, jobs.c.sweep_point)
        )
        counts = conn.execute(
            select(jobs.c.sweep_id, jobs.c.status, func.count().label("n"))
            .where(jobs.c.id.in_(latest))
            .group_by(jobs.c.sweep_id, jobs.c.status)
        ).all()
        spans = {
            r.sweep_id: (as_utc(r.first), as_utc(r.last))
            for r in conn.execute(
                select(
                    jobs.c.sweep_id,
                    func.min(jobs.c.started_at).label("first"),
                    func.max(jobs.c.finished_at).label("last"),
                )
                .where(jobs.c.sweep_id.in_([h.sweep_id for h in heads]))
                .group_by(jobs.c.sweep_id)
            )
        }
    children: Counter[int] = Counter()
    ended: Counter[int] = Counter()
    for c in counts:
        children[c.sweep_id] += c.n
        if Status(c.status).terminal:
            ended[c.sweep_id] += c.n
    out = {}
    for h in heads:
        n, done = children[h.sweep_id], ended[h.sweep_id]
        first, last = spans.get(h.sweep_id, (None, None))
        out[h.public_id] = Row(h.sweep, h.name, n, done, first, last if done == n else None)
    return out


def names(engine: Engine, public_ids: Collection[str]) -> dict[str, str]:
    """The names of the sweeps among `public_ids` that exist."""
    if not public_ids:
        return {}
    with reading(engine) as conn:
        rows = conn.execute(
            select(sweeps_t.c.public_id, sweeps_t.c.name).where(
                sweeps_t.c.public_id.in_(sorted(public_ids))
            )
        ).all()
    return {r.public_id: r.name for r in rows}


def point_counts(conn: Connection, sweep_id: int) -> dict[str, int]:
    """A sweep's points by the status of each one's latest job: a point whose failed job was
    re-run counts once, as its re-run."""
    return {
        str(status): int(n)
        for status, n in conn.execute(
            select(jobs.c.status, func.count())
            .where(jobs.c.id.in_(_latest_ids(sweep_id)))
            .group_by(jobs.c.status)
        )
    }


def _latest_ids(sweep_id: int) -> Any:
    """The id of each point's latest job, as a subquery."""
    return (
        select(func.max(jobs.c.id))
        .where(jobs.c.sweep_id == sweep_id)
        .group_by(jobs.c.sweep_point)
        .scalar_subquery()
    )


def _id_of(conn: Connection, public_id: str) -> int:
    found = conn.execute(select(sweeps_t.c.id).where(sweeps_t.c.public_id == public_id)).scalar()
    if found is None:
        raise SweepNotFound(public_id)
    return int(found)


def _by_idempotency_key(engine: Engine, sweep: NewSweep) -> str | None:
    """The sweep already stored under `sweep`'s key; InvalidParams if it is another request."""
    with reading(engine) as conn:
        row = conn.execute(
            select(sweeps_t.c.public_id, sweeps_t.c.kind, sweeps_t.c.plan, sweeps_t.c.params).where(
                sweeps_t.c.idempotency_key == sweep.idempotency_key
            )
        ).first()
    if row is None:
        return None
    same = (
        row.kind == sweep.kind
        and dict(row.params) == sweep.params
        and _without(row.plan, sweep.drawn) == _without(sweep.plan, sweep.drawn)
    )
    if not same:
        raise InvalidParams(
            {
                "idempotency_key": f"already used by sweep {row.public_id}, with another kind, "
                "parameters or plan; use a new key for a different sweep"
            }
        )
    return str(row.public_id)


def _without(plan: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in plan.items() if k not in keys}
