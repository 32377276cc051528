"""An uploaded table at a glance, under its uploader: enough to see that the file was read as
meant (the right columns, numbers read as numbers, nothing missing) before a job runs on it."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from compute.datasets import ColumnSummary, TableSummary
from runlab.format import significant
from ui.text import md_escape

HEAD_ROWS = 5
DIGITS = 6  # min and max are the file's own values: most files hold no more digits than this
FIT_ROWS = 15  # a column table this long is shown whole; a longer one scrolls in its frame
HEADERS = ("Column", "Count", "Missing", "Min", "Mean", "Max")


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def headline(name: str, summary: TableSummary) -> str:
    """`prices.csv: 120 rows × 3 columns`, as plain text."""
    return f"{name}: {plural(summary.rows, 'row')} × {plural(len(summary.columns), 'column')}"


def number(value: float | None) -> str:
    """An integer exactly, a fraction to `DIGITS` significant digits without trailing zeros:
    `1,200`, `10.5`, `0.003142`; empty for a column with no numbers."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    mantissa, e, exponent = significant(value, DIGITS).partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa + e + exponent


def mean_text(column: ColumnSummary) -> str:
    """The mean to the decimals the column's larger end is shown with: the mean of returns
    that cancel out reads `0`, not the `1.5e-20` that float sums leave."""
    mean, ends = column.mean, [abs(v) for v in (column.min, column.max) if v is not None]
    if mean is None or not ends or not all(map(math.isfinite, [mean, *ends])) or not max(ends):
        return number(mean)
    decimals = DIGITS - 1 - math.floor(math.log10(max(ends)))
    return number(round(mean, decimals) if decimals > 0 else float(round(mean)))


def column_rows(summary: TableSummary) -> list[dict[str, str]]:
    """One row per column of the file, its numbers as text: grouped, and rounded sensibly."""
    return [
        dict(
            zip(
                HEADERS,
                (
                    c.name,
                    f"{c.count:,}",
                    f"{c.missing:,}",
                    number(c.min),
                    mean_text(c),
                    number(c.max),
                ),
                strict=True,
            )
        )
        for c in summary.columns
    ]


def show(name: str, summary: TableSummary) -> None:
    """The table's shape in the expander's title, always in sight; its columns and first rows
    inside, open at first, as an analyst looks at a file they just loaded."""
    title = md_escape(headline(name, summary))
    with st.expander(title, expanded=True, icon=":material/table_view:"):
        config: dict[str, Any] = {
            h: st.column_config.TextColumn(h, alignment="right") for h in HEADERS[1:]
        }
        config["Column"] = st.column_config.TextColumn("Column", pinned=True)
        st.dataframe(
            column_rows(summary),
            hide_index=True,
            column_config=config,
            height="content" if len(summary.columns) <= FIT_ROWS else "auto",
        )
        shown = len(summary.head)
        st.caption("The first row:" if shown == 1 else f"The first {shown} rows:")
        st.dataframe(summary.head, hide_index=True, height="content")
