"""Kinds that misbehave on purpose, loaded into runner subprocesses via RUNLAB_KIND_MODULES."""

from __future__ import annotations

from typing import Any

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
