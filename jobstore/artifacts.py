"""The artifact store: files that belong to a job but not in the database, such as checkpoints
and uploaded data.

A local directory by default; any fsspec URL (`s3://…`, `gcs://…`) when runners on several
machines must share it. A job's keys are relative paths under `jobs/<public id>/`; uploads are
stored once each under `uploads/<sha256>`, so jobs that share a file share its bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from runlab.errors import UploadMissing

log = logging.getLogger(__name__)

JSON_LIMIT = 1_000_000  # bytes: checkpoints are small by design; larger data belongs in results
SHA256 = re.compile(r"[0-9a-f]{64}")


class ArtifactStore:
    def __init__(self, location: str) -> None:
        self.fs, root = fsspec.core.url_to_fs(location)
        self.root = root.rstrip("/")
        self.location = location

    def _path(self, public_id: str, key: str = "") -> str:
        if not public_id or "/" in public_id or ".." in public_id:
            raise ValueError(f"bad job id for the artifact store: {public_id!r}")
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad artifact key: {key!r}")
        base = f"{self.root}/jobs/{public_id}"
        return f"{base}/{key}" if key else base

    def _write(self, path: str, data: bytes) -> None:
        """Write whole; a reader never sees half a file."""
        if isinstance(self.fs, LocalFileSystem):
            # Object stores write whole objects; a local file is written aside, then renamed.
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            tmp = f"{path}.{secrets.token_hex(4)}.tmp"
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, path)
        else:
            self.fs.pipe_file(path, data)

    def put_upload(self, data: bytes) -> str:
        """Keep an uploaded file; return its SHA-256, which is also its key."""
        digest = hashlib.sha256(data).hexdigest()
        path = f"{self.root}/uploads/{digest}"
        if not self.fs.exists(path):
            self._write(path, data)
        return digest

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

    def delete_upload(self, sha256: str) -> None:
        """Remove an upload. Only retention calls it, once no job or preset refers to it."""
        if not SHA256.fullmatch(sha256):
            raise ValueError(f"bad upload reference {sha256!r}")
        path = f"{self.root}/uploads/{sha256}"
        if self.fs.exists(path):
            self.fs.rm(path)
