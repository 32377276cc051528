"""Value at risk and expected shortfall of a portfolio by Monte Carlo, in seeded chunks on Dask.

Asset returns over the horizon are jointly normal or multivariate Student-t with the given
correlation. Each chunk bins its scenarios' losses on one fixed grid (a thousandth of the loss
scale wide in the middle, 0.1 % wider per bin in the tails) as integer counts and integer sums
of the positions inside the bins. Integers add exactly, so the chunks merge in any order into
the histogram of every scenario, and each quantile is read from it by interpolating inside one
bin: a discretisation error far below the Monte Carlo error, at any number of scenarios.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from compute import datasets
from compute.context import JobContext
from compute.headline import Figure, Headline, Table
from compute.kernels.portfolio_risk import (
    BINS,
    FRACTION,
    TRADING_DAYS,
    _symmetric,
    edges,
    exposure,
    simulate,
)
from compute.registry import register
from compute.seeds import Seed
from runlab import format as fmt
from runlab.errors import InvalidUpload

Distribution = Literal["normal", "student_t"]

MAX_ASSETS = 200
MAX_WEIGHT = 10.0  # |weight|: up to tenfold leverage, short or long
MAX_RETURN = 5.0  # |expected annual return|
MAX_VOLATILITY = 5.0
MAX_VALUE = 1e15
MAX_LEVEL = 0.9999
MAX_LEVELS = 10
MIN_TAIL = 10  # scenarios expected beyond the highest level: fewer give no expected shortfall
MIN_SCENARIOS = 1_000
MAX_SCENARIOS = 100_000_000
BUDGET = 2 * 10**10  # scenarios × assets: normal draws
SUM_TOLERANCE = 1e-6
SYMMETRY_TOLERANCE = 1e-8
PSD_TOLERANCE = 1e-10

# Work per scenario in normal-draw equivalents: its draws, about three for a chi-squared draw
# (Student-t), and about one for the binning.
BIN_COST = 1
CHI2_COST = 3
TARGET_CHUNK = 20_000_000  # normal-draw equivalents per Dask task: about 0.4 s of one core
MAX_CHUNKS = 2_000
MIN_CHUNK = 1_000  # scenarios
DISPLAY_BINS = 100
Z95 = 1.959963984540054


def _default_correlation() -> list[list[float]]:
    return [[1.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 1.0]]


def _finite(v: list[float], what: str) -> None:
    for i, x in enumerate(v, start=1):
        if not math.isfinite(x):
            raise ValueError(f"{what} {i} is {x}: every value must be a finite number")


def _each(v: list[float], what: str, fits: Callable[[float], bool], rule: str) -> None:
    """Refuses the first value that is not finite or does not fit, by its place from 1."""
    _finite(v, what)
    for i, x in enumerate(v, start=1):
        if not fits(x):
            raise ValueError(f"{what} {i} is {x:g}: each must be {rule}")


def _same_length(v: list[float], info: ValidationInfo, name: str) -> None:
    weights = info.data.get("weights")
    if isinstance(weights, list) and len(v) != len(weights):
        raise ValueError(
            f"must hold one {name} per asset: {len(weights)} weight(s) but {len(v)} value(s)"
        )


# The lists of one value per asset beside the weights: what a value is called, the test it must
# pass, and that test in words.
PER_ASSET: dict[str, tuple[str, Callable[[float], bool], str]] = {
    "expected_returns": (
        "expected return",
        lambda x: abs(x) <= MAX_RETURN,
        f"between {-MAX_RETURN:g} and {MAX_RETURN:g}",
    ),
    "volatilities": (
        "volatility",
        lambda x: 0 < x <= MAX_VOLATILITY,
        f"above 0 and at most {MAX_VOLATILITY:g}",
    ),
}


class PortfolioParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    weights: list[float] = Field(
        default_factory=lambda: [0.5, 0.3, 0.2],
        title="Weights",
        description="Share of the portfolio's value in each asset (negative: short), adding up "
        f"to 1; 1 to {MAX_ASSETS} assets.",
    )
    expected_returns: list[float] = Field(
        default_factory=lambda: [0.07, 0.05, 0.03],
        validate_default=True,  # checked against the weights given
        title="Expected returns μ (per year)",
        description="Expected annual return of each asset (0.07 is 7 % a year).",
    )
    volatilities: list[float] = Field(
        default_factory=lambda: [0.2, 0.15, 0.1],
        validate_default=True,  # checked against the weights given
        title="Volatilities σ (per year)",
        description="Annual volatility of each asset's return, above 0 and at most 5.",
    )
    correlation: list[list[float]] = Field(
        default_factory=_default_correlation,
        validate_default=True,  # checked against the weights given
        title="Correlation matrix ρ",
        description="Correlation matrix of the asset returns: one row per asset, symmetric, "
        "ones on the diagonal, positive semi-definite.",
    )
    portfolio_value: float = Field(
        1_000_000.0,
        gt=0,
        le=MAX_VALUE,
        allow_inf_nan=False,
        title="Portfolio value",
        description="Value of the portfolio today; losses are in the same money units.",
    )
    horizon_days: int = Field(
        10,
        ge=1,
        le=10 * TRADING_DAYS,
        title="Horizon (trading days)",
        description=f"Horizon in trading days ({TRADING_DAYS} a year).",
    )
    levels: list[float] = Field(
        default_factory=lambda: [0.95, 0.99],
        title="Confidence levels",
        description=f"Confidence levels of the value at risk, above 0.5 and at most {MAX_LEVEL}"
        f"; 1 to {MAX_LEVELS} of them.",
    )
    scenarios: int = Field(
        1_000_000,
        validate_default=True,  # checked against the levels and weights given
        ge=MIN_SCENARIOS,
        le=MAX_SCENARIOS,
        title="Scenarios",
        description="Simulated scenarios of the portfolio's return over the horizon.",
    )
    distribution: Distribution = Field(
        "normal",
        title="Distribution",
        json_schema_extra={"labels": {"normal": "Normal", "student_t": "Student's t"}},
        description="Joint distribution of the asset returns: normal, or Student-t with "
        "fatter tails (the same correlation).",
    )
    dof: float | None = Field(
        None,
        gt=2,
        le=1000,
        allow_inf_nan=False,
        validate_default=True,
        json_schema_extra={"when": {"distribution": ["student_t"]}},
        title="Degrees of freedom ν",
        description="Degrees of freedom of the Student-t distribution (default 5); fewer give "
        "fatter tails.",
    )
    seed: Seed = None

    @field_validator("weights")
    @classmethod
    def _weights_add_up(cls, v: list[float]) -> list[float]:
        if not 1 <= len(v) <= MAX_ASSETS:
            raise ValueError(f"must hold 1 to {MAX_ASSETS} weights, one per asset; got {len(v)}")
        rule = f"between {-MAX_WEIGHT:g} and {MAX_WEIGHT:g}"
        _each(v, "weight", lambda x: abs(x) <= MAX_WEIGHT, rule)
        total = math.fsum(v)
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise ValueError(f"must add up to 1; they add up to {total:.10g}")
        return v

    @field_validator(*PER_ASSET)
    @classmethod
    def _per_asset_fit(cls, v: list[float], info: ValidationInfo) -> list[float]:
        assert info.field_name is not None  # a field validator's
        what, fits, rule = PER_ASSET[info.field_name]
        _same_length(v, info, what)
        _each(v, what, fits, rule)
        return v

    @field_validator("correlation")
    @classmethod
    def _correlation_valid(cls, v: list[list[float]], info: ValidationInfo) -> list[list[float]]:
        weights = info.data.get("weights")
        n = len(weights) if isinstance(weights, list) else len(v)
        if not 1 <= n <= MAX_ASSETS:
            raise ValueError(f"must have 1 to {MAX_ASSETS} rows, one per asset; got {n}")
        if len(v) != n or any(len(row) != n for row in v):
            shape = f"{len(v)} row(s) of " + "/".join(sorted({str(len(r)) for r in v}) or ["0"])
            raise ValueError(f"must be {n}×{n}, one row and one column per asset; got {shape}")
        for i, row in enumerate(v, start=1):
            for j, x in enumerate(row, start=1):
                if not math.isfinite(x) or abs(x) > 1:
                    raise ValueError(f"entry ({i}, {j}) is {x:g}: each must be between -1 and 1")
        for i in range(n):
            if abs(v[i][i] - 1.0) > SYMMETRY_TOLERANCE:
                raise ValueError(
                    f"must have ones on the diagonal; entry ({i + 1}, {i + 1}) is {v[i][i]:g}"
                )
        for i in range(n):
            for j in range(i):
                if abs(v[i][j] - v[j][i]) > SYMMETRY_TOLERANCE:
                    raise ValueError(
                        f"is not symmetric: entry ({i + 1}, {j + 1}) is {v[i][j]:g} but "
                        f"({j + 1}, {i + 1}) is {v[j][i]:g}"
                    )
        try:
            smallest = float(np.linalg.eigvalsh(_symmetric(v))[0])
        except np.linalg.LinAlgError:
            raise ValueError("has eigenvalues that could not be computed") from None
        if smallest < -PSD_TOLERANCE:
            raise ValueError(
                f"is not positive semi-definite (smallest eigenvalue {smallest:.3g}): no joint "
                "distribution has these correlations"
            )
        return v

    @field_validator("levels")
    @classmethod
    def _levels_fit(cls, v: list[float]) -> list[float]:
        if not 1 <= len(v) <= MAX_LEVELS:
            raise ValueError(f"must hold 1 to {MAX_LEVELS} levels; got {len(v)}")
        for x in v:
            if not (math.isfinite(x) and 0.5 < x <= MAX_LEVEL):
                raise ValueError(f"level {x:g}: each must be above 0.5 and at most {MAX_LEVEL}")
        seen: set[float] = set()
        for x in v:
            if x in seen:
                raise ValueError(f"holds {x:g} more than once")
            seen.add(x)
        return v

    @field_validator("scenarios")
    @classmethod
    def _scenarios_fit(cls, v: int, info: ValidationInfo) -> int:
        weights, levels = info.data.get("weights"), info.data.get("levels")
        if isinstance(weights, list) and v * len(weights) > BUDGET:
            raise ValueError(
                f"scenarios × assets must not exceed {BUDGET:.0e}: with {len(weights)} assets, "
                f"at most {BUDGET // len(weights):,} scenarios"
            )
        if isinstance(levels, list) and levels:
            top = max(levels)
            need = math.ceil(MIN_TAIL / (1.0 - top) - 1e-6)
            if v < need:
                raise ValueError(
                    f"must be at least {need:,} for the level {top:g}, so that {MIN_TAIL} "
                    "scenarios are expected beyond it"
                )
        return v

    @field_validator("dof")
    @classmethod
    def _dof_applies(cls, v: float | None, info: ValidationInfo) -> float | None:
        distribution = info.data.get("distribution")
        if distribution == "student_t":
            return 5.0 if v is None else v
        if distribution is not None and v is not None:
            raise ValueError("applies only to the Student-t distribution")
        return None if distribution is not None else v


def plan(p: PortfolioParams) -> list[int]:
    """Scenarios per chunk: a function of the parameters only, never of the cluster, so that
    the same parameters and seed give the same numbers on any number of workers."""
    per = len(p.weights) + (CHI2_COST if p.distribution == "student_t" else 0) + BIN_COST
    chunks = max(1, math.ceil(p.scenarios * per / TARGET_CHUNK))
    chunks = max(1, min(chunks, MAX_CHUNKS, p.scenarios // MIN_CHUNK))
    base, extra = divmod(p.scenarios, chunks)
    return [base + (1 if i < extra else 0) for i in range(chunks)]


def valid_chunk(c: Any, n: int) -> bool:
    """Whether a saved chunk has the shape `simulate` gives, for `n` scenarios."""
    if not isinstance(c, dict) or c.get("n") != n:
        return False
    at, counts, fracs = c.get("at"), c.get("counts"), c.get("fracs")
    if not (isinstance(at, list) and isinstance(counts, list) and isinstance(fracs, list)):
        return False
    if not len(at) == len(counts) == len(fracs):
        return False
    if not all(type(v) is int for v in (*at, *counts, *fracs)):
        return False
    ends = []
    for key in ("below", "above"):
        v = c.get(key)
        if not (
            isinstance(v, list)
            and len(v) == 2
            and type(v[0]) is int
            and v[0] >= 0
            and isinstance(v[1], float | int)
            and not isinstance(v[1], bool)
            and math.isfinite(v[1])
        ):
            return False
        ends.append(v[0])
    total = c.get("sum")
    if not isinstance(total, float | int) or isinstance(total, bool) or not math.isfinite(total):
        return False
    if counts:
        a = np.asarray(at, dtype=np.int64)
        k = np.asarray(counts, dtype=np.int64)
        f = np.asarray(fracs, dtype=np.int64)
        if a[0] < 0 or (a[1:] < 1).any() or int(a.sum()) >= BINS:
            return False
        if (k < 1).any() or (f < 0).any() or (f > k * FRACTION).any():
            return False
    return sum(counts) + sum(ends) == n


class Tally:
    """The merged histogram of any number of chunks; exact, so the same whatever their order."""

    def __init__(self) -> None:
        self.counts = np.zeros(BINS, dtype=np.int64)
        self.fracs = np.zeros(BINS, dtype=np.int64)
        self.n = 0
        self._sums: list[float] = []
        self._below: list[float] = []
        self._above: list[float] = []
        self._below_n = 0
        self._above_n = 0
        self._cum: np.ndarray | None = None

    def add(self, c: Mapping[str, Any]) -> None:
        idx = np.cumsum(np.asarray(c["at"], dtype=np.int64))
        self.counts[idx] += np.asarray(c["counts"], dtype=np.int64)
        self.fracs[idx] += np.asarray(c["fracs"], dtype=np.int64)
        self.n += int(c["n"])
        self._sums.append(float(c["sum"]))
        self._below_n += int(c["below"][0])
        self._below.append(float(c["below"][1]))
        self._above_n += int(c["above"][0])
        self._above.append(float(c["above"][1]))
        self._cum = None

    def mean(self) -> float:
        """Mean of every loss, in scale units; `math.fsum` makes it independent of order."""
        return math.fsum(self._sums) / self.n

    def _cumulative(self) -> np.ndarray:
        if self._cum is None:
            self._cum = self._below_n + np.cumsum(self.counts)
        return self._cum

    def quantile(self, rank: float) -> tuple[float, int]:
        """The loss of (fractional) rank `rank` among n, interpolated inside its bin; with the
        bin's index (-1 below the grid, BINS beyond it)."""
        e = edges()
        if rank < self._below_n:
            return math.fsum(self._below) / self._below_n, -1
        cum = self._cumulative()
        b = int(np.searchsorted(cum, rank, side="right"))
        if b >= BINS:
            return math.fsum(self._above) / max(1, self._above_n), BINS
        before = int(cum[b]) - int(self.counts[b])
        share = (rank - before) / int(self.counts[b])
        return float(e[b] + (e[b + 1] - e[b]) * share), b

    def var(self, level: float) -> float:
        return self.quantile(level * self.n)[0]

    def shortfall(self, level: float) -> float:
        """Mean loss beyond the value at risk: the bins above its bin exactly, from their
        counts and in-bin positions, and the part of its bin above it as spread evenly."""
        rank = level * self.n
        x, b = self.quantile(rank)
        if b >= BINS:
            return x
        e = edges()
        top = self.n - rank
        lo = max(b + 1, 0)
        k = self.counts[lo:]
        nz = np.flatnonzero(k)
        widths = (e[lo + 1 :] - e[lo:-1])[nz]
        parts = [
            *(k[nz] * e[lo:-1][nz]).tolist(),
            *(widths * (self.fracs[lo:][nz] / FRACTION)).tolist(),
            *self._above,
        ]
        if b >= 0:
            share = float(self._cumulative()[b]) - rank
            parts.append(share * (x + float(e[b + 1])) / 2.0)
        else:  # below the grid: an absurd case kept only so that nothing divides by zero
            parts.append((self._below_n - rank) * x)
        return math.fsum(parts) / top

    def display(self, lo: float, hi: float) -> tuple[list[float], list[int]]:
        """About DISPLAY_BINS counts over [lo, hi] (scale units), by fine-bin centre."""
        e = edges()
        bounds = np.linspace(lo, hi, DISPLAY_BINS + 1)
        nz = np.flatnonzero(self.counts)
        centres = (e[nz] + e[nz + 1]) / 2.0
        counts, _ = np.histogram(centres, bins=bounds, weights=self.counts[nz].astype(np.float64))
        return bounds.tolist(), counts.round().astype(np.int64).tolist()


def level_key(level: float) -> str:
    return str(level)


def closed_form(p: PortfolioParams) -> tuple[dict[str, float], dict[str, float]]:
    """VaR and CVaR of normal returns: V(−μ_p + σ_p z_α) and V(−μ_p + σ_p φ(z_α)/(1 − α))."""
    w = np.asarray(p.weights)
    vol = np.asarray(p.volatilities)
    h = p.horizon_days / TRADING_DAYS
    cov = _symmetric(p.correlation) * np.outer(vol, vol)
    mu = h * math.fsum(a * m for a, m in zip(p.weights, p.expected_returns, strict=True))
    sd = math.sqrt(max(0.0, float(w @ cov @ w)) * h)
    unit = NormalDist()  # the standard library's: no SciPy import on the app's first page
    var, cvar = {}, {}
    for level in p.levels:
        z = unit.inv_cdf(level)
        var[level_key(level)] = p.portfolio_value * (-mu + sd * z)
        cvar[level_key(level)] = p.portfolio_value * (-mu + sd * unit.pdf(z) / (1.0 - level))
    return var, cvar


def summarise(
    p: PortfolioParams, chunks: Mapping[int, Mapping[str, Any]], planned: int
) -> dict[str, Any]:
    """The result from the chunks that finished (all `planned` of them, or fewer after a stop).

    The 95 % interval of each VaR is distribution-free: the losses of ranks nα ∓ 1.96
    √(nα(1 − α)) (the binomial law of how many losses lie below the true quantile), read from
    the same merged histogram; fewer scenarios give a wider one.
    """
    tally = Tally()
    for i in sorted(chunks):
        tally.add(chunks[i])
    n = tally.n
    mean, scale, _ = exposure(p.model_dump())

    def money(x: float) -> float:
        return mean + scale * x

    var, cvar, low, high = {}, {}, {}, {}
    for level in p.levels:
        key = level_key(level)
        var[key] = money(tally.var(level))
        cvar[key] = money(tally.shortfall(level))
        half = Z95 * math.sqrt(n * level * (1.0 - level))
        low[key] = money(tally.quantile(max(0.0, n * level - half))[0])
        high[key] = money(tally.quantile(min(n * (1.0 - 1e-12), n * level + half))[0])
    if scale > 0:
        a = tally.quantile(0.001 * n)[0]
        b = max(tally.quantile(0.999 * n)[0], *(tally.var(level) for level in p.levels))
        pad = 0.02 * (b - a) if b > a else 1.0
        bounds, counts = tally.display(a - pad, b + pad)
        histogram = {"edges": [money(x) for x in bounds], "counts": counts}
    else:  # a riskless portfolio: every scenario loses the same
        width = max(1e-9 * p.portfolio_value, 1e-12)
        histogram = {"edges": [mean - width, mean + width], "counts": [n]}
    result: dict[str, Any] = {
        "var": var,
        "cvar": cvar,
        "var_ci_low": low,
        "var_ci_high": high,
        "mean_loss": money(tally.mean()),
        "histogram": histogram,
        "scenarios": n,
    }
    if p.distribution == "normal":
        result["var_closed_form"], result["cvar_closed_form"] = closed_form(p)
    result["partial"] = len(chunks) < planned
    result["seed"] = p.seed
    return result


def resumable(saved: Mapping[str, Any], sizes: list[int]) -> dict[int, dict[str, Any]]:
    """Chunk index → chunk, from checkpoints that match this job's plan."""
    out: dict[int, dict[str, Any]] = {}
    for i, n in enumerate(sizes):
        c = saved.get(f"chunk-{i}")
        if isinstance(c, dict) and c.get("of") == len(sizes) and valid_chunk(c, n):
            out[i] = c
    return out


# --- filling the form from a CSV ----------------------------------------------------------------

CSV_COLUMNS = ("asset", "weight", "expected_return", "volatility")


def from_csv(data: bytes) -> dict[str, list]:
    """A CSV of one row per asset: asset, weight, expected_return, volatility, then its
    correlation with each asset, the header naming the assets in the rows' order.

    For example:

        asset,weight,expected_return,volatility,stocks,bonds
        stocks,0.6,0.07,0.2,1,0.2
        bonds,0.4,0.03,0.06,0.2,1

    Commas, semicolons or tabs separate the values. The file goes through the one intake of
    uploads (`datasets.read_csv`: its size limit, its checks, its messages). Returns
    `weights`, `expected_returns`, `volatilities` and `correlation`; the parameter model then
    checks them (adding up to 1, positive semi-definite, and so on).
    """
    table = datasets.read_csv(data, as_text=True)
    rows = [
        (int(line), [cell.strip() for cell in cells])
        for line, cells in zip(table.index, table.to_numpy().tolist(), strict=True)
    ]
    (_, header), body = rows[0], rows[1:]
    names = [h.lower() for h in header]
    for i, column in enumerate(CSV_COLUMNS):
        if i >= len(names) or names[i] != column:
            raise InvalidUpload(
                f"the header has no column {column!r} in place {i + 1}; it must start "
                f"{','.join(CSV_COLUMNS)}, then name each asset"
            )
    if len(body) > MAX_ASSETS:
        raise InvalidUpload(f"the file has {len(body):,} assets; the limit is {MAX_ASSETS}")
    columns = header[len(CSV_COLUMNS) :]
    assets: list[str] = []
    values: list[list[float]] = []
    for line, row in body:
        if not row[0]:
            raise InvalidUpload(f"line {line}: the asset has no name")
        if row[0] in assets:
            raise InvalidUpload(f"line {line}: asset {row[0]!r} appears more than once")
        assets.append(row[0])
        numbers = []
        for name, cell in zip(header[1:], row[1:], strict=True):
            if not cell:
                raise InvalidUpload(f"line {line}, column {name!r} has no value")
            try:
                x = float(cell)
            except ValueError:
                raise InvalidUpload(
                    f"line {line}, column {name!r}: {cell!r} is not a number"
                ) from None
            if not math.isfinite(x):
                raise InvalidUpload(
                    f"line {line}, column {name!r}: {cell!r} is not a finite number"
                )
            numbers.append(x)
        values.append(numbers)
    if columns != assets:
        raise InvalidUpload(
            "the correlation columns of the header ("
            + ", ".join(columns)
            + ") must name the assets of the rows, in the same order ("
            + ", ".join(assets)
            + ")"
        )
    return {
        "weights": [r[0] for r in values],
        "expected_returns": [r[1] for r in values],
        "volatilities": [r[2] for r in values],
        "correlation": [r[3:] for r in values],
    }


# --- the job page and the driver ----------------------------------------------------------------


def _percent(key: str) -> str:
    return f"{float(key) * 100:g} %"


def figure(result: Mapping[str, Any], series: Mapping[str, tuple[list[float], list[float]]]) -> Any:
    fig = go.Figure()
    hist = result.get("histogram")
    if isinstance(hist, dict) and hist.get("counts"):
        e = hist["edges"]
        centres = [(a + b) / 2 for a, b in itertools.pairwise(e)]
        widths = [b - a for a, b in itertools.pairwise(e)]
        fig.add_trace(
            go.Bar(x=centres, y=hist["counts"], width=widths, name="scenarios", marker_line_width=0)
        )
        for key, value in (result.get("var") or {}).items():
            fig.add_vline(x=value, annotation_text=f"VaR {_percent(key)}", line_color="crimson")
        for key, value in (result.get("cvar") or {}).items():
            fig.add_vline(
                x=value,
                line_dash="dot",
                line_color="crimson",
                annotation_text=f"CVaR {_percent(key)}",
                # A line below VaR's labels, clear of the bars in the tail and of each other.
                annotation_position="top right",
                annotation_yshift=-18,
            )
        fig.update_layout(xaxis_title="loss", yaxis_title="scenarios", bargap=0, height=360)
        return fig
    for name, (steps, values) in sorted(series.items()):
        if name.startswith("var_") and steps:
            label = f"VaR {_percent(name[4:])}" if _is_number(name[4:]) else name
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=label))
    fig.update_layout(xaxis_title="scenarios", yaxis_title="value at risk", height=360)
    return fig


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def headline_of(result: Mapping[str, Any], params: Mapping[str, Any]) -> Headline:
    """One row per confidence level: VaR with its 95 % interval, CVaR, and the closed forms
    where the normal model has them."""
    var, cvar = result["var"], result["cvar"]
    low, high = result.get("var_ci_low") or {}, result.get("var_ci_high") or {}
    closed_var = result.get("var_closed_form") or {}
    closed_cvar = result.get("cvar_closed_form") or {}
    columns = ["Level", "VaR", "VaR 95 % interval", "CVaR (expected shortfall)"]
    if closed_var:
        columns += ["VaR, closed form", "CVaR, closed form"]

    def money(x: Any) -> str:
        return f"{float(x):,.0f}" if abs(float(x)) >= 100 else fmt.significant(float(x), 4)

    rows = []
    for level in sorted(var, key=float):
        row = [
            f"{100 * float(level):g} %",
            money(var[level]),
            f"{money(low[level])} – {money(high[level])}" if level in low and level in high else "",
            money(cvar[level]),
        ]
        if closed_var:
            row += [money(closed_var.get(level, math.nan)), money(closed_cvar.get(level, math.nan))]
        rows.append(row)
    figures = [
        Figure("Mean loss", money(result["mean_loss"]), "Negative: a mean gain"),
        Figure("Scenarios", f"{int(result['scenarios']):,}"),
    ]
    return Headline(figures, [Table("Value at risk, as losses", columns, rows)])


@register(
    "portfolio_risk",
    summarise=headline_of,
    headline=("mean_loss",),
    title="Portfolio risk",
    description="Monte Carlo value at risk and expected shortfall of a portfolio of assets with "
    "normal or Student-t returns.",
    params=PortfolioParams,
    stages=["plan", "simulate", "summarise"],
    weights=[1, 98, 1],
    figure=figure,
    stoppable=True,
    from_csv=from_csv,
    example={"scenarios": 5_800_000, "distribution": "student_t", "seed": 9},
)
def run(ctx: JobContext, p: PortfolioParams) -> dict[str, Any]:
    assert p.seed is not None  # filled by the model
    with ctx.stage("plan"):
        sizes = plan(p)
        params = p.model_dump()
        mean, scale, _ = exposure(params)
        ctx.log(
            "info",
            f"{p.scenarios:,} scenarios of {len(p.weights)} assets in {len(sizes)} chunks, "
            f"seed {p.seed}",
        )
    tally = Tally()

    def show() -> None:
        for level in p.levels:
            ctx.metric(f"var_{level_key(level)}", tally.n, mean + scale * tally.var(level))

    with ctx.stage("simulate"):
        done = ctx.map_chunks(
            simulate,
            [(params, n) for n in sizes],
            seed=p.seed,
            resume=lambda saved: resumable(saved, sizes),
            save=lambda _i, chunk: {**chunk, "of": len(sizes)},
            add=lambda _i, chunk: tally.add(chunk),
            show=show,
        )
    with ctx.stage("summarise"):
        # After "stop and keep", over the chunks that finished: fewer scenarios, wider intervals.
        result = summarise(p, done, len(sizes))
        top = level_key(max(p.levels))
        ctx.log(
            "info",
            f"VaR {_percent(top)}: {result['var'][top]:,.2f}, CVaR {result['cvar'][top]:,.2f}",
        )
    return result
