"""The optimisation kind's kernel: the test functions, and one start minimised with SciPy."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

PATH_POINTS = 200  # per start, at most
PATH_TOTAL = 12_800  # over all starts, so that 256 starts keep the result around a megabyte

BOXES: dict[str, tuple[float, float]] = {
    "rosenbrock": (-2.0, 2.0),
    "rastrigin": (-5.12, 5.12),
    "ackley": (-32.768, 32.768),
    "himmelblau": (-5.0, 5.0),
}


# --- objectives: coordinates along axis 0, so one function serves a point, a population and a grid


def value(objective: str, x: np.ndarray) -> Any:
    """The objective at `x` of shape (d, ...): a float for one point, an array for many."""
    if objective == "rosenbrock":
        return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2, axis=0)
    if objective == "rastrigin":
        return 10.0 * x.shape[0] + np.sum(x * x - 10.0 * np.cos(2 * np.pi * x), axis=0)
    if objective == "ackley":
        r = np.sqrt(np.mean(x * x, axis=0))
        s = np.mean(np.cos(2 * np.pi * x), axis=0)
        return -20.0 * np.exp(-0.2 * r) - np.exp(s) + 20.0 + math.e
    a = x[0] ** 2 + x[1] - 11.0
    b = x[0] + x[1] ** 2 - 7.0
    return a * a + b * b


def gradient(objective: str, x: np.ndarray) -> np.ndarray:
    """The exact gradient at one point, so that L-BFGS-B reaches the minimum to full precision."""
    if objective == "rosenbrock":
        g = np.zeros_like(x)
        t = x[1:] - x[:-1] ** 2
        g[:-1] = -400.0 * x[:-1] * t - 2.0 * (1.0 - x[:-1])
        g[1:] += 200.0 * t
        return g
    if objective == "rastrigin":
        return 2.0 * x + 20.0 * np.pi * np.sin(2 * np.pi * x)
    if objective == "ackley":
        d = x.shape[0]
        r = math.sqrt(float(np.mean(x * x)))
        s = float(np.mean(np.cos(2 * np.pi * x)))
        g = math.exp(s) * 2 * np.pi * np.sin(2 * np.pi * x) / d
        if r > 0:  # the cone's tip has no gradient; its subgradient 0 is the natural choice
            g = g + 4.0 * math.exp(-0.2 * r) * x / (d * r)
        return g
    a = x[0] ** 2 + x[1] - 11.0
    b = x[0] + x[1] ** 2 - 7.0
    return np.array([4.0 * a * x[0] + 2.0 * b, 2.0 * a + 4.0 * b * x[1]])


# --- one start -----------------------------------------------------------------------------------


def path_points(starts: int) -> int:
    return min(PATH_POINTS, max(2, PATH_TOTAL // starts))


def _finite(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def _downsample(n: int, m: int) -> list[int]:
    """At most `m` indices of `n`, evenly spread, first and last always kept."""
    if n <= m:
        return list(range(n))
    return sorted({round(k * (n - 1) / (m - 1)) for k in range(m)})


def solve_starts(
    params: Mapping[str, Any],
    seeds: Sequence[np.random.SeedSequence],
    _task_seed: np.random.SeedSequence | None = None,
) -> list[dict[str, Any]]:
    """Several starts in one task, each from its own seed, so that a task is long enough for
    Dask's per-task cost to vanish beside it. The chunk loop's own seed for the task goes
    unused: a start's outcome depends on its own seed alone, however the starts are grouped."""
    return [solve(params, seed) for seed in seeds]


def solve(params: Mapping[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """One start, from its own seed: where it ended, how, at what cost, and the way it went.

    `params` are the kind's validated parameters (`OptimizeParams.model_dump()`).
    """
    from scipy.optimize import differential_evolution, minimize

    objective: str = params["objective"]
    lo, hi = BOXES[objective]
    d: int = params["dimension"]
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(lo, hi, d)
    xs: list[np.ndarray] = [x0]
    fs: list[float] = [float(value(objective, x0))]
    calls = [0]  # points evaluated: a vectorised call evaluates a whole population

    def counted(x: np.ndarray) -> Any:
        calls[0] += 1 if x.ndim == 1 else x.shape[1]
        return value(objective, x)

    def record(intermediate_result: Any) -> None:
        xs.append(np.array(intermediate_result.x, dtype=float))
        fs.append(float(intermediate_result.fun))

    def f(x: np.ndarray) -> float:
        return float(counted(x))

    tol, iters = params["tolerance"], params["max_iterations"]
    if params["method"] == "differential_evolution":
        res = differential_evolution(
            counted,
            [(lo, hi)] * d,
            maxiter=iters,
            tol=tol,
            atol=tol,
            rng=rng,  # the start point's own stream, carried on
            x0=x0,
            polish=True,
            callback=record,
            vectorized=True,
            updating="deferred",
        )
    elif params["method"] == "L-BFGS-B":

        def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
            return float(counted(x)), gradient(objective, x)

        res = minimize(
            fg,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(lo, hi)] * d,
            callback=record,
            options={"maxiter": iters, "maxfun": 20 * iters, "ftol": tol, "gtol": tol},
        )
    elif params["method"] == "Powell":
        res = minimize(
            f,
            x0,
            method="Powell",
            callback=record,
            options={"maxiter": iters, "xtol": tol, "ftol": tol},
        )
    else:
        res = minimize(
            f,
            x0,
            method="Nelder-Mead",
            callback=record,
            options={"maxiter": iters, "xatol": tol, "fatol": tol, "adaptive": True},
        )
    x = np.asarray(res.x, dtype=float)
    fx = float(res.fun)
    if not np.array_equal(xs[-1], x):  # a polish step, or a last move after the last callback
        xs.append(x)
        fs.append(fx)
    keep = _downsample(len(fs), path_points(params["starts"]))
    best = np.minimum.accumulate(np.array(fs))
    path: dict[str, list[Any]] = {
        "iteration": keep,
        "best_f": [_finite(best[k]) for k in keep],
    }
    if d == 2:
        path["x1"] = [_finite(xs[k][0]) for k in keep]
        path["x2"] = [_finite(xs[k][1]) for k in keep]
    ok = math.isfinite(fx) and bool(np.all(np.isfinite(x)))
    return {
        "x": [_finite(v) for v in x],
        "f": fx if ok else None,
        "converged": bool(res.success) and ok,
        "evaluations": calls[0],
        "iterations": int(res.nit),
        "path": path,
    }
