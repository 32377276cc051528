"""Retention: a purge removes old finished jobs with every row and file of theirs, and nothing else.

Jobs are made through the transitions and back-dated with a plain UPDATE (tests/store/aged.py).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, update

from jobstore import presets
from jobstore.doctor import check
from jobstore.models import Job, Status
from jobstore.retention import (
    STALE_TMP_AGE,
    UNUSED_UPLOAD_AGE,
    Policy,
    PurgeReport,
    purge,
)
from runlab.artifacts import ArtifactStore
from tests.s3 import Place
from tests.store.aged import (
    aged_job,
    back_date,
    child_counts,
    everything,
    exists,
    job_ids,
    make_job,
    orphans,
    put_files,
)

OLD = timedelta(days=40)
YOUNG = timedelta(days=2)
MONTH = Policy(timedelta(days=30))


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    """A folder: the tests that back-date files set their modification times."""
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def any_artifacts(artifact_place: Place) -> ArtifactStore:
    """A folder, then an S3 bucket: what a purge removes does not depend on which."""
    return artifact_place.store()


def files_of(artifacts: ArtifactStore, public_id: str) -> int:
    return artifacts.job_usage(public_id)[0]


def upload(artifacts: ArtifactStore, text: str) -> dict[str, Any]:
    """An upload reference as a job's parameters keep it, with its bytes in the store."""
    data = f"x\n{text}\n".encode()
    sha = artifacts.put_upload(data)
    return {"name": "x.csv", "size": len(data), "sha256": sha}


def bootstrap(engine: Engine, ref: dict[str, Any], status: Status, age: timedelta) -> str:
    return aged_job(
        engine, status, age, kind="bootstrap", params={"data": ref, "column": "x", "seed": 1}
    )


def test_purge_removes_old_finished_jobs_with_every_row_and_file_and_leaves_no_orphan(
    engine: Engine, any_artifacts: ArtifactStore
) -> None:
    old = [
        aged_job(engine, Status.SUCCEEDED, OLD),
        aged_job(engine, Status.FAILED, OLD),
        aged_job(engine, Status.CANCELLED, OLD),
        aged_job(engine, Status.CANCELLED, OLD, while_queued=True),
    ]
    young = [aged_job(engine, Status.SUCCEEDED, YOUNG), aged_job(engine, Status.FAILED, YOUNG)]
    # Made long ago but never finished: never purged, whatever their age.
    unfinished = [aged_job(engine, Status.RUNNING, OLD), aged_job(engine, Status.QUEUED, OLD)]
    kept = young + unfinished
    for public_id in old + kept:
        put_files(any_artifacts, public_id)
    expected = child_counts(engine, old)
    assert all(expected[name] for name in ("stages", "events", "metrics", "results"))
    kept_before = everything(engine)
    kept_ids = {job_ids(engine)[p] for p in kept}

    report = purge(engine, any_artifacts, MONTH)

    assert report == PurgeReport(
        jobs=4,
        **expected,
        artifact_files=8,
        artifact_bytes=report.artifact_bytes,
    )
    assert report.artifact_bytes > 0
    assert [p for p in old if exists(engine, p)] == []
    assert [p for p in kept if not exists(engine, p)] == []
    assert orphans(engine) == {"stages": 0, "events": 0, "metrics": 0, "results": 0}
    assert child_counts(engine, old) == {"stages": 0, "events": 0, "metrics": 0, "results": 0}
    assert [files_of(any_artifacts, p) for p in old] == [0, 0, 0, 0]
    assert [files_of(any_artifacts, p) for p in kept] == [2, 2, 2, 2]
    # The kept jobs' rows are exactly as they were.
    after = everything(engine)
    assert after["jobs"] == [r for r in kept_before["jobs"] if r[0] in kept_ids]
    for name in ("stages", "events", "metrics", "results"):
        assert set(after[name]) <= set(kept_before[name])
    assert [str(v) for v in check(engine, lease_grace=1e9)] == []


def test_statuses_limit_the_purge_to_those_named(engine: Engine, artifacts: ArtifactStore) -> None:
    succeeded = aged_job(engine, Status.SUCCEEDED, OLD)
    failed = aged_job(engine, Status.FAILED, OLD)
    cancelled = aged_job(engine, Status.CANCELLED, OLD)

    report = purge(engine, artifacts, Policy(timedelta(days=30), frozenset({Status.FAILED})))

    assert report.jobs == 1
    kept = (exists(engine, succeeded), exists(engine, failed), exists(engine, cancelled))
    assert kept == (True, False, True)


def test_age_counts_from_the_end_of_a_job_not_its_creation(
    engine: Engine, artifacts: ArtifactStore
) -> None:
    long_run = make_job(engine, Status.SUCCEEDED)
    back_date(engine, long_run, OLD, finished=False)  # made 40 days ago, ended just now
    no_end = aged_job(engine, Status.FAILED, OLD)
    with engine.begin() as conn:  # a row from before finished_at was always set
        conn.execute(update(Job).where(Job.public_id == no_end).values(finished_at=None))

    purge(engine, artifacts, MONTH)

    assert exists(engine, long_run)
    assert not exists(engine, no_end)


def test_dry_run_reports_what_would_go_and_changes_nothing(
    engine: Engine, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    old = [aged_job(engine, Status.SUCCEEDED, OLD), aged_job(engine, Status.FAILED, OLD)]
    young = aged_job(engine, Status.SUCCEEDED, YOUNG)
    shared = upload(artifacts, "1")
    bootstrap(engine, shared, Status.SUCCEEDED, OLD)
    for public_id in [*old, young]:
        put_files(artifacts, public_id)
    rows_before = everything(engine)
    files_before = sorted(str(p) for p in (tmp_path / "artifacts").rglob("*"))

    seen = purge(engine, artifacts, MONTH, dry_run=True)

    assert everything(engine) == rows_before
    assert sorted(str(p) for p in (tmp_path / "artifacts").rglob("*")) == files_before
    assert seen.dry_run
    assert seen.jobs == 3
    assert seen.uploads == 1
    done = purge(engine, artifacts, MONTH)
    assert seen.to_json() == {**done.to_json(), "dry_run": True}


def test_batches_smaller_than_the_set_remove_every_job_each_in_its_own_transaction(
    engine: Engine, artifacts: ArtifactStore
) -> None:
    old = [aged_job(engine, Status.SUCCEEDED, OLD) for _ in range(7)]
    young = aged_job(engine, Status.SUCCEEDED, YOUNG)
    expected = child_counts(engine, old)
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))

    report = purge(engine, artifacts, MONTH, batch_size=2, pause=0)

    assert report.jobs == 7
    assert child_counts(engine, old) == {"stages": 0, "events": 0, "metrics": 0, "results": 0}
    assert (report.stages, report.events, report.metrics, report.results) == tuple(
        expected.values()
    )
    assert [p for p in old if exists(engine, p)] == []
    assert exists(engine, young)
    assert orphans(engine) == {"stages": 0, "events": 0, "metrics": 0, "results": 0}
    # Four batches of at most two: at least four write transactions (reads commit too).
    assert len(commits) >= 4


def test_a_stop_between_batches_leaves_the_rest_for_the_next_purge(
    engine: Engine, artifacts: ArtifactStore
) -> None:
    old = [aged_job(engine, Status.SUCCEEDED, OLD) for _ in range(4)]
    stop = threading.Event()
    event.listen(engine, "commit", lambda conn: stop.set())

    first = purge(engine, artifacts, MONTH, batch_size=2, pause=0, stop=stop)

    assert first.jobs == 2
    assert sum(not exists(engine, p) for p in old) == 2
    assert orphans(engine) == {"stages": 0, "events": 0, "metrics": 0, "results": 0}
    second = purge(engine, artifacts, MONTH, batch_size=2, pause=0)
    assert second.jobs == 2
    assert [p for p in old if exists(engine, p)] == []


def test_an_upload_goes_only_once_no_remaining_job_or_preset_refers_to_it(
    engine: Engine, any_artifacts: ArtifactStore
) -> None:
    alone = upload(any_artifacts, "1")
    shared = upload(any_artifacts, "2")
    in_preset = upload(any_artifacts, "3")
    bootstrap(engine, alone, Status.SUCCEEDED, OLD)
    bootstrap(engine, alone, Status.FAILED, OLD)  # two old jobs, one file: removed once
    bootstrap(engine, shared, Status.SUCCEEDED, OLD)
    younger = bootstrap(engine, shared, Status.SUCCEEDED, YOUNG)
    bootstrap(engine, in_preset, Status.SUCCEEDED, OLD)
    presets.save(engine, "bootstrap", "survey", {"data": in_preset, "column": "x"})

    report = purge(engine, any_artifacts, MONTH)

    assert report.jobs == 4
    assert (report.uploads, report.upload_bytes) == (1, alone["size"])
    assert any_artifacts.upload_size(alone["sha256"]) is None
    assert any_artifacts.get_upload(shared["sha256"]) == b"x\n2\n"
    assert any_artifacts.get_upload(in_preset["sha256"]) == b"x\n3\n"
    # Once the last job that used it is gone, so is the shared file.
    back_date(engine, younger, OLD)
    again = purge(engine, any_artifacts, MONTH)
    assert (again.jobs, again.uploads) == (1, 1)
    assert any_artifacts.upload_size(shared["sha256"]) is None
    assert any_artifacts.upload_size(in_preset["sha256"]) == len(b"x\n3\n")


def test_without_an_artifact_store_files_and_uploads_stay(
    engine: Engine, any_artifacts: ArtifactStore
) -> None:
    ref = upload(any_artifacts, "1")
    public_id = bootstrap(engine, ref, Status.SUCCEEDED, OLD)
    put_files(any_artifacts, public_id)

    report = purge(engine, None, MONTH)

    assert not exists(engine, public_id)
    assert (report.artifact_files, report.uploads) == (0, 0)
    assert files_of(any_artifacts, public_id) == 2
    assert hashlib.sha256(any_artifacts.get_upload(ref["sha256"])).hexdigest() == ref["sha256"]


def test_nothing_due_removes_nothing(engine: Engine, any_artifacts: ArtifactStore) -> None:
    young = aged_job(engine, Status.SUCCEEDED, YOUNG)
    before = everything(engine)

    assert purge(engine, any_artifacts, MONTH) == PurgeReport()
    assert everything(engine) == before
    assert exists(engine, young)


def test_a_policy_takes_finished_statuses_only() -> None:
    for status in (Status.QUEUED, Status.RUNNING):
        with pytest.raises(ValueError, match="finished statuses only"):
            Policy(timedelta(days=1), frozenset({Status.SUCCEEDED, status}))
    with pytest.raises(ValueError, match="above 0"):
        Policy(timedelta(0))


def aged_file(artifacts: ArtifactStore, key: str, age: timedelta) -> Path:
    """Date a file under `uploads/` `age` back, as if it had sat there that long."""
    path = Path(artifacts.root) / "uploads" / key
    when = time.time() - age.total_seconds()
    os.utime(path, (when, when))
    return path


def stored_upload(artifacts: ArtifactStore, text: str, age: timedelta) -> dict[str, Any]:
    ref = upload(artifacts, text)
    aged_file(artifacts, ref["sha256"], age)
    return ref


def leftover_tmp(artifacts: ArtifactStore, age: timedelta) -> Path:
    """A `.tmp` as a write killed half-way leaves it."""
    key = f"{hashlib.sha256(str(age).encode()).hexdigest()}.{secrets.token_hex(4)}.tmp"
    (Path(artifacts.root) / "uploads").mkdir(parents=True, exist_ok=True)
    (Path(artifacts.root) / "uploads" / key).write_bytes(b"x\n1")
    return aged_file(artifacts, key, age)


PAST_UNUSED = UNUSED_UPLOAD_AGE + timedelta(hours=1)
WITHIN_UNUSED = UNUSED_UPLOAD_AGE - timedelta(hours=1)


def test_an_upload_no_job_names_goes_once_older_than_its_age_and_a_named_one_never(
    engine: Engine, artifacts: ArtifactStore
) -> None:
    orphan = stored_upload(artifacts, "1", PAST_UNUSED)
    young_orphan = stored_upload(artifacts, "2", WITHIN_UNUSED)
    by_finished = stored_upload(artifacts, "3", timedelta(days=90))
    by_queued = stored_upload(artifacts, "4", timedelta(days=90))
    in_preset = stored_upload(artifacts, "5", timedelta(days=90))
    bootstrap(engine, by_finished, Status.SUCCEEDED, YOUNG)  # not due: it stays, with its file
    bootstrap(engine, by_queued, Status.QUEUED, OLD)
    presets.save(engine, "bootstrap", "kept", {"data": in_preset, "column": "x"})

    report = purge(engine, artifacts, MONTH)

    assert report.jobs == 0
    assert (report.unused_uploads, report.unused_upload_bytes) == (1, orphan["size"])
    assert artifacts.upload_size(orphan["sha256"]) is None
    for kept in (young_orphan, by_finished, by_queued, in_preset):
        assert artifacts.upload_size(kept["sha256"]) == kept["size"]
    assert "1 unused uploads over 1d old" in report.summary()


def test_a_stale_tmp_goes_and_a_write_in_progress_stays(
    engine: Engine, artifacts: ArtifactStore
) -> None:
    stale = leftover_tmp(artifacts, STALE_TMP_AGE + timedelta(minutes=1))
    fresh = leftover_tmp(artifacts, timedelta(seconds=5))

    report = purge(engine, artifacts, MONTH)

    assert report.temporary_files == 1
    assert (stale.exists(), fresh.exists()) == (False, True)


def test_a_dry_run_counts_unused_uploads_and_stale_tmps_and_removes_neither(
    engine: Engine, artifacts: ArtifactStore, tmp_path: Path
) -> None:
    stored_upload(artifacts, "1", PAST_UNUSED)
    bootstrap(engine, stored_upload(artifacts, "2", PAST_UNUSED), Status.FAILED, OLD)
    leftover_tmp(artifacts, timedelta(hours=2))
    files_before = sorted(str(p) for p in (tmp_path / "artifacts").rglob("*"))

    seen = purge(engine, artifacts, MONTH, dry_run=True)

    assert sorted(str(p) for p in (tmp_path / "artifacts").rglob("*")) == files_before
    assert (seen.uploads, seen.unused_uploads, seen.temporary_files) == (1, 1, 1)
    done = purge(engine, artifacts, MONTH)
    assert seen.to_json() == {**done.to_json(), "dry_run": True}
    assert list((tmp_path / "artifacts" / "uploads").iterdir()) == []


def test_unused_uploads_stay_when_the_purge_is_stopped_or_has_no_artifact_store(
    engine: Engine, artifacts: ArtifactStore
) -> None:
    orphan = stored_upload(artifacts, "1", PAST_UNUSED)
    stop = threading.Event()
    stop.set()

    assert purge(engine, artifacts, MONTH, stop=stop).unused_uploads == 0
    assert purge(engine, None, MONTH).unused_uploads == 0
    assert artifacts.upload_size(orphan["sha256"]) == orphan["size"]
