"""Each status's colour and icon, in one place, so the pages cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import streamlit as st

from jobstore.models import Status

Colour = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray"]


@dataclass(frozen=True)
class Look:
    colour: Colour
    icon: str


LOOKS: dict[Status, Look] = {
    Status.QUEUED: Look("gray", ":material/schedule:"),
    Status.RUNNING: Look("blue", ":material/progress_activity:"),
    Status.SUCCEEDED: Look("green", ":material/check_circle:"),
    Status.FAILED: Look("red", ":material/error:"),
    Status.CANCELLED: Look("orange", ":material/block:"),
}


def status_badge(status: Status, *, cancel_requested: bool = False) -> None:
    """The status as a coloured badge; a pending cancel is shown, since it may take a while."""
    look = LOOKS[status]
    st.badge(str(status), icon=look.icon, color=look.colour)
    if cancel_requested and not status.terminal:
        st.badge("cancel requested", icon=":material/hourglass_top:", color="orange")


def status_text(status: Status) -> str:
    """The status for a table cell, which draws neither colours nor icons: its plain name.

    (Emoji would need a colour-emoji font, which many Linux desktops lack.)
    """
    return str(status)
