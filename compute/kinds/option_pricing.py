"""Price an option by Monte Carlo under geometric Brownian motion, in seeded chunks on Dask.

European, Asian (arithmetic average) and up-and-out barrier calls. Barriers are monitored
continuously: between two simulated dates a path survives with the Brownian-bridge probability
of not having touched the barrier, so the estimate has no discretisation bias at any `steps`.

The result's `bs_price` is the closed form under the same Black–Scholes dynamics, where one
exists: Black–Scholes for the European options, the continuously monitored up-and-out call of
Merton (1973) and Reiner and Rubinstein (1991) for the barrier, none for the arithmetic Asians.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, Literal

import plotly.graph_objects as go
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from compute.context import JobContext
from compute.headline import Figure, Headline
from compute.kernels.option_pricing import simulate
from compute.registry import register
from compute.seeds import Seed
from runlab import format as fmt

OptionType = Literal[
    "european_call", "european_put", "asian_call", "asian_put", "barrier_up_out_call"
]
PATH_KINDS = ("asian_call", "asian_put", "barrier_up_out_call")
MAX_PATHS = 10**9
BUDGET = 2 * 10**11  # paths × steps: hours on a laptop, so a typo cannot queue a month of work
TARGET_CHUNK = 20_000_000  # normal draws per Dask task: about half a second of one core
MAX_CHUNKS = 10_000
Z95 = 1.959963984540054


class OptionParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    option_type: OptionType = Field(
        "european_call",
        title="Option type",
        json_schema_extra={
            "labels": {
                "european_call": "European call",
                "european_put": "European put",
                "asian_call": "Asian call (arithmetic average)",
                "asian_put": "Asian put (arithmetic average)",
                "barrier_up_out_call": "Up-and-out barrier call",
            }
        },
        description="What kind of option to price.",
    )
    S: float = Field(
        100.0, gt=0, le=1e9, allow_inf_nan=False, title="Spot S", description="Spot price today."
    )
    K: float = Field(
        100.0, gt=0, le=1e9, allow_inf_nan=False, title="Strike K", description="Strike price."
    )
    r: float = Field(
        0.05,
        ge=-0.5,
        le=1.0,
        allow_inf_nan=False,
        title="Rate r (continuous)",
        description="Risk-free rate, continuous.",
    )
    sigma: float = Field(
        0.2,
        gt=0,
        le=5.0,
        allow_inf_nan=False,
        title="Volatility σ (per year)",
        description="Volatility, per year.",
    )
    T: float = Field(
        1.0,
        gt=0,
        le=50.0,
        allow_inf_nan=False,
        title="Maturity T (years)",
        description="Maturity in years.",
    )
    paths: int = Field(
        1_000_000,
        ge=1_000,
        le=MAX_PATHS,
        title="Paths",
        description="Simulated paths (antithetic pairs count 2).",
    )
    steps: int | None = Field(
        None,
        ge=1,
        le=10_000,
        validate_default=True,
        json_schema_extra={"when": {"option_type": list(PATH_KINDS)}},
        title="Time steps",
        description="Dates simulated per path, for Asian and barrier options (default 252).",
    )
    barrier: float | None = Field(
        None,
        gt=0,
        le=1e9,
        allow_inf_nan=False,
        validate_default=True,
        json_schema_extra={"when": {"option_type": ["barrier_up_out_call"]}},
        title="Barrier B",
        description="Up-and-out level, above the spot; only for the barrier option.",
    )
    antithetic: bool = Field(
        True, title="Antithetic variates", description="Pair each path with its mirror image."
    )
    seed: Seed = None

    @field_validator("steps")
    @classmethod
    def _steps_apply(cls, v: int | None, info: ValidationInfo) -> int | None:
        kind, paths = info.data.get("option_type"), info.data.get("paths")
        if kind is None:
            return v
        if kind not in PATH_KINDS:
            if v is not None:
                raise ValueError("applies only to Asian and barrier options")
            return None
        v = 252 if v is None else v
        if isinstance(paths, int) and paths * v > BUDGET:
            raise ValueError(f"paths × steps must not exceed {BUDGET:.0e}")
        return v

    @field_validator("barrier")
    @classmethod
    def _barrier_applies(cls, v: float | None, info: ValidationInfo) -> float | None:
        kind, spot = info.data.get("option_type"), info.data.get("S")
        if kind == "barrier_up_out_call":
            if v is None:
                raise ValueError("is required for the barrier option")
            if isinstance(spot, float) and v <= spot:
                raise ValueError(f"must be above the spot S ({spot:g})")
        elif kind is not None and v is not None:
            raise ValueError("applies only to the barrier option")
        return v


def plan(p: OptionParams) -> list[int]:
    """Paths per chunk: a function of the parameters only, never of the cluster, so that the
    same parameters and seed give the same numbers on any number of workers."""
    steps = p.steps or 1
    chunks = min(MAX_CHUNKS, max(1, math.ceil(p.paths * steps / TARGET_CHUNK)))
    pairs = p.paths // 2 if p.antithetic else p.paths
    chunks = min(chunks, pairs)
    base, extra = divmod(pairs, chunks)
    unit = 2 if p.antithetic else 1
    return [unit * (base + (1 if i < extra else 0)) for i in range(chunks)]


def summarise(chunks: list[list[float]]) -> dict[str, float]:
    """Price, standard error, 95 % interval and delta from chunk sums, in any order.

    `math.fsum` rounds exactly, so the result does not depend on which chunk came back first.
    """
    n = math.fsum(c[0] for c in chunks)
    s1 = math.fsum(c[1] for c in chunks)
    s2 = math.fsum(c[2] for c in chunks)
    price = s1 / n
    var = max(0.0, (s2 - n * price * price) / (n - 1)) if n > 1 else 0.0
    se = math.sqrt(var / n)
    return {
        "price": price,
        "standard_error": se,
        "ci_low": price - Z95 * se,
        "ci_high": price + Z95 * se,
        "delta": math.fsum(c[3] for c in chunks) / n,
    }


def black_scholes(option_type: str, S: float, K: float, r: float, sigma: float, T: float) -> float:
    """The closed-form price of a European call or put."""
    sq = sigma * math.sqrt(T)
    d1 = (math.log(S / K) + (r + 0.5 * sigma**2) * T) / sq
    d2 = d1 - sq
    n = NormalDist().cdf  # the standard library's: no SciPy import on the app's first page
    if option_type == "european_call":
        return S * n(d1) - K * math.exp(-r * T) * n(d2)
    return K * math.exp(-r * T) * n(-d2) - S * n(-d1)


def _log_n(x: float) -> float:
    """log Φ(x), accurate in the far lower tail, where Φ itself underflows (and where
    `NormalDist.cdf`, computed as 1 + erf, already rounds to 0 below about −8)."""
    if x > -37.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    # Mills' ratio: Φ(x) = φ(x)/|x| · (1 − 1/x² + 3/x⁴ − 15/x⁶ …), the next term below 1e-10.
    u = 1.0 / (x * x)
    return (
        -0.5 * x * x
        - math.log(-x * math.sqrt(2.0 * math.pi))
        + math.log1p(-u + 3 * u**2 - 15 * u**3)
    )


def up_and_out_call(S: float, K: float, H: float, r: float, sigma: float, T: float) -> float:
    """The closed-form price of an up-and-out call, the barrier H watched continuously, no
    rebate, no dividend: c_uo = c − c_ui (Hull, Options, Futures and Other Derivatives, "Barrier
    options"; Reiner and Rubinstein 1991).

    With H ≤ K the option is worth nothing: a path alive at T ends below H, so below K. The
    reflection terms (H/S)^(2λ)·Φ(…) are summed in logarithms: with a small σ the power alone
    overflows a float while the product stays below S.
    """
    if H <= K:
        return 0.0
    v = sigma * math.sqrt(T)
    lam = (r + 0.5 * sigma**2) / sigma**2
    a = math.log(H / S)
    x1 = math.log(S / H) / v + lam * v
    y1 = a / v + lam * v
    y = math.log(H * H / (S * K)) / v + lam * v
    df = K * math.exp(-r * T)

    def n(x: float) -> float:
        return math.exp(_log_n(x))

    def reflected(power: float, x: float) -> float:
        return math.exp(power * a + _log_n(x))  # (H/S)^power · Φ(x)

    c_ui = (
        S * n(x1)
        - df * n(x1 - v)
        - S * (reflected(2 * lam, -y) - reflected(2 * lam, -y1))
        + df * (reflected(2 * lam - 2, -y + v) - reflected(2 * lam - 2, -y1 + v))
    )
    c = black_scholes("european_call", S, K, r, sigma, T)
    return max(0.0, c - c_ui)  # a payoff that is never negative; rounding can dip below 0


def closed_form(p: OptionParams) -> float | None:
    """The exact price that the Monte Carlo estimates, where a formula gives one: the
    arithmetic-average Asian options have none."""
    if p.option_type.startswith("european"):
        return black_scholes(p.option_type, p.S, p.K, p.r, p.sigma, p.T)
    if p.option_type == "barrier_up_out_call":
        assert p.barrier is not None  # required by the model
        return up_and_out_call(p.S, p.K, p.barrier, p.r, p.sigma, p.T)
    return None


def figure(result: Mapping[str, Any], series: Mapping[str, tuple[list[float], list[float]]]) -> Any:
    steps, price = series.get("price", ([], []))
    _, low = series.get("ci_low", ([], []))
    _, high = series.get("ci_high", ([], []))
    if not steps:
        return None  # nothing drawn as it ran: the headline says it all
    fig = go.Figure()
    banded = len(low) == len(steps) == len(high)
    if banded and len(steps) > 1:
        fig.add_trace(go.Scatter(x=steps, y=high, mode="lines", line_width=0, showlegend=False))
        fig.add_trace(
            go.Scatter(
                x=steps, y=low, mode="lines", line_width=0, fill="tonexty", name="95 % interval"
            )
        )
    # One point (a job done in one chunk): the price with its interval as an error bar.
    bar = (
        {
            "type": "data",
            "symmetric": False,
            "array": [high[0] - price[0]],
            "arrayminus": [price[0] - low[0]],
        }
        if banded and len(steps) == 1
        else None
    )
    fig.add_trace(go.Scatter(x=steps, y=price, mode="lines+markers", name="price", error_y=bar))
    if result.get("bs_price") is not None:
        # The result does not say which formula gave it: a label true of both.
        fig.add_hline(y=result["bs_price"], line_dash="dot", annotation_text="closed form")
    fig.update_layout(xaxis_title="paths", yaxis_title="price", height=360)
    return fig


def resumable(saved: Mapping[str, Any], sizes: list[int], antithetic: bool) -> dict[int, list]:
    """Chunk index → sums, from checkpoints that hold as many samples as this plan's chunk."""
    out: dict[int, list] = {}
    for i, n in enumerate(sizes):
        c = saved.get(f"chunk-{i}")
        if isinstance(c, list) and len(c) == 4 and c[0] == (n // 2 if antithetic else n):
            out[i] = c
    return out


CLOSED_BARRIER = (
    "Closed-form price (continuous barrier)",
    "Reiner–Rubinstein: the barrier watched at every instant, as the Brownian-bridge estimate "
    "does at any number of time steps; no rebate.",
)


def headline_of(result: Mapping[str, Any], params: Mapping[str, Any]) -> Headline:
    """The price ± its standard error, its 95 % interval and delta, and the closed-form price
    with the Monte Carlo price's z-score where one exists."""
    price, se = float(result["price"]), float(result["standard_error"])
    d = fmt.decimals_for(se)
    figures = [
        Figure("Price", fmt.measured(price, se), "± one standard error"),
        Figure("95 % interval", f"{result['ci_low']:,.{d}f} – {result['ci_high']:,.{d}f}"),
        Figure("Delta", fmt.significant(float(result["delta"]), 4), "∂price/∂S"),
    ]
    closed = result.get("bs_price")
    if isinstance(closed, int | float):
        if params.get("option_type") == "barrier_up_out_call":
            label, why = CLOSED_BARRIER
        else:
            label, why = "Black–Scholes price", ""
        figures.append(Figure(label, f"{closed:,.{max(d, 4)}f}", why))
        if se > 0:
            figures.append(
                Figure(
                    "z-score against it",
                    f"{(price - closed) / se:+.2f}",
                    "(Monte Carlo − closed form) / standard error: within ±2, 19 times in 20.",
                )
            )
    figures.append(Figure("Paths", f"{int(result['paths']):,}"))
    return Headline(figures)


@register(
    "option_pricing",
    summarise=headline_of,
    headline=("price", "standard_error", "delta"),
    title="Option pricing",
    description="Monte Carlo price, error and delta of European, Asian and barrier options.",
    params=OptionParams,
    stages=["plan", "simulate", "summarise"],
    weights=[1, 98, 1],
    figure=figure,
    stoppable=True,
    example={"option_type": "asian_call", "paths": 200_002, "steps": 201, "seed": 17},
)
def run(ctx: JobContext, p: OptionParams) -> dict[str, Any]:
    assert p.seed is not None  # filled by the model
    with ctx.stage("plan"):
        sizes = plan(p)
        ctx.log("info", f"{p.paths:,} paths in {len(sizes)} chunks, seed {p.seed}")
    params = p.model_dump()
    # Running totals for the live chart; the result sums the chunks exactly, at the end.
    running = [0.0] * 4
    paths = 0

    def add(i: int, sums: list[float]) -> None:
        nonlocal running, paths
        running = [a + b for a, b in zip(running, sums, strict=True)]
        paths += sizes[i]

    def show() -> None:
        if running[0] > 1:
            now = summarise([running])
            for name in ("price", "ci_low", "ci_high"):
                ctx.metric(name, paths, now[name])

    with ctx.stage("simulate"):
        done = ctx.map_chunks(
            simulate,
            [(params, n) for n in sizes],
            seed=p.seed,
            resume=lambda saved: resumable(saved, sizes, p.antithetic),
            add=add,
            show=show,
        )
    with ctx.stage("summarise"):
        # After "stop and keep", over the chunks that finished: fewer paths, a wider error.
        result: dict[str, Any] = summarise(list(done.values()))
        closed = closed_form(p)
        if closed is not None:
            result["bs_price"] = closed
        ctx.log("info", f"price {result['price']:.6g} ± {result['standard_error']:.2g}")
    # An odd path out has no mirror, so `paths` counts what was simulated.
    kept = sum(sizes[i] for i in done)
    return {**result, "paths": kept, "partial": len(done) < len(sizes), "seed": p.seed}
