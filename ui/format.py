"""How times, durations and numbers read on every page, so that no page formats its own."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Durations and sizes are worded in runlab.format, which the CLI and the kinds use too.
from runlab.format import DASH as DASH
from runlab.format import duration as duration
from runlab.format import hosts as hosts
from runlab.format import label as label
from runlab.format import size as size

# Browsers parse JSON numbers as doubles: integers beyond this lose their last digits.
JS_SAFE_INT = 2**53 - 1


def duration_in_a_sentence(seconds: float | None) -> str:
    """`duration`, with no-break spaces: "12 min 05 s" never splits across two lines."""
    return duration(seconds).replace(" ", "\u00a0")


def ago(ts: datetime | None, now: datetime | None = None) -> str:
    """How long ago `ts` was, in words a person scans quickly: `12 s ago`, `3 h ago`."""
    if ts is None:
        return DASH
    now = now or datetime.now(UTC)
    seconds = (now - ts).total_seconds()
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    if seconds < 7 * 86400:
        return f"{seconds // 86400:.0f} d ago"
    return ts.strftime("%Y-%m-%d")


def elapsed(
    started: datetime | None, finished: datetime | None, now: datetime | None = None
) -> str:
    """Run time so far, or in total once finished."""
    if started is None:
        return DASH
    end = finished or now or datetime.now(UTC)
    return duration((end - started).total_seconds())


def browser_zone() -> tzinfo:
    """The viewer's time zone as the browser reports it; UTC when it is unknown or bogus."""
    # Imported here, so that the standalone report formats with this module and no Streamlit.
    import streamlit as st

    name = st.context.timezone
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def clock(ts: datetime, zone: tzinfo = UTC) -> str:
    """Time of day, for log lines: `14:03:07`."""
    return ts.astimezone(zone).strftime("%H:%M:%S")


def timestamp(ts: datetime | None, zone: tzinfo = UTC) -> str:
    """Date and time with the zone's abbreviation: `2025-03-04 14:03:07 CET`."""
    if ts is None:
        return DASH
    local = ts.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}".rstrip()


def when(ts: datetime | None, zone: tzinfo = UTC, now: datetime | None = None) -> str:
    """How long ago, then the exact time, for cells that cannot show a tooltip:
    `3 min ago · 2025-03-04 14:03:07 CET`. Past a week the age says nothing the date does not."""
    if ts is None:
        return DASH
    now = now or datetime.now(UTC)
    if (now - ts).total_seconds() >= 7 * 86400:
        return timestamp(ts, zone)
    return f"{ago(ts, now)} · {timestamp(ts, zone)}"


def number(value: float | int) -> str:
    """A result number: integers with separators, floats to ten significant digits."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e12 or abs(value) < 1e-4):
        return f"{value:.4e}"
    return f"{value:.10g}"


def percent(fraction: float) -> str:
    return f"{100 * max(0.0, min(1.0, fraction)):.0f} %"


FOLD_ITEMS = 20  # a list longer than this shows as its size


def folded(value: object) -> object:
    """`value` with every list of more than FOLD_ITEMS items replaced by a note of its size,
    so that a page never lays out thousands of numbers; the download keeps them all."""
    if isinstance(value, Mapping):
        return {k: folded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) > FOLD_ITEMS:
            return f"[{len(value):,} items: in the download]"
        return [folded(v) for v in value]
    return value


def browser_json(value: object) -> object:
    """`value` for st.json with every integer shown exactly.

    A 63-bit seed such as 2936024911900542511 would otherwise display as
    2936024911900542500, and a copied seed would not reproduce the run.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > JS_SAFE_INT:
        return str(value)
    if isinstance(value, Mapping):
        return {k: browser_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [browser_json(v) for v in value]
    return value
