"""The two sides of a whole-path benchmark: a kind's own driver on a plain process pool, and the
same job submitted to a warm runner, timed by the store from created to finished.

The plain side runs the kind's driver unchanged, with a context whose `map_chunks` sends each
chunk to a `ProcessPoolExecutor` of one process per core: the same kernel, the same chunks and
seeds, the same reduction, and nothing of Dask or the store. What is left between the two
sides is what Runlab adds: the claim, Dask's scheduling and transfers, progress and
checkpoint writes, and storing the result.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compute import intake, registry  # noqa: E402
from compute.context import ChunkLoop  # noqa: E402
from jobstore import queries  # noqa: E402
from jobstore.models import Status  # noqa: E402
from runlab.artifacts import ArtifactStore  # noqa: E402

POLL = 0.25  # seconds between this process's looks at the store: it must not steal the cores


def warm() -> None:
    """Imports a first chunk would otherwise pay for, in each pool process."""
    import scipy.optimize  # noqa: F401

    registry.load()


class Files:
    """The uploads of a plain run, read by a pool process as a worker reads the store."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = dict(files)

    def read(self, sha256: str) -> bytes:
        return self.files[sha256]


class PoolClient:
    """`submit` as the chunk loop calls it, on a process pool: a future among the arguments
    stands for its result, as on Dask."""

    def __init__(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        self.pool = pool

    def submit(
        self, fn: Callable[..., Any], *args: Any, pure: bool = True, key: str | None = None
    ) -> concurrent.futures.Future[Any]:
        ready = tuple(a.result() if isinstance(a, concurrent.futures.Future) else a for a in args)
        return self.pool.submit(fn, *ready)


class PlainContext(ChunkLoop):
    """What a driver uses of a job's context, doing nothing but the work: no store, no Dask."""

    def __init__(
        self, pool: concurrent.futures.ProcessPoolExecutor, files: Mapping[str, bytes]
    ) -> None:
        self.client = PoolClient(pool)
        self.files = Files(files)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield

    def progress(self, done: float, total: float) -> None:
        pass

    def metric(self, name: str, step: float, value: float) -> None:
        pass

    def log(self, level: str, message: str) -> None:
        pass

    def checkpoint(self, key: str, value: Any) -> None:
        pass

    def checkpoints(self) -> dict[str, Any]:
        return {}

    def check_cancelled(self) -> None:
        pass

    def read_upload(self, sha256: str) -> bytes:
        return self.files.read(sha256)

    def upload_source(self) -> Files:
        return self.files

    def as_completed(
        self, futures: Iterable[concurrent.futures.Future[Any]]
    ) -> Iterator[tuple[concurrent.futures.Future[Any], Any]]:
        for fut in concurrent.futures.as_completed(list(futures)):
            yield fut, fut.result()


def uploads(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Parameters with each upload field's bytes replaced by its reference, and the bytes by
    their digest."""
    out: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for name, value in params.items():
        if isinstance(value, bytes):
            sha = hashlib.sha256(value).hexdigest()
            files[sha] = value
            out[name] = {"name": f"{name}.csv", "size": len(value), "sha256": sha}
        else:
            out[name] = value
    return out, files


def plain(
    kind: str, params: Mapping[str, Any], pool: concurrent.futures.ProcessPoolExecutor
) -> tuple[float, dict[str, Any]]:
    """Seconds and result of the kind's driver on the pool."""
    started = time.perf_counter()
    refs, files = uploads(params)
    k = registry.get(kind)
    parsed, _ = registry.validated(kind, refs)
    result = k.run(PlainContext(pool, files), parsed)
    return time.perf_counter() - started, result


def through_runlab(
    engine: Engine, artifacts: ArtifactStore, kind: str, params: Mapping[str, Any]
) -> tuple[float, dict[str, Any]]:
    """Seconds from the job's created to its finished time in the store, and its result."""
    refs, files = uploads(params)
    for data in files.values():
        artifacts.put_upload(data)
    public_id = intake.submit(engine, kind, refs)
    while True:
        job = queries.get_job(engine, public_id, log_lines=0, max_points=1)
        if job.status.terminal:
            break
        time.sleep(POLL)
    if job.status is not Status.SUCCEEDED or job.result is None or job.finished_at is None:
        raise SystemExit(f"{kind}: the job ended {job.status}: {job.error}")
    return (job.finished_at - job.created_at).total_seconds(), dict(job.result)


@contextlib.contextmanager
def runner(url: str, artifacts: Path) -> Iterator[None]:
    """A `runlab runner` of one job at a time on its LocalCluster of one worker per core."""
    env = {
        **os.environ,
        "RUNLAB_DATABASE_URL": url,
        "RUNLAB_ARTIFACTS": str(artifacts),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlab.cli", "runner", "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Pair:
    """One alternated run: the plain pool's seconds and Runlab's."""

    plain: float
    runlab: float

    @property
    def ratio(self) -> float:
        return self.plain / self.runlab


def both(
    i: int,
    plain_side: Callable[[], tuple[float, Any]],
    runlab_side: Callable[[], tuple[float, Any]],
) -> tuple[tuple[float, Any], tuple[float, Any]]:
    """Run `i` of an alternated series: plain first on even runs, Runlab first on odd ones, so
    that whatever the first of a pair leaves behind (warm caches, a busy disk) falls on both."""
    if i % 2 == 0:
        first = plain_side()
        return first, runlab_side()
    second = runlab_side()
    return plain_side(), second


def spread(values: list[float], unit: str = " s", digits: int = 2) -> str:
    return (
        f"{statistics.median(values):.{digits}f}{unit} "
        f"(min {min(values):.{digits}f}, max {max(values):.{digits}f})"
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def pool(cores: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of one process per core, each warm before it takes a chunk.

    Its processes start with one BLAS and OpenMP thread each, as Dask's nanny starts a worker:
    two processes of two BLAS threads each on two cores would only get in each other's way.
    They keep glibc's own memory thresholds, as Runlab's workers do (compute/cluster.py).
    """
    environ = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    saved = {k: os.environ.get(k) for k in environ}
    os.environ.update(environ)
    try:
        out = concurrent.futures.ProcessPoolExecutor(
            cores, mp_context=multiprocessing.get_context("spawn"), initializer=warm
        )
        list(out.map(abs, range(cores)))  # start them now, not in the first timed run
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out
