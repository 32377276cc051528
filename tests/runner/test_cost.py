"""What a job cost, as a real runner on a real Dask LocalCluster measures and stores it: tasks
of known CPU time, memory and sleep, on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import Engine

from compute import intake
from jobstore.models import Status
from jobstore.views import Cost, JobDetail
from tests.conftest import on_sqlite_only
from tests.runner import cost_kind
from tests.runner.conftest import ROOT
from tests.runner.helpers import assert_sound, watch

KINDS = {"RUNLAB_KIND_MODULES": "tests.runner.sample_kinds,tests.runner.cost_kind"}
MIB = 2**20
# Above a worker's own footprint (about 90 MiB here), so a peak this high cannot come from the
# worker alone: only a measurement taken while the array was held reaches it.
ALLOCATE_MB = 256
BURN = 0.3  # CPU seconds per task


def by_stage(job: JobDetail) -> dict[str, Cost]:
    assert job.cost is not None, "the job has no cost"
    return {s.name: s.cost for s in job.cost.stages}


def show_json(db_url: str, job: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "runlab.cli", "show", job, "--json"],
        cwd=ROOT,
        env={**os.environ, "RUNLAB_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


@on_sqlite_only
def test_a_job_stores_what_its_tasks_cost_per_stage_and_in_all(
    engine: Engine, db_url: str, start_runner
) -> None:
    start_runner(**KINDS)
    params = {"tasks": 4, "burn_seconds": BURN, "allocate_mb": ALLOCATE_MB, "nap_seconds": 0.2}
    job = intake.submit(engine, cost_kind.KIND, params)
    seen = watch(engine, job, timeout=120)
    final = seen[-1]
    assert final.status is Status.SUCCEEDED, final.error

    # The cost reaches the page while the job runs, with its throttled progress writes.
    assert any(
        j.status is Status.RUNNING and j.cost is not None and j.cost.total.tasks > 0 for j in seen
    ), "no cost was written before the job ended"

    stages = by_stage(final)
    assert list(stages) == cost_kind.STAGES
    assert [c.tasks for c in stages.values()] == [4, 4, 4]
    burn, allocate, nap = stages["burn"], stages["allocate"], stages["nap"]
    # CPU time is what the threads spent: the busy loop's, to within the meter's own share.
    assert 4 * BURN <= burn.cpu_seconds < 4 * BURN * 1.25
    assert burn.task_seconds >= burn.cpu_seconds * 0.99
    # Sleeping costs wall time, not CPU: the two are told apart.
    assert nap.cpu_seconds < 0.25 * nap.task_seconds
    assert nap.task_seconds >= 4 * 0.2
    # The peak is the worker's resident memory while the array was held.
    assert allocate.peak_memory_bytes is not None and burn.peak_memory_bytes is not None
    assert allocate.peak_memory_bytes >= ALLOCATE_MB * MIB
    assert allocate.peak_memory_bytes - burn.peak_memory_bytes >= 0.9 * ALLOCATE_MB * MIB

    total = final.cost.total  # type: ignore[union-attr]
    assert total.tasks == 12
    assert abs(total.cpu_seconds - sum(c.cpu_seconds for c in stages.values())) < 1e-6
    assert abs(total.task_seconds - sum(c.task_seconds for c in stages.values())) < 1e-6
    assert total.peak_memory_bytes == allocate.peak_memory_bytes

    shown = show_json(db_url, job)
    assert shown["cost"] == final.cost.to_json()  # type: ignore[union-attr]
    assert shown["cost"]["tasks"] == 12
    assert [s["name"] for s in shown["cost"]["stages"]] == cost_kind.STAGES
    assert_sound(engine)


# Its deadlines add up to 300 s: the runner's start (60 s), then two jobs of 120 s each.
@pytest.mark.timeout(360)
@on_sqlite_only
def test_a_retried_job_keeps_its_latest_attempts_cost_and_a_failed_one_keeps_its_own(
    engine: Engine, db_url: str, start_runner
) -> None:
    start_runner(**KINDS)
    small = {"tasks": 2, "burn_seconds": BURN, "nap_seconds": 0.0}
    retried = intake.submit(engine, cost_kind.KIND, {**small, "retry_first": True})
    failed = intake.submit(engine, cost_kind.KIND, {**small, "fail_after_burn": True})

    final = watch(engine, retried, timeout=120)[-1]
    assert final.status is Status.SUCCEEDED, final.error
    assert final.attempt == 2
    # Attempt 1 ran one task and was retried; only attempt 2's six tasks are the job's cost.
    assert final.cost is not None and final.cost.total.tasks == 6
    assert by_stage(final)["burn"].tasks == 2
    assert by_stage(final)["burn"].cpu_seconds < 3 * BURN

    ended = watch(engine, failed, timeout=120)[-1]
    assert ended.status is Status.FAILED
    stages = by_stage(ended)
    assert [stages[s].tasks for s in cost_kind.STAGES] == [2, 0, 0]
    assert stages["burn"].cpu_seconds >= 2 * BURN
    assert ended.cost is not None and ended.cost.total.tasks == 2
    assert show_json(db_url, failed)["cost"]["tasks"] == 2
    assert_sound(engine)
