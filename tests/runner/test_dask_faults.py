"""Dask going away under a runner: a real `dask scheduler` killed and brought back."""

from __future__ import annotations

import pytest

from jobstore.models import Status
from tests.conftest import on_sqlite_only
from tests.polling import wait_for
from tests.runner.helpers import assert_sound, counted_meanwhile, pi_under_way, watch


# Its deadlines add up to 480 s: the Dask cluster's start (120 s), the runner's (60 s), the job
# under way (60 s), the runner noticing (60 s), then the job's end (180 s).
@pytest.mark.timeout(540)
@on_sqlite_only
def test_a_lost_scheduler_ends_the_attempt_and_the_next_runs_on_a_fresh_client(
    engine, start_runner, dask_cluster
):
    # The count to expect is made meanwhile, on the CPU the cluster leaves idle.
    with counted_meanwhile(800_000_000, 16, 21) as expected:
        runner = start_runner("--scheduler", dask_cluster.address, "--concurrency", "1")
        job = pi_under_way(engine, {"samples": 800_000_000, "chunks": 16, "seed": 21}, past=0.2)
        dask_cluster.kill_scheduler()
        wait_for(
            lambda: "lost its Dask scheduler" in runner.log(),
            timeout=60,
            what="the runner to notice",
        )
        # Dask workers exit with their scheduler; the cluster comes back as its supervisor would
        # bring it: a new scheduler at the same address, and new workers.
        dask_cluster.start_scheduler()
        dask_cluster.start_workers()
        final = watch(engine, job, timeout=180)[-1]
        assert final.status is Status.SUCCEEDED, final.error
        assert final.attempt == 2
        assert final.attempts[0].outcome == "requeued"
        assert "ClusterLost" in (final.attempts[0].note or "")
        assert "fresh Dask client" in runner.log()
        assert any("resuming" in x.message for x in final.logs if x.attempt == 2)
        assert final.result["inside"] == expected()
    assert_sound(engine)
