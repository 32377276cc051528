"""Runlab's commands in processes of their own, for the tests and benchmarks that need one: a
lock held by another process, a server on a port, a runner to signal."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNLAB = (sys.executable, "-m", "runlab.cli")  # `runlab` from this checkout


def run_cli(
    env: Mapping[str, str], *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """`runlab ARGS`, run to its end from the checkout, with its output captured as text."""
    return subprocess.run(
        [*RUNLAB, *args], cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=timeout
    )


def spawn(
    command: Sequence[str], log: Path, *, env: Mapping[str, str], cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """`command` started in a session of its own, its output written to `log`: `os.killpg` on
    its pid then signals it and what it starts in its process group, never the caller."""
    with log.open("wb") as out:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def served(url: str, folder: Path, port: int | None = None, **env: str) -> Iterator[str]:
    """`runlab web` over the store at `url`, run in `folder` on `port` (a free one by
    default): its base URL once it answers. On leaving, the server and its Streamlit child are
    stopped together."""
    port = port or free_port()
    web = spawn(
        [str(Path(sys.executable).with_name("runlab")), "web", "--port", str(port)],
        folder / "web.log",
        env={**os.environ, "RUNLAB_DATABASE_URL": url, **env},
        cwd=folder,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or web.poll() is not None:
                    raise RuntimeError(f"runlab web did not answer in 90 s; see {folder}") from None
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)


def answers(url: str) -> bool:
    """Whether an HTTP server answers `url` with 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
