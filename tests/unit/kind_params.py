"""Checks every kind's parameter model must pass, shared by the kinds' unit tests."""

from __future__ import annotations

from typing import Any

import pytest

from compute import registry
from runlab.errors import InvalidParams


def refused(kind: str, params: dict[str, Any]) -> dict[str, str]:
    """The messages, by field, with which `kind` refuses `params`; fails if it accepts them."""
    with pytest.raises(InvalidParams) as caught:
        registry.validate(kind, params)
    return caught.value.errors


def assert_refused_on(kind: str, params: dict[str, Any], field: str, message: str) -> None:
    """`kind` refuses `params` with `message` among what it says on `field`."""
    errors = refused(kind, params)
    assert field in errors, errors
    assert message in errors[field]


def accepted_or_refused(kind: str, params: dict[str, Any]) -> dict[str, str] | None:
    """None if `kind` accepts `params`, having checked that what it stores validates to itself;
    else the messages it refuses them with, having checked each is a non-empty text."""
    try:
        clean = registry.validate(kind, params)
    except InvalidParams as exc:
        assert exc.errors and all(isinstance(m, str) and m for m in exc.errors.values())
        return exc.errors
    assert registry.validate(kind, clean) == clean
    return None
