"""A confidence interval drawn as a shaded band: the kinds' own charts and the pages' series
charts draw it alike."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

FILL = "rgba(59, 130, 246, 0.18)"
HOVER = "%{y}<extra>%{fullData.name}</extra>"


def band(
    x: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    *,
    name: str = "confidence interval",
    showlegend: bool = True,
) -> list[go.Scatter]:
    """Two invisible lines, the upper first, with the space between them filled: add them in
    this order, before the line they bound, so that the fill sits beneath it."""
    upper = go.Scatter(
        x=list(x), y=list(high), mode="lines", line={"width": 0}, name="upper bound",
        showlegend=False, hovertemplate=HOVER,
    )  # fmt: skip
    lower = go.Scatter(
        x=list(x), y=list(low), mode="lines", line={"width": 0}, fill="tonexty", fillcolor=FILL,
        name=name, showlegend=showlegend, hovertemplate=HOVER,
    )  # fmt: skip
    return [upper, lower]
