"""JobContext against a real store: reports are throttled, and a quiet driver's still land."""

from __future__ import annotations

import dataclasses
import gc
import threading
import time

import pytest
from distributed import Client, LocalCluster
from sqlalchemy import Engine

from compute.context import JobContext
from compute.intake import submit
from jobstore.queries import get_job
from jobstore.transitions import claim, succeed
from runlab.errors import JobCancelled
from tests.polling import wait_for

PI = {"samples": 1000, "chunks": 2, "seed": 7}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stage_states(engine: Engine, public_id: str) -> list[str]:
    return [s.status for s in get_job(engine, public_id).stages]


def test_stage_changes_wait_one_interval_then_the_flush_loop_writes_them(engine: Engine) -> None:
    job = submit(engine, "monte_carlo_pi", PI)
    (lease,) = claim(engine, "r", lease_seconds=30)
    clock = Clock()
    ctx = JobContext(engine, lease, None, stage_names=["plan", "sample", "reduce"], clock=clock)

    with ctx.stage("plan"):
        pass
    with ctx.stage("sample"):
        # Right after the claim: nothing written yet, so a short job's stages ride along with
        # its result in one transaction.
        assert stage_states(engine, job) == ["pending"] * 3
        ctx.flush_due()
        assert stage_states(engine, job) == ["pending"] * 3
        clock.now += 0.3
        ctx.flush_due()  # what the runner's flush loop calls while the driver waits on Dask
        assert stage_states(engine, job) == ["done", "running", "pending"]
        assert get_job(engine, job).stage == "sample"
    with ctx.stage("reduce"):
        pass
    succeed(engine, lease, {"ok": 1}, None, ctx.take_pending())
    final = get_job(engine, job)
    assert stage_states(engine, job) == ["done"] * 3
    assert all(s.started_at is not None and s.finished_at is not None for s in final.stages)


def test_flush_due_of_a_fenced_out_attempt_marks_it_lost_and_raises_nothing(
    engine: Engine,
) -> None:
    submit(engine, "monte_carlo_pi", PI)
    (lease,) = claim(engine, "r", lease_seconds=30)
    clock = Clock()
    stale = dataclasses.replace(lease, attempt=lease.attempt + 1)
    ctx = JobContext(engine, stale, None, stage_names=["plan"], clock=clock)
    ctx.progress(1, 2)
    clock.now += 1
    ctx.flush_due()
    assert ctx.lost.is_set()
    ctx.flush_due()  # and again, quietly


GATE = threading.Event()  # holds the chunks after the first until the test ends


def _slow_load(seconds: float) -> int:
    time.sleep(seconds)  # longer than the driver's wait step: the driver waits more than once
    return 1


def _chunk(data: int, i: int, seed: object) -> int:
    if i:
        GATE.wait(30)
    return data + i


def test_a_cancelled_chunk_loop_leaves_no_task_on_the_cluster_without_the_garbage_collector(
    engine: Engine,
) -> None:
    """Its futures are released as it ends, not when the last reference to them goes: an
    exception's traceback in a reference cycle would otherwise hold them until a collection."""
    submit(engine, "monte_carlo_pi", PI)
    (lease,) = claim(engine, "r", lease_seconds=30)
    GATE.clear()
    collecting = gc.isenabled()
    gc.disable()
    try:
        with (
            LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster,
            Client(cluster) as client,
        ):
            ctx = JobContext(engine, lease, client, stage_names=["sample"])

            def add(i: int, value: int) -> None:
                ctx.cancel_requested.set()  # the user cancels once the first chunk is in

            with pytest.raises(JobCancelled):
                ctx.map_chunks(
                    _chunk, [(i,) for i in range(4)], seed=1, load=(_slow_load, (0.6,)), add=add
                )

            def left() -> int:
                return int(
                    client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
                )

            wait_for(lambda: left() == 0, timeout=10, what="the cluster to drop the job's tasks")
            GATE.set()
    finally:
        GATE.set()
        if collecting:
            gc.enable()
