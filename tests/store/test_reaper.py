"""The reaper: lapsed leases come back to the queue, or end; healthy ones are never touched."""

from __future__ import annotations

import concurrent.futures

import pytest
from sqlalchemy import Engine, select, text

from compute.intake import submit
from jobstore.engine import (
    IDLE_IN_TRANSACTION_SECONDS,
    KEEPALIVE_IDLE_SECONDS,
    database_time,
    reading,
)
from jobstore.models import Job, JobEvent, StageStatus, Status
from jobstore.queries import get_job
from jobstore.reports import Report, StageUpdate, report
from jobstore.transitions import backoff_seconds, claim, reap, request_cancel
from runlab.errors import LostJob
from tests.conftest import on_postgres_only
from tests.polling import wait_for

RUNNER = "runner-r"
SHORT = 0.05  # seconds of lease: lapses almost at once


def reap_until_some(engine: Engine, **kw: float) -> list:
    return wait_for(lambda: reap(engine, **kw), timeout=10, what="the lease to lapse")


def test_expired_lease_requeues_with_next_attempt(engine: Engine) -> None:
    public_id = submit(engine, "demo_stages", {"stages": 2})
    [lease] = claim(engine, RUNNER, lease_seconds=SHORT)
    report(
        engine,
        lease,
        Report(progress=0.4, stage_updates=[StageUpdate(0, "stage 1", StageStatus.RUNNING, 0.8)]),
        lease_seconds=SHORT,
    )

    [reaped] = reap_until_some(engine, backoff_base=0)

    assert (reaped.public_id, reaped.attempt, reaped.status) == (public_id, 1, Status.QUEUED)
    job = get_job(engine, public_id)
    assert job.status is Status.QUEUED and job.attempt == 1 and job.progress == 0
    assert [s.status for s in job.stages] == ["pending", "pending"]
    with reading(engine) as conn:
        event = conn.execute(
            select(JobEvent.message, JobEvent.to_status).where(
                JobEvent.to_status == Status.QUEUED, JobEvent.attempt == 1
            )
        ).one()
    assert "lease lapsed on runner runner-r (attempt 1 of 3)" in event.message
    # The lapsed attempt can write nothing more, and the next claim is attempt 2.
    with pytest.raises(LostJob):
        report(engine, lease, Report(progress=0.9), lease_seconds=30)
    [again] = claim(engine, "runner-s")
    assert again.attempt == 2


def test_requeued_job_waits_out_its_backoff(engine: Engine) -> None:
    submit(engine, "demo_stages", {})
    claim(engine, RUNNER, lease_seconds=SHORT)
    reap_until_some(engine, backoff_base=60)
    with reading(engine) as conn:
        run_after, now = conn.execute(select(Job.run_after)).scalar_one(), database_time(conn)
    assert 25 <= (run_after - now).total_seconds() <= 61
    assert claim(engine, "runner-s") == []


def test_healthy_lease_is_never_reaped(engine: Engine) -> None:
    public_id = submit(engine, "demo_stages", {})
    claim(engine, RUNNER, lease_seconds=30)
    assert reap(engine) == []
    assert get_job(engine, public_id).status is Status.RUNNING


def test_lapsed_lease_on_the_last_attempt_fails_the_job(engine: Engine) -> None:
    public_id = submit(engine, "demo_stages", {}, max_attempts=1)
    claim(engine, RUNNER, lease_seconds=SHORT)
    [reaped] = reap_until_some(engine)
    assert reaped.status is Status.FAILED
    job = get_job(engine, public_id)
    assert job.status is Status.FAILED
    assert job.error.type == "LeaseExpired"
    assert "attempt 1 of 1" in job.error.message
    assert job.finished_at is not None


def test_lapsed_lease_with_a_cancel_request_ends_cancelled(engine: Engine) -> None:
    public_id = submit(engine, "demo_stages", {})
    claim(engine, RUNNER, lease_seconds=SHORT)
    request_cancel(engine, public_id)
    [reaped] = reap_until_some(engine)
    assert reaped.status is Status.CANCELLED
    assert get_job(engine, public_id).status is Status.CANCELLED


@pytest.mark.parametrize("attempt", [1, 2, 3, 8])
def test_backoff_doubles_with_jitter_and_a_cap(attempt: int) -> None:
    full = min(600.0, 5.0 * 2 ** (attempt - 1))
    for _ in range(50):
        assert 0.5 * full <= backoff_seconds(attempt, 5.0) <= full
    assert backoff_seconds(30, 5.0) <= 600.0


@on_postgres_only
def test_a_row_locked_by_another_session_is_left_for_a_later_pass(engine: Engine) -> None:
    """As by a runner cut off mid-transaction: the reaper takes the other lapsed jobs at once,
    and the locked one once the lock is gone."""
    locked_id = submit(engine, "demo_stages", {})
    other_id = submit(engine, "demo_stages", {})
    claim(engine, RUNNER, limit=2, lease_seconds=SHORT)
    holder = engine.connect()
    holder.begin()
    holder.execute(select(Job.id).where(Job.public_id == locked_id).with_for_update()).one()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(reap_until_some, engine, backoff_base=0).result(timeout=20)
        finally:
            holder.rollback()
            holder.close()
    assert [r.public_id for r in first] == [other_id]
    [then] = reap_until_some(engine, backoff_base=0)
    assert then.public_id == locked_id
    assert get_job(engine, locked_id).status is Status.QUEUED


@on_postgres_only
def test_the_server_ends_a_session_left_idle_inside_a_transaction(engine: Engine) -> None:
    with engine.connect() as conn:
        shown = conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one()
        keepalive = conn.execute(text("SHOW tcp_keepalives_idle")).scalar_one()
    assert shown == f"{IDLE_IN_TRANSACTION_SECONDS // 60}min"
    assert keepalive == str(KEEPALIVE_IDLE_SECONDS)
