"""A job's cost in the store: written behind the fence with the reports, kept when the attempt
ends, cleared when the job is requeued, and read back by `get_job` and `show --json`."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import Engine

from compute import cost as metering
from compute.context import JobContext
from compute.intake import submit
from jobstore.queries import get_job
from jobstore.reports import Lease, Report, StageUpdate, report
from jobstore.transitions import Success, claim, fail, hand_back, retry, succeed_many
from jobstore.views import Cost, JobCost, StageCost
from runlab.errors import LostJob

PI = {"samples": 1000, "chunks": 2, "seed": 7}
STAGES = ["plan", "sample", "reduce"]
LEASE = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def running(engine: Engine) -> tuple[str, Lease]:
    job = submit(engine, "monte_carlo_pi", PI)
    (lease,) = claim(engine, "r", lease_seconds=LEASE)
    return job, lease


def stage_costs(engine: Engine, job: str) -> dict[str, Cost]:
    got = get_job(engine, job).cost
    assert got is not None
    return {s.name: s.cost for s in got.stages}


def costing(idx: int, stage: str, cost: Cost, total: Cost | None = None) -> Report:
    """A report of what stage `idx` has cost so far, and the job in all (by default, as much)."""
    return Report(
        stage_updates=[StageUpdate(idx, stage, cost=cost)], cost=cost if total is None else total
    )


def task_event(ctx: JobContext, idx: int, stage: str, **measured: Any) -> None:
    """One task's cost event, as the client's event loop hands it over."""
    message = {"token": ctx.client.token, "idx": idx, "stage": stage}
    metering._arrived((0.0, {**message, **measured}))


def test_a_queued_job_has_no_cost_and_show_json_says_so(engine: Engine) -> None:
    job = submit(engine, "monte_carlo_pi", PI)
    assert get_job(engine, job).cost is None
    assert get_job(engine, job).to_json()["cost"] is None


def test_reported_cost_lands_on_the_job_and_its_stages(engine: Engine) -> None:
    job, lease = running(engine)
    plan = Cost(0.5, 0.6, 1, 100_000_000, {"worker-1": 1})
    sample = Cost(3.0, 3.5, 4, 300_000_000, {"worker-1": 1, "worker-2": 3})
    report(
        engine,
        lease,
        Report(
            stage_updates=[
                StageUpdate(0, "plan", cost=plan),
                StageUpdate(1, "sample", cost=sample),
            ],
            cost=plan.plus(sample),
        ),
        lease_seconds=LEASE,
    )
    got = get_job(engine, job).cost
    assert got == JobCost(
        Cost(3.5, 4.1, 5, 300_000_000, {"worker-1": 2, "worker-2": 3}),
        [StageCost("plan", plan), StageCost("sample", sample), StageCost("reduce", Cost())],
    )
    assert get_job(engine, job).to_json()["cost"] == {
        "cpu_seconds": 3.5,
        "task_seconds": 4.1,
        "tasks": 5,
        "peak_memory_bytes": 300_000_000,
        "hosts": {"worker-1": 2, "worker-2": 3},
        "stages": [
            {
                "name": "plan",
                "cpu_seconds": 0.5,
                "task_seconds": 0.6,
                "tasks": 1,
                "peak_memory_bytes": 100_000_000,
                "hosts": {"worker-1": 1},
            },
            {
                "name": "sample",
                "cpu_seconds": 3.0,
                "task_seconds": 3.5,
                "tasks": 4,
                "peak_memory_bytes": 300_000_000,
                "hosts": {"worker-1": 1, "worker-2": 3},
            },
            {
                "name": "reduce",
                "cpu_seconds": 0.0,
                "task_seconds": 0.0,
                "tasks": 0,
                "peak_memory_bytes": None,
                "hosts": {},
            },
        ],
    }


def test_a_fenced_out_attempt_writes_no_cost(engine: Engine) -> None:
    job, lease = running(engine)
    stale = dataclasses.replace(lease, attempt=lease.attempt + 1)
    with pytest.raises(LostJob):
        report(engine, stale, costing(0, "plan", Cost(1, 1, 1)), lease_seconds=LEASE)
    assert get_job(engine, job).cost is None


def test_jobs_stored_together_keep_each_its_own_cost(engine: Engine) -> None:
    a = submit(engine, "monte_carlo_pi", PI)
    b = submit(engine, "monte_carlo_pi", PI)
    leases = {lease.public_id: lease for lease in claim(engine, "r", limit=2, lease_seconds=LEASE)}
    costs = {a: Cost(1.0, 2.0, 3, 10), b: Cost(4.0, 5.0, 6, None)}
    stored = succeed_many(
        engine,
        [
            Success(
                leases[job],
                {"ok": 1},
                batch=costing(1, "sample", c),
            )
            for job, c in costs.items()
        ],
    )
    assert stored == {leases[a].job_id, leases[b].job_id}
    for job, c in costs.items():
        assert get_job(engine, job).cost.total == c  # type: ignore[union-attr]
        assert stage_costs(engine, job)["sample"] == c


def test_a_failed_attempt_keeps_its_cost(engine: Engine) -> None:
    job, lease = running(engine)
    c = Cost(2.0, 2.5, 2, 123)
    fail(engine, lease, "ValueError", "boom", batch=Report(cost=c))
    assert get_job(engine, job).cost.total == c  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["retry", "hand back"])
def test_a_requeued_job_starts_its_cost_over_with_its_next_attempt(
    engine: Engine, how: str
) -> None:
    job, lease = running(engine)
    spent = Cost(2.0, 2.5, 2, 123)
    report(engine, lease, costing(0, "plan", spent), lease_seconds=LEASE)
    last = costing(1, "sample", spent, total=spent.plus(spent))
    if how == "retry":
        retry(engine, lease, "Retryable", "again", batch=last, backoff_base=0.0)
    else:
        hand_back(engine, lease, last)
    assert get_job(engine, job).cost is None
    (again,) = claim(engine, "r", lease_seconds=LEASE)
    assert again.attempt == lease.attempt + 1
    fresh = Cost(0.1, 0.2, 1, 50)
    report(engine, again, costing(2, "reduce", fresh), lease_seconds=LEASE)
    assert get_job(engine, job).cost == JobCost(
        fresh,
        [StageCost("plan", Cost()), StageCost("sample", Cost()), StageCost("reduce", fresh)],
    )


def test_the_context_writes_task_costs_with_its_throttled_reports(engine: Engine) -> None:
    job, lease = running(engine)
    clock = Clock()
    # A stand-in for the Dask client: these tests feed the task events themselves.
    ctx = JobContext(engine, lease, object(), stage_names=STAGES, clock=clock)
    with ctx.stage("plan"):
        task_event(ctx, 0, "plan", cpu=0.25, wall=0.5, peak=2_000)
        task_event(ctx, 0, "plan", cpu=0.25, wall=0.25, peak=1_000)
        assert get_job(engine, job).cost is None  # within the write interval: nothing yet
        clock.now += 1
        ctx.flush_due()  # the runner's flush loop
        assert stage_costs(engine, job)["plan"] == Cost(0.5, 0.75, 2, 2_000)
    with ctx.stage("sample"):
        task_event(ctx, 1, "sample", cpu=1.0, wall=1.5, peak=None)
    # A task of another attempt (or another runner's) is not this job's.
    metering._arrived((0.0, {"token": "not-ours", "idx": 1, "stage": "sample", "cpu": 9.0}))
    metering._arrived((0.0, {"token": ctx.client.token, "idx": "x"}))  # malformed: dropped
    pending = ctx.take_pending()
    succeed_many(engine, [Success(lease, {"ok": 1}, batch=pending)])
    final = get_job(engine, job).cost
    assert final is not None
    assert final.total == Cost(1.5, 2.25, 3, 2_000)
    assert [s.cost for s in final.stages] == [
        Cost(0.5, 0.75, 2, 2_000),
        Cost(1.0, 1.5, 1, None),
        Cost(),
    ]


def test_a_job_whose_driver_ran_no_task_costs_zero_once_it_ends(engine: Engine) -> None:
    job, lease = running(engine)
    ctx = JobContext(engine, lease, object(), stage_names=STAGES, clock=Clock())
    succeed_many(engine, [Success(lease, {"ok": 1}, batch=ctx.take_pending())])
    assert get_job(engine, job).cost == JobCost(Cost(), [StageCost(s, Cost()) for s in STAGES])
