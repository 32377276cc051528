"""The portfolio risk kind's kernel: one chunk of scenarios, binned on one fixed loss grid.

The grid is a thousandth of the loss scale wide in the middle and 0.1 % wider per bin in the
tails; a chunk's losses are kept as integer counts and integer sums of their places inside the
bins, which add exactly in any order (the driver's `Tally` merges them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

TRADING_DAYS = 252
BLOCK = 1 << 20  # normal draws held in memory at once, per chunk
MIN_ROWS = 16_384  # scenarios per block, however many assets: the binning has a fixed cost

# The loss grid, in units of the loss scale around the mean loss (see `exposure`).
GRID_HALF = 8.0  # the uniform part spans ±8 scale units
GRID_STEP = 1e-3  # and its bins are a thousandth of the scale
GRID_RATIO = 1e-3  # beyond it each bin is 0.1 % wider than the one before
GRID_REACH = 1e8  # scale units; losses beyond are kept as counts and sums
UNIFORM_BINS = 16_000
TAIL_BINS = math.ceil(math.log(GRID_REACH / GRID_HALF) / math.log1p(GRID_RATIO))
BINS = UNIFORM_BINS + 2 * TAIL_BINS
FRACTION = 1 << 16  # a loss's place inside its bin is kept to 1/65536 of the bin's width


@dataclass(frozen=True)
class Portfolio:
    """The parameters the loss model needs, read from the kind's validated parameters."""

    weights: list[float]
    expected_returns: list[float]
    volatilities: list[float]
    correlation: list[list[float]]
    portfolio_value: float
    horizon_days: int
    distribution: str
    dof: float | None

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Portfolio:
        return cls(**{f.name: params[f.name] for f in fields(cls)})


def _symmetric(c: list[list[float]]) -> np.ndarray:
    a = np.asarray(c, dtype=np.float64)
    return (a + a.T) / 2.0


def factor(c: np.ndarray) -> np.ndarray:
    """A matrix F with F Fᵀ = c: Cholesky when c is positive definite, else from its eigen
    decomposition, which also serves the singular matrices of perfectly correlated assets."""
    try:
        f = np.linalg.cholesky(c)
        if np.isfinite(f).all():
            return f
    except np.linalg.LinAlgError:
        pass
    values, vectors = np.linalg.eigh(c)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def exposure(params: Mapping[str, Any]) -> tuple[float, float, np.ndarray]:
    """(mean loss, loss scale, direction d): a scenario's loss is mean + scale · x with
    x = d·y for y standard normal, times √(dof/W) for W chi-squared under Student-t.

    With R = w·μ h + √h w·(σ ∘ F z), the loss −V R is linear in z through b = Fᵀ(w ∘ σ), so
    each scenario costs its n draws and one dot product, not an n×n product. In these units x
    is a standard normal or a standard t whatever the portfolio: one grid serves every job.
    `params` are the kind's validated parameters (`PortfolioParams.model_dump()`).
    """
    p = Portfolio.of(params)
    w = np.asarray(p.weights, dtype=np.float64)
    vol = np.asarray(p.volatilities, dtype=np.float64)
    h = p.horizon_days / TRADING_DAYS
    b = factor(_symmetric(p.correlation)).T @ (w * vol)
    norm = float(np.sqrt(np.dot(b, b)))
    mean = (
        -p.portfolio_value
        * h
        * math.fsum(a * m for a, m in zip(p.weights, p.expected_returns, strict=True))
    )
    scale = p.portfolio_value * math.sqrt(h) * norm
    if p.distribution == "student_t":
        assert p.dof is not None
        scale *= math.sqrt((p.dof - 2.0) / p.dof)  # so that the covariance is the correlation's
    direction = -b / norm if norm > 0 else np.zeros_like(b)
    return mean, scale, direction


@functools.cache
def edges() -> np.ndarray:
    """The loss grid's bin edges, in scale units: uniform inside ±GRID_HALF, geometric beyond."""
    tail = GRID_HALF * np.exp(np.arange(1, TAIL_BINS + 1) * math.log1p(GRID_RATIO))
    uniform = -GRID_HALF + GRID_STEP * np.arange(UNIFORM_BINS + 1)
    out = np.concatenate([-tail[::-1], uniform, tail])
    out.flags.writeable = False
    return out


def _bin(x: np.ndarray, counts: np.ndarray, fracs: np.ndarray, outside: list[list[float]]) -> None:
    """Add losses x (scale units) to the grid's counts and in-bin positions, in place.

    The uniform part is found by arithmetic; only the rare losses beyond it are searched for.
    `outside` holds [count, Σx] below the grid's first edge and beyond its last.
    """
    e = edges()
    u = (x + GRID_HALF) * (1.0 / GRID_STEP)
    k = np.floor(u)
    inner = (k >= 0) & (k < UNIFORM_BINS)
    if inner.all():
        idx = k.astype(np.intp) + TAIL_BINS
        pos = np.rint((u - k) * FRACTION)
    else:
        xo = x[~inner]
        j = np.searchsorted(e, xo, side="right") - 1
        below, above = j < 0, j >= BINS
        for side, mask in ((0, below), (1, above)):
            if mask.any():
                outside[side][0] += float(np.count_nonzero(mask))
                outside[side][1] += float(xo[mask].sum())
        keep = ~(below | above)
        jk = j[keep]
        at = np.clip((xo[keep] - e[jk]) / (e[jk + 1] - e[jk]), 0.0, 1.0)
        ki = k[inner]
        idx = np.concatenate([ki.astype(np.intp) + TAIL_BINS, jk])
        pos = np.concatenate([np.rint((u[inner] - ki) * FRACTION), np.rint(at * FRACTION)])
    counts += np.bincount(idx, minlength=BINS)
    fracs += np.bincount(idx, weights=pos, minlength=BINS).astype(np.int64)


def simulate(params: Mapping[str, Any], n: int, seed: np.random.SeedSequence) -> dict[str, Any]:
    """One chunk of `n` scenarios, as its losses' histogram on the fixed grid.

    Returns only the non-empty bins: `at` (the first bin's index, then steps to the next),
    `counts`, and `fracs` (Σ of each loss's place inside its bin, in 1/FRACTION of the width),
    all integers; `sum` (Σx), and `below`/`above` ([count, Σx] off the grid).
    """
    p = Portfolio.of(params)
    _, _, direction = exposure(params)
    assets = len(direction)
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = max(MIN_ROWS, BLOCK // assets)
    counts = np.zeros(BINS, dtype=np.int64)
    fracs = np.zeros(BINS, dtype=np.int64)
    outside: list[list[float]] = [[0.0, 0.0], [0.0, 0.0]]
    sums: list[float] = []
    tiny = np.finfo(np.float64).tiny
    left = n
    while left > 0:
        m = min(rows, left)
        x = rng.standard_normal((m, assets)) @ direction
        if p.distribution == "student_t":
            assert p.dof is not None
            w = rng.chisquare(p.dof, m)
            x *= np.sqrt(p.dof / np.maximum(w, tiny))
        sums.append(float(x.sum()))
        _bin(x, counts, fracs, outside)
        left -= m
    nz = np.flatnonzero(counts)
    return {
        "n": n,
        "at": np.diff(nz, prepend=0).tolist(),
        "counts": counts[nz].tolist(),
        "fracs": fracs[nz].tolist(),
        "sum": math.fsum(sums),
        "below": [int(outside[0][0]), outside[0][1]],
        "above": [int(outside[1][0]), outside[1][1]],
    }
