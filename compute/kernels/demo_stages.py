"""The demo pipeline's kernel: a stand-in for a piece of real work."""

from __future__ import annotations

import time


def work(seconds: float) -> float:
    """Stand-in for a piece of real work: occupies a worker for `seconds`."""
    start = time.perf_counter()
    time.sleep(seconds)
    return time.perf_counter() - start
