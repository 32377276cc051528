"""End to end through a real runner process and a real Dask LocalCluster."""

from __future__ import annotations

import os
import signal

import psutil
import pytest
from sqlalchemy import Engine, func, select

from compute import intake
from jobstore import queries
from jobstore.models import JobEvent, JobMetric, Status
from tests.conftest import on_sqlite_only
from tests.polling import wait_for
from tests.runner.helpers import assert_sound, counted_meanwhile, pi_under_way, watch


def test_driver_exception_fails_the_job_and_the_runner_goes_on(engine, start_runner):
    runner = start_runner("--concurrency", "1")
    bad = intake.submit(engine, "test_raises", {"message": "the model diverged"})
    good = intake.submit(engine, "monte_carlo_pi", {"samples": 1000, "seed": 1})
    failed = watch(engine, bad, timeout=60)[-1]
    assert failed.status is Status.FAILED
    assert failed.error.type == "ValueError"
    assert failed.error.message == "the model diverged"
    assert "Traceback" in failed.traceback and "the model diverged" in failed.traceback
    assert [s.status for s in failed.stages] == ["failed"]
    assert [line.message for line in failed.logs] == ["about to fail"]
    assert watch(engine, good, timeout=60)[-1].status is Status.SUCCEEDED
    assert runner.proc.poll() is None
    assert_sound(engine)


def test_bad_results_fail_with_a_clear_message(engine, start_runner):
    start_runner()
    nan = intake.submit(engine, "test_nan", {})
    obj = intake.submit(engine, "test_unserialisable", {})
    nan_job = watch(engine, nan, timeout=60)[-1]
    obj_job = watch(engine, obj, timeout=60)[-1]
    assert nan_job.status is Status.FAILED and nan_job.error.type == "BadResult"
    assert "'value' is nan" in nan_job.error.message
    assert obj_job.status is Status.FAILED and obj_job.error.type == "BadResult"
    assert "cannot be stored as JSON" in obj_job.error.message
    assert nan_job.result is None and obj_job.result is None
    assert_sound(engine)


@on_sqlite_only
def test_a_dask_worker_killed_mid_job_is_replaced_and_the_job_gives_the_same_numbers(
    engine, start_runner
):
    runner = start_runner("--concurrency", "1")
    with counted_meanwhile(1_200_000_000, 12, 5) as expected:
        job = pi_under_way(engine, {"samples": 1_200_000_000, "chunks": 12, "seed": 5}, past=0.2)
        workers = [
            p
            for p in psutil.Process(runner.proc.pid).children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())
        ]
        assert len(workers) == 2, [p.cmdline() for p in workers]
        workers[0].kill()  # SIGKILL mid-task: Dask must run its chunk again elsewhere
        final = watch(engine, job, timeout=120)[-1]
        assert final.status is Status.SUCCEEDED, final.error
        assert final.attempt == 1  # Dask recovered inside the attempt; the job never lost its lease
        assert final.result["inside"] == expected()
    assert not workers[0].is_running()
    assert_sound(engine)


# Its deadlines add up to 380 s: two runners' starts (60 s each), 60 + 30 + 60 + 20 + 90 s.
@pytest.mark.timeout(440)
@on_sqlite_only
def test_sigterm_finishes_the_short_job_hands_back_the_long_one_and_exits_0(engine, start_runner):
    runner = start_runner(RUNLAB_GRACE_SECONDS="4")
    short = intake.submit(engine, "demo_stages", {"stages": 2, "seconds_per_stage": 1.0})
    long = intake.submit(engine, "demo_stages", {"stages": 3, "seconds_per_stage": 2.5})
    wait_for(
        lambda: all(queries.get_job(engine, j).status is Status.RUNNING for j in (short, long)),
        timeout=60,
        what="both jobs to start",
    )
    workers = psutil.Process(runner.proc.pid).children(recursive=True)
    assert workers, "the runner should have started Dask worker processes"
    runner.proc.send_signal(signal.SIGTERM)
    # The short job finishes inside the grace period, on the workers the runner keeps running.
    assert watch(engine, short, timeout=30)[-1].status is Status.SUCCEEDED
    assert runner.proc.wait(timeout=60) == 0  # one SIGTERM: a second would skip the grace
    assert "handed back" in runner.log()
    # No worker outlives its runner.
    wait_for(
        lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers),
        timeout=20,
        what="the Dask workers to exit",
    )
    back = queries.get_job(engine, long)
    assert back.status is Status.QUEUED
    assert back.attempt == 1
    # Handing back is not a failure: the job keeps all three of its tries.
    assert back.max_attempts == 4
    assert [(a.attempt, a.outcome) for a in back.attempts] == [(1, "requeued")]
    assert "not charged" in (back.attempts[0].note or "")
    assert not any(r.alive for r in queries.runners(engine, alive_within=60))
    with engine.connect() as conn:
        ends = conn.execute(
            select(JobEvent.to_status).where(JobEvent.to_status.in_(["failed", "cancelled"]))
        ).all()
    assert ends == []
    assert_sound(engine)

    # Nothing is lost: the next runner takes the job straight away and finishes it.
    start_runner()
    final = watch(engine, long, timeout=90)[-1]
    assert final.status is Status.SUCCEEDED, final.error
    assert final.attempt == 2
    assert_sound(engine)


# Its deadlines add up to 300 s: two runners' starts (60 s each), the job under way, 120 s.
def test_retryable_failure_runs_again_and_every_attempt_is_kept(engine, start_runner):
    start_runner()
    job = intake.submit(engine, "test_flaky", {"message": "flaky source"})
    final = watch(engine, job, timeout=60)[-1]
    assert final.status is Status.SUCCEEDED
    assert final.result == {"attempt": 3}
    assert [(a.attempt, a.outcome) for a in final.attempts] == [
        (1, "requeued"),
        (2, "requeued"),
        (3, "succeeded"),
    ]
    assert "retrying after Retryable: flaky source on attempt 1" in final.attempts[0].note
    assert final.to_json()["attempts"][2]["outcome"] == "succeeded"
    assert_sound(engine)


def test_a_poison_job_fails_after_max_attempts_while_others_run(engine, start_runner):
    start_runner("--concurrency", "1")
    poison = intake.submit(engine, "test_flaky", {"message": "always"}, max_attempts=3)
    other = intake.submit(engine, "monte_carlo_pi", {"samples": 1000, "seed": 3})
    assert watch(engine, other, timeout=60)[-1].status is Status.SUCCEEDED
    final = watch(engine, poison, timeout=60)[-1]
    assert final.status is Status.FAILED
    assert final.error.type == "Retryable"
    assert final.error.message == "always on attempt 3"
    assert [a.outcome for a in final.attempts] == ["requeued", "requeued", "failed"]
    # Backoff: each attempt starts after the one before it ended, with a pause between.
    for before, after in zip(final.attempts, final.attempts[1:], strict=False):
        assert (after.started_at - before.ended_at).total_seconds() >= 0.2
    assert_sound(engine)


# Its deadlines add up to 360 s: two runners' starts (60 s each), the job under way, 120 + 60 s.
@pytest.mark.timeout(420)
def test_a_runner_woken_from_sigstop_after_its_job_moved_on_writes_nothing(engine, start_runner):
    stale = start_runner("--concurrency", "1")
    job = pi_under_way(engine, {"samples": 800_000_000, "chunks": 16, "seed": 5}, past=0.1)
    os.killpg(stale.proc.pid, signal.SIGSTOP)  # the runner and its workers freeze mid-job
    try:
        start_runner("--concurrency", "1")
        final = watch(engine, job, timeout=120)[-1]
        assert final.status is Status.SUCCEEDED and final.attempt == 2
        before = ledger_of_attempt(engine, 1)
    finally:
        os.killpg(stale.proc.pid, signal.SIGCONT)
    wait_for(
        lambda: "lost its lease" in stale.log(),
        timeout=60,
        what="the woken runner to notice it lost the job",
    )
    assert ledger_of_attempt(engine, 1) == before  # not a progress value, log line or result
    after = queries.get_job(engine, job)
    assert after.status is Status.SUCCEEDED and after.attempt == 2
    assert after.result == final.result
    assert stale.proc.poll() is None  # it carries on, and may take new work
    assert_sound(engine)


def ledger_of_attempt(engine: Engine, attempt: int) -> tuple[int, int]:
    """How many metric points and events an attempt has written."""
    with engine.connect() as conn:
        metrics = conn.execute(
            select(func.count()).select_from(JobMetric).where(JobMetric.attempt == attempt)
        ).scalar_one()
        events = conn.execute(
            select(func.count()).select_from(JobEvent).where(JobEvent.attempt == attempt)
        ).scalar_one()
    return metrics, events


@on_sqlite_only
def test_a_job_past_its_timeout_fails_within_seconds_of_the_limit(engine, start_runner):
    start_runner("--concurrency", "1")
    job = intake.submit(
        engine, "demo_stages", {"stages": 20, "seconds_per_stage": 1.0}, timeout_seconds=2
    )
    final = watch(engine, job, timeout=60)[-1]
    assert final.status is Status.FAILED
    assert final.error.type == "JobTimedOut"
    assert "timeout of 2 s" in final.error.message
    ran = (final.finished_at - final.started_at).total_seconds()
    assert 2 <= ran < 6, ran
    assert [a.outcome for a in final.attempts] == ["failed"]  # a timeout is not retried
    # The runner's one slot is free again: the next job runs at once.
    after = intake.submit(engine, "demo_stages", {"stages": 1, "seconds_per_stage": 0.2})
    assert watch(engine, after, timeout=30)[-1].status is Status.SUCCEEDED
    assert_sound(engine)
