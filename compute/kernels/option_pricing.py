"""The option pricing kind's kernel: one chunk of simulated paths, as sums the driver adds up."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, cast

import numpy as np

BLOCK = 1 << 20  # draws held in memory at once, per chunk
BUMP = 0.01  # relative spot bump of the finite-difference delta (common random numbers)


@dataclass(frozen=True)
class Option:
    """The parameters a chunk needs, read from the kind's validated parameters."""

    option_type: str
    S: float
    K: float
    r: float
    sigma: float
    T: float
    steps: int | None
    barrier: float | None
    antithetic: bool

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Option:
        return cls(**{f.name: params[f.name] for f in fields(cls)})


def _pricer(p: Option, log_x: np.ndarray) -> Callable[[float], np.ndarray]:
    """Discounted payoffs as a function of the spot, from normalised log paths (a row each).

    What does not depend on the spot (the terminal or average value of a unit path) is computed
    once, so the delta's two bumped spots cost little more than the price itself.
    """
    disc = math.exp(-p.r * p.T)
    terminal = np.exp(log_x[:, -1])
    if p.option_type.startswith("european"):
        return _vanilla(p, terminal)
    if p.option_type.startswith("asian"):
        return _vanilla(p, np.exp(log_x).mean(axis=1))
    else:
        assert p.barrier is not None
        dt = p.T / (p.steps or 1)
        # Distance to the barrier in log terms at every date, the start (0) included.
        path = np.concatenate([np.zeros((log_x.shape[0], 1)), log_x], axis=1)
        barrier = p.barrier

        def knock_out(scale: float) -> np.ndarray:
            a = math.log(barrier / scale) - path
            alive = cast(np.ndarray, (a > 0).all(axis=1))  # one row per path
            touch = np.exp(-2.0 * a[:, :-1] * a[:, 1:] / (p.sigma**2 * dt))
            survive = np.prod(1.0 - np.where(alive[:, None], touch, 1.0), axis=1)
            return disc * survive * np.maximum(scale * terminal - p.K, 0.0)

        return knock_out


def _vanilla(p: Option, unit: np.ndarray) -> Callable[[float], np.ndarray]:
    """Discounted call or put payoffs on `unit` (the underlying of a unit spot) times a spot."""
    disc = math.exp(-p.r * p.T)
    sign = 1.0 if p.option_type.endswith("call") else -1.0

    def payoff(scale: float) -> np.ndarray:
        return disc * np.maximum(sign * (scale * unit - p.K), 0.0)

    return payoff


def simulate(params: Mapping[str, Any], n: int, seed: np.random.SeedSequence) -> list[float]:
    """One chunk of `n` paths: [samples, Σy, Σy², Σdelta] over independent samples y.

    `params` are the kind's validated parameters (`OptionParams.model_dump()`). With antithetic
    paths a sample is the mean of a path and its mirror, so the standard error counts pairs,
    not paths.
    """
    p = Option.of(params)
    steps = p.steps or 1
    dt = p.T / steps
    drift, vol = (p.r - 0.5 * p.sigma**2) * dt, p.sigma * math.sqrt(dt)
    rng = np.random.Generator(np.random.PCG64(seed))
    samples = n // 2 if p.antithetic else n
    rows = max(1, BLOCK // steps)
    count, s1, s2, sd = 0, 0.0, 0.0, 0.0
    up, down = p.S * (1 + BUMP), p.S * (1 - BUMP)
    signs = (1.0, -1.0) if p.antithetic else (1.0,)
    left = samples
    while left > 0:
        m = min(rows, left)
        z = rng.standard_normal((m, steps))
        y = np.zeros(m)
        d = np.zeros(m)
        if p.option_type.startswith("european"):
            # One exponential serves both mirrors: exp(μ - σz) = exp(2μ) / exp(μ + σz).
            terminal = np.exp(drift + vol * z[:, 0])
            units = [terminal, math.exp(2 * drift) / terminal] if p.antithetic else [terminal]
            payoffs = [_vanilla(p, u) for u in units]
        else:
            payoffs = [_pricer(p, np.cumsum(drift + (s * vol) * z, axis=1)) for s in signs]
        for payoff in payoffs:
            y += payoff(p.S)
            d += (payoff(up) - payoff(down)) / (up - down)
        y /= len(signs)
        d /= len(signs)
        count += m
        s1 += float(y.sum())
        s2 += float(np.dot(y, y))
        sd += float(d.sum())
        left -= m
    return [float(count), s1, s2, sd]
