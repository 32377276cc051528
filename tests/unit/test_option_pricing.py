"""Option pricing against closed forms written here, independently of the kind's code."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compute import registry
from compute.kernels.option_pricing import simulate
from compute.kinds.option_pricing import (
    OptionParams,
    black_scholes,
    figure,
    headline_of,
    plan,
    summarise,
)
from compute.kinds.option_pricing import up_and_out_call as kind_up_and_out
from tests.unit.fake_context import FakeContext
from tests.unit.kind_params import accepted_or_refused, assert_refused_on

KIND = "option_pricing"
N = NormalDist().cdf


def bs(call: bool, S: float, K: float, r: float, s: float, T: float) -> float:
    d1 = (math.log(S / K) + (r + s * s / 2) * T) / (s * math.sqrt(T))
    d2 = d1 - s * math.sqrt(T)
    if call:
        return S * N(d1) - K * math.exp(-r * T) * N(d2)
    return K * math.exp(-r * T) * N(-d2) - S * N(-d1)


def up_and_out_call(S: float, K: float, H: float, r: float, s: float, T: float) -> float:
    """Reiner and Rubinstein (1991), continuous monitoring, no rebate, K < H."""
    sq = s * math.sqrt(T)
    mu = (r - s * s / 2) / (s * s)
    x1 = math.log(S / K) / sq + (1 + mu) * sq
    x2 = math.log(S / H) / sq + (1 + mu) * sq
    y1 = math.log(H * H / (S * K)) / sq + (1 + mu) * sq
    y2 = math.log(H / S) / sq + (1 + mu) * sq
    df = math.exp(-r * T)
    a = S * N(x1) - K * df * N(x1 - sq)
    b = S * N(x2) - K * df * N(x2 - sq)
    c = S * (H / S) ** (2 * (mu + 1)) * N(-y1) - K * df * (H / S) ** (2 * mu) * N(-y1 + sq)
    d = S * (H / S) ** (2 * (mu + 1)) * N(-y2) - K * df * (H / S) ** (2 * mu) * N(-y2 + sq)
    return a - b + c - d


def price(**params: Any) -> dict[str, float]:
    """The kind's whole computation, chunk by chunk, without Dask or the store."""
    p = OptionParams.model_validate(registry.validate(KIND, params))
    sizes = plan(p)
    seeds = np.random.SeedSequence(p.seed).spawn(len(sizes))
    return summarise([simulate(p.model_dump(), n, s) for n, s in zip(sizes, seeds, strict=True)])


def test_the_reference_formulas_hold_textbook_values_and_parity() -> None:
    assert bs(True, 100, 100, 0.05, 0.2, 1) == pytest.approx(10.4506, abs=1e-4)
    assert bs(False, 100, 100, 0.05, 0.2, 1) == pytest.approx(5.5735, abs=1e-4)
    # As the barrier moves away, the knock-out call becomes the plain call.
    assert up_and_out_call(100, 100, 1e4, 0.05, 0.2, 1) == pytest.approx(
        bs(True, 100, 100, 0.05, 0.2, 1)
    )
    assert black_scholes("european_call", 100, 110, 0.03, 0.3, 2) == pytest.approx(
        bs(True, 100, 110, 0.03, 0.3, 2), rel=1e-12
    )


@pytest.mark.parametrize("option_type", ["european_call", "european_put"])
@pytest.mark.parametrize("seed", [1, 2])
def test_european_prices_agree_with_black_scholes_within_3_se(option_type: str, seed: int) -> None:
    got = price(
        option_type=option_type,
        S=95.0,
        K=100.0,
        r=0.03,
        sigma=0.25,
        T=0.75,
        paths=400_000,
        seed=seed,
    )
    exact = bs(option_type.endswith("call"), 95.0, 100.0, 0.03, 0.25, 0.75)
    assert abs(got["price"] - exact) < 3 * got["standard_error"], (got, exact)
    assert got["ci_low"] < got["price"] < got["ci_high"]


def test_up_and_out_call_agrees_with_the_closed_form_within_3_se_at_coarse_dates() -> None:
    # The Brownian-bridge survival makes 20 dates price the continuously monitored option.
    got = price(
        option_type="barrier_up_out_call", S=100.0, K=100.0, barrier=130.0,
        r=0.05, sigma=0.2, T=1.0, steps=20, paths=400_000, seed=5,
    )  # fmt: skip
    exact = up_and_out_call(100.0, 100.0, 130.0, 0.05, 0.2, 1.0)
    assert abs(got["price"] - exact) < 3 * got["standard_error"], (got, exact)


def up_and_out_by_quadrature(S: float, K: float, H: float, r: float, s: float, T: float) -> float:
    """The discounted payoff integrated against the density of log(S_T/S) on paths that never
    reached log(H/S) (the reflection principle for Brownian motion with drift), by the
    trapezoid rule: a reference that shares no algebra with either closed form."""
    mu, b, sd = r - s * s / 2, math.log(H / S), s * math.sqrt(T)
    x = np.linspace(math.log(K / S), b, 400_001)

    def phi(z: np.ndarray) -> np.ndarray:
        return np.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    alive = (
        phi((x - mu * T) / sd) - math.exp(2 * mu * b / s**2) * phi((x - 2 * b - mu * T) / sd)
    ) / sd
    return math.exp(-r * T) * float(np.trapezoid((S * np.exp(x) - K) * alive, x))


# El Babsiri and Noel, "Simulating path-dependent options: a new approach", Journal of
# Derivatives 6(2), 1998, as tabulated in QuantLib's test-suite/barrieroption.cpp: up-and-in
# calls with S = K = 100, H = 110, r = 0.05, dividend yield q = 0.02, T = 1, no rebate.
BABSIRI_UP_IN = [
    (0.10, 4.79148),
    (0.15, 7.08268),
    (0.20, 9.11008),
    (0.25, 11.06148),
    (0.30, 12.98351),
]


@pytest.mark.parametrize(("sigma", "up_in"), BABSIRI_UP_IN)
def test_the_up_and_out_closed_form_gives_el_babsiri_and_noels_published_values(
    sigma: float, up_in: float
) -> None:
    # With a yield q an option is worth e^(−qT) times its value at rate r − q and no yield, and
    # out = plain − in: the published up-and-in fixes a dividend-free up-and-out at r = 0.03.
    q, T = 0.02, 1.0
    published_out = bs(True, 100, 100, 0.05 - q, sigma, T) - math.exp(q * T) * up_in
    assert kind_up_and_out(100, 100, 110, 0.05 - q, sigma, T) == pytest.approx(
        published_out,
        abs=2e-5,  # the table's five decimals
    )


@pytest.mark.parametrize(
    ("S", "K", "H", "r", "s", "T"),
    [
        (100.0, 100.0, 130.0, 0.05, 0.2, 1.0),
        (100.0, 90.0, 110.0, -0.01, 0.4, 2.0),
        (50.0, 45.0, 60.0, 0.3, 1.5, 0.25),
        # (H/S)^(2λ) = 1e41 times tails that NormalDist.cdf (1 + erf) rounds off: a plain formula
        # says 20.23, the logarithms keep 18.25.
        (100.0, 100.0, 1000.0, 0.05, 0.05, 50.0),
    ],
)  # fmt: skip
def test_the_up_and_out_closed_form_agrees_with_quadrature_and_reiner_rubinstein(
    S: float, K: float, H: float, r: float, s: float, T: float
) -> None:
    got = kind_up_and_out(S, K, H, r, s, T)
    assert got == pytest.approx(up_and_out_by_quadrature(S, K, H, r, s, T), rel=1e-8)
    if s > 0.1:  # where the plain NormalDist reference above keeps its precision
        assert got == pytest.approx(up_and_out_call(S, K, H, r, s, T), rel=1e-10)


def run_kind(**params: Any) -> dict[str, Any]:
    """The kind's driver on the in-memory stand-in context, as a job would run it."""
    kind = registry.get(KIND)
    return dict(kind.run(FakeContext(), kind.parse({"seed": 7, **params})))


BARRIER = {"option_type": "barrier_up_out_call", "S": 100.0, "K": 100.0, "barrier": 130.0,
           "r": 0.05, "sigma": 0.2, "T": 1.0}  # fmt: skip


def test_an_up_and_out_call_with_the_barrier_at_or_below_the_strike_is_worth_nothing() -> None:
    # Alive at T means below H all along, so below K: the payoff is 0 on every path.
    assert kind_up_and_out(100.0, 120.0, 110.0, 0.05, 0.2, 1.0) == 0.0
    assert kind_up_and_out(100.0, 110.0, 110.0, 0.05, 0.2, 1.0) == 0.0
    assert 0 < kind_up_and_out(100.0, 110.0, 110.001, 0.05, 0.2, 1.0) < 1e-6  # continuous at H = K
    far = kind_up_and_out(100.0, 100.0, 1e5, 0.05, 0.2, 1.0)
    assert far == pytest.approx(bs(True, 100.0, 100.0, 0.05, 0.2, 1.0), rel=1e-12)
    job = run_kind(option_type="barrier_up_out_call", K=120.0, barrier=110.0, steps=10, paths=2_000)
    assert job["bs_price"] == 0.0 and job["price"] == 0.0
    shown = {
        f.label: f.text for f in headline_of(job, {"option_type": "barrier_up_out_call"}).figures
    }
    assert float(shown["Closed-form price (continuous barrier)"]) == 0.0
    assert "z-score against it" not in shown  # no error to divide by


def test_a_barrier_job_shows_the_continuous_closed_form_and_its_z_score() -> None:
    job = run_kind(**BARRIER, steps=20, paths=200_000)
    exact = up_and_out_call(100.0, 100.0, 130.0, 0.05, 0.2, 1.0)  # 3.3329
    assert job["bs_price"] == pytest.approx(exact, rel=1e-12)
    z = (job["price"] - exact) / job["standard_error"]
    assert abs(z) < 3, job  # the bridge-corrected estimate prices the continuous barrier

    shown = {f.label: f.text for f in headline_of(job, BARRIER).figures}
    assert shown["Closed-form price (continuous barrier)"] == f"{exact:,.4f}"
    assert shown["z-score against it"] == f"{z:+.2f}"
    assert "Black–Scholes price" not in shown

    fig = figure(job, {"price": ([200_000], [job["price"]])})
    line = fig.layout.shapes[0]
    assert line.y0 == line.y1 == job["bs_price"]
    assert fig.layout.annotations[0].text == "closed form"


def test_an_asian_job_has_no_closed_form_and_a_european_keeps_black_scholes() -> None:
    asian = run_kind(option_type="asian_call", steps=10, paths=2_000)
    assert "bs_price" not in asian
    assert [f.label for f in headline_of(asian, {"option_type": "asian_call"}).figures] == [
        "Price", "95 % interval", "Delta", "Paths",
    ]  # fmt: skip
    european = run_kind(option_type="european_put", paths=2_000)
    assert european["bs_price"] == pytest.approx(bs(False, 100, 100, 0.05, 0.2, 1), rel=1e-12)
    labels = [f.label for f in headline_of(european, {"option_type": "european_put"}).figures]
    assert "Black–Scholes price" in labels and "z-score against it" in labels


def test_delta_of_a_call_is_close_to_n_d1() -> None:
    got = price(option_type="european_call", paths=400_000, seed=3)
    d1 = (math.log(1.0) + (0.05 + 0.02) * 1.0) / 0.2
    assert got["delta"] == pytest.approx(N(d1), abs=5e-3)


def test_asian_call_is_cheaper_than_the_european_and_put_call_bounds_hold() -> None:
    asian = price(option_type="asian_call", steps=50, paths=100_000, seed=4)["price"]
    assert 0 < asian < bs(True, 100, 100, 0.05, 0.2, 1)


def test_the_chunk_plan_depends_on_the_parameters_only_and_keeps_antithetic_pairs() -> None:
    p = OptionParams(option_type="asian_call", paths=10_000_001, steps=252, seed=1)
    sizes = plan(p)
    assert len(sizes) > 1 and all(n % 2 == 0 for n in sizes)
    assert sum(sizes) == 10_000_000  # the odd path out would have no mirror
    assert plan(p) == sizes


def test_the_result_does_not_depend_on_the_order_chunks_finish_in() -> None:
    p = OptionParams(option_type="european_put", paths=200_000_000, seed=9)
    sizes = plan(p)
    assert len(sizes) >= 10
    seeds = np.random.SeedSequence(9).spawn(len(sizes))
    small = [simulate(p.model_dump(), 2_000, s) for s in seeds]  # cheap stand-ins, same seeds
    rng = np.random.default_rng(0)
    shuffled = [small[i] for i in rng.permutation(len(small))]
    assert summarise(shuffled) == summarise(small)  # bit for bit


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"option_type": "barrier_up_out_call"}, "barrier", "is required for the barrier option"),
        ({"barrier": 120.0}, "barrier", "applies only to the barrier option"),
        (
            {"option_type": "barrier_up_out_call", "barrier": 90.0},
            "barrier",
            "must be above the spot S (100)",
        ),
        ({"steps": 10}, "steps", "applies only to Asian and barrier options"),
        (
            {"option_type": "asian_put", "paths": 10**9, "steps": 10_000},
            "steps",
            "must not exceed",
        ),
        ({"option_type": "digital"}, "option_type", "european_call"),
        ({"sigma": 0.0}, "sigma", "above 0 and at most 5"),
        ({"paths": 10}, "paths", "between"),
    ],
)  # fmt: skip
def test_bad_parameters_get_a_message_on_their_field(
    params: dict[str, Any], field: str, message: str
) -> None:
    assert_refused_on(KIND, params, field, message)


def test_path_options_default_to_252_dates_and_a_drawn_seed() -> None:
    clean = registry.validate(KIND, {"option_type": "asian_call"})
    assert clean["steps"] == 252 and isinstance(clean["seed"], int)
    assert registry.validate(KIND, clean) == clean  # what is stored validates to itself


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
    st.lists(st.integers(), max_size=2), st.sampled_from(["european_call", "barrier_up_out_call"]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*OptionParams.model_fields, "bogus"]), values, max_size=6))
def test_any_input_is_either_accepted_or_refused_field_by_field(params: dict[str, Any]) -> None:
    accepted_or_refused(KIND, params)
