"""What a driver returns must be storable as JSON and honest: no NaN where a number is due."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from runlab.errors import BadResult


def clean_result(result: Any) -> dict[str, Any]:
    """The result as plain JSON values, or BadResult naming the first bad field."""
    if not isinstance(result, Mapping):
        raise BadResult(
            f"the result must be a mapping of names to values, not {type(result).__name__}"
        )
    return {str(k): _clean(v, str(k)) for k, v in result.items()}


def _clean(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadResult(f"result field {path!r} is {value}, where a finite number is due")
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _clean(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise BadResult(
        f"result field {path!r} holds a {type(value).__name__}, which cannot be stored as JSON"
    )
