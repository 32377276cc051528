"""The answers of a confirmation dialog, drawn one way on every page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st


def yes_or_no(
    *,
    yes: str,
    icon: str,
    on_yes: Callable[..., None],
    args: tuple[Any, ...],
    no: str,
    on_no: Callable[[], None],
    key: str,
) -> None:
    """Two full-width buttons side by side, the yes first. Each answer is a callback, so it
    holds whatever reruns next; the keys are `<key>_yes` and `<key>_no`."""
    left, right = st.columns(2)
    left.button(
        yes,
        type="primary",
        icon=icon,
        on_click=on_yes,
        args=args,
        width="stretch",
        key=f"{key}_yes",
    )
    right.button(no, on_click=on_no, width="stretch", key=f"{key}_no")
