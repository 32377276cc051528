"""Minimise a standard test function from many random starts, a few starts per Dask task.

Each start is drawn uniformly in the objective's usual search box from its own seed, so every
start's outcome is a function of the parameters, the seed and its index only: the best point
does not depend on which worker ran which start, nor on the order they finished in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from compute.context import JobContext
from compute.headline import Figure, Headline, Table
from compute.kernels.optimize import BOXES, path_points, solve, solve_starts, value
from compute.registry import register
from compute.seeds import Seed, spawn
from runlab import format as fmt

Objective = Literal["rosenbrock", "rastrigin", "ackley", "himmelblau"]
Method = Literal["Nelder-Mead", "Powell", "L-BFGS-B", "differential_evolution"]

MAX_STARTS = 256
MAX_DIMENSION = 50
MAX_ITERATIONS = 1_000_000
# starts × max_iterations × dimension: tens of minutes of one core for the local methods, so a
# typo cannot queue a month of work.
BUDGET = 10**9
# Starts per Dask task, at most: a local method's start takes about 5-250 ms here, so 8 of them
# make a task of a tenth of a second or more; one differential evolution is already that long.
STARTS_PER_TASK: dict[str, int] = {
    "Nelder-Mead": 8,
    "Powell": 8,
    "L-BFGS-B": 8,
    "differential_evolution": 1,
}
MIN_TASKS = 8  # starts are grouped only when there are enough to keep this many tasks
MATCH = 1e-3  # how close a himmelblau start must end to a known minimum to be labelled with it

HIMMELBLAU_MINIMA: dict[str, tuple[float, float]] = {
    "(3, 2)": (3.0, 2.0),
    "(-2.805118, 3.131312)": (-2.805118, 3.131312),
    "(-3.779310, -3.283186)": (-3.779310, -3.283186),
    "(3.584428, -1.848126)": (3.584428, -1.848126),
}


class OptimizeParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    objective: Objective = Field(
        "rosenbrock",
        title="Objective function",
        json_schema_extra={
            "labels": {
                "rosenbrock": "Rosenbrock",
                "rastrigin": "Rastrigin",
                "ackley": "Ackley",
                "himmelblau": "Himmelblau",
            }
        },
        description="The test function to minimise.",
    )
    dimension: int = Field(
        2,
        ge=2,
        le=MAX_DIMENSION,
        title="Dimension n",
        description="Number of variables; himmelblau is defined in 2 only.",
    )
    method: Method = Field(
        "Nelder-Mead",
        title="Method",
        json_schema_extra={
            "labels": {
                "Nelder-Mead": "Nelder–Mead",
                "Powell": "Powell",
                "L-BFGS-B": "L-BFGS-B",
                "differential_evolution": "Differential evolution",
            }
        },
        description="SciPy method run from each start; differential_evolution searches the box.",
    )
    starts: int = Field(
        8,
        ge=1,
        le=MAX_STARTS,
        title="Random starts",
        description="Random start points, drawn uniformly in the search box, one task each.",
    )
    tolerance: float = Field(
        1e-10,
        gt=0,
        le=1.0,
        allow_inf_nan=False,
        title="Tolerance",
        description="Stopping tolerance on the point and the value (on the population spread "
        "for differential_evolution).",
    )
    max_iterations: int = Field(
        10_000,
        ge=1,
        le=MAX_ITERATIONS,
        title="Iterations per start, at most",
        description="Iterations (generations for differential_evolution) allowed per start.",
    )
    seed: Seed = Field(
        None,
        title="Seed",
        description="Seed of the start points; empty draws one and stores it with the job.",
    )

    @field_validator("dimension")
    @classmethod
    def _dimension_fits(cls, v: int, info: ValidationInfo) -> int:
        if info.data.get("objective") == "himmelblau" and v != 2:
            raise ValueError("must be 2 for himmelblau, which is defined in two variables only")
        return v

    @field_validator("max_iterations")
    @classmethod
    def _within_budget(cls, v: int, info: ValidationInfo) -> int:
        starts, dim = info.data.get("starts"), info.data.get("dimension")
        if isinstance(starts, int) and isinstance(dim, int) and starts * v * dim > BUDGET:
            raise ValueError(
                f"starts × max_iterations × dimension must not exceed {BUDGET:.0e} "
                f"(here {starts} × {v} × {dim})"
            )
        return v


# --- the known minima -----------------------------------------------------------------------------


def known_minima(objective: str, dimension: int) -> list[list[float]]:
    if objective == "himmelblau":
        return [list(m) for m in HIMMELBLAU_MINIMA.values()]
    return [[1.0 if objective == "rosenbrock" else 0.0] * dimension]


def label(x: list[float | None]) -> str | None:
    """The himmelblau minimum that `x` ended within MATCH of, if any."""
    if len(x) != 2 or x[0] is None or x[1] is None:
        return None
    for name, (a, b) in HIMMELBLAU_MINIMA.items():
        if math.hypot(x[0] - a, x[1] - b) <= MATCH:
            return name
    return None


# --- the work -----------------------------------------------------------------------------------


def plan(p: OptimizeParams) -> list[np.random.SeedSequence]:
    """One seed per start: a function of the parameters only, whatever the tasks."""
    assert p.seed is not None  # filled by the model
    return spawn(p.seed, p.starts)


def groups(p: OptimizeParams) -> list[range]:
    """The starts of each Dask task, in order: a function of the parameters only, never of the
    cluster. Tiny tasks spend as long in Dask and in checkpoints as in SciPy; few starts stay
    one per task, so that they still spread over the workers."""
    per = max(1, min(STARTS_PER_TASK[p.method], p.starts // MIN_TASKS))
    return [range(a, min(a + per, p.starts)) for a in range(0, p.starts, per)]


def valid_outcome(o: Any, p: OptimizeParams) -> bool:
    """Whether a saved outcome has the shape `solve` gives for these parameters."""
    if not isinstance(o, dict):
        return False
    x, path = o.get("x"), o.get("path")
    if not (
        isinstance(x, list)
        and len(x) == p.dimension
        and all(v is None or isinstance(v, float) for v in x)
        and (o.get("f") is None or isinstance(o.get("f"), float))
        and isinstance(o.get("converged"), bool)
        and isinstance(o.get("evaluations"), int)
        and isinstance(o.get("iterations"), int)
        and o["evaluations"] >= 0
        and isinstance(path, dict)
    ):
        return False
    keys = ("iteration", "best_f", "x1", "x2") if p.dimension == 2 else ("iteration", "best_f")
    if set(path) != set(keys):
        return False
    n = len(path["iteration"]) if isinstance(path["iteration"], list) else -1
    return 1 <= n <= path_points(p.starts) and all(
        isinstance(path[k], list) and len(path[k]) == n for k in keys
    )


def summarise(p: OptimizeParams, outcomes: Mapping[int, dict[str, Any]]) -> dict[str, Any]:
    """The best start and every start's outcome, in start order whatever order they came in."""
    order = sorted(outcomes)
    starts: list[dict[str, Any]] = []
    for i in order:
        s = {"start": i, **outcomes[i]}
        if p.objective == "himmelblau":
            s["minimum"] = label(s["x"])
        starts.append(s)
    finite = [(s["f"], s["start"]) for s in starts if s["f"] is not None]
    best = starts[order.index(min(finite)[1])] if finite else None
    result: dict[str, Any] = {
        "best_x": best["x"] if best else None,
        "best_f": best["f"] if best else None,
        "best_start": best["start"] if best else None,
        "evaluations": sum(s["evaluations"] for s in starts),
        "converged_starts": sum(s["converged"] for s in starts),
        "objective": p.objective,
        "dimension": p.dimension,
        "method": p.method,
        "starts": starts,
        "partial": len(starts) < p.starts,
        "seed": p.seed,
    }
    if p.objective == "himmelblau":
        result["minima_found"] = sorted({s["minimum"] for s in starts if s["minimum"]})
    return result


# --- the figure ---------------------------------------------------------------------------------


def _contour(result: Mapping[str, Any]) -> go.Figure:
    objective = result["objective"]
    lo, hi = BOXES[objective]
    # A 100-point grid and 20 levels read as smooth as more, and the browser draws them in a
    # fraction of the time: the chart is on the Result tab's first screen.
    grid = np.linspace(lo, hi, 100)
    gx, gy = np.meshgrid(grid, grid)
    z = np.log10(np.maximum(value(objective, np.stack([gx, gy])), 0.0) + 1.0)
    fig = go.Figure(
        go.Contour(
            x=grid,
            y=grid,
            z=z,
            colorscale="Viridis",
            ncontours=20,
            colorbar={"title": "log10(f + 1)"},
            hoverinfo="skip",
        )
    )
    starts = result.get("starts") or []
    legend = len(starts) <= 12
    for s in starts:
        path = s.get("path") or {}
        fig.add_trace(
            go.Scatter(
                x=path.get("x1", []),
                y=path.get("x2", []),
                mode="lines",  # its end is marked below; a marker per step is thousands of them
                line={"width": 1},
                name=f"start {s['start']}",
                showlegend=legend,
            )
        )
    ends = [s for s in starts if None not in s["x"]]
    fig.add_trace(
        go.Scatter(
            x=[s["x"][0] for s in ends],
            y=[s["x"][1] for s in ends],
            mode="markers",
            marker={"symbol": "x", "size": 9, "color": "white", "line": {"width": 1}},
            name="ends",
        )
    )
    minima = known_minima(objective, 2)
    fig.add_trace(
        go.Scatter(
            x=[m[0] for m in minima],
            y=[m[1] for m in minima],
            mode="markers",
            marker={"symbol": "star", "size": 14, "color": "red"},
            name="known minima",
        )
    )
    fig.update_xaxes(range=[lo, hi], title="x1")
    fig.update_yaxes(range=[lo, hi], title="x2", scaleanchor="x")
    fig.update_layout(height=520)
    return fig


def _positive(values: list[Any]) -> list[float | None]:
    """Values a log axis can draw; an exact 0 (or a missing value) leaves a gap."""
    return [v if isinstance(v, float | int) and v > 0 else None for v in values]


def figure(result: Mapping[str, Any], series: Mapping[str, tuple[list[float], list[float]]]) -> Any:
    if result.get("starts") and result.get("dimension") == 2 and result.get("objective") in BOXES:
        return _contour(result)
    fig = go.Figure()
    if result.get("starts"):
        for s in result["starts"]:
            path = s.get("path") or {}
            fig.add_trace(
                go.Scatter(
                    x=path.get("iteration", []),
                    y=_positive(path.get("best_f", [])),
                    mode="lines",
                    name=f"start {s['start']}",
                    showlegend=len(result["starts"]) <= 12,
                )
            )
        fig.update_layout(xaxis_title="iteration", yaxis_title="best f so far")
    else:
        steps, values = series.get("best_f", ([], []))
        if steps:
            fig.add_trace(
                go.Scatter(x=steps, y=_positive(list(values)), mode="lines+markers", name="best f")
            )
        fig.update_layout(xaxis_title="evaluations", yaxis_title="best f so far")
    fig.update_yaxes(type="log")
    fig.update_layout(height=400)
    return fig


# --- the driver ---------------------------------------------------------------------------------


def resumable(saved: Mapping[str, Any], p: OptimizeParams) -> dict[int, list[dict[str, Any]]]:
    """Task index → its starts' outcomes, from checkpoints that have the shape these
    parameters give."""
    out: dict[int, list[dict[str, Any]]] = {}
    for j, g in enumerate(groups(p)):
        c = saved.get(f"starts-{j}")
        if isinstance(c, list) and len(c) == len(g) and all(valid_outcome(o, p) for o in c):
            out[j] = c
    return out


def run_starts(
    p: OptimizeParams,
    done: dict[int, dict[str, Any]],
    finished: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[int, dict[str, Any]]:
    """Every start not yet in `done`, one after another in this process: the driver's work
    without Dask, from the same plan and the same `solve`."""
    seeds = plan(p)
    params = p.model_dump()
    for i in range(p.starts):
        if i not in done:
            done[i] = solve(params, seeds[i])
            if finished is not None:
                finished(i, done[i])
    return done


def headline_of(result: Mapping[str, Any], params: Mapping[str, Any]) -> Headline:
    """The best value and point, how many starts converged and which minima they found, and a
    row per start."""
    starts = list(result.get("starts") or [])

    def point(x: Any) -> str:
        return "(" + ", ".join(f"{float(v):.4f}" for v in x) + ")"

    figures = [
        Figure("Best f", fmt.significant(float(result["best_f"]), 6)),
        Figure("Best x", point(result["best_x"])),
        Figure("Converged", f"{int(result['converged_starts'])} of {len(starts)} starts"),
    ]
    if "minima_found" in result:
        found = len(result["minima_found"])
        figures.append(
            Figure("Minima found", f"{found} of {len(HIMMELBLAU_MINIMA)}", "Himmelblau's four")
        )
    columns = ["Start", "Final x", "f", "Iterations", "Converged"]
    if "minima_found" in result:
        columns.append("Minimum")
    rows = []
    for s in starts:
        row = [
            str(int(s["start"]) + 1),
            point(s["x"]),
            fmt.significant(float(s["f"]), 6),
            f"{int(s['iterations']):,}",
            "yes" if s.get("converged") else "no",
        ]
        if "minima_found" in result:
            row.append(s.get("minimum") or "")
        rows.append(row)
    return Headline(figures, [Table("Starts", columns, rows)])


@register(
    "optimize",
    summarise=headline_of,
    headline=("best_f", "converged_starts"),
    title="Optimisation",
    description="Minimise a standard test function from many random starts with SciPy, on Dask.",
    params=OptimizeParams,
    stages=["plan", "optimise", "summarise"],
    weights=[1, 98, 1],
    figure=figure,
    example={"objective": "rosenbrock", "dimension": 2, "starts": 3, "seed": 5},
)
def run(ctx: JobContext, p: OptimizeParams) -> dict[str, Any]:
    assert p.seed is not None  # filled by the model
    with ctx.stage("plan"):
        ctx.log(
            "info",
            f"{p.method} on {p.objective} in {p.dimension} dimensions from {p.starts} starts, "
            f"seed {p.seed}",
        )
    params = p.model_dump()
    evaluations = 0
    best = math.inf

    def add(_j: int, outcomes: list[dict[str, Any]]) -> None:
        nonlocal evaluations, best
        for outcome in outcomes:
            evaluations += outcome["evaluations"]
            if outcome["f"] is not None:
                best = min(best, outcome["f"])

    def show() -> None:
        if math.isfinite(best):
            ctx.metric("best_f", evaluations, best)

    seeds = plan(p)
    tasks = groups(p)
    with ctx.stage("optimise"):
        done = ctx.map_chunks(
            solve_starts,
            [(params, seeds[g.start : g.stop]) for g in tasks],
            seed=p.seed,
            resume=lambda saved: resumable(saved, p),
            add=add,
            show=show,
            name="starts",
        )
    with ctx.stage("summarise"):
        outcomes = {i: o for j, got in done.items() for i, o in zip(tasks[j], got, strict=True)}
        result = summarise(p, outcomes)
        ctx.log("info", f"best f {result['best_f']} after {result['evaluations']:,} evaluations")
    return result
