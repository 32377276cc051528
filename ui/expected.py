"""Above Submit: how big the job is and how long it should run, from past runs of its kind.

The sizes and past runs are the job page's own (`jobstore.estimates`): the parameters that make
a job's size, and the latest succeeded runs of its kind within ×2 of it, scaled. The form is an
`st.form`, so the values it reads are those it was drawn with (defaults, a clone, a preset, or
the last submit that was refused); the caption names the size, so it says what it is for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from compute import registry
from compute.registry import Kind
from jobstore.estimates import NOT_SIZE, Spread, size_parts
from runlab.errors import InvalidParams
from runlab.format import rough_duration
from ui.text import md_escape

# The page's way to the store: the expected duration of these values, and its past runs.
Lookup = Callable[[Mapping[str, Any]], tuple[Spread | None, int]]

NOT_YET = "Size and expected run time: shown once the values above are valid."


def values(kind: Kind, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parameters as the store would keep them, so that their size matches past runs';
    None while a size parameter holds no valid value.

    With a value missing that is no size (a file not yet uploaded), the fields' defaults fill
    the gaps, as the model would.
    """
    try:
        return registry.validated(kind.name, params)[1]
    except InvalidParams as exc:
        infos = registry.describe(kind.params)
        sizes = {i.name for i in infos if i.type == "int" and i.name not in NOT_SIZE}
        if sizes & set(exc.errors):
            return None
        return {i.name: i.default for i in infos if not i.required} | dict(params)


def size_text(kind: Kind, params: Mapping[str, Any]) -> str | None:
    """`1,000,000,000 samples`; for several parts, their product, then each with its label."""
    parts = size_parts(params)
    if not parts:
        return None
    labels = {i.name: i.label for i in registry.describe(kind.params)}
    if len(parts) == 1:
        name, value = parts[0]
        label = labels.get(name, name)
        return f"{value:,} {label[:1].lower()}{label[1:]}"
    product = math.prod(max(1, v) for _, v in parts)
    return f"{product:,} (" + " × ".join(f"{labels.get(n, n)} {v:,}" for n, v in parts) + ")"


def _range(spread: Spread) -> str:
    """` (1–3 min)`, ` (up to 2 min)`, ` (45 min to 1 h 30 min)`; empty when it says nothing."""
    if not spread.ranged:
        return ""
    low, high = rough_duration(spread.lo), rough_duration(spread.hi)
    if low == high:
        return ""
    if spread.lo < 60:
        return f" (up to {high})"
    if low.endswith(" min") and high.endswith(" min") and " h " not in low + high:
        return f" ({low.removesuffix(' min')}–{high})"
    return f" ({low} to {high})"


def run_time_text(spread: Spread | None, runs: int, *, sized: bool = True) -> str:
    """`expected run time about 2 min (1–3 min), from 5 past runs of a similar size`."""
    if spread is None:
        of = " of this size" if sized else ""
        return f"expected run time unknown: no past runs{of} yet"
    mid = "under a minute" if spread.mid < 60 else f"about {rough_duration(spread.mid)}"
    counted = f"{runs:,} past run" + ("" if runs == 1 else "s")
    if sized:
        counted += " of a similar size"
    return f"expected run time {mid}{_range(spread)}, from {counted}"


def caption(kind: Kind, params: Mapping[str, Any], lookup: Lookup) -> str:
    """The line above Submit, as plain text."""
    complete = values(kind, params)
    if complete is None:
        return NOT_YET
    size = size_text(kind, complete)
    spread, runs = lookup(complete)
    said = run_time_text(spread, runs, sized=size is not None)
    return f"Size: {size} · {said}." if size else said[:1].upper() + said[1:] + "."


def show(kind: Kind, params: Mapping[str, Any], lookup: Lookup) -> None:
    st.caption(md_escape(caption(kind, params, lookup)))
