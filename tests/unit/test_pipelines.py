"""A pipeline's spec, checked before anything is stored: its steps, references, dependencies
and order, and every bad input refused with a message at the step and field it concerns."""

from __future__ import annotations

import pytest

from compute import pipelines, registry, sweeps
from runlab.errors import InvalidParams

WORKED = """
name = "Price across the volatility's interval"

[steps.vol]
kind = "option_pricing"
params = { paths = 1000 }

[steps.price]
kind = "option_pricing"
params = { S = 100, K = 100, T = 1, paths = 1000, r = "${vol.result.delta}" }
sweep = { sigma = "lin:${vol.result.price}:${vol.result.standard_error}:9" }

[steps.prices]
kind = "collect"
inputs = ["price"]
on_failure = { price = "continue" }
"""


@pytest.fixture(autouse=True)
def _kinds() -> None:
    registry.load()


def refused(text: str) -> dict[str, str]:
    with pytest.raises(InvalidParams) as caught:
        pipelines.parse(text)
    return caught.value.errors


def test_a_spec_gives_its_steps_dependencies_and_order() -> None:
    spec = pipelines.parse(WORKED)
    assert spec.name == "Price across the volatility's interval"
    assert spec.order == ("vol", "price", "prices")
    price = spec.steps["price"]
    assert price.is_sweep and price.needs == {"vol": "fail"}
    assert pipelines.referenced_in(price)
    assert spec.steps["prices"].inputs == ("price",)
    assert spec.steps["prices"].needs == {"price": "continue"}
    assert pipelines.refs_in(price.params["r"]) == [pipelines.Ref("vol", "delta")]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ('"${vol.result.delta}"', "steps.price.params.r", None),  # the unchanged spec: fine
        ('"${volx.result.delta}"', "steps.price.params.r", "no step 'volx'"),
        ('"${vol.result.deltta}"', "steps.price.params.r", "has no result field 'deltta'"),
        ('"${vol.delta}"', "steps.price.params.r", "is not a reference"),
        ('"rate ${vol.result.delta}"', "steps.price.params.r", "the whole value"),
        ('"abc"', "steps.price.params.r", "must be a number"),
    ],
)
def test_a_bad_reference_or_value_is_named_at_its_field(
    change: str, field: str, words: str | None
) -> None:
    text = WORKED.replace('"${vol.result.delta}"', change)
    if words is None:
        pipelines.parse(text)
        return
    errors = refused(text)
    assert field in errors, errors
    assert words in errors[field], errors


def test_a_reference_into_a_choice_is_the_wrong_type() -> None:
    text = WORKED.replace("T = 1,", 'T = 1, option_type = "${vol.result.price}",')
    errors = refused(text)
    assert "is a number, and option_type takes choice" in errors["steps.price.params.option_type"]


def test_a_cycle_is_refused_naming_it() -> None:
    text = """
[steps.a]
kind = "monte_carlo_pi"
params = { samples = "${b.result.estimate}" }

[steps.b]
kind = "monte_carlo_pi"
after = ["a"]
"""
    errors = refused(text)
    [(key, message)] = [(k, m) for k, m in errors.items() if "cycle" in m]
    assert key in ("steps.a", "steps.b")
    assert message in ("a cycle: a → b → a", "a cycle: b → a → b"), errors


def test_a_sweep_of_a_hundred_million_jobs_is_refused_at_the_step() -> None:
    text = """
[steps.grid]
kind = "option_pricing"
sweep = { sigma = "log:0.01:1:10000", T = "log:0.1:10:10000" }
"""
    errors = refused(text)
    assert "100,000,000 jobs" in errors["steps.grid.sweep"], errors


def test_reading_a_sweep_or_a_missing_dependency_or_a_bad_policy_is_refused() -> None:
    text = (
        WORKED
        + """
[steps.after_price]
kind = "option_pricing"
params = { sigma = "${price.result.price}" }
after = ["nope"]
on_failure = { vol = "retry" }
"""
    )
    errors = refused(text)
    assert "a sweep, with no single result" in errors["steps.after_price.params.sigma"]
    assert "no step 'nope'" in errors["steps.after_price.after"]
    assert "'retry' is not one of fail, continue" in errors["steps.after_price.on_failure.vol"]


def test_bad_toml_unknown_keys_and_kinds_are_refused() -> None:
    assert "not valid TOML" in refused("[steps.a\nkind=1")["file"]
    errors = refused('colour = "red"\n[steps.a]\nkind = "nope"\nretries = 3\n')
    assert "only a name and its" in errors["colour"]
    assert "unknown kind 'nope'" in errors["steps.a.kind"]
    assert "a step takes" in errors["steps.a.retries"]
    assert "at least one step" in refused('name = "x"')["steps"]
    assert "lower-case" in refused('[steps.Bad]\nkind = "monte_carlo_pi"')["steps.Bad"]


def test_a_collect_step_needs_its_inputs() -> None:
    errors = refused('[steps.c]\nkind = "collect"\n')
    assert "the steps to collect" in errors["steps.c.inputs"]
    errors = refused('[steps.c]\nkind = "collect"\ninputs = ["x"]\n')
    assert "no step 'x'" in errors["steps.c.inputs"]


def test_an_evenly_spaced_range_includes_both_ends() -> None:
    plan = sweeps.plan("option_pricing", {"sigma": "lin:0.1:0.5:5"})
    assert [p["sigma"] for p in plan.points()] == [0.1, 0.2, 0.3, 0.4, 0.5]
    with pytest.raises(InvalidParams, match="at least 2 points"):
        sweeps.plan("option_pricing", {"sigma": "lin:0.1:0.5:1"})
