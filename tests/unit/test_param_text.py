"""Numbers as analysts type them, read alike by the form and `runlab submit -p`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute.param_text import number_text, scalar


@pytest.mark.parametrize(
    ("typed", "as_int", "as_float"),
    [
        ("1e9", 1_000_000_000, 1e9),
        ("2.5e6", 2_500_000, 2.5e6),
        ("1,000,000", 1_000_000, 1e6),
        ("1_000_000", 1_000_000, 1e6),
        (" -5 ", -5, -5.0),
        ("12345678901234567891", 12345678901234567891, 1.2345678901234567e19),
        ("", None, None),
        ("none", None, None),
    ],
)
def test_numbers_read_as_typed(typed: str, as_int: object, as_float: object) -> None:
    assert scalar(typed, "int") == as_int
    assert scalar(typed, "float") == as_float


@pytest.mark.parametrize("typed", ["2.5", "1,5", "1,00", "abc", "1e999999999", "nan", "inf"])
def test_what_is_not_a_whole_number_stays_text_for_the_rule_to_refuse(typed: str) -> None:
    assert scalar(typed, "int") == typed


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_an_integer_shown_by_the_form_reads_back_exactly(n: int) -> None:
    assert scalar(number_text(n), "int") == n


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_shown_by_the_form_reads_back_exactly(x: float) -> None:
    assert scalar(number_text(x), "float") == x
