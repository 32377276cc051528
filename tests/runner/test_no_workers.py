"""A Dask cluster with no worker: the runner claims nothing, hands back what it holds, and a
cancel or a stop still lands while a driver waits on Dask."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sqlalchemy import Engine, select

from compute import intake
from jobstore import queries, transitions
from jobstore.doctor import check
from jobstore.models import Runner, Status
from tests.conftest import on_sqlite_only
from tests.polling import wait_for
from tests.runner.conftest import DaskCluster
from tests.runner.helpers import assert_sound, scheduler_tasks, watch

BOUND = 3.0  # RUNLAB_NO_WORKER_SECONDS in these tests
HEARTBEAT = 0.5  # the runner fixture's RUNLAB_HEARTBEAT_SECONDS


def no_workers_since(engine: Engine) -> object:
    with engine.connect() as conn:
        return conn.execute(select(Runner.no_workers_since)).scalar_one_or_none()


def running_in(engine: Engine, job: str, stage: str) -> bool:
    j = queries.get_job(engine, job)
    return j.status is Status.RUNNING and j.stage == stage


def test_a_runner_whose_scheduler_has_no_workers_claims_nothing_until_one_joins(
    engine: Engine, start_runner, tmp_path: Path
) -> None:
    cluster = DaskCluster(tmp_path, workers=1)
    cluster.start_scheduler()
    try:
        runner = start_runner("--scheduler", cluster.address)
        job = intake.submit(engine, "test_waits", {"seconds": 0.1})
        wait_for(
            lambda: "has no workers; claiming nothing" in runner.log(),
            timeout=30,
            what="the runner to say that its cluster has no workers",
        )
        # The runner's heartbeat has dated the lack in the store: claim rounds have passed.
        wait_for(lambda: no_workers_since(engine), timeout=30, what="the runner's row to say so")
        assert queries.get_job(engine, job).status is Status.QUEUED
        assert runner.log().count("has no workers; claiming nothing") == 1  # said once

        cluster.start_workers()
        assert watch(engine, job, timeout=60)[-1].status is Status.SUCCEEDED
        assert "worker(s) again; claiming" in runner.log()
        wait_for(lambda: no_workers_since(engine) is None, timeout=30, what="the row to clear")
    finally:
        cluster.close()
    assert_sound(engine)


def test_a_job_running_when_the_last_worker_dies_is_handed_back_uncharged_within_the_bound(
    engine: Engine, start_runner, tmp_path: Path
) -> None:
    cluster = DaskCluster(tmp_path, workers=1)
    cluster.start_scheduler()
    cluster.start_workers()
    try:
        cluster.wait_ready()
        start_runner("--scheduler", cluster.address, RUNLAB_NO_WORKER_SECONDS=str(BOUND))
        job = intake.submit(engine, "test_waits", {"seconds": 600})
        wait_for(lambda: running_in(engine, job, "wait"), timeout=60, what="the job to run")

        os.killpg(cluster.procs[-1].pid, signal.SIGKILL)  # the only worker, and its nanny
        cluster.procs[-1].wait()
        killed = time.monotonic()
        wait_for(
            lambda: queries.get_job(engine, job).status is Status.QUEUED,
            timeout=60,
            what="the job to be handed back",
        )
        took = time.monotonic() - killed
        # The bound, then the heartbeat that notices, then the driver's next look up.
        assert took < BOUND + 2 * HEARTBEAT + 3, f"handed back after {took:.1f} s"

        back = queries.get_job(engine, job)
        assert back.attempt == 1 and back.max_attempts == 4  # not charged
        (attempt,) = back.attempts
        assert attempt.outcome == "requeued"
        assert "no worker for" in (attempt.note or "") and "not charged" in (attempt.note or "")
        # While the cluster has no worker it stays queued; the doctor finds nothing stuck.
        assert queries.get_job(engine, job).status is Status.QUEUED
        assert [str(v) for v in check(engine, stuck_after=BOUND + 2 * HEARTBEAT)] == []
    finally:
        cluster.close()
    assert transitions.request_cancel(engine, job) is transitions.CancelOutcome.CANCELLED
    assert_sound(engine)


@on_sqlite_only
def test_cancel_takes_effect_within_5_s_while_the_driver_waits_on_dask(
    engine: Engine, start_runner
) -> None:
    # The default heartbeat and lease: without the wait's own look up, the cancel would
    # wait for the heartbeat at best, and for the task's end at worst.
    start_runner(workers=1, RUNLAB_HEARTBEAT_SECONDS="5", RUNLAB_LEASE_SECONDS="30")
    tasks = scheduler_tasks(engine)
    try:
        job = intake.submit(engine, "test_waits", {"seconds": 600})
        wait_for(lambda: running_in(engine, job, "wait"), timeout=60, what="the job to run")
        wait_for(lambda: tasks() == 1, timeout=30, what="its task on the scheduler")

        asked = time.monotonic()
        assert transitions.request_cancel(engine, job) is transitions.CancelOutcome.REQUESTED
        wait_for(
            lambda: queries.get_job(engine, job).status is Status.CANCELLED,
            timeout=30,
            what="the job to be cancelled",
        )
        took = time.monotonic() - asked
        assert took < 5, f"cancelled after {took:.1f} s"
        wait_for(lambda: tasks() == 0, timeout=10, what="the job's task to be cancelled")
    finally:
        tasks.client.close()  # type: ignore[attr-defined]
    assert_sound(engine)


@on_sqlite_only
def test_stop_and_keep_takes_effect_within_5_s_while_the_driver_waits_on_dask(
    engine: Engine, start_runner
) -> None:
    start_runner(workers=2, RUNLAB_HEARTBEAT_SECONDS="5", RUNLAB_LEASE_SECONDS="30")
    job = intake.submit(engine, "test_stops", {"seconds": 600})
    wait_for(
        lambda: queries.get_job(engine, job).progress >= 0.5,
        timeout=60,
        what="the short task to finish while the long one runs",
    )

    asked = time.monotonic()
    assert (
        transitions.request_stop(engine, job, ["test_stops"]) is transitions.StopOutcome.REQUESTED
    )
    wait_for(
        lambda: queries.get_job(engine, job).status.terminal, timeout=30, what="the job to end"
    )
    took = time.monotonic() - asked

    final = queries.get_job(engine, job)
    assert final.status is Status.SUCCEEDED, final.error
    assert final.result == {"finished": [0.1], "partial": True}
    assert took < 5, f"stopped after {took:.1f} s"
    assert_sound(engine)


@on_sqlite_only
def test_a_local_cluster_that_lost_its_only_worker_for_good_gets_one_back(
    engine: Engine, start_runner, tmp_path: Path
) -> None:
    runner = start_runner(workers=1)
    marker = tmp_path / "closed-once"
    job = intake.submit(engine, "test_loses_worker", {"marker": str(marker)})

    final = watch(engine, job, timeout=120)[-1]

    assert marker.exists()  # the task did close its worker and nanny
    assert final.status is Status.SUCCEEDED, final.error
    assert final.result == {"value": 1}
    assert "restarting the local Dask cluster's lost workers" in runner.log()
    assert_sound(engine)
