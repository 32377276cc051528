"""What text the store accepts: the same rule on SQLite and PostgreSQL.

PostgreSQL refuses a NUL byte in text and JSONB where SQLite stores it, and a lone surrogate
cannot be encoded for either; control characters in a name or tag only confuse whoever reads
it. So every edge refuses them before anything is stored, naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from runlab.errors import InvalidParams

TEXT_WHITESPACE = frozenset("\t\n\r")
# Unicode's control characters (Cc) and surrogates (Cs).
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def bad_character(text: str, *, allow: frozenset[str] = frozenset()) -> str | None:
    """Why `text` cannot be stored, or None: names the first control character and where."""
    for found in CONTROL.finditer(text):
        ch = found.group()
        if ch not in allow:
            what = "a NUL byte" if ch == "\0" else f"the control character U+{ord(ch):04X}"
            return f"must not contain {what} (at character {found.start() + 1})"
    return None


def clean_label(text: str, field: str, *, max_length: int, empty: str, too_long: str) -> str:
    """`text`, already trimmed, as a name or tag is stored; else InvalidParams on `field`,
    saying `empty` or `too_long`, or naming the character no store keeps."""
    if not text:
        raise InvalidParams({field: empty})
    if len(text) > max_length:
        raise InvalidParams({field: too_long})
    if why := bad_character(text):
        raise InvalidParams({field: why})
    return text


def bad_in_json(value: Any) -> str | None:
    """Why a JSON value (parameters, say) cannot be stored, or None; keys are checked too.

    Line breaks and tabs may stand inside free text, as in a matrix typed row by row.
    """
    for text in _strings_in(value):
        why = bad_character(text, allow=TEXT_WHITESPACE)
        if why is not None:
            return why
    return None


def _strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings_in(v)
