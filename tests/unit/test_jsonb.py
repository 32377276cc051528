"""The JSON text written to PostgreSQL's JSONB reads back as the value that was written."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from jobstore import jsonb

finite = st.floats(allow_nan=False, allow_infinity=False)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down: 1e20 is not 10**20."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


@given(values)
def test_any_value_reads_back_with_its_types(value: Any) -> None:
    assert same(json.loads(jsonb.dumps(value)), value)


def test_a_float_with_an_exponent_is_written_with_a_decimal_point_and_no_exponent() -> None:
    text = jsonb.dumps({"big": 1e20, "max": 1.7976931348623157e308, "label": "1e+20"})
    assert text.startswith('{"big": 100000000000000000000.0, "max": 17976931348623157')
    assert '"label": "1e+20"' in text
    assert json.loads(text)["max"] == 1.7976931348623157e308


def test_a_string_shaped_like_a_placeholder_is_kept() -> None:
    value = {"s": "\x000\x00", "big": 1e20}
    assert json.loads(jsonb.dumps(value)) == value
