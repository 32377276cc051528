"""Jobs finished per minute and the queue's depth over the last hour, against figures by hand.

Each job reaches its state through the store's own verbs, then gets back-dated timestamps, so
the expected counts follow from the times below alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update

from compute.intake import submit
from jobstore.activity import last_hour
from jobstore.engine import db_now
from jobstore.models import Job, Status
from jobstore.reports import Lease
from jobstore.transitions import claim, request_cancel, retry, succeed
from jobstore.transitions import fail as fail_job
from jobstore.views import as_utc

jobs = Job.__table__
RUNNER = "runner-a"
MINUTE = timedelta(minutes=1)


def _db_now(engine: Engine) -> datetime:
    with engine.connect() as conn:
        now = as_utc(conn.execute(select(db_now())).scalar_one())
    assert now is not None
    return now


def _run(engine: Engine, public_id: str) -> Lease:
    """Claim `public_id`, the only job queued at this point."""
    [lease] = claim(engine, RUNNER)
    assert lease.public_id == public_id
    return lease


def _dates(engine: Engine, public_id: str, **stamps: datetime | None) -> None:
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.public_id == public_id).values(**stamps))


@pytest.fixture
def clock(engine: Engine) -> tuple[datetime, datetime]:
    """(`now`, `since`): half past a minute, and the start of the hour's first bucket."""
    now = _db_now(engine).replace(second=30, microsecond=0)
    return now, now.replace(second=0) - 59 * MINUTE


def test_last_hour_counts_finished_jobs_per_minute_and_queue_depth(
    engine: Engine, clock: tuple[datetime, datetime]
) -> None:
    now, since = clock

    def at(minute: int, second: int) -> datetime:
        return since + minute * MINUTE + timedelta(seconds=second)

    def finished(created: datetime, started: datetime, ended: datetime, *, ok: bool = True) -> str:
        job = submit(engine, "demo_stages", {})
        lease = _run(engine, job)
        if ok:
            succeed(engine, lease, {"stages": []}, None)
        else:
            fail_job(engine, lease, "ValueError", "boom")
        _dates(engine, job, created_at=created, started_at=started, finished_at=ended)
        return job

    # Ran and ended before the window: in nothing.
    finished(since - 3 * 60 * MINUTE, since - 2 * 60 * MINUTE, since - 60 * MINUTE)
    # Claimed before the window, succeeded in minute 2: throughput only.
    finished(since - 10 * MINUTE, since - 5 * MINUTE, at(2, 0))
    # Waiting at the start, claimed in minute 10, succeeded in minute 12.
    finished(since - 30 * MINUTE, at(10, 20), at(12, 5))
    # Joined in minute 5, claimed in minute 6, failed in minute 30.
    finished(at(5, 40), at(6, 15), at(30, 45), ok=False)
    # Joined and left within minute 58, succeeded in the current minute: no depth, one finished.
    finished(at(58, 5), at(58, 40), at(59, 10))

    running = submit(engine, "demo_stages", {})
    _run(engine, running)
    _dates(engine, running, created_at=at(40, 10), started_at=at(41, 50))

    # Claimed in minute 8, then back to the queue: counted as waiting from its creation.
    retried = submit(engine, "demo_stages", {}, max_attempts=3)
    lease = _run(engine, retried)
    assert retry(engine, lease, "ClusterLost", "scheduler gone") is Status.QUEUED
    _dates(engine, retried, created_at=at(3, 30), started_at=at(8, 0))

    # Cancelled while waiting, in minute 20.
    dropped = submit(engine, "demo_stages", {})
    request_cancel(engine, dropped)
    _dates(engine, dropped, created_at=at(5, 10), finished_at=at(20, 30))

    old_waiting = submit(engine, "demo_stages", {})
    _dates(engine, old_waiting, created_at=since - 2 * 60 * MINUTE)
    new_waiting = submit(engine, "demo_stages", {})
    _dates(engine, new_waiting, created_at=at(50, 20))

    act = last_hour(engine, now=now)

    assert act.now == now
    assert act.minutes == [since + i * MINUTE for i in range(60)]
    assert act.depth_at == [*act.minutes, now]

    def only(**counts: int) -> list[int]:
        out = [0] * 60
        for minute, n in counts.items():
            out[int(minute[1:])] = n
        return out

    assert act.finished == {
        Status.SUCCEEDED: only(m2=1, m12=1, m59=1),
        Status.FAILED: only(m30=1),
        Status.CANCELLED: only(m20=1),
    }
    assert act.finished_total == 5

    # By hand, at each minute's start: the old waiting job throughout; the job claimed in
    # minute 10 up to minute 10; the retried one from minute 4; the cancelled one in minutes
    # 6-20; the failed one in minute 6 only; the running one in minute 41 only; the new waiting
    # one from minute 51.
    expected = (
        [2] * 4  # 0-3
        + [3] * 2  # 4-5
        + [5]  # 6
        + [4] * 4  # 7-10
        + [3] * 10  # 11-20
        + [2] * 20  # 21-40
        + [3]  # 41
        + [2] * 9  # 42-50
        + [3] * 9  # 51-59
        + [3]  # now
    )
    assert act.depth == expected
    # The last point is the queue as it stands.
    assert act.depth[-1] == 3


def test_last_hour_of_an_empty_store_is_all_zero(engine: Engine) -> None:
    act = last_hour(engine)

    assert len(act.minutes) == 60
    assert act.finished_total == 0
    assert act.depth == [0] * 61
    assert act.minutes[-1] <= act.now < act.minutes[-1] + MINUTE


def test_last_hour_reads_the_database_clock_and_a_fresh_queue(engine: Engine) -> None:
    for _ in range(3):
        submit(engine, "demo_stages", {})
    first = submit(engine, "demo_stages", {})
    request_cancel(engine, first)

    act = last_hour(engine, minutes=5)

    assert len(act.minutes) == 5
    assert act.depth[0] == 0
    assert act.depth[-1] == 3
    assert sum(act.finished[Status.CANCELLED]) == 1


def test_last_hour_refuses_a_window_out_of_bounds(engine: Engine) -> None:
    with pytest.raises(ValueError, match="minutes must be between 1 and 1440"):
        last_hour(engine, minutes=0)
