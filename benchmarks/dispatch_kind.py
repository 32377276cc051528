"""`bench_noop`: a kind that does no work, so that a job's cost is Runlab's own dispatch.

Runner subprocesses load it with RUNLAB_KIND_MODULES=benchmarks.dispatch_kind and PYTHONPATH
set to the repository's root. Its driver never touches Dask.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from compute.context import JobContext
from compute.registry import register

KIND = "bench_noop"


class NoParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


@register(
    KIND,
    title="No-op",
    description="Does nothing, at once: measures the runner's own cost per job.",
    params=NoParams,
    stages=["only"],
)
def noop(ctx: JobContext, p: NoParams) -> dict[str, Any]:
    with ctx.stage("only"):
        return {"ok": 1}
