"""The parts of /compare: each job's link, the table of fields that differ, and the overlay chart.

Every value reaches the page as text in a dataframe cell, never as Markdown; the job names that
label the chart's traces are entity-escaped, since Plotly reads a few HTML tags in its labels.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from jobstore.compare import ABSENT, MAX_JOBS, MIN_JOBS, ComparedJob, Comparison, FieldRow
from ui import badges, charts
from ui import format as fmt
from ui.text import md_escape, one_line

SECTION_LABEL = {"param": "parameter", "result": "result"}
# Lists up to this long are shown whole; longer ones by their length and first items.
SHORT_LIST = 6
CELL_CHARS = 120
NULL = "null"
# One colour per job, the same in every panel: Plotly's own palette has ten, as many as MAX_JOBS.
COLOURS = qualitative.Plotly
HIGHLIGHT = "background-color: #FFF4CC"


def refused(message: str) -> None:
    """Why the link cannot be compared, and where to pick jobs instead."""
    st.title("Compare jobs")
    st.error(md_escape(message[:1].upper() + message[1:] + "."), icon=":material/rule:")
    _to_jobs()


def unknown(ids: Sequence[str], *, enough_left: bool) -> None:
    """Name each id that matched no job; the rest are compared if there are enough of them."""
    # Quoted, not in a code span: inside one, the escapes that keep Markdown out would show.
    named = ", ".join(f"“{md_escape(one_line(i, 40))}”" for i in ids)
    noun = "id" if len(ids) == 1 else "ids"
    if enough_left:
        st.warning(f"No job has the {noun} {named}: left out.", icon=":material/search_off:")
    else:
        st.title("Compare jobs")
        st.error(
            f"No job has the {noun} {named}, which leaves fewer than {MIN_JOBS} jobs to compare.",
            icon=":material/search_off:",
        )
        _to_jobs()


def _to_jobs() -> None:
    st.caption(f"Pick {MIN_JOBS} to {MAX_JOBS} jobs on the Jobs page and compare them from there.")
    st.page_link("pages/jobs.py", label="See all jobs", icon=":material/list:")


def header(job: ComparedJob) -> str:
    """A table column's header: the name, short id, kind and status, as plain text."""
    s = job.summary
    parts = [one_line(s.name, 40)] if s.name.strip() else []
    parts += [job.short_id, s.kind, badges.status_text(s.status)]
    return " · ".join(parts)


def job_links(comparison: Comparison) -> None:
    """One column per job, in the table's order, each linking to the job's own page."""
    for col, job in zip(st.columns(len(comparison.jobs)), comparison.jobs, strict=True):
        with col:
            name = job.summary.name.strip() or job.short_id
            st.page_link(
                "pages/job.py",
                label=md_escape(one_line(name, 40)),
                query_params={"id": job.id},
                icon=":material/open_in_new:",
            )
            st.caption(f"`{job.short_id}` · {md_escape(job.summary.kind)}")
            badges.status_badge(job.summary.status)


def cell(value: Any, field: str = "") -> str:
    """A field's value as short text: numbers as on a job's page, long lists by their length.

    Seeds are shown bare, without separators, so that one can be copied into a form.
    """
    if value is ABSENT:
        return fmt.DASH
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and field == "seed":
        return str(value)
    if isinstance(value, int | float):
        return fmt.number(value)
    if isinstance(value, str):
        return one_line(value, CELL_CHARS)
    if isinstance(value, list | tuple):
        return _list_text(value)
    return one_line(_json(value), CELL_CHARS)


def _list_text(items: Sequence[Any]) -> str:
    if any(isinstance(v, dict | list | tuple) for v in items):
        return f"{len(items)} item{'s' if len(items) != 1 else ''}"
    shown = ", ".join(cell(v) if not isinstance(v, str) else _json(v) for v in items[:SHORT_LIST])
    if len(items) <= SHORT_LIST:
        return one_line(f"[{shown}]", CELL_CHARS)
    return one_line(f"{len(items)} items: [{shown}, …]", CELL_CHARS)


def _json(value: Any) -> str:
    return json.dumps(fmt.browser_json(value), ensure_ascii=False, default=str)


def field_frame(comparison: Comparison, *, only_differences: bool = False) -> pd.DataFrame:
    """One row per field and one column per job (`job 1`, `job 2`, …), all text."""
    rows: list[FieldRow] = comparison.differing if only_differences else comparison.fields
    columns = ["section", "field", "differs"] + [_column(i) for i in range(len(comparison.jobs))]
    return pd.DataFrame(
        [
            [
                SECTION_LABEL[row.section],
                row.name,
                row.differs,
                *(cell(v, row.path[-1]) for v in row.values),
            ]
            for row in rows
        ],
        columns=columns,
    )


def _column(i: int) -> str:
    return f"job {i + 1}"


def field_table(comparison: Comparison, *, only_differences: bool, key: str) -> None:
    """The fields, with the rows that differ ticked and highlighted."""
    frame = field_frame(comparison, only_differences=only_differences)
    if frame.empty:
        if only_differences:
            st.info("These jobs have the same parameters and results.", icon=":material/check:")
        else:
            st.caption("These jobs have no parameters or results yet.")
        return
    config: dict[str, Any] = {
        "section": st.column_config.TextColumn("Section", width="small"),
        "field": st.column_config.TextColumn("Field", width="medium", pinned=True),
        "differs": st.column_config.CheckboxColumn(
            "Differs", width="small", help="The jobs' values are not all the same"
        ),
    }
    for i, job in enumerate(comparison.jobs):
        config[_column(i)] = st.column_config.TextColumn(header(job), width="medium")
    styled = frame.style.apply(lambda row: [HIGHLIGHT if row["differs"] else ""] * len(row), axis=1)
    with st.container(key=key):
        # Every row at once: the differences are what the page is for, not a scroll away.
        st.dataframe(styled, column_config=config, hide_index=True, height="content")


def trace_label(job: ComparedJob) -> str:
    """A legend entry: the name and short id, entity-escaped for Plotly's label markup."""
    name = one_line(job.summary.name, 40)
    text = f"{name} · {job.short_id}" if name else job.short_id
    return html.escape(text)


def overlay_figure(comparison: Comparison, names: Sequence[str]) -> go.Figure | None:
    """One panel per series, each with one trace per job that has it, one colour per job.

    Each panel is named on its y axis rather than by a title, which the legend above would hide.
    """
    names = [n for n in names if n in comparison.series_names]
    if not names:
        return None
    fig = make_subplots(rows=len(names), cols=1, vertical_spacing=0.08)
    shown: set[str] = set()
    for row, name in enumerate(names, start=1):
        for i, trace in enumerate(comparison.overlay(name)):
            if not trace.steps:
                continue
            fig.add_trace(
                go.Scatter(
                    x=trace.steps,
                    y=trace.values,
                    mode="lines+markers",
                    name=trace_label(trace.job),
                    legendgroup=trace.job.id,
                    showlegend=trace.job.id not in shown,
                    line={"color": COLOURS[i % len(COLOURS)]},
                ),
                row=row,
                col=1,
            )
            shown.add(trace.job.id)
        fig.update_yaxes(title_text=html.escape(name), row=row, col=1)
    fig.update_xaxes(title_text="step", row=len(names), col=1)
    fig.update_layout(
        height=charts.ROW_HEIGHT * len(names) + 80,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    return fig


def overlay_chart(comparison: Comparison, names: Sequence[str]) -> None:
    """The chart, and which jobs lack a chosen series, so a missing line is explained."""
    if not comparison.series_names:
        st.caption("None of these jobs has a metric series yet.")
        return
    fig = overlay_figure(comparison, names)
    if fig is None:
        st.caption("Pick a series to draw it for every job.")
        return
    st.plotly_chart(fig, key="compare-overlay", config=charts.PLOTLY_CONFIG, width="stretch")
    for name in names:
        lacking = [t.job for t in comparison.overlay(name) if not t.steps]
        if lacking:
            who = ", ".join(md_escape(header(j)) for j in lacking)
            st.caption(f"No {md_escape(name)} series for: {who}")
