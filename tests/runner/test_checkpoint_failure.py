"""A checkpoint that cannot be written: the job goes on, and its own log says so once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from compute import intake
from jobstore import queries
from jobstore.models import Status
from tests.conftest import on_sqlite_only
from tests.polling import wait_for
from tests.runner.helpers import assert_sound, expected_inside, watch
from tests.s3 import bucket_place, s3_server


@on_sqlite_only
def test_a_checkpoint_that_fails_to_write_warns_in_the_jobs_own_log(
    engine: Engine, start_runner, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the artifact folder's parent should be")
    start_runner(workers=1, RUNLAB_ARTIFACTS=str(blocker / "artifacts"))
    job = intake.submit(engine, "monte_carlo_pi", {"samples": 4_000_000, "chunks": 4, "seed": 3})

    final = watch(engine, job, timeout=120)[-1]

    assert final.status is Status.SUCCEEDED, final.error
    warnings = [line for line in queries.get_job(engine, job).logs if line.level == "warning"]
    assert len(warnings) == 1, warnings  # once, not once per chunk
    assert warnings[0].message.startswith("could not save checkpoint ")
    assert "if it is retried, the work not saved is done again" in warnings[0].message
    assert_sound(engine)


@on_sqlite_only
def test_a_bucket_gone_mid_job_costs_its_checkpoints_not_the_job(
    engine: Engine, start_runner, tmp_path: Path
) -> None:
    """An S3 server of the test's own, stopped while the job runs: the job goes on without
    checkpoints, says so once, and ends with the numbers of an uninterrupted run."""
    params = {"samples": 600_000_000, "chunks": 30, "seed": 4}
    with s3_server(tmp_path / "moto.log") as server:
        place = bucket_place(server)
        start_runner(workers=1, **place.env)
        job = intake.submit(engine, "monte_carlo_pi", params)
        wait_for(
            lambda: queries.get_job(engine, job).progress >= 0.1,
            timeout=120,
            what="a tenth of the job done, with its checkpoints in the bucket",
        )
        assert place.files(f"jobs/{job}/checkpoints")
    # The server is gone.

    final = watch(engine, job, timeout=180)[-1]

    assert final.status is Status.SUCCEEDED, final.error
    assert final.result is not None
    assert final.result["inside"] == expected_inside(**params)
    warnings = [line for line in queries.get_job(engine, job).logs if line.level == "warning"]
    assert len(warnings) == 1, warnings
    assert warnings[0].message.startswith("could not save checkpoint ")
    assert f"the artifact store {place.location} (RUNLAB_ARTIFACTS) failed" in warnings[0].message
    assert_sound(engine)
