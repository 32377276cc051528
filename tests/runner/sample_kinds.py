"""Kinds that misbehave on purpose, loaded into runner subprocesses via RUNLAB_KIND_MODULES."""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from typing import Any

from distributed import get_worker
from pydantic import BaseModel, ConfigDict, Field

from compute.context import JobContext
from compute.registry import register
from runlab.errors import Retryable


class Nothing(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    message: str = Field("boom", max_length=200)


@register(
    "test_raises", title="Raises", description="Always fails.", params=Nothing, stages=["only"]
)
def raises(ctx: JobContext, p: Nothing) -> dict[str, Any]:
    with ctx.stage("only"):
        ctx.log("info", "about to fail")
        raise ValueError(p.message)


@register("test_nan", title="NaN", description="Returns NaN.", params=Nothing, stages=[])
def nan(ctx: JobContext, p: Nothing) -> dict[str, Any]:
    return {"value": float("nan")}


@register(
    "test_unserialisable",
    title="Object",
    description="Returns an object.",
    params=Nothing,
    stages=[],
)
def unserialisable(ctx: JobContext, p: Nothing) -> dict[str, Any]:
    return {"value": object()}


@register(
    "test_flaky",
    title="Flaky",
    description="Fails with a retryable error until its last attempt.",
    params=Nothing,
    stages=["only"],
)
def flaky(ctx: JobContext, p: Nothing) -> dict[str, Any]:
    with ctx.stage("only"):
        if p.message == "always" or ctx.attempt < 3:
            raise Retryable(f"{p.message} on attempt {ctx.attempt}")
        return {"attempt": ctx.attempt}


class Wait(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    seconds: float = Field(60.0, gt=0, le=3600)
    marker: str = Field("", max_length=500)


def sleep_for(seconds: float) -> float:
    """A task that holds its worker without using a core, as a long chunk does."""
    time.sleep(seconds)
    return seconds


@register(
    "test_waits",
    title="Waits",
    description="One Dask task that sleeps.",
    params=Wait,
    stages=["wait"],
)
def waits(ctx: JobContext, p: Wait) -> dict[str, Any]:
    with ctx.stage("wait"):
        for _ in ctx.as_completed([ctx.client.submit(sleep_for, p.seconds, pure=False)]):
            pass
    return {"seconds": p.seconds}


def close_worker_once(marker: str) -> int:
    """Close this worker and its nanny the first time (the nanny gives up, as one whose
    restart failed does); finish on any later run."""
    if os.path.exists(marker):
        return 1
    Path(marker).touch()
    worker = get_worker()
    worker.loop.add_callback(worker.close, nanny=True, executor_wait=False)
    time.sleep(60)  # the worker goes first
    return 0


@register(
    "test_loses_worker",
    title="Loses its worker",
    description="Its one task closes its worker for good, once.",
    params=Wait,
    stages=["work"],
)
def loses_worker(ctx: JobContext, p: Wait) -> dict[str, Any]:
    with ctx.stage("work"):
        for _, value in ctx.as_completed([ctx.client.submit(close_worker_once, p.marker)]):
            return {"value": value}
    return {}


@register(
    "test_stops",
    title="Stops",
    description="A short task and a long one; stop and keep ends it with the short one's result.",
    params=Wait,
    stages=["wait"],
    stoppable=True,
)
def stops(ctx: JobContext, p: Wait) -> dict[str, Any]:
    finished = []
    with ctx.stage("wait"):
        futures = [ctx.client.submit(sleep_for, s, pure=False) for s in (0.1, p.seconds)]
        for k, (_, seconds) in enumerate(ctx.as_completed(futures), start=1):
            finished.append(seconds)
            ctx.progress(k, len(futures))
    return {"finished": finished, "partial": len(finished) < len(futures)}


class Helper(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    module: str = Field("runner_only_helper", max_length=100)


@register(
    "test_runner_only_code",
    title="Runner-only code",
    description="Sends a task whose function lives in a module only the runner has.",
    params=Helper,
    stages=["only"],
)
def runner_only_code(ctx: JobContext, p: Helper) -> dict[str, Any]:
    with ctx.stage("only"):
        kernel = importlib.import_module(p.module).kernel
        for _, value in ctx.as_completed([ctx.client.submit(kernel, 1, pure=False)]):
            return {"value": value}
    return {}


class Tasks(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    tasks: int = Field(8, ge=1, le=100)


def worker_address(i: int) -> str:
    """The address of the Dask worker that runs this task."""
    from distributed import get_worker

    time.sleep(0.05)
    return str(get_worker().address)


@register(
    "test_where",
    title="Where",
    description="Tasks that say which Dask worker ran them.",
    params=Tasks,
    stages=["run"],
)
def where(ctx: JobContext, p: Tasks) -> dict[str, Any]:
    with ctx.stage("run"):
        # Half through `submit`, half through `map`: both must carry the queue's resources.
        futures = [ctx.client.submit(worker_address, i, pure=False) for i in range(p.tasks)]
        futures += ctx.client.map(worker_address, range(p.tasks, 2 * p.tasks), pure=False)
        return {"workers": [address for _, address in ctx.as_completed(futures)]}


class Step(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    value: float = Field(1.0, ge=-1e6, le=1e6)
    seconds: float = Field(0.0, ge=0, le=60)
    fail: bool = False


@register(
    "test_step",
    title="Step",
    description="A pipeline step: holds a Dask worker for `seconds`, then gives back its value "
    "plus one, or fails.",
    params=Step,
    stages=["work"],
    headline=("value",),
)
def step(ctx: JobContext, p: Step) -> dict[str, Any]:
    with ctx.stage("work"):
        if p.seconds:
            for _ in ctx.as_completed([ctx.client.submit(sleep_for, p.seconds, pure=False)]):
                pass
        if p.fail:
            raise ValueError("made to fail")
    return {"value": p.value + 1}
