"""A kind's submit form, built from its parameter model, with each error shown at its field.

The widgets carry the model's bounds, so most bad values cannot be typed at all; rules that
span fields (such as chunks <= samples) come back from `submit` as `InvalidParams` and land
under the field they name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from compute import registry
from compute.registry import FieldInfo, Kind
from ui import format as fmt
from ui.text import md_escape

# Browsers hold numbers as doubles, so Streamlit refuses integer bounds beyond 2**53 - 1.
JS_SAFE_INT = fmt.JS_SAFE_INT
NAME_MAX = 200


@dataclass
class JobForm:
    """What a submitted form holds, and where each field's message goes."""

    name: str
    tags: list[str]
    params: dict[str, Any]
    slots: dict[str, DeltaGenerator] = field(repr=False)
    top: DeltaGenerator = field(repr=False)

    def show_errors(self, errors: Mapping[str, str]) -> None:
        """Each message under its field; messages for fields without one go on top."""
        stray = []
        for name, message in errors.items():
            slot = self.slots.get(name)
            if slot is None:
                stray.append(f"{md_escape(fmt.label(name))}: {md_escape(message)}")
            else:
                slot.error(md_escape(message), icon=":material/error:")
        if stray:
            self.top.error("\n\n".join(stray), icon=":material/error:")


def help_text(info: FieldInfo) -> str:
    """The field's description, its rule, and what leaving it empty means."""
    parts = [info.description.strip(), f"Rule: {registry.rule(info)}."]
    if info.optional:
        parts.append("Leave empty for automatic.")
    return " ".join(p for p in parts if p)


def _clamp(bound: float | None, lo: int, hi: int) -> int | None:
    return None if bound is None else int(max(lo, min(hi, bound)))


def _widget(kind: Kind, info: FieldInfo) -> Any:
    """One input for one parameter; None means "left empty"."""
    key = f"new.{kind.name}.{info.name}"
    label = fmt.label(info.name)
    help_ = help_text(info)
    if info.type == "bool":
        return st.checkbox(label, value=bool(info.default), help=help_, key=key)
    if info.type == "choice":
        choices = list(info.choices)
        index = choices.index(info.default) if info.default in choices else None
        return st.selectbox(label, choices, index=index, help=help_, key=key)
    if info.type == "int":
        lo = _clamp(info.minimum, -JS_SAFE_INT, JS_SAFE_INT)
        hi = _clamp(info.maximum, -JS_SAFE_INT, JS_SAFE_INT)
        default = info.default if isinstance(info.default, int) else None
        return st.number_input(
            label,
            min_value=lo,
            max_value=hi,
            value=default,
            step=1,
            help=help_,
            placeholder="automatic" if info.optional else "required",
            key=key,
        )
    if info.type == "float":
        default = float(info.default) if isinstance(info.default, int | float) else None
        return st.number_input(
            label,
            min_value=None if info.minimum is None else float(info.minimum),
            max_value=None if info.maximum is None else float(info.maximum),
            value=default,
            step=0.1,
            format="%g",
            help=help_,
            placeholder="automatic" if info.optional else "required",
            key=key,
        )
    text = st.text_input(label, value=info.default or "", help=help_, key=key)
    return text if text or not info.optional else None


def job_form(kind: Kind) -> JobForm | None:
    """Draw the form; return what was entered once it is submitted, else None.

    Fields that others depend on (`when` in a field's schema) are drawn above the form, where a
    change redraws the page at once, so that the form shows only the fields that apply.
    """
    infos = registry.describe(kind.params)
    leading = {name for info in infos for name in info.when}
    params: dict[str, Any] = {}
    slots: dict[str, DeltaGenerator] = {}
    for info in infos:
        if info.name in leading:
            value = _widget(kind, info)
            slots[info.name] = st.empty()
            if value is not None:
                params[info.name] = value
    with st.form(f"new-{kind.name}"):
        top = st.empty()
        name = st.text_input(
            "Name",
            max_chars=NAME_MAX,
            placeholder="optional: the kind and a short id by default",
            key=f"new.{kind.name}.__name",
        )
        slots["name"] = st.empty()
        tags = st.text_input(
            "Tags",
            placeholder="optional, comma-separated",
            key=f"new.{kind.name}.__tags",
        )
        slots["tags"] = st.empty()
        for info in infos:
            if info.name in leading or not info.applies(params):
                continue
            value = _widget(kind, info)
            slots[info.name] = st.empty()
            if value is not None:  # left empty: the model's default, "automatic" when optional
                params[info.name] = value
        submitted = st.form_submit_button("Submit", type="primary", icon=":material/send:")
    if not submitted:
        return None
    return JobForm(
        name=(name or "").strip(),
        tags=[t.strip() for t in (tags or "").split(",") if t.strip()],
        params=params,
        slots=slots,
        top=top,
    )
