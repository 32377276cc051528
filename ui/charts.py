"""Plotly figures for a job: the live metric series, and the kind's own result chart."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from compute.registry import Kind

log = logging.getLogger(__name__)

Series = Mapping[str, tuple[list[float], list[float]]]
ROW_HEIGHT = 280
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def series_figure(series: Series) -> go.Figure | None:
    """One panel per metric, since metrics of one job rarely share a scale."""
    names = sorted(n for n, (steps, _) in series.items() if steps)
    if not names:
        return None
    fig = make_subplots(rows=len(names), cols=1, subplot_titles=names, vertical_spacing=0.12)
    for row, name in enumerate(names, start=1):
        steps, values = series[name]
        fig.add_trace(
            go.Scatter(x=steps, y=values, mode="lines+markers", name=name), row=row, col=1
        )
    fig.update_layout(
        height=ROW_HEIGHT * len(names) + 40,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def result_figure(kind: Kind | None, result: Mapping[str, Any], series: Series) -> go.Figure | None:
    """The kind's chart of a finished job; a broken chart must not hide the numbers."""
    if kind is None or kind.figure is None:
        return None
    try:
        return kind.figure(dict(result), series)
    except Exception:
        log.exception("the %s chart could not be drawn", kind.name)
        return None


def show(fig: go.Figure, *, key: str) -> None:
    """Draw a figure; a stable key lets a live chart update in place instead of flashing."""
    st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, width="stretch")
