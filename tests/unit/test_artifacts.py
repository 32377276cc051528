"""The artifact store on a real folder and on a real S3-compatible server (moto's, over HTTP):
JSON written whole, damaged files skipped, safe keys, and a store that does not answer named
with its setting, at start and halfway."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runlab.artifacts import JSON_LIMIT, ArtifactStore, ArtifactsUnavailable, UploadNotStored
from runlab.errors import ArtifactsUnreachable
from runlab.settings import load_settings
from tests.polling import wait_for
from tests.processes import free_port
from tests.s3 import KEY_ID, SECRET, Place, S3Server

CSV = b"x,y\n1,2\n3,4\n"


def test_json_round_trip_and_delete(artifact_place: Place) -> None:
    store = artifact_place.store()
    store.put_json("abc", "checkpoints/chunk-1.json", {"inside": 3})
    store.put_json("abc", "checkpoints/chunk-2.json", [1, 2])
    store.put_json("other", "checkpoints/chunk-1.json", 5)

    assert store.json_under("abc", "checkpoints") == {
        "checkpoints/chunk-1.json": {"inside": 3},
        "checkpoints/chunk-2.json": [1, 2],
    }
    # Written aside, then renamed into place, on a folder; whole objects on a bucket.
    assert artifact_place.files() == [
        "jobs/abc/checkpoints/chunk-1.json",
        "jobs/abc/checkpoints/chunk-2.json",
        "jobs/other/checkpoints/chunk-1.json",
    ]
    assert store.job_usage("abc")[0] == 2
    store.delete("abc", "checkpoints")
    assert store.json_under("abc", "checkpoints") == {}
    assert store.json_under("other", "checkpoints") == {"checkpoints/chunk-1.json": 5}


def test_a_damaged_file_is_skipped_not_fatal(artifact_place: Place) -> None:
    store = artifact_place.store()
    store.put_json("abc", "checkpoints/good.json", 1)
    artifact_place.write("jobs/abc/checkpoints/bad.json", b"{not json")

    assert store.json_under("abc", "checkpoints") == {"checkpoints/good.json": 1}


def test_nothing_saved_reads_as_empty(artifact_place: Place) -> None:
    store = artifact_place.store()
    assert store.json_under("abc", "checkpoints") == {}
    assert store.job_usage("abc") == (0, 0)
    assert store.stored_uploads() == []


@pytest.mark.parametrize(
    ("job", "key"), [("../x", "a.json"), ("a/b", "a.json"), ("abc", "../../etc/x.json")]
)
def test_keys_cannot_leave_the_job_folder(artifact_place: Place, job: str, key: str) -> None:
    with pytest.raises(ValueError, match="bad"):
        artifact_place.store().put_json(job, key, 1)
    assert artifact_place.files() == []


def test_oversized_and_nan_values_are_refused(artifact_place: Place) -> None:
    store = artifact_place.store()
    with pytest.raises(ValueError, match="limit"):
        store.put_json("abc", "big.json", "x" * JSON_LIMIT)
    with pytest.raises(ValueError):
        store.put_json("abc", "nan.json", float("nan"))
    assert artifact_place.files() == []


def test_an_upload_is_kept_once_read_back_checked_and_dated(artifact_place: Place) -> None:
    store = artifact_place.store()
    sha = store.put_upload(CSV)
    assert store.put_upload(CSV) == sha
    assert store.get_upload(sha) == CSV
    assert store.upload_size(sha) == len(CSV)
    (kept,) = store.stored_uploads()
    assert (kept.key, kept.size) == (sha, len(CSV))
    assert kept.modified is not None
    assert abs(datetime.now(UTC) - kept.modified) < timedelta(minutes=5)
    assert artifact_place.files() == [f"uploads/{sha}"]


def test_keeping_bytes_again_refreshes_their_date(artifact_place: Place) -> None:
    """On a bucket too, where an object's date changes only when it is written again."""
    store = artifact_place.store()
    sha = store.put_upload(CSV)
    (first,) = store.stored_uploads()
    assert first.modified is not None
    # Object stores date to the second: wait until the clock has passed the first date's.
    wait_for(
        lambda: datetime.now(UTC) >= first.modified + timedelta(seconds=1.1),  # type: ignore[operator]
        timeout=5,
        what="the clock to pass the first write's second",
    )
    store.put_upload(CSV)
    (again,) = store.stored_uploads()
    assert again.key == sha
    assert again.modified is not None and again.modified > first.modified


# --- a store that does not answer ----------------------------------------------------------------


def test_a_bucket_that_answers_passes_the_start_check(artifact_place: Place) -> None:
    artifact_place.store().check()


def test_a_missing_bucket_is_named_at_start_with_its_setting(s3: S3Server) -> None:
    store = ArtifactStore("s3://no-such-bucket/runlab", s3.options())
    with pytest.raises(ArtifactsUnreachable) as caught:
        store.check()
    assert str(caught.value) == (
        "the artifact store s3://no-such-bucket/runlab (RUNLAB_ARTIFACTS): "
        "the bucket no-such-bucket does not exist"
    )


def test_a_wrong_endpoint_is_named_at_start_within_seconds() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = ArtifactStore(
        "s3://bucket/runlab", {"endpoint_url": endpoint, "key": KEY_ID, "secret": SECRET}
    )
    started = time.monotonic()
    with pytest.raises(ArtifactsUnreachable) as caught:
        store.check()
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert message.startswith("the artifact store s3://bucket/runlab (RUNLAB_ARTIFACTS): ")
    assert endpoint in message and "\n" not in message


def test_a_store_gone_halfway_fails_as_an_oserror_that_names_it(tmp_path: Path) -> None:
    """What each caller already handles for a full disk: a checkpoint is skipped with a
    warning, an upload is refused under its field; never a client library's traceback."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    options = {"endpoint_url": endpoint, "key": KEY_ID, "secret": SECRET}
    store = ArtifactStore("s3://bucket/runlab", options)
    with pytest.raises(ArtifactsUnavailable, match=r"s3://bucket/runlab \(RUNLAB_ARTIFACTS\)"):
        store.put_json("abc", "checkpoints/c.json", 1)
    with pytest.raises(UploadNotStored) as caught:
        store.put_upload(CSV, "prices")
    assert caught.value.errors["prices"].startswith(
        "cannot keep the file: the artifact store s3://bucket/runlab (RUNLAB_ARTIFACTS) failed"
    )


def test_the_settings_give_the_bucket_its_endpoint_region_and_keys(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "RUNLAB_ARTIFACTS": "s3://team-bucket/runlab",
            "RUNLAB_ARTIFACTS_ENDPOINT": "http://10.0.0.5:9000",
            "RUNLAB_ARTIFACTS_REGION": "eu-west-1",
            "RUNLAB_ARTIFACTS_KEY_ID": "id",
            "RUNLAB_ARTIFACTS_SECRET": "secret",
        },
        tmp_path / "none.toml",
    )
    assert settings.artifact_options == {
        "endpoint_url": "http://10.0.0.5:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
        "key": "id",
        "secret": "secret",
    }
    # Unset, each is left to the AWS variables and files; a folder takes none.
    bare = load_settings({"RUNLAB_ARTIFACTS": "s3://b/p"}, tmp_path / "none.toml")
    assert bare.artifact_options == {}
    folder = load_settings(
        {"RUNLAB_ARTIFACTS": str(tmp_path), "RUNLAB_ARTIFACTS_REGION": "x"}, tmp_path / "none.toml"
    )
    assert folder.artifact_options == {}
