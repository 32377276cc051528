"""An S3-compatible server for the tests: moto's standalone server, a real HTTP process on a
port of its own, and the places a test keeps its artifacts in, a folder or a fresh bucket.
(tests/deploy runs the same server on a host of its own.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec

from runlab.artifacts import ArtifactStore
from tests.polling import wait_for
from tests.processes import answers, free_port

# moto takes any credentials; these stand where a team's keys would.
KEY_ID = "runlab-tests"
SECRET = "runlab-tests-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    endpoint: str
    proc: subprocess.Popen[bytes]

    def options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint, "key": KEY_ID, "secret": SECRET}

    def new_bucket(self) -> str:
        name = f"runlab-{uuid.uuid4().hex[:12]}"
        fs = fsspec.filesystem("s3", skip_instance_cache=True, **self.options())
        fs.mkdir(name)
        return name

    def env(self, location: str) -> dict[str, str]:
        """The settings a Runlab process needs to use `location` on this server."""
        return {
            "RUNLAB_ARTIFACTS": location,
            "RUNLAB_ARTIFACTS_ENDPOINT": self.endpoint,
            "RUNLAB_ARTIFACTS_KEY_ID": KEY_ID,
            "RUNLAB_ARTIFACTS_SECRET": SECRET,
            "RUNLAB_ARTIFACTS_REGION": REGION,
        }


@contextlib.contextmanager
def s3_server(log_path: Path) -> Iterator[S3Server]:
    """moto's server on 127.0.0.1, on a free port."""
    host, port = "127.0.0.1", free_port()
    server = Path(sys.executable).with_name("moto_server")
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [str(server), "-H", host, "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = f"http://{host}:{port}"
    try:
        wait_for(
            lambda: proc.poll() is not None or answers(f"{endpoint}/moto-api/"),
            timeout=60,
            what=f"moto's S3 server at {endpoint}",
        )
        if proc.poll() is not None:
            raise RuntimeError(f"moto's server exited: {log_path.read_text(errors='replace')}")
        yield S3Server(endpoint, proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Place:
    """Where one test keeps its artifacts: a folder, or a prefix in a fresh bucket."""

    location: str
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return "://" in self.location

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.location, self.options)

    def files(self, under: str = "") -> list[str]:
        """Every file's key under `under`, relative to the place, sorted."""
        store = self.store()
        base = f"{store.root}/{under}".rstrip("/")
        try:
            found = store.fs.find(base)
        except FileNotFoundError:
            return []
        return sorted(p[len(store.root) + 1 :] for p in found)

    def write(self, key: str, data: bytes) -> None:
        """A file put there by hand, as a damaged or stray one would be."""
        store = self.store()
        path = f"{store.root}/{key}"
        if store.local:
            store.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        store.fs.pipe_file(path, data)


def folder_place(folder: Path) -> Place:
    return Place(str(folder), env={"RUNLAB_ARTIFACTS": str(folder)})


def bucket_place(server: S3Server) -> Place:
    location = f"s3://{server.new_bucket()}/runlab"
    return Place(location, server.options(), server.env(location))
