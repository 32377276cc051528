"""Runlab's commands in processes of their own, for the tests and benchmarks that need one: a
lock held by another process, a server on a port, a runner to signal."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
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
