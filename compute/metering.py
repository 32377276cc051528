"""The worker's half of a job's cost: the wrapper a task runs under, and the event it sends.

Every Dask worker unpickles `Metered` with each task, importing this module: so it imports only
the standard library and Dask, never the job store or SQLAlchemy. The runner's half, which sums
the events into a job's cost, is compute/cost.py.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

from dask.base import tokenize
from dask.utils import funcname
from distributed import get_worker

TOPIC = "runlab-cost"
_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"

StageKey = tuple[int, str]  # a stage's place in the job's list, and its name
HOST = socket.gethostname()  # where the task ran, as the job's cost names it


def _reset_peak_rss() -> bool:
    """Start a fresh high-water mark of this process's resident memory (Linux: VmHWM).

    Writing "5" to clear_refs resets the mark to the current RSS in constant time; the kernel
    then tracks every page fault, so no spike escapes, however short. False elsewhere. Plain
    `os` calls: the pair costs some 30 µs, next to tasks of 0.1 s and more.
    """
    try:
        fd = os.open(_CLEAR_REFS, os.O_WRONLY)
        try:
            os.write(fd, b"5")
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


def _peak_rss() -> int | None:
    """The process's resident-memory high-water mark since the last reset, in bytes."""
    try:
        fd = os.open(_STATUS, os.O_RDONLY)
        try:
            status = os.read(fd, 16384)
        finally:
            os.close(fd)
        at = status.index(b"VmHWM:") + len(b"VmHWM:")
        return int(status[at : status.index(b"kB", at)]) * 1024  # the kernel counts in kB
    except (OSError, ValueError):
        return None


def _send(message: dict[str, Any]) -> None:
    try:
        worker = get_worker()
    except ValueError:  # not on a Dask worker (a test calling the function directly)
        return
    worker.log_event(TOPIC, message)


class Metered:
    """A task function run under a meter; its result is the function's own.

    Measured: the CPU time of the worker thread that ran the call (`time.thread_time`, so
    the worker's other threads and other tasks are not counted), its wall time, and the worker
    process's peak RSS during the call. The peak is the process's, not the task's alone: it
    includes the worker's own footprint, and on a worker with several threads, whatever the
    others held meanwhile. Runlab's LocalCluster runs one thread per worker process.
    """

    def __init__(self, fn: Callable[..., Any], token: str, stage: StageKey | None) -> None:
        self.fn = fn
        self.token = token
        self.stage = stage
        # Dask names a task's key after its function: keep the kernel's name on the dashboard.
        self.__name__ = funcname(fn)

    def __dask_tokenize__(self) -> Any:
        return (Metered.__name__, tokenize(self.fn), self.token, self.stage)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reset = _reset_peak_rss()
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            idx, name = self.stage if self.stage is not None else (-1, "")
            _send(
                {
                    "token": self.token,
                    "idx": idx,
                    "stage": name,
                    "cpu": cpu,
                    "wall": wall,
                    "peak": _peak_rss() if reset else None,
                    "host": HOST,
                }
            )
