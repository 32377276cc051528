"""Retention's ages and statuses: what a person writes, read back exactly or refused clearly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstore.models import Status
from jobstore.retention import MAX_AGE, format_age, parse_age, parse_statuses
from runlab.errors import InvalidParams
from runlab.settings import load_settings


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_each_unit_reads_as_its_length(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@given(st.integers(1, 5_000), st.sampled_from("mhdw"))  # 5,000 weeks: within MAX_AGE
def test_format_age_reads_back_as_the_same_age(n: int, unit: str) -> None:
    age = parse_age(f"{n}{unit}")
    assert parse_age(format_age(age)) == age


def test_ages_beyond_a_century_are_refused() -> None:
    assert parse_age(f"{MAX_AGE.days}d") == MAX_AGE
    with pytest.raises(ValueError, match="at most 36500d"):
        parse_age(f"{MAX_AGE.days + 1}d")


def test_statuses_read_in_any_case_and_order() -> None:
    assert parse_statuses("Cancelled, succeeded") == {Status.CANCELLED, Status.SUCCEEDED}


def test_the_scheduled_purge_is_off_unless_set() -> None:
    assert load_settings({}, Path("/no/secrets.toml")).purge_policy is None
    on = load_settings(
        {"RUNLAB_PURGE_AFTER": "2w", "RUNLAB_PURGE_STATUSES": "failed"}, Path("/no/secrets.toml")
    )
    assert on.purge_policy is not None
    assert on.purge_policy.older_than == timedelta(weeks=2)
    assert on.purge_policy.statuses == {Status.FAILED}


def test_a_bad_purge_age_setting_is_refused_naming_the_variable() -> None:
    with pytest.raises(InvalidParams) as caught:
        load_settings({"RUNLAB_PURGE_AFTER": "1 month"}, Path("/no/secrets.toml"))
    assert set(caught.value.errors) == {"RUNLAB_PURGE_AFTER"}
