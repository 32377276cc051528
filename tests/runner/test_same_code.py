"""A runner and its Dask cluster run the same code, or the runner claims nothing and says why;
a task the cluster cannot load fails its job with what to install. Real `dask scheduler` and
`dask worker` processes, and a real runner."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from distributed import Client
from sqlalchemy import Engine

from compute import intake
from jobstore import queries
from jobstore.models import Status
from runlab.versions import software_versions
from tests.conftest import on_sqlite_only
from tests.polling import wait_for
from tests.runner.conftest import ROOT, DaskCluster
from tests.runner.helpers import assert_sound, expected_inside, older_runlab, watch

PI = {"samples": 2_000_000, "chunks": 2, "seed": 8}


def workers(address: str) -> int:
    with Client(address, timeout="30s") as client:
        return len(client.nthreads())


@on_sqlite_only
def test_a_worker_of_another_runlab_version_stops_claims_in_one_line_naming_it(
    engine: Engine, start_runner, tmp_path: Path
) -> None:
    cluster = DaskCluster(tmp_path, workers=1)
    cluster.start_scheduler()
    cluster.start_workers()
    try:
        cluster.wait_ready()
        older = older_runlab(tmp_path / "older")
        (odd,) = cluster.start_workers(1, PYTHONPATH=f"{older}{os.pathsep}{ROOT}")
        wait_for(lambda: workers(cluster.address) == 2, timeout=60, what="the second worker")

        runner = start_runner("--scheduler", cluster.address)
        job = intake.submit(engine, "monte_carlo_pi", PI)

        def refusals() -> list[str]:
            return [line for line in runner.log().splitlines() if "refusing to claim" in line]

        (line,) = wait_for(refusals, timeout=60, what="the runner to refuse")
        mine = software_versions()["runlab"]
        assert line.endswith(f"runs runlab 0.0.1 (this runner: {mine})"), line
        assert (
            "the Dask worker tcp://127.0.0.1:" in line
            and f" on host {socket.gethostname()} " in line
        )
        assert queries.get_job(engine, job).status is Status.QUEUED

        # The odd worker leaves: the cluster agrees again, and only then is the job claimed.
        left_at = datetime.now(UTC)
        odd.kill()
        odd.wait()
        final = watch(engine, job, timeout=120)[-1]
        assert final.status is Status.SUCCEEDED, final.error
        assert final.result is not None
        assert final.result["inside"] == expected_inside(**PI)
        (attempt,) = final.attempts
        assert attempt.started_at >= left_at
        assert "runs this runner's code again; claiming" in runner.log()
        assert len(refusals()) == 1  # said once, not on every claim round
        assert_sound(engine)
    finally:
        cluster.close()


@on_sqlite_only
def test_a_task_whose_module_the_workers_lack_fails_its_job_saying_what_to_install(
    engine: Engine, start_runner, dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    only_here = tmp_path / "runner-only"
    only_here.mkdir()
    (only_here / "runner_only_helper.py").write_text("def kernel(x):\n    return x\n")
    start_runner("--scheduler", dask_cluster.address, PYTHONPATH=f"{ROOT}{os.pathsep}{only_here}")
    job = intake.submit(engine, "test_runner_only_code", {})

    final = watch(engine, job, timeout=120)[-1]

    assert final.status is Status.FAILED
    assert final.attempt == 1  # not retried: installing the module is the fix
    assert final.error is not None
    assert final.error.type == "CodeMismatch"
    assert final.error.message == (
        "the Dask cluster lacks the module 'runner_only_helper' that this job's tasks need: "
        "install the same code on the scheduler and every worker as on the runner, then run the "
        "job again"
    )
    assert "ModuleNotFoundError" in (final.traceback or "")  # Dask's own error, for whoever debugs
    assert_sound(engine)
