"""JobContext against a real store: reports are throttled, and a quiet driver's still land."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Engine

from compute.context import JobContext
from compute.intake import submit
from jobstore.queries import get_job
from jobstore.transitions import claim, succeed

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
