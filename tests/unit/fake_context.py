"""An in-memory stand-in for the JobContext a driver uses, for testing drivers without Dask or
the store: tasks run when their result is asked for, last-submitted first, and checkpoints
round-trip through JSON as the artifact store's do."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from compute.context import LEVELS, ChunkLoop


class FakeFuture:
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args

    def result(self) -> Any:
        """As on Dask, a future among the arguments stands for its result."""
        return self.fn(*(a.result() if isinstance(a, FakeFuture) else a for a in self.args))


class FakeUploads:
    """The context's files, read as a worker reads an upload from the artifact store."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read(self, sha256: str) -> bytes:
        return self.files[sha256]


class FakeClient:
    def __init__(self) -> None:
        self.submitted = 0

    def submit(
        self, fn: Callable[..., Any], *args: Any, pure: bool = True, key: str | None = None
    ) -> FakeFuture:
        self.submitted += 1
        return FakeFuture(fn, args)


class FakeContext(ChunkLoop):
    """Chunks finish in reverse order, and the loop ends after `stop_after` of them, as
    "stop and keep" ends it (never, by default). `map_chunks` is JobContext's own loop."""

    def __init__(
        self,
        saved: dict[str, Any] | None = None,
        *,
        stop_after: int = -1,
        files: dict[str, bytes] | None = None,
    ) -> None:
        self.client = FakeClient()
        self.saved = {k: json.loads(json.dumps(v)) for k, v in (saved or {}).items()}
        self.stop_after = stop_after
        self.files = dict(files or {})
        self.stages: list[str] = []
        self.metrics: list[tuple[str, float, float]] = []
        self.logs: list[tuple[str, str]] = []

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.stages.append(name)
        yield

    def progress(self, done: float, total: float) -> None:
        assert 0 <= done <= total

    def metric(self, name: str, step: float, value: float) -> None:
        self.metrics.append((name, step, value))

    def log(self, level: str, message: str) -> None:
        assert level in LEVELS
        self.logs.append((level, message))

    def checkpoint(self, key: str, value: Any) -> None:
        self.saved[key] = json.loads(json.dumps(value, allow_nan=False))

    def checkpoints(self) -> dict[str, Any]:
        return dict(self.saved)

    def read_upload(self, sha256: str) -> bytes:
        return self.files[sha256]

    def upload_source(self) -> FakeUploads:
        return FakeUploads(self.files)

    def as_completed(self, futures: Any) -> Iterator[tuple[FakeFuture, Any]]:
        for k, fut in enumerate(reversed(list(futures))):
            yield fut, fut.result()
            if k + 1 == self.stop_after:
                return
