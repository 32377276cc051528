"""`test_costly`: a kind whose tasks do known work, so that the cost a runner stores can be
checked against it. Loaded into runner subprocesses via RUNLAB_KIND_MODULES."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from compute.context import JobContext
from compute.registry import register
from runlab.errors import Retryable

KIND = "test_costly"
STAGES = ["burn", "allocate", "nap"]


class Costly(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    tasks: int = Field(4, ge=1, le=16, description="Tasks in each stage.")
    burn_seconds: float = Field(0.3, ge=0, le=5, description="CPU time each task burns.")
    allocate_mb: int = Field(0, ge=0, le=1024, description="MiB each 'allocate' task holds.")
    nap_seconds: float = Field(0.2, ge=0, le=5, description="Wall time each 'nap' task sleeps.")
    retry_first: bool = Field(False, description="Attempt 1 runs one task, then is retried.")
    fail_after_burn: bool = Field(False, description="Fail once the 'burn' stage is done.")


def burn(seconds: float) -> float:
    """Spin until this thread has used `seconds` of CPU: known work, whatever the load."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass
    return seconds


def hold(mb: int, seconds: float) -> int:
    """Touch every page of `mb` MiB and keep it while burning `seconds` of CPU."""
    block = np.ones(mb * 2**20 // 8)
    burn(seconds)
    return int(block.nbytes)


def nap(seconds: float) -> float:
    """Wall time without CPU: what `task_seconds` counts and `cpu_seconds` does not."""
    time.sleep(seconds)
    return seconds


def _run(ctx: JobContext, fn: Any, *args: Any, n: int) -> None:
    futures = [ctx.client.submit(fn, *args, pure=False) for _ in range(n)]
    for done, _ in enumerate(ctx.as_completed(futures), start=1):
        ctx.progress(done, n)


@register(
    KIND,
    title="Costly",
    description="Tasks of known CPU time, memory and sleep.",
    params=Costly,
    stages=STAGES,
)
def costly(ctx: JobContext, p: Costly) -> dict[str, Any]:
    if p.retry_first and ctx.attempt == 1:
        with ctx.stage("burn"):
            _run(ctx, burn, p.burn_seconds, n=1)
            raise Retryable("the first attempt always retries")
    with ctx.stage("burn"):
        _run(ctx, burn, p.burn_seconds, n=p.tasks)
    if p.fail_after_burn:
        raise ValueError("failed after the burn stage")
    with ctx.stage("allocate"):
        _run(ctx, hold, p.allocate_mb, p.burn_seconds / 3, n=p.tasks)
    with ctx.stage("nap"):
        _run(ctx, nap, p.nap_seconds, n=p.tasks)
    return {"tasks": 3 * p.tasks}
