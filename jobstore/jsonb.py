"""JSON text for PostgreSQL's JSONB that gives back every float as a float.

JSONB keeps numbers as decimals and prints them without an exponent: Python writes 1e20 as
`1e+20`, JSONB prints `100000000000000000000`, and it is read back as an int. Such floats are
written here as their exact integer value with a `.0`, which JSONB keeps and Python reads as the
same float. Every other value is written as `json.dumps` writes it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Python's repr switches to an exponent at 1e16; below that, floats keep their decimal point.
_EXPONENT_FROM = 1e16
# A placeholder is a string of NULs and digits, used only when no string holds a NUL.
_PLACEHOLDER = re.compile(r'"\\u0000(\d+)\\u0000"')


class _Big:
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def dumps(value: Any) -> str:
    text = json.dumps(value)
    if "e+" not in text:  # no float was written with a positive exponent
        return text
    if "\\u0000" in text:  # JSONB refuses NUL in strings: such a value is not stored there
        return text
    big: list[str] = []

    def mark(v: Any) -> Any:
        if type(v) is float and math.isfinite(v) and abs(v) >= _EXPONENT_FROM:
            big.append(f"{int(v)}.0")
            return _Big(len(big) - 1)
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [mark(x) for x in v]
        return v

    def placeholder(o: object) -> str:
        if isinstance(o, _Big):
            return f"\0{o.index}\0"
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    marked = json.dumps(mark(value), default=placeholder)
    return _PLACEHOLDER.sub(lambda m: big[int(m[1])], marked)
