"""`runlab submit -p key=value`: whatever the text, it ends as a RunlabError, never a traceback.

Every field of every kind is fed random text (control characters, NUL and lone surrogates
included), brackets nested far past json's recursion limit, numbers with huge exponents or
thousands of digits, and lists and matrices built of them.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute import registry
from runlab.cli import parse_params
from runlab.errors import InvalidParams, RunlabError

FIELDS = [
    (kind.name, info.name)
    for kind in registry.all_kinds()
    for info in registry.describe(kind.params)
]

# Any code point: surrogates too, as undecodable bytes of a command line arrive as them.
ANY_CHAR = st.characters(codec=None, categories=None, exclude_categories=())
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-(10**6), 10**6), st.integers(-(10**7), 10**7)),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.sampled_from(["nan", "-inf", "Infinity", "NaN", "1_000", "0x10", "٣", "²", "1e", "--1"]),
)
DEEP = st.builds(
    lambda opener, n, inner, closed: opener * n + inner + ("]" * n if closed else ""),
    st.sampled_from(["[", "{", "[{", "[["]),
    st.one_of(st.integers(1, 4), st.integers(1_000, 60_000)),
    st.one_of(NUMBERS, st.just("")),
    st.booleans(),
)
LISTS = st.lists(st.one_of(NUMBERS, st.text(ANY_CHAR, max_size=5)), max_size=8).map(",".join)
MATRICES = st.lists(LISTS, max_size=5).map(";".join)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner)),
    max_leaves=20,
).map(json.dumps)
VALUES = st.one_of(
    st.text(ANY_CHAR, max_size=200), NUMBERS, DEEP, LISTS, MATRICES, JSON, st.text(max_size=20)
)


def refused_cleanly(kind: str, key: str, value: str) -> None:
    """Parse one `-p` and validate the result, as `runlab submit` does; only RunlabError may
    escape, and one raised while parsing names the field (or `-p` for the pair itself)."""
    try:
        values = parse_params(kind, [f"{key}={value}"])
    except InvalidParams as exc:
        assert set(exc.errors) <= {key.strip(), "-p"}, exc.errors
        return
    with contextlib.suppress(RunlabError):
        registry.validate(kind, values)


@pytest.mark.parametrize(("kind", "field"), FIELDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES)
def test_any_value_of_any_field_ends_as_a_runlab_error(kind: str, field: str, value: str) -> None:
    refused_cleanly(kind, field, value)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(sorted({k for k, _ in FIELDS})), key=st.text(ANY_CHAR, min_size=1))
def test_any_key_ends_as_a_runlab_error(kind: str, key: str) -> None:
    refused_cleanly(kind, key.replace("=", ""), "1")


@pytest.mark.parametrize(
    ("kind", "pair", "field"),
    [
        ("portfolio_risk", "weights=" + "[" * 50_000, "weights"),
        ("portfolio_risk", "correlation=" + "[" * 50_000 + "]" * 50_000, "correlation"),
        ("portfolio_risk", "weights=[[[1]]]", "weights"),
        ("bootstrap", "column=a\x00b", "column"),
        ("bootstrap", "column=\udcff.csv", "column"),
        ("monte_carlo_pi", "samples=1e999999999", "samples"),
        ("option_pricing", "S=" + "9" * 5000, "S"),
    ],
)
def test_reproduced_inputs_are_refused_naming_their_field(kind: str, pair: str, field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        registry.validate(kind, parse_params(kind, [pair]))
    assert field in caught.value.errors


def test_the_documented_list_and_matrix_syntaxes_still_read() -> None:
    commas = parse_params("portfolio_risk", ["weights=0.6, 0.4", "correlation=1,0.3;0.3,1"])
    as_json = parse_params("portfolio_risk", ["weights=[0.6,0.4]", "correlation=[[1,0.3],[0.3,1]]"])
    assert commas == as_json == {"weights": [0.6, 0.4], "correlation": [[1, 0.3], [0.3, 1]]}
