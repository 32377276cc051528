"""Portfolio value at risk against closed forms and SciPy's t quantiles, written here
independently of the kind's code."""

from __future__ import annotations

import itertools
import json
import math
from statistics import NormalDist
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import compute.kinds.portfolio_risk as pr
from compute import datasets, registry
from compute.kernels import portfolio_risk as kernel
from runlab.errors import InvalidParams, InvalidUpload
from tests.unit.fake_context import FakeContext
from tests.unit.kind_params import accepted_or_refused, assert_refused_on, refused

KIND = "portfolio_risk"
UNIT = NormalDist()
DAYS = 252

CORR3 = [[1.0, 0.4, -0.2], [0.4, 1.0, 0.25], [-0.2, 0.25, 1.0]]
BASE: dict[str, Any] = {
    "weights": [0.5, 0.3, 0.2],
    "expected_returns": [0.08, 0.05, 0.02],
    "volatilities": [0.25, 0.15, 0.05],
    "correlation": CORR3,
    "portfolio_value": 2_000_000.0,
    "horizon_days": 20,
}


def portfolio_sd(params: dict[str, Any]) -> tuple[float, float]:
    """(μ_p, σ_p) of the horizon's return, by explicit sums over the covariance."""
    w, mu, vol, c = (
        params[k] for k in ("weights", "expected_returns", "volatilities", "correlation")
    )
    h = params["horizon_days"] / DAYS
    n = len(w)
    var = sum(w[i] * w[j] * vol[i] * vol[j] * c[i][j] for i in range(n) for j in range(n))
    return h * sum(a * b for a, b in zip(w, mu, strict=True)), math.sqrt(max(0.0, var) * h)


def normal_var(params: dict[str, Any], level: float) -> float:
    m, s = portfolio_sd(params)
    return params["portfolio_value"] * (-m + s * UNIT.inv_cdf(level))


def normal_cvar(params: dict[str, Any], level: float) -> float:
    m, s = portfolio_sd(params)
    z = UNIT.inv_cdf(level)
    return params["portfolio_value"] * (-m + s * UNIT.pdf(z) / (1 - level))


def risk(**params: Any) -> dict[str, Any]:
    """The kind's whole computation, chunk by chunk, without Dask or the store."""
    p = pr.PortfolioParams.model_validate(registry.validate(KIND, params))
    sizes = pr.plan(p)
    seeds = np.random.SeedSequence(p.seed).spawn(len(sizes))
    chunks = {
        i: kernel.simulate(p.model_dump(), n, s)
        for i, (n, s) in enumerate(zip(sizes, seeds, strict=True))
    }
    return pr.summarise(p, chunks, len(sizes))


def plain(value: Any) -> bool:
    """JSON-ready plain Python values only: no numpy scalars, NaN or infinity."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or type(value) in (int, str, bool)


# --- numbers --------------------------------------------------------------------------------


def test_the_reference_formulas_hold_textbook_values() -> None:
    one = {"weights": [1.0], "expected_returns": [0.0], "volatilities": [1.0],
           "correlation": [[1.0]], "portfolio_value": 1.0, "horizon_days": DAYS}  # fmt: skip
    assert normal_var(one, 0.99) == pytest.approx(2.326348, abs=1e-6)
    assert normal_cvar(one, 0.975) == pytest.approx(2.337803, abs=1e-6)  # Basel's ES ≈ VaR 99 %
    # Two uncorrelated equal halves: σ_p = σ/√2.
    two = {**one, "weights": [0.5, 0.5], "expected_returns": [0.0, 0.0],
           "volatilities": [1.0, 1.0], "correlation": [[1.0, 0.0], [0.0, 1.0]]}  # fmt: skip
    assert portfolio_sd(two)[1] == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize("seed", [1, 2])
def test_normal_var_and_cvar_agree_with_the_closed_form_within_3_se(seed: int) -> None:
    n = 2_000_000
    got = risk(**BASE, levels=[0.95, 0.99, 0.999], scenarios=n, seed=seed)
    assert got["scenarios"] == n and got["partial"] is False and got["seed"] == seed
    _, sd = portfolio_sd(BASE)
    v = BASE["portfolio_value"]
    for level in (0.95, 0.99, 0.999):
        key = str(level)
        z = UNIT.inv_cdf(level)
        # The standard error of a sample quantile: √(α(1 − α)/n) / density at the quantile.
        se_var = math.sqrt(level * (1 - level) / n) / (UNIT.pdf(z) / (v * sd))
        assert abs(got["var"][key] - normal_var(BASE, level)) < 3 * se_var, (level, got)
        # Of the sample expected shortfall: (Var(X | X > q) + α (ES − q)²) / (n (1 − α)).
        lam = UNIT.pdf(z) / (1 - level)
        tail_var = 1 + z * lam - lam * lam
        se_cvar = v * sd * math.sqrt((tail_var + level * (lam - z) ** 2) / (n * (1 - level)))
        assert abs(got["cvar"][key] - normal_cvar(BASE, level)) < 3 * se_cvar, (level, got)
        assert got["var_closed_form"][key] == pytest.approx(normal_var(BASE, level), rel=1e-12)
        assert got["cvar_closed_form"][key] == pytest.approx(normal_cvar(BASE, level), rel=1e-12)
        # The distribution-free 95 % interval holds the VaR and is about ±1.96 SE wide.
        low, high = got["var_ci_low"][key], got["var_ci_high"][key]
        assert low < got["var"][key] < high
        assert (high - low) / 2 == pytest.approx(1.96 * se_var, rel=0.15)
    m, _ = portfolio_sd(BASE)
    assert abs(got["mean_loss"] + v * m) < 3 * v * sd / math.sqrt(n)


@pytest.mark.parametrize(
    ("weights", "expected_returns", "volatilities", "correlation", "dof", "seed"),
    [
        ([1.0], [0.06], [0.3], [[1.0]], 4.0, 7),
        ([1.0], [-0.02], [0.1], [[1.0]], 2.5, 8),
        # Several assets: the loss is again a scaled t, of σ_p (one t mixes them all).
        (BASE["weights"], BASE["expected_returns"], BASE["volatilities"], CORR3, 6.0, 9),
    ],
)
def test_student_t_var_and_cvar_agree_with_scipy_within_3_se(
    weights: list[float],
    expected_returns: list[float],
    volatilities: list[float],
    correlation: list[list[float]],
    dof: float,
    seed: int,
) -> None:
    n = 1_000_000
    params = {"weights": weights, "expected_returns": expected_returns,
              "volatilities": volatilities, "correlation": correlation,
              "portfolio_value": 1e6, "horizon_days": 10}  # fmt: skip
    got = risk(**params, distribution="student_t", dof=dof, levels=[0.95, 0.99], scenarios=n,
               seed=seed)  # fmt: skip
    assert "var_closed_form" not in got
    m, sd = portfolio_sd(params)
    scale = 1e6 * sd * math.sqrt((dof - 2) / dof)  # a unit-variance t, times σ_p
    for level in (0.95, 0.99):
        q = stats.t.ppf(level, dof)
        exact = 1e6 * -m + scale * q
        se = math.sqrt(level * (1 - level) / n) / (stats.t.pdf(q, dof) / scale)
        assert abs(got["var"][str(level)] - exact) < 3 * se, (level, got["var"], exact)
        # Expected shortfall of a t, and the spread of the tail beyond q, from SciPy.
        es = stats.t.expect(lambda x: x, args=(dof,), lb=q, conditional=True)
        second = stats.t.expect(lambda x: x * x, args=(dof,), lb=q, conditional=True)
        se_es = scale * math.sqrt((second - es**2 + level * (es - q) ** 2) / (n * (1 - level)))
        exact_es = 1e6 * -m + scale * es
        assert abs(got["cvar"][str(level)] - exact_es) < 3 * se_es, (level, got["cvar"], exact_es)


def test_a_singular_but_semi_definite_correlation_is_accepted_and_priced() -> None:
    # Assets 1 and 2 move together exactly: no Cholesky factor, but a valid distribution.
    corr = [[1.0, 1.0, 0.3], [1.0, 1.0, 0.3], [0.3, 0.3, 1.0]]
    assert min(np.linalg.eigvals(np.array(corr)).real) > -1e-12
    params = {**BASE, "correlation": corr}
    n = 1_000_000
    got = risk(**params, levels=[0.99], scenarios=n, seed=11)
    _, sd = portfolio_sd(params)
    z = UNIT.inv_cdf(0.99)
    se = math.sqrt(0.99 * 0.01 / n) / (UNIT.pdf(z) / (params["portfolio_value"] * sd))
    assert abs(got["var"]["0.99"] - normal_var(params, 0.99)) < 3 * se


def test_a_hedged_portfolio_of_perfectly_correlated_assets_loses_its_drift_only() -> None:
    # 1.5 × 0.1 − 0.5 × 0.3 = 0: the two positions cancel, scenario by scenario.
    params = {"weights": [1.5, -0.5], "expected_returns": [0.04, 0.1], "volatilities": [0.1, 0.3],
              "correlation": [[1.0, 1.0], [1.0, 1.0]], "portfolio_value": 1e6,
              "horizon_days": 126}  # fmt: skip
    got = risk(**params, scenarios=10_000, seed=3)
    drift = 1e6 * -(1.5 * 0.04 - 0.5 * 0.1) * 0.5
    for key in ("0.95", "0.99"):
        assert got["var"][key] == pytest.approx(drift, abs=1e-3)
        assert got["cvar"][key] == pytest.approx(drift, abs=1e-3)
    assert got["mean_loss"] == pytest.approx(drift, abs=1e-3)
    assert plain(got)


def test_the_grid_gives_the_quantiles_and_tail_means_of_the_very_losses_binned() -> None:
    # Heavy tails and a few losses far off the grid, to reach every branch of the binning.
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_t(2.2, 300_000), [3e9, 2e9, -4e9]])
    tally = pr.Tally()
    counts = np.zeros(pr.BINS, dtype=np.int64)
    fracs = np.zeros(pr.BINS, dtype=np.int64)
    outside = [[0.0, 0.0], [0.0, 0.0]]
    for part in np.array_split(x, 3):
        kernel._bin(part, counts, fracs, outside)
    nz = np.flatnonzero(counts)
    tally.add({"n": len(x), "at": np.diff(nz, prepend=0).tolist(), "counts": counts[nz].tolist(),
               "fracs": fracs[nz].tolist(), "sum": float(x.sum()),
               "below": [int(outside[0][0]), outside[0][1]],
               "above": [int(outside[1][0]), outside[1][1]]})  # fmt: skip
    assert outside == [[1.0, -4e9], [2.0, 5e9]]
    xs = np.sort(x)
    n = len(x)
    for level in (0.6, 0.95, 0.999, 0.9999):
        rank = level * n
        k = math.ceil(rank)
        near = xs[k - 1]  # the order statistic of rank ⌈nα⌉ shares the estimate's bin
        assert abs(tally.var(level) - near) <= 2e-3 * max(1.0, abs(near)), level
        tail = (math.fsum(xs[k:]) + (k - rank) * near) / (n - rank)
        assert tally.shortfall(level) == pytest.approx(tail, rel=1e-5), level
    assert tally.mean() == pytest.approx(x.mean(), rel=1e-12)


# --- determinism, chunks and the driver ---------------------------------------------------------


def test_the_same_seed_gives_the_same_result_bit_for_bit() -> None:
    a = risk(scenarios=50_000, seed=123, distribution="student_t")
    b = risk(scenarios=50_000, seed=123, distribution="student_t")
    assert json.dumps(a) == json.dumps(b)
    assert plain(a)
    assert risk(scenarios=50_000, seed=124, distribution="student_t")["var"] != a["var"]


def chunks_of(p: pr.PortfolioParams, sizes: list[int]) -> dict[int, dict[str, Any]]:
    seeds = np.random.SeedSequence(p.seed).spawn(len(sizes))
    return {
        i: kernel.simulate(p.model_dump(), n, s)
        for i, (n, s) in enumerate(zip(sizes, seeds, strict=True))
    }


def test_the_summary_does_not_depend_on_the_order_chunks_finish_in() -> None:
    p = pr.PortfolioParams.model_validate(registry.validate(KIND, {**BASE, "seed": 4}))
    chunks = chunks_of(p, [20_000] * 12)
    order = np.random.default_rng(0).permutation(12)
    shuffled = {int(i): chunks[int(i)] for i in order}
    assert json.dumps(pr.summarise(p, shuffled, 12)) == json.dumps(pr.summarise(p, chunks, 12))


def test_a_partial_summary_says_so_with_fewer_scenarios_and_wider_intervals() -> None:
    p = pr.PortfolioParams.model_validate(registry.validate(KIND, {**BASE, "seed": 6}))
    chunks = chunks_of(p, [50_000] * 8)
    whole = pr.summarise(p, chunks, 8)
    part = pr.summarise(p, {i: chunks[i] for i in (1, 4)}, 8)
    assert whole["partial"] is False and part["partial"] is True
    assert (whole["scenarios"], part["scenarios"]) == (400_000, 100_000)
    for key in whole["var"]:
        assert (part["var_ci_high"][key] - part["var_ci_low"][key]) > 1.5 * (
            whole["var_ci_high"][key] - whole["var_ci_low"][key]
        )


def test_chunks_are_small_json_and_checkpoints_are_checked_before_reuse() -> None:
    p = pr.PortfolioParams.model_validate(
        registry.validate(KIND, {"distribution": "student_t", "dof": 2.05, "seed": 1})
    )
    c = kernel.simulate(p.model_dump(), 400_000, np.random.SeedSequence(1))
    text = json.dumps(c, allow_nan=False)
    assert len(text) < 800_000
    back = json.loads(text)
    assert pr.valid_chunk(back, 400_000)
    assert not pr.valid_chunk(back, 400_001)
    assert not pr.valid_chunk({**back, "counts": [*back["counts"][:-1], 0]}, 400_000)
    assert not pr.valid_chunk({**back, "at": back["at"][:-1]}, 400_000)
    assert not pr.valid_chunk({**back, "fracs": [-1] * len(back["fracs"])}, 400_000)
    assert not pr.valid_chunk({**back, "sum": "x"}, 400_000)
    assert not pr.valid_chunk([], 400_000)


def test_the_plan_depends_on_the_parameters_only() -> None:
    p = pr.PortfolioParams(scenarios=100_000_000, seed=1)
    sizes = pr.plan(p)
    assert sum(sizes) == 100_000_000 and 2 <= len(sizes) <= pr.MAX_CHUNKS
    assert max(sizes) - min(sizes) <= 1 and pr.plan(p) == sizes
    assert pr.plan(pr.PortfolioParams(scenarios=1_000, seed=1)) == [1_000]


def test_the_driver_resumes_from_its_checkpoints_and_keeps_a_stopped_run_partial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pr, "TARGET_CHUNK", 100_000)  # several chunks from a small job
    params = {**BASE, "scenarios": 120_000, "seed": 8}
    p = registry.get(KIND).parse(params)
    assert isinstance(p, pr.PortfolioParams)
    sizes = pr.plan(p)
    assert len(sizes) == 5
    pure = pr.summarise(p, chunks_of(p, sizes), len(sizes))

    ctx = FakeContext()
    assert json.dumps(pr.run(ctx, p)) == json.dumps(pure)  # type: ignore[arg-type]
    assert ctx.stages == ["plan", "simulate", "summarise"]
    assert sorted(ctx.saved) == [f"chunk-{i}" for i in range(5)]
    assert {m[0] for m in ctx.metrics} == {"var_0.95", "var_0.99"}
    steps = [m[1] for m in ctx.metrics if m[0] == "var_0.99"]
    assert steps == sorted(steps) and steps[-1] == 120_000
    assert [m[2] for m in ctx.metrics if m[0] == "var_0.99"][-1] == pytest.approx(
        pure["var"]["0.99"], rel=1e-12
    )

    # A new attempt reuses two good checkpoints, recomputes a tampered one, gets the same.
    kept = {k: ctx.saved[k] for k in ("chunk-0", "chunk-3")}
    kept["chunk-1"] = {**ctx.saved["chunk-1"], "n": 1}
    again = FakeContext(kept)
    assert json.dumps(pr.run(again, p)) == json.dumps(pure)  # type: ignore[arg-type]
    assert sum(1 for m in again.metrics if m[0] == "var_0.95") == 4  # resumed + 3 chunks

    stopped = pr.run(FakeContext(stop_after=2), p)  # type: ignore[arg-type]
    assert stopped["partial"] is True
    assert stopped["scenarios"] == sizes[3] + sizes[4]  # the two that finished first


def test_the_figure_draws_the_histogram_with_its_lines_and_the_live_series() -> None:
    got = risk(scenarios=20_000, seed=2)
    hist = got["histogram"]
    assert len(hist["edges"]) == len(hist["counts"]) + 1 == pr.DISPLAY_BINS + 1
    assert sum(hist["counts"]) > 0.99 * 20_000
    assert hist["edges"][0] < got["var"]["0.95"] < got["var"]["0.99"] < hist["edges"][-1]
    fig = pr.figure(got, {})
    assert isinstance(fig, go.Figure) and isinstance(fig.data[0], go.Bar)
    assert len(fig.layout.shapes) == 4  # VaR and CVaR at both levels
    live = pr.figure({}, {"var_0.99": ([1e5, 2e5], [5.0, 6.0]), "other": ([1.0], [2.0])})
    assert [t.name for t in live.data] == ["VaR 99 %"]


# --- the parameters ------------------------------------------------------------------------------


def test_a_correlation_that_is_not_positive_semi_definite_is_refused_on_its_own() -> None:
    bad = [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]
    smallest = float(np.linalg.eigvalsh(np.array(bad, dtype=float))[0])
    assert smallest < -0.5
    with pytest.raises(InvalidParams) as caught:
        registry.get(KIND).parse({"correlation": bad})
    assert list(caught.value.errors) == ["correlation"]
    message = caught.value.errors["correlation"]
    assert f"is not positive semi-definite (smallest eigenvalue {smallest:.3g})" in message


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"correlation": [[1, 0.3, 0.1], [0.2, 1, 0.2], [0.1, 0.2, 1]]}, "correlation",
         "is not symmetric: entry (2, 1) is 0.2 but (1, 2) is 0.3"),
        ({"correlation": [[1, 0.3, 0.1], [0.3, 0.9, 0.2], [0.1, 0.2, 1]]}, "correlation",
         "must have ones on the diagonal; entry (2, 2) is 0.9"),
        ({"correlation": [[1, 0.3], [0.3, 1]]}, "correlation", "must be 3×3"),
        ({"correlation": [[1, 0.3, 0.1], [0.3, 1], [0.1, 0.2, 1]]}, "correlation", "must be 3×3"),
        ({"correlation": [[1, 1.5, 0], [1.5, 1, 0], [0, 0, 1]]}, "correlation",
         "entry (1, 2) is 1.5: each must be between -1 and 1"),
        ({"correlation": "1, 0.3"}, "correlation", "rows of numbers"),
        ({"weights": [0.5, 0.3, 0.1]}, "weights", "must add up to 1; they add up to 0.9"),
        ({"weights": [0.5, 0.5, float("nan")]}, "weights", "weight 3 is nan"),
        ({"weights": []}, "weights", "must hold 1 to 200 weights"),
        ({"weights": [0.5, "a", 0.5]}, "weights", "must be a list of numbers"),
        ({"weights": [True, 0.0, 0.0]}, "weights", "must be a list of numbers"),
        ({"weights": [0.5, 0.5]}, "expected_returns",
         "must hold one expected return per asset: 2 weight(s) but 3 value(s)"),
        ({"weights": [0.5, 0.5]}, "correlation", "must be 2×2"),
        ({"expected_returns": [0.05, 0.03]}, "expected_returns",
         "must hold one expected return per asset: 3 weight(s) but 2 value(s)"),
        ({"volatilities": [0.2, 0.1, 0.1, 0.1]}, "volatilities",
         "must hold one volatility per asset: 3 weight(s) but 4 value(s)"),
        ({"volatilities": [0.2, 0.0, 0.1]}, "volatilities",
         "volatility 2 is 0: each must be above 0"),
        ({"dof": 4.0}, "dof", "applies only to the Student-t distribution"),
        ({"distribution": "student_t", "dof": 2.0}, "dof", "above 2 and at most 1,000"),
        ({"distribution": "cauchy"}, "distribution", "must be one of normal, student_t"),
        ({"levels": [0.95, 0.95]}, "levels", "holds 0.95 more than once"),
        ({"levels": [0.5]}, "levels", "each must be above 0.5 and at most 0.9999"),
        ({"levels": [0.99999]}, "levels", "each must be above 0.5 and at most 0.9999"),
        ({"levels": [0.999], "scenarios": 5_000}, "scenarios", "must be at least 10,000"),
        ({"scenarios": 999}, "scenarios", "between 1,000 and 100,000,000"),
        ({"portfolio_value": 0.0}, "portfolio_value", "above 0 and at most"),
        ({"horizon_days": 2521}, "horizon_days", "between 1 and 2,520"),
        ({"horizon_days": 1.5}, "horizon_days", "an integer"),
    ],
)  # fmt: skip
def test_bad_parameters_get_a_message_on_their_field(
    params: dict[str, Any], field: str, message: str
) -> None:
    assert_refused_on(KIND, params, field, message)


def test_defaults_validate_and_integers_are_taken_where_numbers_are_expected() -> None:
    clean = registry.validate(KIND, {})
    assert clean["dof"] is None and isinstance(clean["seed"], int)
    assert registry.validate(KIND, clean) == clean  # what is stored validates to itself
    t = registry.validate(KIND, {"distribution": "student_t"})
    assert t["dof"] == 5.0
    ints = registry.validate(
        KIND,
        {"weights": [1, 0], "expected_returns": [0, 0], "volatilities": [1, 2],
         "correlation": [[1, 0], [0, 1]], "portfolio_value": 100, "levels": [0.99]},
    )  # fmt: skip
    assert ints["weights"] == [1.0, 0.0] and all(type(x) is float for x in ints["weights"])
    assert pr.PortfolioParams.model_validate(ints).correlation == [[1.0, 0.0], [0.0, 1.0]]


# --- the CSV --------------------------------------------------------------------------------------

CSV = b"""asset,weight,expected_return,volatility,stocks,bonds,gold
stocks,0.5,0.08,0.25,1,0.4,-0.2
bonds,0.3,0.05,0.15,0.4,1,0.25
gold,0.2,0.02,0.05,-0.2,0.25,1
"""


def test_a_csv_fills_the_portfolio_and_round_trips() -> None:
    got = pr.from_csv(CSV)
    assert got == {
        k: BASE[k] for k in ("weights", "expected_returns", "volatilities", "correlation")
    }
    assert registry.validate(KIND, got)["correlation"] == CORR3
    # Written back out, the same numbers come in again (semicolons, BOM and CRLF too).
    header = ";".join(["Asset", "Weight", "Expected_Return", "Volatility", "a", "b", "c"])
    rows = [
        ";".join(["abc"[i], *(repr(v) for v in (got["weights"][i], got["expected_returns"][i],
                                             got["volatilities"][i], *got["correlation"][i]))])
        for i in range(3)
    ]  # fmt: skip
    data = ("\ufeff" + "\r\n".join([header, *rows, ""])).encode()
    assert pr.from_csv(data) == got
    assert (
        pr.from_csv.__doc__ and "asset, weight, expected_return, volatility" in pr.from_csv.__doc__
    )


def test_a_csv_with_a_correlation_that_is_not_semi_definite_is_refused_by_the_model() -> None:
    data = b"asset,weight,expected_return,volatility,a,b,c\n" + (
        b"a,0.4,0.05,0.2,1,0.9,-0.9\nb,0.3,0.05,0.2,0.9,1,0.9\nc,0.3,0.05,0.2,-0.9,0.9,1\n"
    )
    assert "is not positive semi-definite" in refused(KIND, pr.from_csv(data))["correlation"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a CSV file: it holds binary data"),
        (b"asset,weight\n\xff\xfe", "not a CSV file: it is not UTF-8 text"),
        (b"asset,weight,volatility,a\na,1,0.2,1\n", "the header has no column 'expected_return'"),
        (b"name,weight,expected_return,volatility,a\na,1,0.1,0.2,1\n", "no column 'asset'"),
        (b"asset,weight,expected_return,volatility,a\n", "the file has a header but no rows"),
        (b"asset,weight,expected_return,volatility,a,b\na,0.5,0.1,0.2,1,0\nb,0.5,x%,0.2,0,1\n",
         "line 3, column 'expected_return': 'x%' is not a number"),
        (b"\nasset,weight,expected_return,volatility,a,b\n\na,0.5,0.1,0.2,1,0\n  \n"
         b"b,0.5,x%,0.2,0,1\n",
         "line 6, column 'expected_return': 'x%' is not a number"),
        (b"asset,weight,expected_return,volatility,a,b\na,0.5,0.1,0.2,1,0\nb,0.5,0.1,0.2,nan,1\n",
         "line 3, column 'a': 'nan' is not a finite number"),
        (b"asset,weight,expected_return,volatility,a,b\na,0.5,0.1,0.2,1,0\nc,0.5,0.1,0.2,0,1\n",
         "the correlation columns of the header (a, b) must name the assets of the rows, in the "
         "same order (a, c)"),
        (b"asset,weight,expected_return,volatility,a,b\na,0.5,0.1,0.2,1\n",
         "line 2, column 'b' has no value"),
        (b"asset,weight,expected_return,volatility,a,b\na,0.5,0.1,0.2,1,0\nb,0.5,0.1,0.2,0,1,2\n",
         "Expected 6 fields in line 3, saw 7"),
        (b"asset,weight,expected_return,volatility,a,a\na,0.5,0.1,0.2,1,0\na,0.5,0.1,0.2,0,1\n",
         "line 3: asset 'a' appears more than once"),
        (b"asset,weight,expected_return,volatility,a\n" + b"a,1,0,0.1,1\n" * 201,
         "the file has 201 assets; the limit is 200"),
    ],
)  # fmt: skip
def test_a_bad_csv_is_refused_with_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(InvalidUpload) as caught:
        pr.from_csv(data)
    assert message in str(caught.value)


def test_a_csv_over_the_upload_limit_is_refused_with_its_size() -> None:
    data = b"asset,weight\n" + b"a,1\n" * (datasets.MAX_BYTES // 4)
    with pytest.raises(InvalidUpload) as caught:
        pr.from_csv(data)
    assert datasets.too_big(len(data)) in str(caught.value)


# --- any input ------------------------------------------------------------------------------------

numbers = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True))
values = st.one_of(
    st.none(), st.booleans(), numbers, st.text(max_size=5),
    st.lists(numbers, max_size=4), st.lists(st.lists(numbers, max_size=4), max_size=4),
    st.sampled_from([[0.5, 0.5], [1.0], [[1.0, 0.5], [0.5, 1.0]], [[1]], [0.9, 0.99],
                     "normal", "student_t", [0.1, 0.2]]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*pr.PortfolioParams.model_fields, "bogus"]), values,
                       max_size=6))  # fmt: skip
def test_any_input_is_either_accepted_or_refused_field_by_field(params: dict[str, Any]) -> None:
    accepted_or_refused(KIND, params)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4).flatmap(
    lambda n: st.lists(st.floats(-1, 1), min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2)
    .map(lambda upper, n=n: (n, upper))
))  # fmt: skip
def test_a_symmetric_unit_diagonal_matrix_is_accepted_exactly_when_semi_definite(
    case: tuple[int, list[float]],
) -> None:
    n, upper = case
    c = np.eye(n)
    c[np.triu_indices(n, 1)] = upper
    c = np.triu(c) + np.triu(c, 1).T
    params = {"weights": [1.0] + [0.0] * (n - 1), "expected_returns": [0.0] * n,
              "volatilities": [0.1] * n, "correlation": c.tolist()}  # fmt: skip
    # Semi-definite: every principal minor is ≥ 0 (Sylvester), with a rounding allowance.
    minors = [
        np.linalg.det(c[np.ix_(s, s)])
        for k in range(1, n + 1)
        for s in map(list, itertools.combinations(range(n), k))
    ]
    clearly_psd = min(minors) > 1e-6
    clearly_not = min(minors) < -1e-6
    try:
        registry.validate(KIND, params)
    except InvalidParams as exc:
        assert list(exc.errors) == ["correlation"]
        assert "positive semi-definite" in exc.errors["correlation"]
        assert not clearly_psd
    else:
        assert not clearly_not
