"""The parts of /sweep: the progress of the whole with an expected end, the table of points,
the best point by a result field, the charts of a result against the swept parameters, and
the CSV of every point.

Everything here reads the points that `jobstore.sweeps.points` returns in one statement, made
again only when one of the sweep's jobs has moved (`table_of`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy import Engine

from compute import registry
from compute import sweeps as plans
from compute.registry import FieldInfo, Kind
from jobstore import sweeps
from jobstore.models import Status
from jobstore.sweeps import Point, SweepView
from runlab.errors import InvalidParams
from runlab.format import label, rough_duration, significant
from ui import badges, report, tables
from ui import format as fmt
from ui.text import md_escape

LIVE_SECONDS = 2.0
BIG = 1_000  # a sweep with more points than this refreshes less often
BIG_LIVE_SECONDS = 10.0
PARAM, RESULT = "param.", "result."
RECENT = 50  # the ended jobs whose run times set the pace of the rest
MAX_LINES = 1_000  # of the parallel coordinates
CSV_COLUMNS = ["point", "id", "name", "status", "started_at", "finished_at"]


@dataclass(frozen=True)
class Table:
    """A sweep's points, their numeric result fields and their table. Shared between the
    sessions that show the same sweep at the same moment: never change it."""

    points: list[Point]
    fields: list[str]
    frame: pd.DataFrame


@st.cache_resource(max_entries=8, show_spinner=False)
def _table(
    url: str,
    public_id: str,
    stamp: tuple[Any, ...],
    kind: str,
    names: tuple[str, ...],
    _engine: Engine,
) -> Table:
    points = sweeps.points(_engine, public_id)
    fields = result_fields(registry.find(kind), points)
    return Table(points, fields, frame(points, names, fields))


def table_of(engine: Engine, public_id: str, kind: Kind | None, names: Sequence[str]) -> Table:
    """The sweep's points and table, read and built again only when one of its jobs has moved
    (`sweeps.version`): a page of 10,000 points redraws without reading them all on every
    tick or click."""
    stamp = sweeps.version(engine, public_id)
    kind_name = kind.name if kind else ""
    return _table(str(engine.url), public_id, stamp, kind_name, tuple(names), engine)


def refresh_every(sweep: SweepView) -> float | None:
    """The live parts' timer: none once every point has ended; slower for a big sweep."""
    if sweep.children and sweep.ended == sweep.children:
        return None
    return LIVE_SECONDS if sweep.children <= BIG else BIG_LIVE_SECONDS


def describe(sweep: SweepView, kind: Kind | None) -> str:
    """The plan in a few words ("48 jobs: 6 sigma × 8 T"), or its number of jobs where the plan
    cannot be made again here (its kind is not installed, or its parameters have changed)."""
    if kind is not None:
        try:
            return plans.plan(
                sweep.kind,
                sweep.axes,
                method=sweep.plan.get("method"),
                count=sweep.plan.get("count") or 0,
                seed=sweep.plan.get("seed"),
            ).describe()
        except InvalidParams:
            pass
    return f"{sweep.children:,} job" + ("" if sweep.children == 1 else "s")


LONG_NUMBER = re.compile(r"\d+\.\d{7,}(?:[eE][-+]?\d+)?")


def axis_text(text: str) -> str:
    """A swept parameter's text as shown: a pipeline writes a number read from a result to its
    last digit, which is shown here to six significant digits; the sweep keeps them all."""
    return LONG_NUMBER.sub(lambda m: f"{float(m[0]):.6g}", text)


def swept(sweep: SweepView) -> list[str]:
    """The swept parameters, in the order the plan names them."""
    return list(sweep.axes)


def result_fields(kind: Kind | None, points: Sequence[Point]) -> list[str]:
    """The numeric fields of the points' results: the kind's headline fields first."""
    seen: dict[str, None] = {}
    for p in points:
        for k, v in (p.result or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                seen.setdefault(k)
    first = [k for k in (kind.headline if kind else ()) if k in seen]
    return [*first, *(k for k in seen if k not in first)]


def _labels(kind: Kind | None) -> dict[str, FieldInfo]:
    return {f.name: f for f in registry.describe(kind.params)} if kind else {}


def param_label(kind: Kind | None, name: str) -> str:
    info = _labels(kind).get(name)
    return info.label if info is not None else label(name)


# --- progress ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    total: int
    counts: Mapping[str, int]
    remaining_seconds: float | None  # None: not known yet (no point has ended), or all ended

    @property
    def ended(self) -> int:
        return sum(n for s, n in self.counts.items() if Status(s).terminal)


def progress_of(points: Sequence[Point]) -> Progress:
    """The points by status, and when the rest should end: the recent ended jobs' mean run
    time, for each point left, shared among the jobs running now (or one, if none runs)."""
    counts = Counter(p.status.value for p in points)
    left = len(points) - sum(n for s, n in counts.items() if Status(s).terminal)
    ran = sorted(
        (p.finished_at, (p.finished_at - p.started_at).total_seconds())
        for p in points
        if p.status.terminal and p.finished_at is not None and p.started_at is not None
    )[-RECENT:]
    remaining = None
    if left and ran:
        mean = sum(seconds for _at, seconds in ran) / len(ran)
        remaining = left * mean / max(1, counts.get(Status.RUNNING.value, 0))
    return Progress(len(points), dict(counts), remaining)


def progress(p: Progress, now: datetime | None = None) -> None:
    """A bar for the whole, a figure per status, and the expected end."""
    done = p.ended / p.total if p.total else 0.0
    st.progress(done, text=f"{p.ended:,} of {p.total:,} jobs ended · {fmt.percent(done)}")
    cols = st.columns(4)
    failed = p.counts.get("failed", 0) + p.counts.get("cancelled", 0)
    for col, (title, n) in zip(
        cols,
        (
            ("Succeeded", p.counts.get("succeeded", 0)),
            ("Running", p.counts.get("running", 0)),
            ("Queued", p.counts.get("queued", 0)),
            ("Failed or cancelled", failed),
        ),
        strict=True,
    ):
        col.metric(title, f"{n:,}")
    if p.ended == p.total:
        return
    if p.remaining_seconds is None:
        st.caption("Expected end: known once the first jobs end.")
        return
    now = now or datetime.now(UTC)
    end = now.timestamp() + p.remaining_seconds
    zone = fmt.browser_zone()
    at = fmt.clock(datetime.fromtimestamp(end, UTC), zone)
    st.caption(
        f"Expected end: about {at}, in {rough_duration(p.remaining_seconds)}, at the pace of "
        "its latest jobs."
    )


# --- the table ---------------------------------------------------------------------------------


def frame(points: Sequence[Point], names: Sequence[str], fields: Sequence[str]) -> pd.DataFrame:
    """One row per point: its job (a link), status, swept values, result fields, duration."""
    rows = []
    for p in points:
        row: dict[str, Any] = {
            "point": p.point + 1,
            "job": tables.job_link(p.public_id, p.name),
            "status": badges.status_text(p.status, p.partial),
        }
        for n in names:
            row[PARAM + n] = p.params.get(n)
        result = p.result or {}
        for f in fields:
            v = result.get(f)
            row[RESULT + f] = v if isinstance(v, int | float) and not isinstance(v, bool) else None
        row["duration"] = (
            (p.finished_at - p.started_at).total_seconds()
            if p.finished_at is not None and p.started_at is not None
            else None
        )
        rows.append(row)
    columns = ["point", "job", "status", *(PARAM + n for n in names)]
    columns += [*(RESULT + f for f in fields), "duration"]
    return pd.DataFrame(rows, columns=columns)


# Each column's width in pixels, by its place: fixed, so that a column is where one expects it.
WIDTHS = {"point": 60, "job": 260, "status": 90, PARAM: 150, RESULT: 120, "duration": 100}


def width(column: str) -> int:
    return WIDTHS.get(column) or WIDTHS[PARAM if column.startswith(PARAM) else RESULT]


def table(df: pd.DataFrame, kind: Kind | None, *, key: str) -> None:
    """The points, sortable by any column; each name opens its job."""
    config: dict[str, Any] = {
        "point": st.column_config.NumberColumn("Point", format="%d", width=width("point")),
        "job": st.column_config.LinkColumn(
            "Job", display_text=r"#(.*)$", width=width("job"), help="Open the job's page"
        ),
        "status": st.column_config.TextColumn("Status", width=width("status")),
        "duration": st.column_config.NumberColumn(
            "Duration (s)",
            format="%.1f",
            width=width("duration"),
            help="From its start to its end",
        ),
    }
    for column in df.columns:
        if column.startswith(PARAM):
            name = column.removeprefix(PARAM)
            config[column] = st.column_config.Column(
                param_label(kind, name), help="Swept", width=width(column)
            )
        elif column.startswith(RESULT):
            name = column.removeprefix(RESULT)
            config[column] = st.column_config.NumberColumn(
                label(name), format="%.6g", help="Result", width=width(column)
            )
    height = min(len(df), 12) * tables.ROW_PX + tables.HEADER_PX
    st.dataframe(df, column_config=config, hide_index=True, height=height, key=key, width="stretch")


# --- the best point ----------------------------------------------------------------------------


def best(points: Sequence[Point], field: str, *, highest: bool) -> Point | None:
    """The succeeded point with the lowest (or highest) finite value of `field`."""
    scored = [
        (float(v), p)
        for p in points
        if p.status is Status.SUCCEEDED
        and isinstance(v := (p.result or {}).get(field), int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    ]
    if not scored:
        return None
    pick = max if highest else min
    return pick(scored, key=lambda vp: vp[0])[1]


def show_best(point: Point | None, field: str, names: Sequence[str], kind: Kind | None) -> None:
    if point is None:
        st.caption(md_escape(f"No job has succeeded with a {label(field).lower()} yet."))
        return
    value = (point.result or {})[field]
    where = ", ".join(f"{param_label(kind, n)} = {_value_text(point.params.get(n))}" for n in names)
    st.markdown(
        f"**{md_escape(label(field))} {md_escape(significant(value, 6))}** at "
        f"{md_escape(where)}: [{md_escape(point.name)}]({tables.job_link(point.public_id)})"
    )


def _value_text(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# --- charts ------------------------------------------------------------------------------------


def _axis(series: pd.Series) -> tuple[list[float], list[tuple[float, str]]]:
    """A column on a 0-to-1 axis, with the labels to mark on it: a number's lowest and highest
    values, or each of a choice's values in the order they come."""
    if pd.api.types.is_numeric_dtype(series):
        values = [float(v) for v in series]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        marks = [(0.0, _value_text(low)), (1.0, _value_text(high))] if high > low else []
        return [(v - low) / span for v in values], marks or [(0.5, _value_text(low))]
    order = list(dict.fromkeys(str(v) for v in series))
    place = {v: i / max(1, len(order) - 1) for i, v in enumerate(order)}
    return [place[str(v)] for v in series], [(place[v], v) for v in order]


BANDS = 8  # colours of the lines, from the lowest values of the field to the highest


def parallel_figure(
    df: pd.DataFrame, names: Sequence[str], field: str, kind: Kind | None, *, highest: bool
) -> go.Figure | None:
    """Parallel coordinates: one line per succeeded point through the swept parameters to
    `field`, coloured by it; of more than MAX_LINES, the MAX_LINES best, which more lines than
    the chart has pixels would hide.

    Drawn as SVG lines, in BANDS colours: Plotly's own parallel coordinates draw with WebGL,
    which takes a browser without a GPU seconds on every redraw.
    """
    done = df.dropna(subset=[RESULT + field])
    if done.empty:
        return None
    if len(done) > MAX_LINES:
        pick = done.nlargest if highest else done.nsmallest
        done = pick(MAX_LINES, RESULT + field)
    titles = [param_label(kind, n) for n in names] + [label(field)]
    axes = [_axis(done[PARAM + n]) for n in names] + [_axis(done[RESULT + field])]
    scores = [float(v) for v in done[RESULT + field]]
    low, high = min(scores), max(scores)
    colours = px.colors.sample_colorscale("Viridis", [i / (BANDS - 1) for i in range(BANDS)])
    fig = go.Figure()
    for band, colour in enumerate(colours):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for row, score in enumerate(scores):
            at = 0 if high == low else min(BANDS - 1, int((score - low) / (high - low) * BANDS))
            if at == band:
                xs += [*range(len(axes)), None]
                ys += [values[row] for values, _marks in axes] + [None]
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"color": colour, "width": 1},
                    opacity=0.6,
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
    # The colour scale, on an invisible point.
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={
                "color": [low, high],
                "colorscale": "Viridis",
                "cmin": low,
                "cmax": high,
                "showscale": True,
                "colorbar": {"title": {"text": label(field)}},
            },
            hoverinfo="skip",
            showlegend=False,
        )
    )
    for i, (_values, marks) in enumerate(axes):
        fig.add_vline(x=i, line_color="#888", line_width=1)
        for y, text in marks:
            fig.add_annotation(
                x=i,
                y=y,
                text=text,
                showarrow=False,
                xanchor="left",
                xshift=4,
                yanchor="top" if y < 0.5 else "bottom" if y > 0.5 else "middle",
                font_size=11,
            )
    fig.update_layout(
        height=380,
        margin={"l": 30, "r": 30, "t": 20, "b": 40},
        xaxis={
            "tickvals": list(range(len(axes))),
            "ticktext": titles,
            "showgrid": False,
            "zeroline": False,
            "range": [-0.1, len(axes) - 0.6],
        },
        yaxis={"visible": False, "range": [-0.12, 1.12]},
    )
    return fig


def heatmap_figure(
    df: pd.DataFrame, x: str, y: str, field: str, kind: Kind | None
) -> go.Figure | None:
    """`field` over two swept parameters: the mean where other swept parameters vary."""
    done = df.dropna(subset=[RESULT + field])
    if done.empty:
        return None
    grid = done.pivot_table(
        index=PARAM + y, columns=PARAM + x, values=RESULT + field, aggfunc="mean", sort=True
    )
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[_value_text(v) for v in grid.columns],
            y=[_value_text(v) for v in grid.index],
            colorscale="Viridis",
            colorbar={"title": {"text": label(field)}},
            hovertemplate=(
                f"{param_label(kind, x)} %{{x}}<br>{param_label(kind, y)} %{{y}}<br>"
                f"{label(field)} %{{z:.6g}}<extra></extra>"
            ),
        )
    )
    fig.update_layout(
        xaxis={"title": {"text": param_label(kind, x)}, "type": "category"},
        yaxis={"title": {"text": param_label(kind, y)}, "type": "category"},
        height=420,
        margin={"t": 30},
    )
    return fig


# --- the download ------------------------------------------------------------------------------


def points_csv(points: Sequence[Point]) -> str:
    """Every point: its job, status and times, every parameter (`param.sigma`) and every
    result field (`result.price`)."""
    rows = [
        {
            "point": p.point + 1,
            "id": p.public_id,
            "name": p.name,
            "status": badges.status_text(p.status, p.partial),
            "started_at": p.started_at.isoformat() if p.started_at else None,
            "finished_at": p.finished_at.isoformat() if p.finished_at else None,
            **report.flat("param", p.params),
            **report.flat("result", p.result or {}),
        }
        for p in points
    ]
    return report.rows_csv(rows, CSV_COLUMNS)
