"""What the history's bulk actions do to the store: tags, and deleting chosen jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from compute import intake
from jobstore import labels, retention
from jobstore.models import Job, JobEvent, JobMetric, JobResult, JobStage
from jobstore.queries import get_job, list_jobs
from runlab.artifacts import ArtifactStore
from runlab.errors import InvalidParams
from tests.ui import seed


def test_tags_are_added_once_and_removed_from_the_chosen_jobs_only(engine: Engine) -> None:
    a = intake.submit(engine, "monte_carlo_pi", {"samples": 1000}, tags=["x"])
    b = intake.submit(engine, "monte_carlo_pi", {"samples": 1000})
    c = intake.submit(engine, "monte_carlo_pi", {"samples": 1000})

    assert labels.add_tag(engine, [a, b], " q3 ") == 2
    assert labels.add_tag(engine, [a, b], "q3") == 0  # already there
    assert [get_job(engine, i).tags for i in (a, b, c)] == [["x", "q3"], ["q3"], []]
    assert labels.remove_tag(engine, [a, c], "q3") == 1
    assert [get_job(engine, i).tags for i in (a, b, c)] == [["x"], ["q3"], []]


def test_a_bad_tag_or_a_full_job_changes_nothing(engine: Engine) -> None:
    full = intake.submit(
        engine, "monte_carlo_pi", {"samples": 1000}, tags=[f"t{i}" for i in range(20)]
    )
    other = intake.submit(engine, "monte_carlo_pi", {"samples": 1000})
    for tag in ["", "   ", "x" * 51]:
        with pytest.raises(InvalidParams) as err:
            labels.add_tag(engine, [other], tag)
        assert "tag" in err.value.errors
    with pytest.raises(InvalidParams, match="already has 20 tags"):
        labels.add_tag(engine, [other, full], "new")
    assert get_job(engine, other).tags == []


def test_deleting_chosen_jobs_leaves_nothing_of_them_and_keeps_unfinished_ones(
    engine: Engine, tmp_path: Path
) -> None:
    artifacts = ArtifactStore(tmp_path / "artifacts")
    seed.runner(engine)
    done = seed.succeeded(engine, "done")
    failed = seed.failed(engine, "failed")
    other = seed.succeeded(engine, "other")
    waiting = seed.queued(engine, "waiting")
    for job_id in (done, failed, other):
        artifacts.put_json(job_id, "checkpoints/0", {"n": 1})

    report, kept = retention.delete_jobs(engine, artifacts, [done, failed, waiting, "nosuchid0"])

    assert report.jobs == 2
    assert kept == [waiting]
    assert {r.id for r in list_jobs(engine).rows} == {other, waiting}
    assert artifacts.job_usage(done) == (0, 0) and artifacts.job_usage(failed) == (0, 0)
    assert artifacts.job_usage(other)[0] == 1
    with engine.connect() as conn:
        ids = set(conn.execute(select(Job.id)).scalars())
        for table in (JobStage, JobEvent, JobMetric, JobResult):
            orphans = conn.execute(
                select(func.count()).select_from(table).where(table.job_id.not_in(ids))
            ).scalar_one()
            assert orphans == 0, table.__tablename__
