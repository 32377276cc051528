"""How durations, sizes and field names read, in one place: the pages, the CLI, the store's
checks and the kinds' messages all word them here. Plain functions with no dependency, so
every layer may import them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

DASH = "—"
MIB = 1024 * 1024


def duration(seconds: float | None) -> str:
    """A compact duration: `850 ms`, `42 s`, `3 min 05 s`, `2 h 04 min`, `3 d 4 h`."""
    if seconds is None or not math.isfinite(seconds):
        return DASH
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def rough_duration(seconds: float) -> str:
    """A duration to the minute, for waits and estimates, which are no more exact than that:
    `under a minute`, `6 min`, `2 h 05 min`, `3 d 4 h`."""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    hours = minutes // 60
    return f"{hours // 24} d {hours % 24} h"


def size(n: int | None) -> str:
    """A byte count in binary units, as memory is counted: `512 B`, `1.5 KiB`, `302.3 MiB`."""
    if n is None or n < 0:
        return DASH
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def file_size(n: int) -> str:
    """A file's size as upload limits state it: `12,345 bytes` below a MiB, then `50.0 MB`
    (a MiB each)."""
    return f"{n / MIB:.1f} MB" if n >= MIB else f"{n:,} bytes"


# Keys whose words an analyst writes otherwise: abbreviations in capitals, a closed form by
# what it is (the European options' Black–Scholes price, or the barrier's own formula).
KEYS = {"bs_price": "closed-form price"}
WORDS = {"ci": "CI", "var": "VaR", "cvar": "CVaR", "es": "ES", "se": "SE", "pnl": "P&L"}


def label(field: str) -> str:
    """A parameter or result key as a label, where its kind gives none:
    `seconds_per_stage` -> `Seconds per stage`, `ci_low` -> `CI low`, `var_99` -> `VaR 99`."""
    key = field.strip()
    if key in KEYS:
        words = KEYS[key]
    else:
        words = " ".join(WORDS.get(w.lower(), w) for w in key.replace("_", " ").split())
    return words[:1].upper() + words[1:]


def significant(value: float | int, digits: int = 4) -> str:
    """A number to `digits` significant digits, with separators: `10.45`, `0.005201`,
    `1,234,568`; very small or large ones in scientific notation."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) and abs(value) >= 10 ** (digits - 1):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) < 1e-4 or abs(value) >= 1e15:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def decimals_for(error: float) -> int:
    """The decimal places that an uncertainty of `error` supports: its first two significant
    digits (0.0052 -> 4)."""
    if not math.isfinite(error) or error <= 0:
        return 6
    return max(0, 1 - math.floor(math.log10(error)))


def measured(value: float, error: float | None) -> str:
    """A value with its standard error, both to the digits the error supports:
    `10.4495 ± 0.0052`."""
    if error is None or not math.isfinite(error) or error <= 0 or not math.isfinite(value):
        return significant(value, 6)
    d = decimals_for(error)
    return f"{value:,.{d}f} ± {error:,.{d}f}"


def hosts(tasks_by_host: Mapping[str, int]) -> str:
    """`worker-1 (14 tasks), worker-2 (12 tasks)`: the busiest first."""
    ranked = sorted(tasks_by_host.items(), key=lambda hn: (-hn[1], hn[0]))
    return ", ".join(f"{h} ({n:,} task{'s' if n != 1 else ''})" for h, n in ranked)
