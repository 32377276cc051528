"""Estimate π by throwing points at the unit square, split into seeded chunks run on Dask."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from compute.context import JobContext
from compute.registry import register
from compute.seeds import Seed
from runlab.errors import JobCancelled

MAX_SAMPLES = 10**11
MAX_CHUNKS = 100_000
# About 0.6 s of one core at the reused-buffer kernel's ~166 M samples/s: inside Dask's sweet
# spot (0.2-2 s per task) and short enough for a progress bar that moves.
TARGET_CHUNK = 100_000_000
BLOCK = 65_536  # fits in L2 with both coordinates; blocks of 16k-256k all run within 5 %


class PiParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    samples: int = Field(
        # A few seconds on two cores: long enough to watch the estimate settle.
        1_000_000_000,
        ge=1,
        le=MAX_SAMPLES,
        description="How many random points to throw.",
    )
    chunks: int | None = Field(
        None,
        ge=1,
        le=MAX_CHUNKS,
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


def count_inside(n: int, seed: np.random.SeedSequence, block: int = BLOCK) -> int:
    """Points of `n` that fall inside the quarter circle, drawn from `seed`'s own stream.

    Reuses two buffers of `block` floats: allocating fresh arrays halves the speed.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    m = min(block, n)
    x = np.empty(m)
    y = np.empty(m)
    hit = np.empty(m, dtype=bool)
    inside = 0
    left = n
    while left > 0:
        k = min(m, left)
        xs, ys, hs = x[:k], y[:k], hit[:k]
        rng.random(out=xs)
        rng.random(out=ys)
        np.multiply(xs, xs, out=xs)
        np.multiply(ys, ys, out=ys)
        np.add(xs, ys, out=xs)
        np.less_equal(xs, 1.0, out=hs)
        inside += int(np.count_nonzero(hs))
        left -= k
    return inside


def estimate(inside: int, samples: int) -> tuple[float, float]:
    p = inside / samples
    return 4.0 * p, 4.0 * math.sqrt(p * (1.0 - p) / samples)


def figure(result: Mapping[str, Any], series: Mapping[str, tuple[list[float], list[float]]]) -> Any:
    steps, values = series.get("estimate", ([], []))
    fig = go.Figure()
    if steps:
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name="estimate"))
    fig.add_hline(y=math.pi, line_dash="dot", annotation_text="π")
    if "estimate" in result:
        est, se = result["estimate"], result["standard_error"]
        fig.add_hrect(y0=est - 1.96 * se, y1=est + 1.96 * se, opacity=0.15, line_width=0)
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


@register(
    "monte_carlo_pi",
    title="Monte Carlo π",
    description="Estimate π from random points in the unit square, in parallel on Dask.",
    params=PiParams,
    stages=["plan", "sample", "reduce"],
    weights=[1, 98, 1],
    figure=figure,
    stoppable=True,
)
def run(ctx: JobContext, p: PiParams) -> dict[str, Any]:
    assert p.chunks is not None and p.seed is not None  # filled by the model
    with ctx.stage("plan"):
        sizes = chunk_sizes(p.samples, p.chunks)
        seeds = np.random.SeedSequence(p.seed).spawn(p.chunks)
        ctx.log("info", f"{p.samples:,} samples in {p.chunks} chunks, seed {p.seed}")
        resumed = resumable(ctx.checkpoints(), sizes, p.seed)
        if resumed:
            ctx.log("info", f"resuming: {len(resumed)} of {p.chunks} chunks already done")
    # Each chunk's count depends only on its own seed, so the total does not depend on which
    # attempt counted which chunk, nor in what order.
    inside = sum(resumed.values())
    done = sum(sizes[i] for i in resumed)
    with ctx.stage("sample"):
        if resumed:
            ctx.progress(len(resumed), p.chunks)
            ctx.metric("estimate", done, 4.0 * inside / done)
        futures = {
            ctx.client.submit(count_inside, sizes[i], seeds[i], pure=False): i
            for i in range(p.chunks)
            if i not in resumed
        }
        for k, (fut, hits) in enumerate(ctx.as_completed(futures), start=len(resumed) + 1):
            i = futures[fut]
            saved = {"n": sizes[i], "inside": hits, "seed": p.seed, "of": p.chunks}
            ctx.checkpoint(f"chunk-{i}", saved)
            inside += hits
            done += sizes[i]
            ctx.progress(k, p.chunks)
            ctx.metric("estimate", done, 4.0 * inside / done)
    with ctx.stage("reduce"):
        # After "stop and keep", over the chunks that finished: fewer samples, a wider error.
        if done == 0:
            raise JobCancelled("stopped before any chunk finished: there is nothing to keep")
        est, se = estimate(inside, done)
        partial = done < p.samples
        if partial:
            ctx.log("info", f"stopped early: kept {done:,} of {p.samples:,} samples")
        ctx.log("info", f"π ≈ {est:.8f} ± {se:.2g}")
    return {
        "estimate": est,
        "standard_error": se,
        "inside": inside,
        "samples": done,
        "partial": partial,
        "seed": p.seed,
    }
