"""The store's bulk path leaves what the state machine would have left."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from jobstore import doctor
from jobstore.models import Status
from jobstore.queries import get_job
from tests.bulk import PastJob, copy_jobs


def test_a_copied_jobs_stages_share_its_run_time_end_to_end(engine: Engine) -> None:
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    [public_id] = copy_jobs(
        engine,
        [
            PastJob(
                kind="monte_carlo_pi",
                name="past",
                owner="t",
                params={"samples": 1000, "seed": 1},
                status=Status.SUCCEEDED,
                created_at=start - timedelta(seconds=5),
                started_at=start,
                finished_at=start + timedelta(seconds=90),
                result={"estimate": 3.14},
                stages=["plan", "sample", "reduce"],
            )
        ],
    )

    job = get_job(engine, public_id)

    spans = [(s.started_at, s.finished_at) for s in job.stages]
    at = [start + timedelta(seconds=x) for x in (0, 30, 60, 90)]
    assert spans == list(itertools.pairwise(at))
    assert doctor.check(engine) == []
