"""Real runner subprocesses, each with its own Dask LocalCluster, against a fresh store."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from jobstore import queries
from jobstore.views import RunnerView
from tests.polling import wait_for
from tests.runner import sample_kinds  # noqa: F401 - the test process submits these kinds

ROOT = Path(__file__).resolve().parents[2]


class RunnerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """Whatever is left of the process group, Dask workers included."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def registered(self, engine: Engine, timeout: float = 60) -> RunnerView:
        """This runner's row, once it has registered in the store."""

        def row() -> RunnerView | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"runner exited early:\n{self.log()}")
            runners = queries.runners(engine, alive_within=60)
            return next((r for r in runners if r.pid == self.proc.pid), None)

        return wait_for(row, timeout=timeout, what="the runner to register")


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """The artifact store the runners of one test share."""
    return tmp_path / "artifacts"


def launch(
    db_url: str, artifacts: Path, log_path: Path, *args: str, workers: int = 2, **env: str
) -> RunnerProcess:
    """Start `runlab runner` in a session of its own, and return at once."""
    full_env = {
        **os.environ,
        "RUNLAB_DATABASE_URL": db_url,
        "RUNLAB_KIND_MODULES": "tests.runner.sample_kinds",
        "RUNLAB_ARTIFACTS": str(artifacts),
        "RUNLAB_HEARTBEAT_SECONDS": "0.5",
        "RUNLAB_LEASE_SECONDS": "5",
        "RUNLAB_RETRY_BACKOFF_SECONDS": "0.5",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runlab.cli", "runner", "--workers", str(workers), *args],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return RunnerProcess(proc, log_path)


@pytest.fixture
def start_runner(
    db_url: str, engine: Engine, tmp_path: Path, artifacts: Path
) -> Iterator[Callable[..., RunnerProcess]]:
    started: list[RunnerProcess] = []

    def start(*args: str, workers: int = 2, wait: bool = True, **env: str) -> RunnerProcess:
        log_path = tmp_path / f"runner-{len(started)}.log"
        runner = launch(db_url, artifacts, log_path, *args, workers=workers, **env)
        started.append(runner)
        if wait:
            runner.registered(engine)
        return runner

    yield start
    for r in started:
        r.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaskCluster:
    """A real `dask scheduler` and `dask worker` processes, as a team would run them."""

    def __init__(self, tmp_path: Path, workers: int) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.workers = workers
        self.procs: list[subprocess.Popen[bytes]] = []
        self.scheduler: subprocess.Popen[bytes] | None = None

    def _spawn(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.tmp_path / f"{name}-{len(self.procs)}.log").open("wb") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("dask")), *args],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
            "--no-dashboard",
        )  # fmt: skip

    def start_workers(
        self, count: int | None = None, *extra: str, **env: str
    ) -> list[subprocess.Popen[bytes]]:
        """`count` more workers (the cluster's size by default), with `extra` arguments (such as
        `--resources GPU=1`) and `env` added to theirs."""
        args = ("worker", self.address, "--nthreads", "1", "--no-dashboard", *extra)
        return [
            self._spawn("worker", *args, "--death-timeout", "120", **env)
            for _ in range(self.workers if count is None else count)
        ]

    def wait_ready(self) -> None:
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(self.workers, timeout=60)

    def kill_scheduler(self) -> None:
        assert self.scheduler is not None
        os.killpg(self.scheduler.pid, signal.SIGKILL)
        self.scheduler.wait()

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    cluster = DaskCluster(tmp_path, workers=2)
    cluster.start_scheduler()
    cluster.start_workers()
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.close()
