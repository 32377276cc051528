"""The artifact store on a real directory: atomic JSON, damaged files skipped, safe keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from runlab.artifacts import JSON_LIMIT, ArtifactStore


def test_json_round_trip_and_delete(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    store.put_json("abc", "checkpoints/chunk-1.json", {"inside": 3})
    store.put_json("abc", "checkpoints/chunk-2.json", [1, 2])
    store.put_json("other", "checkpoints/chunk-1.json", 5)

    assert store.json_under("abc", "checkpoints") == {
        "checkpoints/chunk-1.json": {"inside": 3},
        "checkpoints/chunk-2.json": [1, 2],
    }
    assert not list(tmp_path.rglob("*.tmp"))  # written aside, then renamed into place
    store.delete("abc", "checkpoints")
    assert store.json_under("abc", "checkpoints") == {}
    assert store.json_under("other", "checkpoints") == {"checkpoints/chunk-1.json": 5}


def test_a_damaged_file_is_skipped_not_fatal(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    store.put_json("abc", "checkpoints/good.json", 1)
    (tmp_path / "jobs" / "abc" / "checkpoints" / "bad.json").write_text("{not json")

    assert store.json_under("abc", "checkpoints") == {"checkpoints/good.json": 1}


def test_nothing_saved_reads_as_empty(tmp_path: Path) -> None:
    assert ArtifactStore(str(tmp_path / "none")).json_under("abc", "checkpoints") == {}


@pytest.mark.parametrize(
    ("job", "key"), [("../x", "a.json"), ("a/b", "a.json"), ("abc", "../../etc/x.json")]
)
def test_keys_cannot_leave_the_job_folder(tmp_path: Path, job: str, key: str) -> None:
    with pytest.raises(ValueError, match="bad"):
        ArtifactStore(str(tmp_path)).put_json(job, key, 1)


def test_oversized_and_nan_values_are_refused(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    with pytest.raises(ValueError, match="limit"):
        store.put_json("abc", "big.json", "x" * JSON_LIMIT)
    with pytest.raises(ValueError):
        store.put_json("abc", "nan.json", float("nan"))
