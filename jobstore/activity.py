"""The store's recent activity: jobs finished per minute, and the queue's depth over time.

Both are read from the jobs table alone, in one snapshot, and touch only the rows of the
window (plus the running ones):

- `created_at >= :since` walks an index on `jobs (created_at, id)`;
- `finished_at >= :since` walks an index on `jobs (finished_at)`;
- the running jobs and the queue's size come from `ix_jobs_status_id`.

So their cost follows the jobs of the last hour, not the size of the table.

A job counts as waiting from its creation until its latest claim, or until its cancel if it
never ran. A job waiting now counts from its creation on. The table keeps only the latest claim,
so a job retried within the hour is counted as waiting through its earlier attempts too; the
last point of the queue's depth is exact, and equals the queued count of the home page.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Engine, case, func, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from jobstore.engine import db_now, reading
from jobstore.models import TERMINAL, Job, Status, table_of
from jobstore.views import as_utc

jobs = table_of(Job)
MINUTE = timedelta(minutes=1)
MAX_MINUTES = 24 * 60
# Newest first in the legend reads oddly; this is the order a person expects.
FINISHED_ORDER = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


class minute_of(FunctionElement[Any]):
    """The UTC minute a timestamp falls in, truncated in the database so rows group there."""

    type = DateTime()
    inherit_cache = True


@compiles(minute_of, "sqlite")
def _minute_sqlite(element: minute_of, compiler: Any, **kw: Any) -> str:
    # The seconds stay in the text, or SQLAlchemy's SQLite DateTime cannot parse it back.
    return f"strftime('%Y-%m-%d %H:%M:00', {compiler.process(element.clauses, **kw)})"


@compiles(minute_of, "postgresql")
def _minute_pg(element: minute_of, compiler: Any, **kw: Any) -> str:
    # In UTC, whatever the session's TimeZone: the buckets line up with the SQLite ones.
    return f"date_trunc('minute', ({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC')"


@dataclass(frozen=True)
class Activity:
    """The last `len(minutes)` minutes of the store, as the /runners charts draw them."""

    now: datetime
    # Start of each one-minute bucket, oldest first; the last one is the current, partial minute.
    minutes: list[datetime]
    # Per terminal status, the jobs that finished in each bucket.
    finished: dict[Status, list[int]]
    # The queue's depth at the start of each bucket, then at `now`.
    depth_at: list[datetime]
    depth: list[int]

    @property
    def finished_total(self) -> int:
        return sum(sum(counts) for counts in self.finished.values())


def last_hour(engine: Engine, *, minutes: int = 60, now: datetime | None = None) -> Activity:
    """Throughput and queue depth over the last `minutes` whole minutes, the current one included.

    `now` defaults to the database's clock, the one clock every process's timestamps share.
    """
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be between 1 and {MAX_MINUTES}, not {minutes}")
    with reading(engine) as conn:
        if now is None:
            now = as_utc(conn.execute(select(db_now())).scalar_one())
        assert now is not None
        since = now.replace(second=0, microsecond=0) - (minutes - 1) * MINUTE
        end = since + minutes * MINUTE
        done = conn.execute(_finished(since, end)).all()
        moves = conn.execute(_queue_moves(since, end)).all()
        queued_now = conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.status == Status.QUEUED)
        ).scalar_one()
    buckets = [since + i * MINUTE for i in range(minutes)]
    index = {b: i for i, b in enumerate(buckets)}

    finished = {s: [0] * minutes for s in FINISHED_ORDER}
    for minute, status, n in done:
        finished.setdefault(Status(status), [0] * minutes)[index[as_utc(minute)]] += int(n)

    entries: Counter[int] = Counter()
    exits: Counter[int] = Counter()
    queued_new = early_exits = 0
    for minute, entered, still_queued, left, left_early in moves:
        i = index[as_utc(minute)]
        entries[i] += int(entered)
        exits[i] += int(left)
        queued_new += int(still_queued)
        early_exits += int(left_early)
    # Waiting at `since`: the jobs created before it that wait still, plus those that left since.
    depth = [int(queued_now) - queued_new + early_exits]
    for i in range(minutes):
        depth.append(depth[-1] + entries[i] - exits[i])
    return Activity(
        now=now,
        minutes=buckets,
        finished=finished,
        depth_at=[*buckets, now],
        depth=depth,
    )


def _finished(since: datetime, end: datetime) -> Any:
    minute = minute_of(jobs.c.finished_at)
    return (
        select(minute, jobs.c.status, func.count())
        .where(
            jobs.c.finished_at >= since,
            jobs.c.finished_at < end,
            jobs.c.status.in_(list(TERMINAL)),
        )
        .group_by(minute, jobs.c.status)
    )


def _queue_moves(since: datetime, end: datetime) -> Any:
    """Per minute: jobs that joined the queue, and jobs that left it (by a claim or a cancel).

    Rows are (minute, joined, joined and still queued, left, left but joined before `since`).
    """
    created = minute_of(jobs.c.created_at)
    joined = (
        select(
            created.label("minute"),
            func.count().label("joined"),
            func.sum(case((jobs.c.status == Status.QUEUED, 1), else_=0)).label("waiting"),
            func.sum(0).label("left"),
            func.sum(0).label("left_early"),
        )
        .where(jobs.c.created_at >= since, jobs.c.created_at < end)
        .group_by(created)
    )
    left_at = func.coalesce(jobs.c.started_at, jobs.c.finished_at)
    # A job that left within the window is running now, or has finished since (finished_at is
    # at or after its start): two narrow, indexed sets instead of a scan of every job.
    running = select(left_at.label("at"), jobs.c.created_at).where(
        jobs.c.status == Status.RUNNING, jobs.c.started_at >= since, jobs.c.started_at < end
    )
    ended = select(left_at.label("at"), jobs.c.created_at).where(
        jobs.c.finished_at >= since, left_at >= since, left_at < end
    )
    gone = union_all(running, ended).subquery("gone")
    left_minute = minute_of(gone.c.at)
    left = select(
        left_minute.label("minute"),
        func.sum(0).label("joined"),
        func.sum(0).label("waiting"),
        func.count().label("left"),
        func.sum(case((gone.c.created_at < since, 1), else_=0)).label("left_early"),
    ).group_by(left_minute)
    return union_all(joined, left)
