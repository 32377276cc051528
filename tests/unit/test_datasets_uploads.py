"""Keeping an upload: read with a byte limit whatever size a stream reports, checked before it
is stored, and an artifacts folder's refusal said in words, with no `.tmp` left behind."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import time
from pathlib import Path
from typing import Any

import pytest

from compute import datasets
from runlab.artifacts import TEMPORARY, ArtifactStore, UploadNotStored
from runlab.errors import InvalidUpload
from tests.s3 import Place

CSV = b"x\n" + b"".join(f"{i}.5\n".encode() for i in range(20))


class Endless(io.RawIOBase):
    """Zeros without end, handed out in small pieces, not seekable: a device or a pipe."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), 64 * 1024)
        buffer[:n] = b"\0" * n
        self.given += n
        return n


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_an_endless_stream_is_refused_after_one_byte_past_the_limit() -> None:
    stream = Endless()
    with pytest.raises(InvalidUpload) as caught:
        datasets.read_limited(stream, "prices")
    assert caught.value.errors == {"prices": "the file is larger than the limit of 50.0 MB"}
    assert stream.given == datasets.MAX_BYTES + 1


def test_a_stream_in_small_pieces_is_read_whole() -> None:
    data = b"x\n" + b"1\n" * 100_000
    stream = io.BufferedReader(io.BytesIO(data), buffer_size=4096)
    assert datasets.read_limited(stream) == data


def test_a_stream_that_knows_its_size_names_it_when_over_the_limit() -> None:
    size = datasets.MAX_BYTES + 10
    with pytest.raises(InvalidUpload) as caught:
        datasets.read_limited(io.BytesIO(bytes(size)))
    assert caught.value.errors == {"data": datasets.too_big(size)}


def test_store_takes_a_stream_and_keeps_the_same_bytes_as_from_bytes(
    artifact_place: Place,
) -> None:
    store = artifact_place.store()
    ref = datasets.store(store, "d.csv", io.BytesIO(CSV))
    assert ref == datasets.store(store, "d.csv", CSV)
    assert ref.sha256 == hashlib.sha256(CSV).hexdigest()
    assert store.get_upload(ref.sha256) == CSV


def test_reference_checks_the_file_and_stores_nothing(tmp_path: Path) -> None:
    ref = datasets.reference("d.csv", CSV)
    assert (ref.name, ref.size, ref.sha256) == ("d.csv", len(CSV), hashlib.sha256(CSV).hexdigest())
    with pytest.raises(InvalidUpload, match="empty"):
        datasets.reference("e.csv", b"", "prices")


def test_a_file_name_that_is_not_text_is_kept_readable() -> None:
    assert datasets.reference("a\udcff\x00b.csv", CSV).name == "a??b.csv"


def test_a_folder_under_a_file_is_named_with_its_setting(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"")
    where = tmp_path / "blocker" / "artifacts"
    with pytest.raises(UploadNotStored) as caught:
        datasets.store(ArtifactStore(str(where)), "d.csv", CSV)
    assert caught.value.exit_code == 1
    assert caught.value.errors == {
        "data": f"cannot keep the file: the artifacts folder {where} (RUNLAB_ARTIFACTS) "
        "is not a folder"
    }


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (errno.ENOSPC, "is full"),
        (errno.EACCES, "is not writable"),
        (errno.EIO, ": input/output error"),
    ],
)
def test_a_failed_write_says_why_and_removes_its_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, said: str
) -> None:
    store = ArtifactStore(str(tmp_path))

    def fail_after_writing(*_args: Any, **_kwargs: Any) -> None:
        (written,) = (tmp_path / "uploads").iterdir()  # the .tmp, written whole
        assert TEMPORARY.fullmatch(written.name)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(store.fs, "mv", fail_after_writing)
    with pytest.raises(UploadNotStored, match=f"folder {tmp_path} \\(RUNLAB_ARTIFACTS\\).*{said}"):
        store.put_upload(CSV, "prices")
    assert leftovers(tmp_path) == []


def test_a_failed_checkpoint_write_removes_its_tmp_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(str(tmp_path))
    monkeypatch.setattr(store.fs, "mv", lambda *_a, **_k: (_ for _ in ()).throw(OSError("gone")))
    with pytest.raises(OSError, match="gone"):
        store.put_json("abc", "checkpoints/c.json", {"n": 1})
    assert leftovers(tmp_path) == []


def test_keeping_bytes_already_stored_refreshes_their_date(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    sha = store.put_upload(CSV)
    path = tmp_path / "uploads" / sha
    os.utime(path, (time.time() - 3 * 86400,) * 2)
    store.put_upload(CSV)
    assert time.time() - path.stat().st_mtime < 3600
    (kept,) = store.stored_uploads()
    assert (kept.key, kept.size) == (sha, len(CSV))
