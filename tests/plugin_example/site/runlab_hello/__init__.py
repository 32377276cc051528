"""An example kind from another package: found through the `runlab.kinds` entry point group.

It needs no page code: its form, CLI parameters and messages come from its model.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from compute.context import JobContext
from compute.registry import register


class HelloParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    n: int = Field(10, ge=1, le=1_000_000, description="Add up the whole numbers 1 to n.")
    greeting: str = Field("hello", min_length=1, max_length=40, description="Logged first.")


def total(n: int) -> int:
    return n * (n + 1) // 2


@register(
    "hello_sum",
    title="Hello sum (plugin example)",
    description="Adds up 1 to n on Dask: a kind installed from another package.",
    params=HelloParams,
    stages=["add"],
)
def run(ctx: JobContext, p: HelloParams) -> dict[str, Any]:
    ctx.log("info", p.greeting)
    with ctx.stage("add"):
        value = ctx.client.submit(total, p.n, pure=False).result()
    return {"total": value}
