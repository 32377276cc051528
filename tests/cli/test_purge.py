"""`runlab purge`: what it prints, what it removes, and the input it refuses (exit 2)."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from jobstore.models import Status
from runlab.artifacts import ArtifactStore
from runlab.cli import cli
from tests.store.aged import aged_job, everything, exists, put_files

OLD = timedelta(days=40)
YOUNG = timedelta(days=2)


@pytest.fixture
def store(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    """The command's store, on each backend, and its artifact store."""
    monkeypatch.setenv("RUNLAB_DATABASE_URL", db_url)
    monkeypatch.setenv("RUNLAB_ARTIFACTS", str(tmp_path / "artifacts"))
    return ArtifactStore(str(tmp_path / "artifacts"))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def counts(out: str) -> dict[str, int]:
    """The `label  count` lines of the text output."""
    return {
        m[1]: int(m[2].replace(",", ""))
        for m in re.finditer(r"^  ([a-z ]+?)\s+([\d,]+)(?:  \(.*\))?$", out, re.M)
    }


def test_purge_prints_each_count_and_removes_only_old_finished_jobs(
    engine: Engine, store: ArtifactStore
) -> None:
    old = aged_job(engine, Status.SUCCEEDED, OLD)
    failed = aged_job(engine, Status.FAILED, OLD)
    young = aged_job(engine, Status.SUCCEEDED, YOUNG)
    running = aged_job(engine, Status.RUNNING, OLD)
    put_files(store, old)

    code, out, err = run("purge", "--older-than", "30d")

    assert code == 0, err
    assert out.splitlines()[0] == (
        "removed, of succeeded, failed, cancelled jobs that ended over 30d ago:"
    )
    shown = counts(out)
    assert shown["jobs"] == 2
    assert shown["results"] == 1
    assert shown["artifact files"] == 2
    assert all(shown[k] > 0 for k in ("stages", "events", "metrics"))
    assert shown["uploads"] == 0
    assert (shown["unused uploads"], shown["temporary files"]) == (0, 0)
    assert (exists(engine, old), exists(engine, failed)) == (False, False)
    assert (exists(engine, young), exists(engine, running)) == (True, True)
    assert store.job_usage(old) == (0, 0)


def test_dry_run_json_gives_the_counts_and_removes_nothing(
    engine: Engine, store: ArtifactStore
) -> None:
    old = aged_job(engine, Status.CANCELLED, OLD)
    aged_job(engine, Status.SUCCEEDED, timedelta(hours=13))
    before = everything(engine)

    code, out, err = run("purge", "--older-than", "12h", "--dry-run", "--json")

    assert code == 0, err
    shown = json.loads(out)
    assert shown["dry_run"] is True
    assert shown["older_than"] == "12h"
    assert shown["statuses"] == ["succeeded", "failed", "cancelled"]
    assert shown["jobs"] == 2
    assert set(shown) >= {"stages", "events", "metrics", "results", "artifact_files", "uploads"}
    assert "nothing was removed" in err
    assert everything(engine) == before
    assert exists(engine, old)


def test_purge_removes_an_unused_upload_past_its_age_and_says_what_that_age_is(
    engine: Engine, store: ArtifactStore
) -> None:
    data = b"x\n1\n2\n"
    sha = store.put_upload(data)
    when = time.time() - 2 * 86400
    os.utime(Path(store.root) / "uploads" / sha, (when, when))

    code, out, err = run("purge", "--older-than", "30d")

    assert code == 0, err
    assert re.search(rf"^  unused uploads\s+1  \({len(data)} bytes\)$", out, re.M), out
    assert "unused uploads: named by no job or preset, over 1d old" in err
    assert store.upload_size(sha) is None
    code, out, _ = run("purge", "--older-than", "30d", "--json")
    assert (json.loads(out)["unused_uploads"], json.loads(out)["temporary_files"]) == (0, 0)


def test_status_picks_which_finished_jobs_go(engine: Engine, store: ArtifactStore) -> None:
    succeeded = aged_job(engine, Status.SUCCEEDED, OLD)
    failed = aged_job(engine, Status.FAILED, OLD)
    cancelled = aged_job(engine, Status.CANCELLED, OLD)

    code, out, err = run(
        "purge", "--older-than", "2w", "--status", "failed", "--status", "cancelled", "--json"
    )

    assert code == 0, err
    assert json.loads(out)["statuses"] == ["failed", "cancelled"]
    assert [exists(engine, p) for p in (succeeded, failed, cancelled)] == [True, False, False]


@pytest.mark.parametrize("age", ["30", "d", "30x", "-1d", "1.5d", "0d", "", "30 days"])
def test_a_bad_age_exits_2_with_a_message_and_removes_nothing(
    engine: Engine, store: ArtifactStore, age: str
) -> None:
    old = aged_job(engine, Status.SUCCEEDED, OLD)

    code, _, err = run("purge", "--older-than", age)

    assert code == 2
    assert "Invalid value for '--older-than'" in err
    assert "Traceback" not in err
    assert exists(engine, old)


@pytest.mark.parametrize(
    ("statuses", "message"),
    [
        ("running", "running jobs are never purged"),
        ("succeeded,queued", "queued jobs are never purged"),
        ("done", "unknown status 'done'; choose from succeeded, failed, cancelled"),
        (",", "name at least one of succeeded, failed, cancelled"),
    ],
)
def test_an_unfinished_or_unknown_status_exits_2_and_removes_nothing(
    engine: Engine, store: ArtifactStore, statuses: str, message: str
) -> None:
    old = aged_job(engine, Status.SUCCEEDED, OLD)

    code, _, err = run("purge", "--older-than", "1d", "--status", statuses)

    assert code == 2
    assert "Invalid value for '--status'" in err
    assert message in err
    assert exists(engine, old)


def test_purge_needs_an_age(store: ArtifactStore) -> None:
    code, _, err = run("purge")

    assert code == 2
    assert "--older-than" in err


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RUNLAB_PURGE_AFTER", "monthly", "RUNLAB_PURGE_AFTER: 'monthly' is not an age"),
        ("RUNLAB_PURGE_STATUSES", "running", "RUNLAB_PURGE_STATUSES: running jobs are never"),
    ],
)
def test_a_bad_purge_setting_exits_2_naming_it(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)

    code, _, err = run("ls")

    assert code == 2
    assert message in err
