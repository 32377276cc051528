"""A sweep's plan: the texts of its axes, its size and its limit, its samples, and the kind's
model over every parameter set."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute import sweeps
from compute.sweeps import MAX_JOBS
from runlab.errors import InvalidParams

KIND = "option_pricing"


def test_a_grid_is_every_combination_and_says_its_size_before_submit() -> None:
    plan = sweeps.plan(KIND, {"sigma": "0.1:0.35:0.05", "T": "0.25,0.5,1,2,3,5,7,10"})
    assert plan.size == 48
    assert plan.describe() == "48 jobs: 6 sigma × 8 T"
    params = sweeps.expand(KIND, {"paths": 2000}, plan)
    assert len(params) == 48
    assert {(p["sigma"], p["T"]) for p in params} == {
        (s, t) for s in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35) for t in (0.25, 0.5, 1, 2, 3, 5, 7, 10)
    }
    assert all(p["paths"] == 2000 and p["option_type"] == "european_call" for p in params)


def test_a_range_includes_its_end_when_the_step_lands_on_it() -> None:
    (axis,) = sweeps.plan(KIND, {"sigma": "0.1:0.5:0.05"}).grid
    assert axis.values == (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
    (short,) = sweeps.plan(KIND, {"sigma": "0.1:0.48:0.1"}).grid
    assert short.values == (0.1, 0.2, 0.3, 0.4)
    (down,) = sweeps.plan(KIND, {"T": "3:1:-1"}).grid
    assert down.values == (3.0, 2.0, 1.0)


def test_a_log_range_spaces_its_points_evenly_in_log() -> None:
    (axis,) = sweeps.plan(KIND, {"sigma": "log:0.01:1:5"}).grid
    assert axis.values == pytest.approx((0.01, 0.0316227766, 0.1, 0.316227766, 1.0))


def test_choices_are_swept_by_name_and_unknown_ones_are_named() -> None:
    plan = sweeps.plan(KIND, {"option_type": "european_call, european_put"})
    assert plan.grid[0].values == ("european_call", "european_put")
    with pytest.raises(InvalidParams) as bad:
        sweeps.plan(KIND, {"option_type": "european_call,bermudan"})
    assert "'bermudan' is not one of option_type's choices" in bad.value.errors["option_type"]


def test_bad_texts_get_a_message_at_their_parameter_and_nothing_else_is_checked_later() -> None:
    with pytest.raises(InvalidParams) as bad:
        sweeps.plan(
            KIND,
            {
                "sigma": "0.1:0.5",
                "T": "1:2:0",
                "paths": "1000,1500.5",
                "K": "abc",
                "volatility": "0.1,0.2",
            },
        )
    errors = bad.value.errors
    assert "needs a step" in errors["sigma"]
    assert "never goes from 1 to 2" in errors["T"]
    assert "whole numbers" in errors["paths"]
    assert "'abc' is not a number" in errors["K"]
    assert "no parameter 'volatility'" in errors["volatility"]
    with pytest.raises(InvalidParams) as empty:
        sweeps.plan(KIND, {})
    assert "at least one parameter" in empty.value.errors["sweep"]


def test_a_typo_that_would_make_a_huge_sweep_is_refused_before_any_value_is_built() -> None:
    with pytest.raises(InvalidParams) as one_axis:
        sweeps.plan(KIND, {"sigma": "0.0001:5:0.00000001"})
    assert "makes 499,990,001 values" in one_axis.value.errors["sigma"]
    with pytest.raises(InvalidParams) as product:
        sweeps.plan(KIND, {"sigma": "0.01:5:0.01", "T": "0.1:50:0.1"})
    assert product.value.errors["sweep"] == (
        f"250,000 jobs: 500 sigma × 500 T, more than the {MAX_JOBS:,} a sweep may have"
    )
    assert sweeps.plan(KIND, {"sigma": "0.01:1:0.01", "T": "0.1:10:0.1"}).size == MAX_JOBS


def test_a_value_the_kind_refuses_is_named_with_the_point_that_made_it() -> None:
    plan = sweeps.plan(KIND, {"sigma": "4:6:1", "T": "1,2"})
    with pytest.raises(InvalidParams) as bad:
        sweeps.expand(KIND, {}, plan)
    (message,) = bad.value.errors.values()
    assert "(where sigma = 6, T = 1)" in message
    assert "sigma" in bad.value.errors


def test_latin_hypercube_points_fill_every_stratum_and_repeat_from_their_seed() -> None:
    plan = sweeps.plan(KIND, {"sigma": "0.1:0.5", "T": "log:0.5:2"}, method="lhs", count=50, seed=7)
    assert plan.describe() == "50 jobs: 50 Latin-hypercube points of sigma, T"
    points = list(plan.points())
    assert points == list(plan.points())
    assert sorted(math.floor((p["sigma"] - 0.1) / 0.4 * 50) for p in points) == list(range(50))
    assert sorted(math.floor(math.log(p["T"] / 0.5) / math.log(4) * 50) for p in points) == list(
        range(50)
    )
    other = sweeps.plan(KIND, {"sigma": "0.1:0.5", "T": "log:0.5:2"}, method="lhs", count=50)
    assert isinstance(other.seed, int)  # drawn, and kept: the plan draws the same points again
    again = sweeps.plan(
        KIND, {"sigma": "0.1:0.5", "T": "log:0.5:2"}, method="lhs", count=50, seed=other.seed
    )
    assert list(again.points()) == list(other.points()) != points


def test_random_points_times_a_grid_axis() -> None:
    plan = sweeps.plan(
        KIND,
        {"option_type": "european_call,european_put", "sigma": "0.1:0.5", "paths": "1000:5000"},
        method="random",
        count=10,
        seed=1,
    )
    assert plan.size == 20
    assert plan.describe() == "20 jobs: 2 option_type × 10 random points of sigma, paths"
    params = sweeps.expand(KIND, {}, plan)
    assert len(params) == 20
    assert all(0.1 <= p["sigma"] <= 0.5 and 1000 <= p["paths"] <= 5000 for p in params)
    assert all(isinstance(p["paths"], int) for p in params)
    with pytest.raises(InvalidParams) as none:
        sweeps.plan(KIND, {"sigma": "0.1,0.2"}, method="random", count=5)
    assert "low:high" in none.value.errors["sweep"]
    with pytest.raises(InvalidParams) as many:
        sweeps.plan(KIND, {"sigma": "0.1:0.2"}, method="random", count=MAX_JOBS + 1)
    assert "from 1 to 10,000" in many.value.errors["count"]


@given(
    start=st.floats(-100, 100),
    span=st.floats(0.001, 100),
    n=st.integers(1, 500),
)
def test_a_range_starts_at_its_start_and_never_passes_its_end(
    start: float, span: float, n: int
) -> None:
    step = span / n
    (axis,) = sweeps.plan(KIND, {"r": f"{start!r}:{start + span!r}:{step!r}"}).grid
    values = axis.values
    assert values[0] == pytest.approx(start)
    assert all(b > a for a, b in itertools.pairwise(values))
    assert values[-1] <= start + span + 1e-9 * max(1.0, abs(start + span))
    assert len(values) in (n, n + 1)
