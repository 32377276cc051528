"""The scheduled purge: a real runner subprocess purges when RUNLAB_PURGE_AFTER is set, and
never when it is not."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from compute import intake
from jobstore import queries
from jobstore.models import Status
from runlab.artifacts import ArtifactStore
from tests.polling import wait_for
from tests.runner.conftest import RunnerProcess
from tests.store.aged import aged_job, exists, orphans, put_files

OLD = timedelta(days=40)
YOUNG = timedelta(days=2)
QUICK = {"stages": 1, "seconds_per_stage": 0}


def runs_a_job(engine: Engine) -> None:
    """The runner still claims and finishes work."""
    job = intake.submit(engine, "demo_stages", QUICK)
    wait_for(
        lambda: queries.get_job(engine, job).status is Status.SUCCEEDED,
        timeout=60,
        what="a fresh job to succeed",
    )


def test_a_runner_with_purge_after_set_purges_old_finished_jobs_and_logs_it(
    engine: Engine, start_runner: Callable[..., RunnerProcess], artifacts: Path
) -> None:
    store = ArtifactStore(str(artifacts))
    old = [aged_job(engine, Status.SUCCEEDED, OLD), aged_job(engine, Status.FAILED, OLD)]
    young = aged_job(engine, Status.SUCCEEDED, YOUNG)
    for public_id in [*old, young]:
        put_files(store, public_id)

    runner = start_runner(workers=1, RUNLAB_PURGE_AFTER="30d")

    wait_for(
        lambda: not any(exists(engine, p) for p in old),
        timeout=60,
        what="the scheduled purge to remove the old jobs",
    )
    wait_for(lambda: "scheduled purge of" in runner.log(), timeout=30, what="the purge's log line")
    assert "removed 2 jobs" in runner.log()
    assert exists(engine, young)
    assert [store.job_usage(p) for p in old] == [(0, 0), (0, 0)]
    assert store.job_usage(young)[0] == 2
    assert orphans(engine) == {"stages": 0, "events": 0, "metrics": 0, "results": 0}
    runs_a_job(engine)


def test_a_runner_without_purge_after_never_purges(
    engine: Engine, start_runner: Callable[..., RunnerProcess], artifacts: Path
) -> None:
    store = ArtifactStore(str(artifacts))
    old = aged_job(engine, Status.SUCCEEDED, OLD)
    put_files(store, old)

    runner = start_runner(workers=1)
    runs_a_job(engine)
    assert runner.stop(signal.SIGTERM) == 0  # its whole life, from start to a clean exit

    assert exists(engine, old)
    assert store.job_usage(old)[0] == 2
    assert "purge" not in runner.log()
