"""Estimate π by throwing points at the unit square, split into seeded chunks run on Dask."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from compute import bands
from compute.context import JobContext
from compute.headline import Figure, Headline
from compute.kernels.monte_carlo_pi import count_inside
from compute.registry import register
from compute.seeds import Seed
from runlab import format as fmt

MAX_SAMPLES = 10**11
MAX_CHUNKS = 100_000
# About 0.6 s of one core at the reused-buffer kernel's ~166 M samples/s: inside Dask's sweet
# spot (0.2-2 s per task) and short enough for a progress bar that moves.
TARGET_CHUNK = 100_000_000


class PiParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    samples: int = Field(
        # A few seconds on two cores: long enough to watch the estimate settle.
        1_000_000_000,
        ge=1,
        le=MAX_SAMPLES,
        title="Samples",
        description="How many random points to throw.",
    )
    chunks: int | None = Field(
        None,
        ge=1,
        le=MAX_CHUNKS,
        title="Chunks",
        description="Dask tasks to split the samples into; empty picks ~0.6 s of work per task.",
    )
    seed: Seed = None

    @field_validator("chunks")
    @classmethod
    def _chunks_fit(cls, v: int | None, info: Any) -> int | None:
        samples = info.data.get("samples")
        if v is not None and isinstance(samples, int) and v > samples:
            raise ValueError(f"must not exceed samples ({samples})")
        return v

    @model_validator(mode="after")
    def _complete(self) -> PiParams:
        if self.chunks is None:
            self.chunks = min(MAX_CHUNKS, max(1, math.ceil(self.samples / TARGET_CHUNK)))
        return self


def chunk_sizes(samples: int, chunks: int) -> list[int]:
    base, extra = divmod(samples, chunks)
    return [base + (1 if i < extra else 0) for i in range(chunks)]


def estimate(inside: int, samples: int) -> tuple[float, float]:
    p = inside / samples
    return 4.0 * p, 4.0 * math.sqrt(p * (1.0 - p) / samples)


def figure(result: Mapping[str, Any], series: Mapping[str, tuple[list[float], list[float]]]) -> Any:
    steps, values = series.get("estimate", ([], []))
    low_steps, low = series.get("ci_low", ([], []))
    high_steps, high = series.get("ci_high", ([], []))
    fig = go.Figure()
    if len(steps) > 1 and list(low_steps) == list(high_steps) == list(steps):
        # The 95 % interval as it narrowed with the samples: a band around the estimate.
        fig.add_traces(bands.band(steps, low, high, name="95 % interval"))
    elif "estimate" in result:
        est, se = result["estimate"], result["standard_error"]
        fig.add_hrect(y0=est - 1.96 * se, y1=est + 1.96 * se, opacity=0.15, line_width=0)
    if steps:
        error = None
        if len(steps) == 1 and "standard_error" in result:
            error = {"type": "data", "array": [1.96 * result["standard_error"]], "visible": True}
        fig.add_trace(
            go.Scatter(x=steps, y=values, mode="lines+markers", name="estimate", error_y=error)
        )
    fig.add_hline(y=math.pi, line_dash="dot", annotation_text="π")
    fig.update_layout(xaxis_title="samples", yaxis_title="estimate of π", height=360)
    return fig


def resumable(saved: Mapping[str, Any], sizes: list[int], seed: int) -> dict[int, int]:
    """Chunk index → inside count, from checkpoints that match this job's plan exactly."""
    out: dict[int, int] = {}
    for i, n in enumerate(sizes):
        c = saved.get(f"chunk-{i}")
        if (
            isinstance(c, dict)
            and c.get("n") == n
            and c.get("seed") == seed
            and c.get("of") == len(sizes)
            and isinstance(c.get("inside"), int)
            and 0 <= c["inside"] <= n
        ):
            out[i] = c["inside"]
    return out


def headline_of(result: Mapping[str, Any], params: Mapping[str, Any]) -> Headline:
    """The estimate ± its standard error, and how far from π that is in standard errors."""
    est, se = float(result["estimate"]), float(result["standard_error"])
    figures = [Figure("Estimate of π", fmt.measured(est, se), "± one standard error")]
    if se > 0:
        figures.append(
            Figure(
                "Distance from π",
                f"{abs(est - math.pi) / se:.1f} standard errors",
                "Within about 2 for a sound estimate, 19 times in 20.",
            )
        )
    figures.append(Figure("Samples", f"{int(result['samples']):,}"))
    return Headline(figures)


@register(
    "monte_carlo_pi",
    summarise=headline_of,
    headline=("estimate", "standard_error"),
    title="Monte Carlo π",
    description="Estimate π from random points in the unit square, in parallel on Dask.",
    params=PiParams,
    stages=["plan", "sample", "reduce"],
    weights=[1, 98, 1],
    figure=figure,
    stoppable=True,
    example={"samples": 2_000_000, "chunks": 4, "seed": 7},
)
def run(ctx: JobContext, p: PiParams) -> dict[str, Any]:
    assert p.chunks is not None and p.seed is not None  # filled by the model
    seed = p.seed
    with ctx.stage("plan"):
        sizes = chunk_sizes(p.samples, p.chunks)
        ctx.log("info", f"{p.samples:,} samples in {p.chunks} chunks, seed {seed}")
    # Each chunk's count depends only on its own seed, so the total does not depend on which
    # attempt counted which chunk, nor in what order.
    inside = done = 0

    def add(i: int, hits: int) -> None:
        nonlocal inside, done
        inside += hits
        done += sizes[i]

    def show() -> None:
        # The 95 % interval beside the estimate, for the live chart's band as it narrows.
        est, se = estimate(inside, done)
        ctx.metric("estimate", done, est)
        ctx.metric("ci_low", done, est - 1.96 * se)
        ctx.metric("ci_high", done, est + 1.96 * se)

    with ctx.stage("sample"):
        ctx.map_chunks(
            count_inside,
            [(n,) for n in sizes],
            seed=seed,
            resume=lambda saved: resumable(saved, sizes, seed),
            save=lambda i, hits: {"n": sizes[i], "inside": hits, "seed": seed, "of": len(sizes)},
            add=add,
            show=show,
        )
    with ctx.stage("reduce"):
        # After "stop and keep", over the chunks that finished: fewer samples, a wider error.
        est, se = estimate(inside, done)
        ctx.log("info", f"π ≈ {est:.8f} ± {se:.2g}")
    return {
        "estimate": est,
        "standard_error": se,
        "inside": inside,
        "samples": done,
        "partial": done < p.samples,
        "seed": seed,
    }
