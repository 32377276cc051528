"""The artifact store: files that belong to a job but not in the database, such as checkpoints
and uploaded data.

A local directory by default; any fsspec URL (`s3://bucket/prefix`, through s3fs) when
runners and Dask workers on several machines must share it. Every failure of a remote store
reaches the caller as an OSError (`ArtifactsUnavailable`) naming the store and its setting,
as a local disk's would, so that each caller's handling of a full or unwritable folder holds
for an unreachable bucket too.

A job's keys are relative paths under `jobs/<public id>/`; uploads are stored once each under
`uploads/<sha256>`, so jobs that share a file share its bytes.

A local file is written aside as `<name>.<random>.tmp` and renamed into place; a failed write
removes its `.tmp`, and retention removes any that a killed process left behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from runlab.errors import ArtifactsUnreachable, InvalidUpload, UploadMissing

if TYPE_CHECKING:
    from runlab.settings import Settings

log = logging.getLogger(__name__)

JSON_LIMIT = 1_000_000  # bytes: checkpoints are small by design; larger data belongs in results
SHA256 = re.compile(r"[0-9a-f]{64}")
# What `_write` leaves aside while it writes: removed on failure, or by retention once stale.
TEMPORARY = re.compile(r"[0-9a-f]{64}\.[0-9a-f]{8}\.tmp")
SETTING = "RUNLAB_ARTIFACTS"
# What a remote store's client raises when it cannot answer, as opposed to a file it reports
# missing or a write it refuses, which its fsspec implementation already gives as an OSError.
REMOTE_LIBRARIES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "urllib3", "requests")
# botocore's own retries and timeouts for S3. The long-lived client tries a few times, so a
# checkpoint waits seconds, not a minute, on a store that is down; the start check's gives up
# sooner still.
S3_CLIENT = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3}}
QUICK_S3 = {"connect_timeout": 5, "read_timeout": 10, "retries": {"max_attempts": 2}}


class ArtifactsUnavailable(OSError):
    """A remote artifact store did not answer, or refused the client: an OSError, as a local
    disk's failure is, with a message that names the store and its setting."""


class UploadNotStored(InvalidUpload):
    """The artifact store refused an upload (a folder unwritable, full or not a folder; a
    bucket that does not answer): a setting to fix, not a bad file, so it exits 1 rather than
    2; the message names the store and its setting.
    """

    exit_code = 1


@dataclass(frozen=True)
class StoredFile:
    """A file under `uploads/`: a kept upload (`key` is its SHA-256) or an unfinished write."""

    key: str
    size: int
    modified: datetime | None  # UTC; None when the filesystem does not say


@dataclass(frozen=True)
class UploadSource:
    """What a Dask worker needs to read an upload itself, on whichever host it runs: the
    store's address and options (credentials included, as Dask's own readers take them)."""

    location: str
    options: Mapping[str, Any]

    def read(self, sha256: str) -> bytes:
        return ArtifactStore(self.location, self.options).get_upload(sha256)


def remote_failure(exc: BaseException) -> bool:
    """Whether a remote store's client library raised it (a refused connection, a timeout, no
    credentials): not an OSError of its own, so it is told apart by where it comes from."""
    return type(exc).__module__.split(".")[0] in REMOTE_LIBRARIES


def _reason(exc: BaseException) -> str:
    """One line: botocore's own messages say what failed and where."""
    return " ".join(str(exc).split()) or type(exc).__name__


class ArtifactStore:
    def __init__(
        self, location: str | os.PathLike[str], options: Mapping[str, Any] | None = None
    ) -> None:
        location = os.fspath(location)
        self.options = dict(options or {})
        if location.startswith(("s3://", "s3a://")):
            self.options.setdefault("config_kwargs", S3_CLIENT)
        self._fs, root = fsspec.core.url_to_fs(location, **self.options)
        self.root = root.rstrip("/")
        self.location = location
        self.local = isinstance(self._fs, LocalFileSystem)
        self.fs = self._fs if self.local else _Answering(self._fs, self._unavailable)

    def source(self) -> UploadSource:
        return UploadSource(self.location, self.options)

    def _unavailable(self, exc: BaseException) -> ArtifactsUnavailable:
        return ArtifactsUnavailable(
            errno.EIO, f"the artifact store {self.location} ({SETTING}) failed: {_reason(exc)}"
        )

    def check(self) -> None:
        """Raise ArtifactsUnreachable, in one line that names the setting, unless a remote
        store's bucket answers: called as a runner or a web app starts, so that a wrong
        endpoint or a missing bucket stops it there rather than failing jobs halfway."""
        if self.local:
            return
        bucket = self.root.split("/", 1)[0]
        fs = self._fs
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        if "s3" in protocols:
            options = {**self.options, "config_kwargs": QUICK_S3}
            fs = fsspec.filesystem("s3", skip_instance_cache=True, **options)
        where = f"the artifact store {self.location} ({SETTING})"
        try:
            fs.info(bucket)
        except FileNotFoundError:
            raise ArtifactsUnreachable(f"{where}: the bucket {bucket} does not exist") from None
        except PermissionError:
            raise ArtifactsUnreachable(
                f"{where}: access to the bucket {bucket} is denied"
            ) from None
        except Exception as exc:
            if not (remote_failure(exc) or isinstance(exc, OSError)):
                raise
            raise ArtifactsUnreachable(f"{where}: {_reason(exc)}") from None

    def _path(self, public_id: str, key: str = "") -> str:
        if not public_id or "/" in public_id or ".." in public_id:
            raise ValueError(f"bad job id for the artifact store: {public_id!r}")
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad artifact key: {key!r}")
        base = f"{self.root}/jobs/{public_id}"
        return f"{base}/{key}" if key else base

    def _write(self, path: str, data: bytes) -> None:
        """Write whole; a reader never sees half a file."""
        if self.local:
            # Object stores write whole objects; a local file is written aside, then renamed.
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            tmp = f"{path}.{secrets.token_hex(4)}.tmp"
            try:
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):  # a half-written file helps no one
                    self.fs.rm_file(tmp)
                raise
        else:
            self.fs.pipe_file(path, data)

    def put_upload(self, data: bytes, field: str = "data") -> str:
        """Keep an uploaded file; return its SHA-256, which is also its key.

        Keeping bytes already stored refreshes their date, so that retention, which removes
        uploads no job names once they are old, does not take a file just handed out again.
        A folder that refuses the write raises UploadNotStored, naming it and its setting.
        """
        digest = hashlib.sha256(data).hexdigest()
        path = f"{self.root}/uploads/{digest}"
        try:
            if self.local and self.fs.exists(path):
                self.fs.touch(path, truncate=False)
            else:  # an object's date changes only when it is written again
                self._write(path, data)
        except OSError as exc:
            raise UploadNotStored(self._refused(exc), field) from None
        return digest

    def _refused(self, exc: OSError) -> str:
        """Why the folder did not take a file, in words that say what to fix."""
        if isinstance(exc, ArtifactsUnavailable):
            return f"cannot keep the file: {exc.strerror}"
        where = f"the artifacts folder {self.location} ({SETTING})"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"cannot keep the file: {where} is not writable"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"cannot keep the file: {where} is full"
        if exc.errno in (errno.ENOTDIR, errno.EEXIST):  # it, or a folder above it, is a file
            return f"cannot keep the file: {where} is not a folder"
        reason = exc.strerror or type(exc).__name__
        return f"cannot keep the file in {where}: {reason.lower()}"

    def get_upload(self, sha256: str) -> bytes:
        """The bytes of an upload, checked against their SHA-256."""
        if not SHA256.fullmatch(sha256):
            raise UploadMissing(f"bad upload reference {sha256!r}")
        try:
            data = self.fs.cat_file(f"{self.root}/uploads/{sha256}")
        except FileNotFoundError:
            raise UploadMissing(
                f"the uploaded file {sha256[:12]}… is missing from the artifact store "
                f"({self.location})"
            ) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise UploadMissing(f"the uploaded file {sha256[:12]}… changed after it was stored")
        return data

    def put_json(self, public_id: str, key: str, value: Any) -> None:
        """Write `value` as JSON; a reader never sees half a file."""
        data = json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
        if len(data) > JSON_LIMIT:
            raise ValueError(f"artifact {key} is {len(data):,} bytes; the limit is {JSON_LIMIT:,}")
        self._write(self._path(public_id, key), data)

    def json_under(self, public_id: str, prefix: str) -> dict[str, Any]:
        """Every JSON artifact under `prefix`, by key; a file that does not parse is skipped."""
        base = self._path(public_id, prefix)
        try:
            paths = [p for p in self.fs.find(base) if p.endswith(".json")]
        except FileNotFoundError:
            return {}
        out: dict[str, Any] = {}
        for path in paths:
            key = path[len(self._path(public_id)) + 1 :]
            try:
                out[key] = json.loads(self.fs.cat_file(path))
            except (OSError, ValueError):
                log.warning("artifact %s of job %s is unreadable; ignoring it", key, public_id)
        return out

    def delete(self, public_id: str, prefix: str = "") -> None:
        """Remove a job's artifacts under `prefix` (all of them by default)."""
        path = self._path(public_id, prefix)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def job_usage(self, public_id: str) -> tuple[int, int]:
        """How many files a job holds, and their bytes: what removing them frees."""
        try:
            found = self.fs.find(self._path(public_id), detail=True)
        except FileNotFoundError:
            return 0, 0
        return len(found), sum(int(info.get("size") or 0) for info in found.values())

    def upload_size(self, sha256: str) -> int | None:
        """An upload's size in bytes, or None when it is not stored."""
        if not SHA256.fullmatch(sha256):
            raise ValueError(f"bad upload reference {sha256!r}")
        try:
            return int(self.fs.size(f"{self.root}/uploads/{sha256}"))
        except FileNotFoundError:
            return None

    def stored_uploads(self) -> list[StoredFile]:
        """Every file under `uploads/`, kept or half-written, with its size and date."""
        try:
            found = self.fs.ls(f"{self.root}/uploads", detail=True)
        except FileNotFoundError:
            return []
        out = []
        for info in found:
            if info.get("type") != "file":
                continue
            name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
            out.append(StoredFile(name, int(info.get("size") or 0), self._modified(info)))
        return out

    def _modified(self, info: dict[str, Any]) -> datetime | None:
        """A file's last change: local files give `mtime`; other stores are asked."""
        mtime = info.get("mtime")
        if isinstance(mtime, int | float):
            return datetime.fromtimestamp(mtime, UTC)
        try:
            when = self.fs.modified(info["name"])
        except (NotImplementedError, OSError):
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    def delete_temporary(self, key: str) -> None:
        """Remove a write's leftover `.tmp` under `uploads/`; retention calls it once stale."""
        if not TEMPORARY.fullmatch(key):
            raise ValueError(f"not a temporary file: {key!r}")
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(f"{self.root}/uploads/{key}")

    def delete_upload(self, sha256: str) -> None:
        """Remove an upload. Only retention calls it, once no job or preset refers to it."""
        if not SHA256.fullmatch(sha256):
            raise ValueError(f"bad upload reference {sha256!r}")
        path = f"{self.root}/uploads/{sha256}"
        if self.fs.exists(path):
            self.fs.rm(path)


class _Answering:
    """A remote filesystem whose every call turns its client's own failures (a refused
    connection, no credentials, a timeout) into ArtifactsUnavailable."""

    def __init__(self, fs: Any, unavailable: Callable[[BaseException], OSError]) -> None:
        self._fs = fs
        self._unavailable = unavailable

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._fs, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except Exception as exc:
                if remote_failure(exc):
                    raise self._unavailable(exc) from exc
                raise

        return call


def artifact_store(settings: Settings) -> ArtifactStore:
    """The store that `RUNLAB_ARTIFACTS` and the `RUNLAB_ARTIFACTS_*` options name."""
    return ArtifactStore(settings.artifacts, settings.artifact_options)
