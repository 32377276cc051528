"""The kind registry: lookup, and the field descriptions and rules that forms and messages use."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compute import registry
from compute.kinds.monte_carlo_pi import PiParams
from compute.registry import FieldInfo, describe, field_errors, rule
from runlab.errors import InvalidParams, UnknownKind


class Everything(BaseModel):
    """One field of each shape a form can draw."""

    model_config = ConfigDict(strict=True, extra="forbid")

    mode: Literal["fast", "exact"] = "fast"
    verbose: bool = False
    label: str = Field("run", description="A name.")
    rate: float = Field(gt=0, lt=0.5)
    count: int = Field(ge=10)
    limit: float | None = Field(None, le=2.5)


def info(name: str) -> FieldInfo:
    return {i.name: i for i in describe(Everything)}[name]


def test_builtin_kinds_are_registered() -> None:
    # Other suites register test kinds in this process too, so the built-ins are a subset.
    names = [k.name for k in registry.all_kinds()]
    assert names == sorted(names)
    assert {"demo_stages", "monte_carlo_pi"} <= set(names)
    assert registry.get("monte_carlo_pi").params is PiParams


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(UnknownKind) as caught:
        registry.get("nope")

    assert isinstance(caught.value, InvalidParams)
    message = caught.value.errors["kind"]
    assert message.startswith("unknown kind 'nope'; known kinds: ")
    assert "demo_stages, monte_carlo_pi, optimize, option_pricing" in message


def test_describe_reads_type_bounds_defaults_and_optionality() -> None:
    samples, chunks, seed = describe(PiParams)

    assert (samples.name, samples.type, samples.required, samples.default) == (
        "samples",
        "int",
        False,
        1_000_000_000,
    )
    assert (samples.minimum, samples.maximum, samples.optional) == (1, 10**11, False)
    assert (chunks.type, chunks.optional, chunks.default, chunks.maximum) == (
        "int",
        True,
        None,
        100_000,
    )
    assert (seed.minimum, seed.maximum) == (0, 2**63 - 1)
    assert samples.description == "How many random points to throw."


def test_describe_covers_choices_bools_text_and_strict_bounds() -> None:
    assert (info("mode").type, info("mode").choices, info("mode").default) == (
        "choice",
        ("fast", "exact"),
        "fast",
    )
    assert info("verbose").type == "bool"
    assert (info("label").type, info("label").description) == ("str", "A name.")
    assert (info("rate").type, info("rate").required) == ("float", True)
    assert (info("rate").minimum, info("rate").maximum) == (0, 0.5)
    assert (info("limit").optional, info("limit").type, info("limit").maximum) == (
        True,
        "float",
        2.5,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mode", "must be one of fast, exact"),
        ("verbose", "must be true or false"),
        ("label", "must be text"),
        ("rate", "must be a number above 0 and below 0.5"),
        ("count", "must be an integer of at least 10"),
        ("limit", "must be a number of at most 2.5"),
    ],
)
def test_rule_states_each_fields_constraint_in_words(name: str, expected: str) -> None:
    assert rule(info(name)) == expected


def test_field_errors_give_one_message_per_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Everything.model_validate({"mode": "slow", "rate": 0.7, "extra": 1})

    assert field_errors(Everything, caught.value) == {
        "mode": "must be one of fast, exact",
        "rate": "must be a number above 0 and below 0.5",
        "count": "is required",
        "extra": (
            "is not a parameter of this kind; known: mode, verbose, label, rate, count, limit"
        ),
    }


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=5)), max_size=4),
    st.lists(st.lists(st.floats(), max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8))),
)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_kinds_model_refuses_random_input_field_by_field(data: st.DataObject) -> None:
    """Each registered kind, the demo and plugins included: junk gets field messages only."""
    kind = data.draw(st.sampled_from(registry.all_kinds()), label="kind")
    names = [*kind.params.model_fields, "bogus"]
    params = data.draw(st.dictionaries(st.sampled_from(names), _junk, max_size=6), label="params")
    try:
        kind.parse(params)
    except InvalidParams as exc:
        assert exc.errors
        assert set(exc.errors) <= set(names) | {"params"}
        assert all(isinstance(m, str) and m for m in exc.errors.values())
