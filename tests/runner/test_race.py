"""Many runner processes over one queue and one Dask cluster: no job runs twice, none is lost."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from compute import intake
from jobstore import queries
from jobstore.engine import is_postgres
from jobstore.models import Job, JobEvent, Status
from tests.polling import wait_for
from tests.runner.helpers import assert_sound

FINISH_TIMEOUT = 600.0


# Above the test's own deadlines: the Dask cluster's start (up to 120 s), then FINISH_TIMEOUT.
@pytest.mark.timeout(120 + FINISH_TIMEOUT + 60)
def test_many_runners_race_over_zero_second_jobs(engine, start_runner, dask_cluster) -> None:
    runners, jobs = (16, 600) if is_postgres(engine) else (8, 600)
    ids = {
        intake.submit(engine, "demo_stages", {"stages": 1, "seconds_per_stage": 0.0})
        for _ in range(jobs)
    }
    procs = [
        start_runner(
            "--scheduler",
            dask_cluster.address,
            "--concurrency",
            "1",
            wait=False,
            # The machine is crowded with runners: a long lease keeps a starved heartbeat from
            # turning into a legitimate second attempt, which this test would count as a bug.
            RUNLAB_LEASE_SECONDS="60",
        )
        for _ in range(runners)
    ]

    def finished() -> int | None:
        for p in procs:
            if p.proc.poll() is not None:
                pytest.fail(f"a runner exited:\n{p.log()}")
        return queries.list_jobs(engine, status=[Status.QUEUED, Status.RUNNING]).total == 0

    wait_for(finished, timeout=FINISH_TIMEOUT, what=f"{jobs} jobs to finish", interval=0.5)

    with engine.connect() as conn:
        by_status = dict(conn.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        claims = conn.execute(
            select(JobEvent.job_id, JobEvent.attempt, JobEvent.runner_id).where(
                JobEvent.kind == "transition", JobEvent.to_status == Status.RUNNING
            )
        ).all()
    assert by_status == {Status.SUCCEEDED: jobs}, by_status
    assert len(claims) == jobs, f"{len(claims) - jobs} extra claims"
    assert len({c.job_id for c in claims}) == jobs
    assert {c.attempt for c in claims} == {1}
    assert len(ids) == jobs
    assert len({c.runner_id for c in claims}) > 1, "the work should spread over the runners"
    assert_sound(engine)
