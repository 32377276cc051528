"""Each status's colour and icon, in one place, so the pages cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import streamlit as st

from jobstore.models import Status
from runlab.status import PARTIAL, outcome

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


PARTIAL_LOOK = Look("violet", ":material/content_cut:")


def status_badge(status: Status, *, cancel_requested: bool = False, partial: bool = False) -> None:
    """The status as a coloured badge; a pending cancel is shown, since it may take a while,
    and a result stopped early is marked as partial beside `succeeded`."""
    look = LOOKS[status]
    st.badge(str(status), icon=look.icon, color=look.colour)
    if partial and status is Status.SUCCEEDED:
        st.badge(PARTIAL, icon=PARTIAL_LOOK.icon, color=PARTIAL_LOOK.colour)
    if cancel_requested and not status.terminal:
        st.badge("cancel requested", icon=":material/hourglass_top:", color="orange")


def status_text(status: Status, partial: bool = False) -> str:
    """The status for a table cell, which draws neither colours nor icons: its plain name, or
    `partial` for a job stopped early with part of its result.

    (Emoji would need a colour-emoji font, which many Linux desktops lack.)
    """
    return outcome(status, partial)
