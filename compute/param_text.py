"""The text of a kind's parameters: one syntax, read alike by the submit form and by
`runlab submit -p`.

A number reads as an analyst types it: `1e9`, `2.5e6`, `1,000,000` (commas between groups of
three digits) or `1_000_000`. An integer field takes any of these that is a whole number, so
`1e9` is 1,000,000,000 and `2.5` is refused by the field's rule, never cut to 2.

A list is numbers separated by commas, semicolons or spaces (`0.6, 0.4`). A matrix is rows
separated by new lines or semicolons, each row's numbers by commas or spaces (`1, 0.3; 0.3, 1`,
or the same on two lines). Either may also be JSON (`[0.6, 0.4]`, `[[1, 0.3], [0.3, 1]]`).
Text that does not read as numbers comes back unchanged, so that the kind's model refuses it
with the field's rule.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

TYPES = ("list", "matrix")
# Digits in groups of three between commas, as in 1,000,000.5: the commas are dropped. Any
# other comma (1,5) leaves the text unread, to be refused by the field's rule.
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?([eE][+-]?\d+)?")
# Digits an integer may have once written out: past this, 1e999999999 would be a huge int to
# build just to be refused as out of range.
_INT_DIGITS = 40
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


def scalar(raw: str, type_: str) -> Any:
    """`raw` as a value of a field of `type_` when it reads as one; otherwise `raw` itself, for
    the model to refuse with the field's rule. Empty, `none` and `null` leave a field empty."""
    raw = raw.strip()
    if raw.lower() in ("", "none", "null") and type_ != "str":
        return None
    if type_ in TYPES:
        return parse(raw, type_)
    if type_ == "int":
        return _integer(raw)
    if type_ == "float":
        try:
            return float(_ungrouped(raw))
        except ValueError:
            return raw
    if type_ == "bool":
        return {"true": True, "false": False, "1": True, "0": False}.get(raw.lower(), raw)
    return raw


def number_text(value: Any) -> str:
    """A number as the form shows it, and `scalar` reads it back: `1,000,000,000`, `0.35`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value.is_integer() and abs(value) < 1e16:
        return f"{int(value):,}"
    return repr(value)  # the shortest text that reads back as the same float


def _ungrouped(raw: str) -> str:
    return raw.replace(",", "") if _GROUPED.fullmatch(raw) else raw


def _integer(raw: str) -> int | str:
    """`raw` as a whole number, read exactly (1e9, 1,000, 1_000); `raw` if it is not one."""
    try:
        d = Decimal(_ungrouped(raw))
    except InvalidOperation:
        return raw
    if not d.is_finite() or d.adjusted() >= _INT_DIGITS or d != d.to_integral_value():
        return raw
    return int(d)


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
