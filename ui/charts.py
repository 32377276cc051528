"""Plotly figures for a job: the live metric series, its timeline, and the kind's result chart.

No Streamlit here: the standalone report draws the same figures as the page.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from compute import bands
from compute.registry import Kind
from jobstore.models import Status
from jobstore.views import JobDetail
from ui import palette

log = logging.getLogger(__name__)

Series = Mapping[str, tuple[list[float], list[float]]]
ROW_HEIGHT = 280
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
# One colour per state a bar of the timeline can be in; the legend names them.
TIMELINE_COLOURS = palette.STATE_HEX
TIMELINE_ROW = 34
MIN_BAR_SHARE = 0.005


BAND = ("ci_low", "ci_high")  # the bounds of a confidence interval, drawn as one shaded band


@dataclass(frozen=True)
class Panel:
    """One chart of the series: lines of one measure, and the confidence band around them."""

    lines: tuple[str, ...]
    band: bool = False

    @property
    def title(self) -> str:
        names = list(self.lines) or ["confidence interval"]
        return " · ".join(names)


def panels(names: list[str]) -> list[Panel]:
    """Series of one measure share a panel: names with one prefix (`var_95`, `var_99`) draw
    together, and the interval's bounds are a band around the one line they bound (a price), or
    a panel of their own. The rest, one per panel, since they rarely share a scale."""
    band = all(b in names for b in BAND)
    rest = [n for n in names if not (band and n in BAND)]
    groups: dict[str, list[str]] = {}
    for name in rest:
        groups.setdefault(name.split("_", 1)[0], []).append(name)
    out = [Panel(tuple(group)) for group in groups.values()]
    if band:
        if len(out) == 1 and len(out[0].lines) == 1:
            out[0] = Panel(out[0].lines, band=True)
        else:
            out.append(Panel((), band=True))
    return out


def series_figure(series: Series, *, log_y: bool = False) -> go.Figure | None:
    """A panel per measure (`panels`), each line with its markers, and a confidence interval as
    a shaded band, or as an error bar on a single point."""
    names = sorted(n for n, (steps, _) in series.items() if steps)
    if not names:
        return None
    layout = panels(names)
    fig = make_subplots(
        rows=len(layout), cols=1, subplot_titles=[p.title for p in layout], vertical_spacing=0.12
    )
    legend = any(len(p.lines) > 1 or p.band for p in layout)
    for row, panel in enumerate(layout, start=1):
        for trace in _panel_traces(panel, series, legend=legend):
            fig.add_trace(trace, row=row, col=1)
    if log_y:
        fig.update_yaxes(type="log")
    fig.update_layout(
        height=ROW_HEIGHT * len(layout) + 40,
        showlegend=legend,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return one_point_axes(fitted(fig))


def _panel_traces(panel: Panel, series: Series, *, legend: bool) -> list[go.Scatter]:
    traces = []
    if panel.band:
        (steps, low), (high_steps, high) = series[BAND[0]], series[BAND[1]]
        single = len(panel.lines) == 1 and len(series[panel.lines[0]][0]) == 1
        if not single and list(steps) == list(high_steps):
            traces += bands.band(steps, low, high, showlegend=legend)
        elif not single:  # bounds reported at different steps: two lines, not a band
            traces.append(go.Scatter(x=steps, y=low, mode="lines", name=BAND[0]))
            traces.append(go.Scatter(x=high_steps, y=high, mode="lines", name=BAND[1]))
    for name in panel.lines:
        steps, values = series[name]
        error = None
        if panel.band and len(steps) == 1:
            (_, low), (_, high) = series[BAND[0]], series[BAND[1]]
            error = {
                "type": "data",
                "array": [high[-1] - values[0]],
                "arrayminus": [values[0] - low[-1]],
                "visible": True,
            }
        traces.append(
            go.Scatter(
                x=steps,
                y=values,
                mode="lines+markers",
                name=name,
                error_y=error,
                showlegend=legend,
            )
        )
    return traces


def fitted(fig: go.Figure) -> go.Figure:
    """Every axis makes room for its tick labels and title (Plotly's automargin), so that no
    label is cut at the chart's edge ("ue" for "queue", ".1" for "3.1")."""
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def one_point_axes(fig: go.Figure) -> go.Figure:
    """A trace of one point (a job done in one chunk) drawn as a marker, on an x axis from 0
    to twice its step, rather than autoscaled to a sliver around it ("3.999999M … 4.000001M").
    Axes that also hold longer traces are left alone."""
    points: dict[str, list[float]] = {}
    longer: set[str] = set()
    for trace in fig.data:
        xs = getattr(trace, "x", None)
        if xs is None or getattr(trace, "type", "") != "scatter":
            continue
        axis = getattr(trace, "xaxis", None) or "x"
        if len(xs) == 1 and isinstance(xs[0], int | float) and not isinstance(xs[0], bool):
            points.setdefault(axis, []).append(float(xs[0]))
            trace.mode = "markers"
            trace.marker.size = 10
        elif len(xs) > 1:
            longer.add(axis)
    for axis, xs in points.items():
        if axis in longer:
            continue
        x = max(xs, key=abs)
        span = [0.0, 2 * x] if x > 0 else [2 * x, 0.0] if x < 0 else [-1.0, 1.0]
        fig.layout["xaxis" + axis[1:]].range = span
    return fig


def result_figure(kind: Kind | None, result: Mapping[str, Any], series: Series) -> go.Figure | None:
    """The kind's chart of a finished job; a broken chart must not hide the numbers."""
    if kind is None or kind.figure is None:
        return None
    try:
        fig = kind.figure(dict(result), series)
        return one_point_axes(fitted(fig)) if isinstance(fig, go.Figure) else fig
    except Exception:
        log.exception("the %s chart could not be drawn", kind.name)
        return None


@dataclass(frozen=True)
class Span:
    """One bar of the timeline: a row, a state (its colour) and what its hover says."""

    row: str
    state: str
    start: datetime
    end: datetime
    note: str


def timeline_spans(job: JobDetail, now: datetime) -> list[Span]:
    """The waits in the queue, each attempt, and the stages of the latest one.

    What has not ended yet runs to `now`. Stages belong to the latest attempt: a retry starts
    them again.
    """
    last = job.finished_at or now

    def ends(ts: datetime | None) -> datetime:
        return ts or last

    spans: list[Span] = []
    waited_from: datetime | None = job.created_at
    for a in job.attempts:
        if waited_from is not None:
            spans.append(Span("queue", "queued", waited_from, a.started_at, "waiting for a runner"))
        runner = a.runner_id or "unknown runner"
        note = f"runner {runner}" + (f" · {a.note}" if a.note else "")
        spans.append(
            Span(f"attempt {a.attempt} · {runner}", a.outcome, a.started_at, ends(a.ended_at), note)
        )
        waited_from = a.ended_at if a.outcome == "requeued" else None
    if waited_from is not None and job.status in (Status.QUEUED, Status.CANCELLED):
        spans.append(Span("queue", "queued", waited_from, ends(None), "waiting for a runner"))
    for s in job.stages:
        if s.started_at is not None:
            done = f"{s.progress:.0%} done"
            spans.append(
                Span(f"stage · {s.name}", s.status, s.started_at, ends(s.finished_at), done)
            )
    return [
        s if s.end >= s.start else Span(s.row, s.state, s.start, s.start, s.note) for s in spans
    ]


def timeline_figure(
    job: JobDetail, *, now: datetime | None = None, zone: tzinfo = UTC
) -> go.Figure | None:
    """A Gantt chart of the job's life, in `zone`'s wall-clock time.

    Plotly reads dates without their offset, so times are handed over as local wall clock.
    Runner names, stage names and notes are escaped: Plotly renders tags such as <b> or <a>.
    """
    spans = timeline_spans(job, now or datetime.now(UTC))
    if not spans:
        return None
    rows = list(dict.fromkeys(s.row for s in spans))
    # A stage of a few milliseconds in a run of minutes would be no bar at all: draw each at
    # least a sliver of the whole, and let the hover tell the true length.
    whole = max(s.end for s in spans) - min(s.start for s in spans)
    sliver = whole.total_seconds() * 1000 * MIN_BAR_SHARE
    fig = go.Figure()
    for state in dict.fromkeys(s.state for s in spans):
        mine = [s for s in spans if s.state == state]
        fig.add_trace(
            go.Bar(
                name=html.escape(state),
                orientation="h",
                y=[html.escape(s.row) for s in mine],
                base=[_wall(s.start, zone) for s in mine],
                x=[max(sliver, (s.end - s.start).total_seconds() * 1000) for s in mine],
                marker_color=TIMELINE_COLOURS.get(state, palette.OTHER_HEX),
                hovertext=[_hover(s, zone) for s in mine],
                hoverinfo="text",
            )
        )
    name = getattr(zone, "key", None) or datetime.now(zone).tzname() or "UTC"
    fig.update_layout(
        barmode="overlay",
        height=TIMELINE_ROW * len(rows) + 130,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"type": "date", "title": f"time ({html.escape(name)})"},
        yaxis={
            "categoryorder": "array",
            "categoryarray": [html.escape(r) for r in rows],
            "autorange": "reversed",
        },
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return fitted(fig)


def _wall(ts: datetime, zone: tzinfo) -> str:
    return ts.astimezone(zone).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")


def _hover(s: Span, zone: tzinfo) -> str:
    took = (s.end - s.start).total_seconds()
    return "<br>".join(
        html.escape(t)
        for t in (
            s.row,
            f"{s.state} · {took:.1f} s",
            f"{_wall(s.start, zone)} → {_wall(s.end, zone)}",
            s.note,
        )
    )
