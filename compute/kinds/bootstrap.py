"""Bootstrap confidence interval of a statistic of an uploaded CSV's column, in seeded chunks.

The rows are resampled with replacement, `resamples` times; each resample's statistic joins the
bootstrap distribution, whose quantiles give the interval: plainly (percentile), or moved by the
bias correction and the jackknife acceleration (BCa, as `scipy.stats.bootstrap` defines it).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import plotly.graph_objects as go
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from compute import datasets
from compute.context import JobContext
from compute.datasets import Upload
from compute.headline import Figure, Headline, Table
from compute.kernels.bootstrap import Drawn, draws, listed, prepared_upload
from compute.registry import register
from compute.seeds import Seed
from runlab import format as fmt
from runlab.errors import InvalidUpload, JobCancelled

if TYPE_CHECKING:
    import pandas as pd

Statistic = Literal["mean", "median", "std", "correlation"]
Method = Literal["percentile", "bca"]

MAX_RESAMPLES = 1_000_000
BUDGET = 5 * 10**10  # resamples × rows: 4 to 11 minutes of one core, so a typo cannot queue days
CHUNK_RESAMPLES = 20_000  # a chunk's values stay a checkpoint of well under 1 MB of JSON
CHUNK_INDICES = 50_000_000  # drawn row indices per Dask task: 0.25 to 0.65 s of one core
MIN_ROWS = 10  # fewer rows give a bootstrap distribution of a handful of distinct values
MAX_ABS = 1e100  # sums of squares of larger values over millions of rows would overflow
MAX_UNDEFINED = 0.01  # refused above this share of resamples with a constant column
HIST_BINS = 50
METRIC_SECONDS = 0.5  # the live interval is a quantile of every value so far: not every chunk


class BootstrapParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    data: Upload = Field(title="Data (CSV)", description="The CSV file whose rows are resampled.")
    statistic: Statistic = Field(
        "mean",
        title="Statistic",
        json_schema_extra={
            "labels": {
                "mean": "Mean",
                "median": "Median",
                "std": "Standard deviation",
                "correlation": "Correlation (Pearson)",
            }
        },
        description="What to estimate: the mean, the median, the sample standard deviation "
        "(n − 1) of a column, or Pearson's correlation of two columns.",
    )
    column: str = Field(
        min_length=1,
        max_length=255,
        json_schema_extra={"column_of": "data"},
        title="Column",
        description="The numeric column of the file.",
    )
    column_b: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        validate_default=True,
        json_schema_extra={"when": {"statistic": ["correlation"]}, "column_of": "data"},
        title="Second column",
        description="The second column, correlated with the first; only for the correlation.",
    )
    resamples: int = Field(
        10_000,
        ge=100,
        le=MAX_RESAMPLES,
        title="Resamples",
        description="How many resamples of the rows to draw; resamples × rows at most 5e10.",
    )
    confidence: float = Field(
        0.95,
        gt=0.5,
        le=0.999,
        allow_inf_nan=False,
        title="Confidence level",
        description="Confidence level of the two-sided interval.",
    )
    method: Method = Field(
        "bca",
        title="Interval method",
        json_schema_extra={
            "labels": {"percentile": "Percentile", "bca": "BCa (bias-corrected and accelerated)"}
        },
        description="percentile: the bootstrap quantiles; bca: the quantiles moved for bias "
        "and skewness (bias-corrected and accelerated).",
    )
    seed: Seed = None

    @field_validator("column_b")
    @classmethod
    def _column_b_applies(cls, v: str | None, info: ValidationInfo) -> str | None:
        statistic = info.data.get("statistic")
        if statistic == "correlation":
            if v is None:
                raise ValueError("is required for the correlation")
            if v == info.data.get("column"):
                raise ValueError("must differ from column")
        elif statistic is not None and v is not None:
            raise ValueError("applies only to the correlation")
        return v


# --- checks that need the table -----------------------------------------------------------------


def _constant_share(values: np.ndarray) -> float:
    """The chance that a resample of `values` holds one value only: Σ over distinct values of
    (count / n)^n."""
    n = len(values)
    _, counts = np.unique(values, return_counts=True)
    return float(np.exp(n * np.log(counts / n)).sum())


def check(params: BootstrapParams, table: pd.DataFrame) -> None:
    """What the model cannot see: the columns, the rows and the budget, with the field to blame.

    Run by the form before anything is stored, and again by the driver on the very same bytes.
    """
    p = params
    columns = [("column", p.column, datasets.column(table, p.column, "column"))]
    if p.statistic == "correlation" and p.column_b is not None:
        columns.append(("column_b", p.column_b, datasets.column(table, p.column_b, "column_b")))
    rows = len(columns[0][2])
    if rows < MIN_ROWS:
        raise InvalidUpload(
            f"the file has {rows} row(s); a bootstrap needs at least {MIN_ROWS}", "column"
        )
    if p.resamples * rows > BUDGET:
        raise InvalidUpload(
            f"resamples × rows must not exceed {BUDGET:.0e}: with {rows:,} rows, at most "
            f"{BUDGET // rows:,} resamples",
            "resamples",
        )
    for field, name, values in columns:
        if float(np.abs(values).max()) > MAX_ABS:
            raise InvalidUpload(
                f"column {name!r} holds values beyond ±{MAX_ABS:g}; rescale it first", field
            )
        if values.min() == values.max():
            raise InvalidUpload(
                f"column {name!r} is constant ({values[0]:g} in every row): its resamples "
                "have no spread to give an interval of",
                field,
            )
        if p.statistic == "correlation":
            share = _constant_share(values)
            if share > MAX_UNDEFINED:
                raise InvalidUpload(
                    f"column {name!r} has too few distinct values: about {share:.1%} of "
                    "resamples would hold one value only, where the correlation is undefined",
                    field,
                )


# --- the statistic, on the data and on its resamples -------------------------------------------


def estimate(statistic: str, x: np.ndarray, y: np.ndarray | None = None) -> float:
    """The statistic on the original data."""
    if statistic == "mean":
        return float(np.mean(x))
    if statistic == "median":
        return float(np.median(x))
    if statistic == "std":
        return float(np.std(x, ddof=1))
    assert y is not None
    cx, cy = x - x.mean(), y - y.mean()
    r = float(cx @ cy) / math.sqrt(float(cx @ cx) * float(cy @ cy))
    return min(1.0, max(-1.0, r))


def jackknife(statistic: str, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """The statistic with each row left out in turn, row by row, in O(n) or O(n log n).

    Leave-one-out sums give the mean, the standard deviation and the correlation; the sorted
    array gives the median, which is one of three values whichever row goes. Data are centred
    first, so the sums lose no digits to a large mean.
    """
    n = len(x)
    m = n - 1
    if statistic == "median":
        order = np.argsort(x, kind="stable")
        s = x[order]
        by_rank = np.empty(n)
        if n % 2 == 0:
            h = n // 2
            by_rank[:h] = s[h]
            by_rank[h:] = s[h - 1]
        else:
            h = (n - 1) // 2
            by_rank[:h] = 0.5 * (s[h] + s[h + 1])
            by_rank[h] = 0.5 * (s[h - 1] + s[h + 1])
            by_rank[h + 1 :] = 0.5 * (s[h - 1] + s[h])
        out = np.empty(n)
        out[order] = by_rank
        return out
    mx = float(np.mean(x))
    cx = x - mx
    sx = float(cx.sum())
    if statistic == "mean":
        return mx + (sx - cx) / m
    sx_i = sx - cx
    vx = (float(cx @ cx) - cx * cx) - sx_i * sx_i / m
    if statistic == "std":
        return np.sqrt(np.maximum(vx, 0.0) / (m - 1))
    assert y is not None
    cy = y - float(np.mean(y))
    sy_i = float(cy.sum()) - cy
    vy = (float(cy @ cy) - cy * cy) - sy_i * sy_i / m
    cxy = (float(cx @ cy) - cx * cy) - sx_i * sy_i / m
    return np.clip(cxy / np.sqrt(vx * vy), -1.0, 1.0)


def plan(p: BootstrapParams, rows: int) -> list[int]:
    """Resamples per chunk, from the parameters and the row count only, never the cluster, so
    that the same file, parameters and seed give the same numbers on any number of workers."""
    per = max(1, min(CHUNK_RESAMPLES, CHUNK_INDICES // rows))
    chunks = math.ceil(p.resamples / per)
    base, extra = divmod(p.resamples, chunks)
    return [base + (1 if i < extra else 0) for i in range(chunks)]


# --- the interval -------------------------------------------------------------------------------


def bca_levels(
    values: np.ndarray, theta: float, jack: np.ndarray, alpha: float
) -> tuple[float, float] | None:
    """The quantile levels of the BCa interval, as `scipy.stats.bootstrap` computes them; None
    where they are undefined (every value on one side of the estimate)."""
    b = len(values)
    below = (np.count_nonzero(values < theta) + np.count_nonzero(values <= theta)) / (2 * b)
    if not 0.0 < below < 1.0:
        return None
    normal = NormalDist()
    z0 = normal.inv_cdf(below)
    jack = jack[np.isfinite(jack)]
    d = float(np.mean(jack)) - jack
    ss = float(d @ d)
    # Σd³ / (6 (Σd²)^1.5); a jackknife without spread (a median amid ties) has no skewness.
    a = float(np.sum(d**3)) / (6.0 * ss**1.5) if ss > 0 else 0.0
    levels = []
    for z in (normal.inv_cdf(alpha), -normal.inv_cdf(alpha)):
        shifted = z0 + z
        denominator = 1.0 - a * shifted
        if denominator <= 0:  # the correction has folded over: no interval to give
            return None
        levels.append(normal.cdf(z0 + shifted / denominator))
    return levels[0], levels[1]


def summarise(
    p: BootstrapParams,
    x: np.ndarray,
    y: np.ndarray | None,
    chunks: Mapping[int, list[float | None]],
    planned: int,
) -> dict[str, Any]:
    """The interval and its companions, from whichever chunks finished.

    Chunks join in index order, so the result does not depend on which finished first; after
    "stop and keep" fewer resamples give an honestly rougher interval and error.
    """
    kept = sorted(chunks)
    drawn = [v for i in kept for v in chunks[i]]
    values = np.array([v for v in drawn if v is not None], dtype=np.float64)
    if len(values) < 2:
        raise JobCancelled("fewer than 2 resamples finished: there is no interval to keep")
    theta = estimate(p.statistic, x, y)
    alpha = (1.0 - p.confidence) / 2.0
    levels: tuple[float, float] = (alpha, 1.0 - alpha)
    method = "percentile"
    if p.method == "bca":
        bca = bca_levels(values, theta, jackknife(p.statistic, x, y), alpha)
        if bca is not None:
            levels, method = bca, "bca"
    low, high = np.quantile(values, levels)
    counts, edges = np.histogram(values, bins=HIST_BINS)
    return {
        "estimate": theta,
        "ci_low": float(low),
        "ci_high": float(high),
        "standard_error": float(np.std(values, ddof=1)),
        "confidence": p.confidence,
        "method": method,
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "resamples": len(drawn),
        "undefined_resamples": len(drawn) - len(values),
        "rows": len(x),
        "data": [described(p.column, x)] + ([] if y is None else [described(p.column_b or "", y)]),
        "partial": len(kept) < planned,
        "seed": p.seed,
    }


def described(name: str, values: np.ndarray) -> dict[str, Any]:
    """A column as the interval saw it: its count, mean, standard deviation and range."""
    return {
        "column": name,
        "count": len(values),
        "mean": float(np.mean(values)),
        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def running_interval(ctx: JobContext, values: list[float], step: int, confidence: float) -> None:
    """The percentile interval of the values so far, for the live chart."""
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(values), [alpha, 1.0 - alpha])
    ctx.metric("ci_low", step, float(low))
    ctx.metric("ci_high", step, float(high))


def resumable(
    saved: Mapping[str, Any], sizes: list[int], rows: int, p: BootstrapParams
) -> dict[int, list[float | None]]:
    """Chunk index → values, from checkpoints that match this job's plan exactly."""
    out: dict[int, list[float | None]] = {}
    for i, n in enumerate(sizes):
        c = saved.get(f"chunk-{i}")
        if not (
            isinstance(c, dict)
            and c.get("n") == n
            and c.get("rows") == rows
            and c.get("of") == len(sizes)
            and c.get("seed") == p.seed
            and c.get("statistic") == p.statistic
            and isinstance(c.get("values"), list)
            and len(c["values"]) == n
        ):
            continue
        values = c["values"]
        if all(
            v is None
            or (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v))
            for v in values
        ):
            out[i] = [None if v is None else float(v) for v in values]
    return out


def figure(result: Mapping[str, Any], series: Mapping[str, tuple[list[float], list[float]]]) -> Any:
    fig = go.Figure()
    hist = result.get("histogram")
    if isinstance(hist, dict) and hist.get("counts"):
        edges, counts = hist["edges"], hist["counts"]
        fig.add_trace(
            go.Bar(
                x=[(a + b) / 2 for a, b in itertools.pairwise(edges)],
                y=counts,
                width=[b - a for a, b in itertools.pairwise(edges)],
                marker_line_width=0,
                name="resamples",
            )
        )
        level = result.get("confidence")
        for key, dash, where in (
            ("ci_low", "dash", "top left"),
            ("estimate", "solid", "top"),
            ("ci_high", "dash", "top right"),
        ):
            if isinstance(result.get(key), int | float):
                label = key if key == "estimate" or level is None else f"{key} ({level:.1%})"
                fig.add_vline(
                    x=result[key], line_dash=dash, annotation_text=label, annotation_position=where
                )
        fig.update_layout(
            xaxis_title="statistic of a resample", yaxis_title="resamples", bargap=0, height=360
        )
        return fig
    steps, low = series.get("ci_low", ([], []))
    _, high = series.get("ci_high", ([], []))
    if steps and len(low) == len(steps) == len(high):
        fig.add_trace(go.Scatter(x=steps, y=high, mode="lines+markers", name="ci_high"))
        fig.add_trace(go.Scatter(x=steps, y=low, mode="lines+markers", name="ci_low"))
    fig.update_layout(xaxis_title="resamples", yaxis_title="percentile interval so far", height=360)
    return fig


def example() -> dict[str, Any]:
    """A median of 300 log-normal values: an upload's bytes, as the contract tests submit."""
    values = np.random.default_rng(11).lognormal(0.0, 1.0, 300)
    data = ("x\n" + "".join(f"{v:.12g}\n" for v in values)).encode()
    return {"data": data, "statistic": "median", "column": "x", "resamples": 60_000, "seed": 3}


def headline_of(result: Mapping[str, Any], params: Mapping[str, Any]) -> Headline:
    """The statistic with its interval, the method that made it, and the data behind it."""
    se = float(result.get("standard_error") or 0.0)
    d = fmt.decimals_for(se) if se > 0 else 4
    method = {"bca": "BCa", "percentile": "percentile"}.get(result["method"], result["method"])
    figures = [
        Figure("Estimate", f"{float(result['estimate']):,.{d}f}"),
        Figure(
            f"{float(result['confidence']):.0%} interval ({method})",
            f"{float(result['ci_low']):,.{d}f} – {float(result['ci_high']):,.{d}f}",
        ),
        Figure("Standard error", fmt.significant(se, 2) if se > 0 else "0"),
        Figure("Rows", f"{int(result['rows']):,}"),
        Figure("Resamples", f"{int(result['resamples']):,}"),
    ]
    tables = []
    data = [d for d in result.get("data") or [] if isinstance(d, dict)]
    if data:
        tables.append(
            Table(
                "The data",
                ["Column", "Rows", "Mean", "Standard deviation", "Min", "Max"],
                [
                    [
                        str(d["column"]),
                        f"{int(d['count']):,}",
                        *(fmt.significant(float(d[k]), 6) for k in ("mean", "sd", "min", "max")),
                    ]
                    for d in data
                ],
            )
        )
    notes = []
    if result.get("undefined_resamples"):
        notes.append(
            f"{int(result['undefined_resamples']):,} resamples had no defined value and were "
            "left out."
        )
    return Headline(figures, tables, notes)


@register(
    "bootstrap",
    summarise=headline_of,
    headline=("estimate", "ci_low", "ci_high"),
    title="Bootstrap interval",
    description="Bootstrap confidence interval (percentile or BCa) of a statistic of a CSV column.",
    params=BootstrapParams,
    stages=["load", "validate", "resample", "summarise"],
    weights=[1, 1, 96, 2],
    figure=figure,
    stoppable=True,
    check=check,
    example=example,
)
def run(ctx: JobContext, p: BootstrapParams) -> dict[str, Any]:
    assert p.seed is not None  # filled by the model
    with ctx.stage("load"):
        table = datasets.read_csv(ctx.read_upload(p.data.sha256))
        ctx.log("info", f"{p.data.name}: {table.shape[0]:,} rows, {table.shape[1]} columns")
    with ctx.stage("validate"):
        check(p, table)
        x = datasets.column(table, p.column, "column")
        column_b = p.column_b if p.statistic == "correlation" else None
        y = None if column_b is None else datasets.column(table, column_b, "column_b")
        del table
        rows = len(x)
        sizes = plan(p, rows)
        ctx.log("info", f"{p.resamples:,} resamples in {len(sizes)} chunks, seed {p.seed}")
    seed = p.seed
    # The live interval only; the result takes the chunks in index order, at the end.
    so_far: list[float] = []
    count = shown = 0
    last = -math.inf

    def add(i: int, drawn: Drawn) -> None:
        nonlocal count
        so_far.extend(v for v in listed(drawn) if v is not None)
        count += sizes[i]

    def show() -> None:
        nonlocal last, shown
        if len(so_far) > 1 and time.monotonic() - last >= METRIC_SECONDS:
            last, shown = time.monotonic(), count
            running_interval(ctx, so_far, count, p.confidence)

    with ctx.stage("resample"):
        # A chunk comes back as an array from a worker, or as the list a checkpoint kept.
        kernel: Callable[..., Drawn] = draws
        done = ctx.map_chunks(
            kernel,
            [(p.statistic, n) for n in sizes],
            seed=seed,
            load=(
                prepared_upload,
                (ctx.upload_source(), p.data.sha256, p.statistic, p.column, column_b),
            ),
            resume=lambda saved: resumable(saved, sizes, rows, p),
            save=lambda i, drawn: {
                "n": sizes[i],
                "rows": rows,
                "of": len(sizes),
                "seed": seed,
                "statistic": p.statistic,
                "values": listed(drawn),
            },
            add=add,
            show=show,
        )
        if count != shown and len(so_far) > 1:  # the chart ends where the loop did
            running_interval(ctx, so_far, count, p.confidence)
    with ctx.stage("summarise"):
        result = summarise(p, x, y, {i: listed(c) for i, c in done.items()}, len(sizes))
        if result["undefined_resamples"]:
            ctx.log(
                "warning",
                f"{result['undefined_resamples']:,} resample(s) held a constant column, where "
                "the correlation is undefined; the interval leaves them out",
            )
        if p.method == "bca" and result["method"] != "bca":
            ctx.log(
                "warning",
                "the BCa correction is undefined here (the resamples all fall on one side "
                "of the estimate); the interval is the percentile one",
            )
        ctx.log(
            "info",
            f"{p.statistic} {result['estimate']:.6g}, {p.confidence:.1%} interval "
            f"[{result['ci_low']:.6g}, {result['ci_high']:.6g}]",
        )
    return result
