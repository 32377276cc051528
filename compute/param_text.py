"""The text of a kind's list and matrix parameters: one syntax, read alike by the submit form
and by `runlab submit -p`.

A list is numbers separated by commas, semicolons or spaces (`0.6, 0.4`). A matrix is rows
separated by new lines or semicolons, each row's numbers by commas or spaces (`1, 0.3; 0.3, 1`,
or the same on two lines). Either may also be JSON (`[0.6, 0.4]`, `[[1, 0.3], [0.3, 1]]`).
Text that does not read as numbers comes back unchanged, so that the kind's model refuses it
with the field's rule.
"""

from __future__ import annotations

import json
from typing import Any

TYPES = ("list", "matrix")
# Brackets a list (1) or a matrix (2) may nest in JSON: deeper is refused unread, so a hostile
# `[[[[…` costs one scan, never json's recursion.
DEPTH = {"list": 1, "matrix": 2}


def parse(text: str, type_: str) -> Any:
    """`text` as the numbers of a `type_` ("list" or "matrix") field, or `text` itself."""
    raw = text.strip()
    if raw.startswith("["):
        if _depth(raw, DEPTH[type_]) > DEPTH[type_]:
            return text
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            return text
    if type_ == "list":
        return _numbers(raw.replace(";", " "), text)
    parts = [row for line in raw.splitlines() for row in line.split(";") if row.strip()]
    rows = [_numbers(row, text) for row in parts]
    if any(isinstance(r, str) for r in rows):
        return text
    return rows


def to_text(value: Any, type_: str) -> str:
    """A list or matrix as the text `parse` reads back: `0.6, 0.4`, rows on separate lines."""
    if not isinstance(value, list | tuple):
        return "" if value is None else str(value)
    if type_ == "matrix":
        return "\n".join(to_text(row, "list") for row in value)
    return ", ".join(str(v) for v in value)  # str() of a float round-trips exactly


def _numbers(part: str, text: str) -> list[float] | str:
    """The numbers in `part`, separated by commas or white space; `text` if one is not."""
    try:
        return [float(x) for x in part.replace(",", " ").split()]
    except ValueError:
        return text


def _depth(raw: str, limit: int) -> int:
    """How deep brackets nest in `raw`, counted up to one past `limit`."""
    depth = deepest = 0
    for c in raw:
        if c in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif c in "]}":
            depth -= 1
    return deepest
