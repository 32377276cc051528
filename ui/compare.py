"""The parts of /compare: each job's link, the table of fields that differ, and the overlay chart.

Every value reaches the page as text in a dataframe cell, never as Markdown; the job names that
label the chart's traces are entity-escaped, since Plotly reads a few HTML tags in its labels.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from compute import registry
from compute.registry import FieldInfo, Kind
from jobstore import compare as store_compare
from jobstore.compare import ABSENT, MAX_JOBS, MIN_JOBS, ComparedJob, Comparison, FieldRow
from jobstore.history import history
from jobstore.search import InvalidQuery, parse
from ui import badges, charts
from ui import format as fmt
from ui.tables import kind_title
from ui.text import md_escape, one_line

SECTION_LABEL = {"param": "parameter", "result": "result"}
# Lists up to this long are shown whole; longer ones by their length and first items.
SHORT_LIST = 6
CELL_CHARS = 120
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
    parts += [job.short_id, kind_title(s.kind), badges.status_text(s.status)]
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
            st.caption(f"`{job.short_id}` · {md_escape(kind_title(job.summary.kind))}")
            badges.status_badge(job.summary.status)


def cell(
    value: Any, field: str = "", *, info: FieldInfo | None = None, result: bool = False
) -> str:
    """A field's value as short text: a choice by its label, numbers with separators (a
    result's floats to six significant digits, a parameter's as typed), long lists by their
    length, and a dash where a job has no value (another kind's field, or one left empty).

    Seeds are shown bare, without separators, so that one can be copied into a form.
    """
    if value is ABSENT or value is None:
        return fmt.DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and field == "seed":
        return str(value)
    if isinstance(value, float) and result and math.isfinite(value):
        return f"{value:,.6g}"
    if isinstance(value, int | float):
        return fmt.number(value)
    if isinstance(value, str) and info is not None and info.type == "choice":
        return one_line(info.choice_label(value), CELL_CHARS)
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
    """One row per field and one column per job (`job 1`, `job 2`, …), all text; `field` is
    the key, `label` what the table shows for it: a parameter by its form's label ("Strike K"),
    a result field by its words ("CI low")."""
    rows: list[FieldRow] = comparison.differing if only_differences else comparison.fields
    infos = registry.fields_of(kinds_of(comparison))
    columns = ["section", "field", "label", "differs"]
    columns += [_column(i) for i in range(len(comparison.jobs))]
    out = []
    for row in rows:
        info = infos.get(row.path[0]) if row.section == "param" else None
        head = info.label if info is not None else fmt.label(row.path[0])
        result = row.section == "result"
        out.append(
            [
                SECTION_LABEL[row.section],
                row.name,
                " · ".join([head, *row.path[1:]]),
                row.differs,
                *(cell(v, row.path[-1], info=info, result=result) for v in row.values),
            ]
        )
    return pd.DataFrame(out, columns=columns)


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
        "label": st.column_config.TextColumn("Field", width="medium", pinned=True),
        "section": st.column_config.TextColumn("Section", width="small"),
        "differs": st.column_config.CheckboxColumn(
            "Differs", width="small", help="The jobs' values are not all the same"
        ),
    }
    for i, job in enumerate(comparison.jobs):
        config[_column(i)] = st.column_config.TextColumn(header(job), width="medium")
    styled = frame.style.apply(lambda row: [HIGHLIGHT if row["differs"] else ""] * len(row), axis=1)
    with st.container(key=key):
        # Every row at once: the differences are what the page is for, not a scroll away.
        st.dataframe(
            styled,
            column_config=config,
            column_order=list(config),  # the key, `field`, stays in the data, unshown
            hide_index=True,
            height="content",
        )


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
    return charts.fitted(fig)


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


# --- the kinds' view of a comparison ------------------------------------------------------------


def kinds_of(comparison: Comparison) -> list[Kind]:
    """The installed kinds of the jobs compared, in the order they first appear."""
    found = (registry.find(name) for name in dict.fromkeys(j.summary.kind for j in comparison.jobs))
    return [kind for kind in found if kind is not None]


def in_form_order(comparison: Comparison) -> Comparison:
    """The parameters in the order their forms show them, the first job's kind first."""
    order = [name for kind in kinds_of(comparison) for name in kind.params.model_fields]
    fields = store_compare.field_rows(comparison.jobs, list(dict.fromkeys(order)))
    return Comparison(comparison.jobs, comparison.unknown, fields)


def default_series(comparison: Comparison) -> str | None:
    """The kind's headline measure where the jobs have it as a series, else the store's pick."""
    for kind in kinds_of(comparison):
        for name in kind.headline:
            if name in comparison.series_names:
                return name
    return comparison.default_series


def varied_parameter(comparison: Comparison) -> str | None:
    """The one parameter whose value differs between jobs of one kind, if it is a number.

    The seed is not counted: drawn afresh for each job left to choose its own, it differs
    between jobs that an analyst set apart by one parameter only.
    """
    if len(kinds_of(comparison)) != 1 or len({j.summary.kind for j in comparison.jobs}) != 1:
        return None
    differing = [
        r
        for r in comparison.differing
        if r.section == "param" and len(r.path) == 1 and r.path[0] != "seed"
    ]
    if len(differing) != 1:
        return None
    (row,) = differing
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in row.values)
    return row.path[0] if numeric else None


def _error_of(job: ComparedJob, measure: str) -> float | None:
    """A 95 % half-width for `measure`, where the result carries its standard error."""
    result = job.result or {}
    se = result.get("standard_error") if measure in ("price", "estimate") else None
    return 1.96 * se if isinstance(se, int | float) and math.isfinite(se) else None


def against_parameter_figure(comparison: Comparison) -> go.Figure | None:
    """Each headline result against the one parameter that varies, with 95 % error bars
    where the kind gives a standard error; None when no single numeric parameter varies."""
    param = varied_parameter(comparison)
    if param is None:
        return None
    (kind,) = kinds_of(comparison)
    measures = [m for m in kind.headline if m != "standard_error"]
    done = sorted((j for j in comparison.jobs if j.result), key=lambda j: float(j.params[param]))
    measures = [
        m for m in measures if any(isinstance((j.result or {}).get(m), int | float) for j in done)
    ]
    if not done or not measures:
        return None
    info = registry.fields_of([kind]).get(param)
    label = info.label if info is not None else fmt.label(param)
    fig = make_subplots(rows=1, cols=len(measures), horizontal_spacing=0.12)
    for col, measure in enumerate(measures, start=1):
        points = [j for j in done if isinstance((j.result or {}).get(measure), int | float)]
        errors = [_error_of(j, measure) for j in points]
        fig.add_trace(
            go.Scatter(
                x=[j.params[param] for j in points],
                y=[(j.result or {})[measure] for j in points],
                mode="lines+markers",
                name=html.escape(fmt.label(measure)),
                text=[trace_label(j) for j in points],
                error_y=(
                    {"type": "data", "array": [e or 0.0 for e in errors], "visible": True}
                    if any(e is not None for e in errors)
                    else None
                ),
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=html.escape(label), row=1, col=col)
        fig.update_yaxes(title_text=html.escape(fmt.label(measure)), row=1, col=col)
    fig.update_layout(height=charts.ROW_HEIGHT + 80, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return charts.fitted(fig)


def against_parameter(comparison: Comparison) -> None:
    fig = against_parameter_figure(comparison)
    if fig is None:
        return
    st.subheader("Results against the parameter that varies")
    st.caption("Error bars: the 95 % interval from each job's standard error.")
    st.plotly_chart(fig, key="compare-against", config=charts.PLOTLY_CONFIG, width="stretch")


# --- picking jobs -------------------------------------------------------------------------------

PICK_LIMIT = 50


def picker(engine: Any, me: str) -> None:
    """/compare with no ids: search the history and tick the jobs to compare."""
    st.title("Compare jobs")
    st.caption(f"Pick {MIN_JOBS} to {MAX_JOBS} jobs, from a search or the latest ones.")
    text = st.text_input(
        "Search",
        key="compare.search",
        placeholder="kind:option_pricing sigma>=0.3 tag:q3",
        max_chars=1000,
    )
    kinds = [k.name for k in registry.all_kinds()]
    keys = {f for k in registry.all_kinds() for f in k.params.model_fields}
    try:
        query = parse(text, kinds=kinds, param_keys=keys, me=me)
    except InvalidQuery as exc:
        st.error(f"The search was not run: {md_escape(exc.message)}.", icon=":material/search_off:")
        return
    rows = history(engine, query, limit=PICK_LIMIT).rows
    if not rows:
        st.info("No jobs match this search.", icon=":material/filter_alt_off:")
        return
    labels = {
        r.id: f"{one_line(r.name, 40) or r.id[:8]} · {r.id[:8]} · {r.kind} · {r.outcome}"
        for r in rows
    }
    chosen = st.multiselect(
        "Jobs",
        list(labels),
        format_func=labels.__getitem__,
        key="compare.pick",
        max_selections=MAX_JOBS,
        placeholder="pick jobs to compare",
    )
    if st.button(
        "Compare",
        type="primary",
        icon=":material/compare_arrows:",
        disabled=len(chosen) < MIN_JOBS,
        key="compare.go",
    ):
        st.query_params["ids"] = ",".join(chosen)
        st.rerun()
