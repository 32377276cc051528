"""The optimisation kind against known minima and formulas written here, not taken from the kind."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compute.kinds.optimize  # noqa: F401  (registers the kind)
from compute import registry
from compute.kernels.optimize import gradient, solve, value
from compute.kinds.optimize import (
    OptimizeParams,
    figure,
    groups,
    plan,
    run,
    run_starts,
    summarise,
)
from tests.unit.fake_context import FakeContext
from tests.unit.kind_params import accepted_or_refused, assert_refused_on

KIND = "optimize"

# Himmelblau's four minima (Himmelblau 1972), to 15 digits, and their labels.
HIMMELBLAU = {
    "(3, 2)": (3.0, 2.0),
    "(-2.805118, 3.131312)": (-2.805118086952745, 3.131312518250573),
    "(-3.779310, -3.283186)": (-3.779310253377747, -3.283185991286170),
    "(3.584428, -1.848126)": (3.584428340330492, -1.848126526964403),
}
BOX = {"rosenbrock": 2.0, "rastrigin": 5.12, "ackley": 32.768, "himmelblau": 5.0}


def rosenbrock(x: list[float]) -> float:
    return sum(100 * (b - a * a) ** 2 + (1 - a) ** 2 for a, b in itertools.pairwise(x))


def rastrigin(x: list[float]) -> float:
    return 10 * len(x) + sum(v * v - 10 * math.cos(2 * math.pi * v) for v in x)


def ackley(x: list[float]) -> float:
    n = len(x)
    r = math.sqrt(sum(v * v for v in x) / n)
    c = sum(math.cos(2 * math.pi * v) for v in x) / n
    return -20 * math.exp(-0.2 * r) - math.exp(c) + 20 + math.e


def himmelblau(x: list[float]) -> float:
    return (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2


REFERENCE: dict[str, Callable[[list[float]], float]] = {
    "rosenbrock": rosenbrock,
    "rastrigin": rastrigin,
    "ackley": ackley,
    "himmelblau": himmelblau,
}


def optimise(**params: Any) -> dict[str, Any]:
    """The kind's whole computation, start by start, without Dask or the store."""
    p = OptimizeParams.model_validate(registry.validate(KIND, params))
    return summarise(p, run_starts(p, {}))


# --- the objectives themselves ------------------------------------------------------------------


@pytest.mark.parametrize("objective", list(REFERENCE))
def test_objectives_and_gradients_match_the_textbook_formulas(objective: str) -> None:
    rng = np.random.default_rng(0)
    dims = [2] if objective == "himmelblau" else [2, 3, 7]
    for d in dims:
        for _ in range(5):
            x = rng.uniform(-3, 3, d)
            assert float(value(objective, x)) == pytest.approx(
                REFERENCE[objective](list(x)), rel=1e-12, abs=1e-12
            )
            h = 1e-6  # central differences of the reference formula
            fd = [
                (REFERENCE[objective](list(x + h * e)) - REFERENCE[objective](list(x - h * e)))
                / (2 * h)
                for e in np.eye(d)
            ]
            assert gradient(objective, x) == pytest.approx(fd, rel=1e-5, abs=1e-5)
    assert ackley([0.0, 0.0]) == pytest.approx(0.0, abs=1e-15)
    for x in HIMMELBLAU.values():
        assert himmelblau(list(x)) == pytest.approx(0.0, abs=1e-20)


# --- acceptance ---------------------------------------------------------------------------------


def test_nelder_mead_from_8_starts_finds_the_5d_rosenbrock_minimum() -> None:
    result = optimise(objective="rosenbrock", dimension=5, method="Nelder-Mead", starts=8, seed=7)
    ones = [1.0, 1.0, 1.0, 1.0, 1.0]
    assert all(abs(a - b) < 1e-3 for a, b in zip(result["best_x"], ones, strict=True)), result
    assert result["best_f"] == pytest.approx(rosenbrock(result["best_x"]), rel=1e-9, abs=1e-15)
    assert result["best_f"] < 1e-12
    assert result["evaluations"] == sum(s["evaluations"] for s in result["starts"])
    assert len(result["starts"]) == 8 and [s["start"] for s in result["starts"]] == list(range(8))


def test_himmelblau_from_32_starts_finds_all_four_minima_and_labels_them() -> None:
    result = optimise(objective="himmelblau", starts=32, seed=11)
    assert result["minima_found"] == sorted(HIMMELBLAU)
    for s in result["starts"]:
        dist = {k: math.dist(s["x"], m) for k, m in HIMMELBLAU.items()}
        nearest = min(dist, key=dist.__getitem__)
        if s["minimum"] is None:
            assert dist[nearest] > 1e-3
        else:
            assert s["minimum"] == nearest
            assert all(abs(a - b) < 1e-4 for a, b in zip(s["x"], HIMMELBLAU[nearest], strict=True))
    assert sum(s["minimum"] is not None for s in result["starts"]) >= 28


@pytest.mark.parametrize(
    ("method", "objective", "starts"),
    [
        # The local methods reach Rosenbrock's minimum from nearly every start.
        ("Nelder-Mead", "rosenbrock", 4),
        ("Powell", "rosenbrock", 4),
        ("L-BFGS-B", "rosenbrock", 4),
        # Rastrigin is separable, which suits Powell's line searches: about 1 start in 5 lands.
        ("Powell", "rastrigin", 32),
        # The global method reaches the multimodal minima from most single starts.
        ("differential_evolution", "rosenbrock", 8),
        ("differential_evolution", "rastrigin", 8),
        ("differential_evolution", "ackley", 8),
    ],
)
def test_each_method_finds_the_global_minimum_0_in_2d(
    method: str, objective: str, starts: int
) -> None:
    result = optimise(objective=objective, method=method, starts=starts, seed=1)
    at = [1.0, 1.0] if objective == "rosenbrock" else [0.0, 0.0]
    assert result["best_f"] < 1e-9, result["best_f"]
    assert all(abs(a - b) < 1e-5 for a, b in zip(result["best_x"], at, strict=True))
    assert result["best_f"] == pytest.approx(REFERENCE[objective](result["best_x"]), abs=1e-14)
    best = result["starts"][result["best_start"]]
    assert best["converged"] and best["f"] == result["best_f"]


def test_start_points_are_uniform_in_the_box_from_each_starts_own_seed() -> None:
    for objective in REFERENCE:
        result = optimise(objective=objective, starts=3, seed=5, max_iterations=5)
        children = np.random.SeedSequence(5).spawn(3)
        half = BOX[objective]
        for s, child in zip(result["starts"], children, strict=True):
            x0 = np.random.default_rng(child).uniform(-half, half, 2)
            assert [s["path"]["x1"][0], s["path"]["x2"][0]] == x0.tolist()
            assert s["path"]["best_f"][0] == pytest.approx(REFERENCE[objective](list(x0)))


def test_paths_are_short_monotone_and_end_at_the_answer() -> None:
    result = optimise(objective="rosenbrock", starts=3, seed=2, method="Nelder-Mead")
    for s in result["starts"]:
        path = s["path"]
        n = len(path["iteration"])
        assert 2 <= n <= 200 and all(len(path[k]) == n for k in ("best_f", "x1", "x2"))
        assert path["iteration"] == sorted(set(path["iteration"])) and path["iteration"][0] == 0
        assert all(a >= b for a, b in itertools.pairwise(path["best_f"]))
        assert [path["x1"][-1], path["x2"][-1]] == s["x"]
        assert path["best_f"][-1] == s["f"]
    high = optimise(objective="rastrigin", dimension=6, starts=2, seed=2)
    assert set(high["starts"][0]["path"]) == {"iteration", "best_f"}
    json.dumps(high, allow_nan=False)


def test_the_same_parameters_and_seed_give_the_same_result_bit_for_bit() -> None:
    params = {"objective": "ackley", "method": "differential_evolution", "starts": 3, "seed": 4}
    first, second = optimise(**params), optimise(**params)
    assert json.dumps(first) == json.dumps(second)
    assert first["seed"] == 4


def test_the_result_does_not_depend_on_the_order_starts_finish_in() -> None:
    p = OptimizeParams(objective="himmelblau", starts=6, seed=3)
    outcomes = run_starts(p, {})
    shuffled = {i: outcomes[i] for i in np.random.default_rng(0).permutation(6).tolist()}
    assert json.dumps(summarise(p, shuffled)) == json.dumps(summarise(p, outcomes))


# --- the driver, on a stand-in context that runs tasks in this process --------------------------


def test_the_driver_gives_the_pure_result_in_any_order_and_after_a_resume() -> None:
    params = {"objective": "himmelblau", "starts": 5, "seed": 8}
    pure = optimise(**params)
    p = OptimizeParams.model_validate(params)

    ctx = FakeContext()
    assert json.dumps(run(ctx, p)) == json.dumps(pure)  # type: ignore[arg-type]
    assert ctx.stages == ["plan", "optimise", "summarise"]
    assert sorted(ctx.saved) == [f"starts-{i}" for i in range(5)]
    steps = [m[1] for m in ctx.metrics]
    assert {m[0] for m in ctx.metrics} == {"best_f"} and len(steps) == 5
    assert steps == sorted(steps) and steps[-1] == pure["evaluations"]
    assert ctx.metrics[-1][2] == pure["best_f"]

    kept = {k: ctx.saved[k] for k in ("starts-1", "starts-3")}
    broken = {"starts-0": [{"x": [1.0]}], "starts-2": "junk"}
    resumed = FakeContext({**kept, **broken})
    assert json.dumps(run(resumed, p)) == json.dumps(pure)  # type: ignore[arg-type]
    assert resumed.client.submitted == 3


def test_plan_spawns_one_seed_per_start_and_solve_depends_only_on_it() -> None:
    p = OptimizeParams(starts=4, seed=9)
    seeds = plan(p)
    assert [s.spawn_key for s in seeds] == [(i,) for i in range(4)]
    again = solve(p.model_dump(), np.random.SeedSequence(9).spawn(4)[2])
    assert again == solve(p.model_dump(), seeds[2])


# --- the figure ---------------------------------------------------------------------------------


def test_the_figure_draws_contours_curves_or_the_live_series() -> None:
    flat = figure(optimise(objective="himmelblau", starts=3, seed=1), {})
    kinds = [type(t).__name__ for t in flat.data]
    assert kinds[0] == "Contour" and len(flat.data[0].z) == 100
    stars = next(t for t in flat.data if t.name == "known minima")
    drawn = list(zip(stars.x, stars.y, strict=True))
    assert len(drawn) == 4
    assert all(min(math.dist(d, m) for d in drawn) < 1e-5 for m in HIMMELBLAU.values())
    curves = figure(optimise(objective="rosenbrock", dimension=3, starts=2, seed=1), {})
    assert curves.layout.yaxis.type == "log" and len(curves.data) == 2
    live = figure({}, {"best_f": ([10.0, 20.0], [3.0, 0.5])})
    assert isinstance(live, go.Figure) and list(live.data[0].y) == [3.0, 0.5]


# --- parameters ---------------------------------------------------------------------------------


def test_defaults_are_complete_and_validate_to_themselves() -> None:
    clean = registry.validate(KIND, {})
    assert clean["objective"] == "rosenbrock" and clean["method"] == "Nelder-Mead"
    assert clean["dimension"] == 2 and clean["starts"] == 8
    assert isinstance(clean["seed"], int)
    assert registry.validate(KIND, clean) == clean


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"objective": "himmelblau", "dimension": 3}, "dimension", "must be 2 for himmelblau"),
        ({"method": "BFGS"}, "method", "Nelder-Mead"),
        ({"objective": "sphere"}, "objective", "rosenbrock"),
        ({"starts": 256, "dimension": 50, "max_iterations": 100_000}, "max_iterations",
         "must not exceed"),
        ({"starts": 0}, "starts", "between 1 and 256"),
        ({"dimension": 51}, "dimension", "between 2 and 50"),
        ({"tolerance": 0.0}, "tolerance", "above 0 and at most 1"),
        ({"tolerance": math.nan}, "tolerance", "number"),
        ({"seed": -1}, "seed", "between"),
        ({"popsize": 15}, "popsize", "not a parameter"),
    ],
)  # fmt: skip
def test_bad_parameters_get_a_message_on_their_field(
    params: dict[str, Any], field: str, message: str
) -> None:
    assert_refused_on(KIND, params, field, message)


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.sampled_from(["himmelblau", "ackley", "Powell", "differential_evolution"]),
    st.integers(min_value=1, max_value=300),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from([*OptimizeParams.model_fields, "bogus"]), values, max_size=6)
)
def test_any_input_is_either_accepted_or_refused_field_by_field(params: dict[str, Any]) -> None:
    accepted_or_refused(KIND, params)


def test_many_starts_share_a_task_and_give_the_result_of_one_start_per_task() -> None:
    params = {"objective": "rastrigin", "dimension": 3, "starts": 40, "seed": 6}
    p = OptimizeParams.model_validate(params)
    tasks = groups(p)
    assert [len(g) for g in tasks] == [5] * 8
    assert [i for g in tasks for i in g] == list(range(40))
    ctx = FakeContext()
    assert json.dumps(run(ctx, p)) == json.dumps(optimise(**params))  # type: ignore[arg-type]
    assert ctx.client.submitted == 8
    assert sorted(ctx.saved) == sorted(f"starts-{j}" for j in range(8))
    # A saved task whose starts do not match this plan is done again, not trusted.
    short = {"starts-0": ctx.saved["starts-0"][:4], "starts-1": ctx.saved["starts-1"]}
    resumed = FakeContext(short)
    assert json.dumps(run(resumed, p)) == json.dumps(optimise(**params))  # type: ignore[arg-type]
    assert resumed.client.submitted == 7


def test_differential_evolution_keeps_one_start_per_task() -> None:
    p = OptimizeParams(method="differential_evolution", starts=64, seed=1)
    assert len(groups(p)) == 64
