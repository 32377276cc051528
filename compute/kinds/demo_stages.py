"""A pipeline of timed stages: shows stage-by-stage progress without heavy compute."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from pydantic import BaseModel, ConfigDict, Field

from compute.context import JobContext
from compute.kernels.demo_stages import work
from compute.registry import register

TICK = 0.5  # seconds per Dask task: short enough to cancel promptly between tasks


class DemoParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    stages: int = Field(
        3, ge=1, le=20, title="Stages", description="How many stages the pipeline has."
    )
    seconds_per_stage: float = Field(
        2.0,
        ge=0,
        le=600,
        allow_inf_nan=False,
        title="Seconds per stage",
        description="How long each stage works.",
    )


def stage_names(p: DemoParams) -> list[str]:
    return [f"stage {i + 1}" for i in range(p.stages)]


def figure(result: Mapping[str, Any], series: Mapping[str, tuple[list[float], list[float]]]) -> Any:
    # Timings live on the job record (the `stage_seconds` series), not in the result, so that
    # two runs' results compare equal.
    steps, seconds = series.get("stage_seconds", ([], []))
    names = list(result.get("stages", []))
    labels = [names[int(i) - 1] if 0 < int(i) <= len(names) else f"stage {int(i)}" for i in steps]
    fig = go.Figure(go.Bar(x=labels, y=seconds, name="seconds"))
    fig.update_layout(xaxis_title="stage", yaxis_title="seconds", height=360)
    return fig


@register(
    "demo_stages",
    title="Demo pipeline",
    description="A pipeline of timed stages, each run as Dask tasks, to see live progress.",
    params=DemoParams,
    stages=stage_names,
    figure=figure,
    example={"stages": 3, "seconds_per_stage": 0.1},
)
def run(ctx: JobContext, p: DemoParams) -> dict[str, Any]:
    out: list[str] = []
    for name in stage_names(p):
        started = time.perf_counter()
        with ctx.stage(name):
            ticks = max(1, math.ceil(p.seconds_per_stage / TICK))
            # One task at a time, so the stage takes its length whatever the cluster's size.
            for i in range(ticks):
                fut = ctx.client.submit(work, p.seconds_per_stage / ticks, pure=False)
                for _ in ctx.as_completed([fut]):
                    pass
                ctx.progress(i + 1, ticks)
        ctx.metric("stage_seconds", len(out) + 1, time.perf_counter() - started)
        out.append(name)
    return {"stages": out}
