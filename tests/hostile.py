"""Hypothesis strategies for what a URL, a shell or an environment can hand a parser: control
characters, NUL, lone surrogates, dates at and past the calendar's ends, and numbers no
float or timedelta holds, mixed with the well-formed terms they hide among."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from jobstore.search import PUBLIC_ID

# Each is a character some layer has choked on: NUL (PostgreSQL text), C0 and C1 controls,
# a lone surrogate (no encoder takes it), line separators, and the replacement character.
NASTY = "\x00\t\n\r\x0b\x0c\x1b\x1f\x7f\x85\ud800\udfff\u2028\ufffd"
CHARS = st.one_of(
    st.just("\x00"),  # the one PostgreSQL refuses in any text, so drawn the most
    st.sampled_from(NASTY),
    st.characters(max_codepoint=0x7F),
    st.characters(),
)
CLEAN = st.characters(max_codepoint=0x7F, exclude_categories=["Cc"]) | st.characters(
    exclude_categories=["Cc", "Cs"]
)
# Mostly clean text, so that a search gets past the refusal of control characters too.
TEXT = st.text(CLEAN, max_size=12) | st.text(CHARS, max_size=12)
OFFSETS = st.sampled_from(["", "Z", "+00:00", "+14:00", "-14:00", "+23:59", "-23:59", "+05:30"])
BIG_INT = st.integers(-(10**40), 10**40)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
NUMBERS = st.one_of(
    BIG_INT.map(str),
    FLOATS.map(repr),
    st.sampled_from(["inf", "-inf", "nan", "Infinity", "1e309", "-1e309", "1e-400", "0x10"]),
)
MOMENTS = st.one_of(
    st.dates().map(str),
    st.builds(
        lambda at, zone: at.isoformat() + zone,
        st.datetimes(min_value=datetime.min, max_value=datetime.max),
        OFFSETS,
    ),
    st.sampled_from(
        [
            "9999-12-31",
            "0001-01-01",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59.999999-14:00",
            "9999-12-31T23:59:59.999999",
            "0000-01-01",
            "10000-01-01",
        ]
    ),
)
AGES = st.builds(
    lambda n, unit: f"{n}{unit}",
    st.integers(0, 10**30),
    st.sampled_from("mhdwMHDWsy"),
)
FIELD_KEYS = st.sampled_from(
    ["sigma", "samples", "price", "param.x", "result.y", "tag", "owner", "name", "id", "status"]
)
OPS = st.sampled_from([":", "=", "!=", ">", ">=", "<", "<="])
VALUES = st.one_of(NUMBERS, TEXT, TEXT.map(json.dumps), st.sampled_from(["true", "me", ""]))
SEARCH_TERMS = st.one_of(
    st.builds(lambda op, when: f"created{op}{when}", OPS, st.one_of(MOMENTS, AGES)),
    st.builds(lambda key, op, value: f"{key}{op}{value}", FIELD_KEYS, OPS, VALUES),
    TEXT,
    TEXT.map(json.dumps),
)
SEARCHES = st.lists(SEARCH_TERMS, max_size=6).map(" ".join)


def link_token(raw: bytes) -> str:
    """Bytes as a page link carries them: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | BIG_INT | FLOATS | TEXT,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["t", "s", "x"]) | TEXT, inner, max_size=3)
    ),
    max_leaves=12,
)
SORT_VALUES = st.one_of(
    st.none(),
    TEXT,
    FLOATS,
    BIG_INT,
    MOMENTS.map(lambda at: {"t": at}),
    st.one_of(BIG_INT, FLOATS).map(lambda s: {"s": s}),
    JSON,
)
PUBLIC_IDS = st.one_of(st.from_regex(PUBLIC_ID, fullmatch=True), JSON)


def cursor_payloads(public_ids: st.SearchStrategy[Any] = PUBLIC_IDS) -> st.SearchStrategy[str]:
    """Page-link tokens: random text and bytes, and JSON shaped like a cursor or nearly so."""
    shaped = st.tuples(SORT_VALUES, public_ids, st.booleans() | JSON).map(
        lambda parts: json.dumps(list(parts))  # NaN and Infinity included, as json writes them
    )
    shaped_token = shaped.map(lambda raw: link_token(raw.encode()))
    return st.one_of(
        shaped_token,
        shaped_token,
        st.text(CHARS, max_size=40),
        st.binary(max_size=120).map(link_token),
        JSON.map(lambda v: link_token(json.dumps(v).encode())),
        st.integers(1, 4000).map(lambda depth: link_token(b"[" * depth)),
    )


ENV_VALUES = st.one_of(
    TEXT, NUMBERS, AGES, MOMENTS, st.sampled_from(["failed", "queued", "succeeded,nope", ""])
)
