"""The demo kind's parameters and the stages it declares."""

from __future__ import annotations

from typing import Any

import pytest

from compute import registry
from runlab.errors import InvalidParams

KIND = "demo_stages"


def test_defaults_are_three_stages_of_two_seconds() -> None:
    assert registry.validate(KIND, {}) == {"stages": 3, "seconds_per_stage": 2.0}


def test_integer_seconds_are_stored_as_a_number_that_validates_again() -> None:
    clean = registry.validate(KIND, {"stages": 2, "seconds_per_stage": 1})

    assert clean == {"stages": 2, "seconds_per_stage": 1.0}
    assert type(clean["seconds_per_stage"]) is float
    assert registry.validate(KIND, clean) == clean


def test_declared_stages_follow_the_stage_count() -> None:
    kind = registry.get(KIND)

    assert kind.stage_names(registry.validate(KIND, {"stages": 4})) == [
        "stage 1",
        "stage 2",
        "stage 3",
        "stage 4",
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"stages": 0}, "stages: must be an integer between 1 and 20"),
        ({"stages": 21}, "stages: must be an integer between 1 and 20"),
        ({"stages": "3"}, "stages: must be an integer between 1 and 20"),
        ({"stages": 2.0}, "stages: must be an integer between 1 and 20"),
        ({"seconds_per_stage": -0.5}, "seconds_per_stage: must be a number between 0 and 600"),
        ({"seconds_per_stage": 601}, "seconds_per_stage: must be a number between 0 and 600"),
        ({"seconds_per_stage": "2"}, "seconds_per_stage: must be a number between 0 and 600"),
        ({"seconds_per_stage": True}, "seconds_per_stage: must be a number between 0 and 600"),
        (
            {"seconds_per_stage": float("nan")},
            "seconds_per_stage: must be a number between 0 and 600",
        ),
        (
            {"seconds_per_stage": float("inf")},
            "seconds_per_stage: must be a number between 0 and 600",
        ),
    ],
)
def test_bad_values_get_the_fields_rule(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        registry.validate(KIND, params)

    assert str(caught.value) == message
