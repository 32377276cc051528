"""A kind's submit form, built from its parameter model, with each error shown at its field.

Numbers are typed as text and read as `runlab submit -p` reads them (`compute.param_text`);
every value is then checked by `compute.intake`, whose `InvalidParams` lands under the field
it names, in the same words as the CLI's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from compute import datasets, param_text, registry, sweeps
from compute.registry import FieldInfo, Kind
from jobstore import presets
from jobstore.enqueue import MAX_PRIORITY
from runlab.artifacts import ArtifactStore, UploadNotStored
from runlab.errors import InvalidParams, InvalidUpload, UploadMissing
from ui import expected as expected_
from ui import format as fmt
from ui import upload_summary
from ui.text import md_escape

if TYPE_CHECKING:
    import pandas as pd

NAME_MAX = 200
# The job whose values /new?clone= last put in the form: filled once, not on every rerun.
CLONED = "new.cloned"


@dataclass
class SweepInput:
    """The swept parameters' texts and the sampling, as typed above the form, and the plan
    they make (None while one of them is refused, under its field)."""

    axes: dict[str, str]
    method: sweeps.Method | None = None
    count: int = 0
    seed: int | None = None
    plan: sweeps.Plan | None = None


@dataclass
class JobForm:
    """What a submitted form holds, and where each field's message goes."""

    name: str
    tags: list[str]
    params: dict[str, Any]
    slots: dict[str, DeltaGenerator] = field(repr=False)
    top: DeltaGenerator = field(repr=False)
    # "submit", or "preset" when the values are to be saved under `preset_name`.
    action: str = "submit"
    preset_name: str = ""
    # The uploaded table behind each upload field, for checks that need the data.
    tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    queue: str | None = None  # None: the kind's own
    priority: int = 0
    sweep: SweepInput | None = None  # a sweep: one job per point of its plan

    def options(self, owner: str, queues: Sequence[str]) -> dict[str, Any]:
        """What the form says besides the parameters, as `intake.submit` and `submit_sweep`
        take it."""
        return {
            "name": self.name,
            "owner": owner,
            "tags": self.tags,
            "tables": self.tables,
            "queue": self.queue,
            "queues": queues,
            "priority": self.priority,
        }

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


def key(kind: Kind, name: str) -> str:
    return f"new.{kind.name}.{name}"


def text_value(info: FieldInfo, text: str) -> Any:
    """A list or matrix field's text as its value, read as `runlab submit -p` reads it
    (`compute.param_text`); None when an optional field is left empty."""
    if not text.strip() and info.optional:
        return None
    return param_text.parse(text, info.type)


def fill(kind: Kind, params: Mapping[str, Any], *, partial: bool = False) -> None:
    """Put a job's or a preset's parameters into the form's widgets, every value exactly.

    Call it before the widgets are drawn (from a callback, or above the form): a widget's value
    can change only before it is drawn in a run. Unknown names are skipped. `partial` leaves
    the fields `params` does not name as they are, with whatever is typed in them and not yet
    submitted.
    """
    for info in registry.describe(kind.params):
        if info.name not in params:
            if not partial:
                st.session_state.pop(key(kind, info.name), None)
            continue
        value = params[info.name]
        if info.type in ("int", "float"):
            value = param_text.number_text(value)
        elif info.type in param_text.TYPES:
            value = param_text.to_text(value, info.type)
        elif info.type == "upload":
            st.session_state[key(kind, info.name) + ".ref"] = value
            continue
        elif info.type == "str":
            value = "" if value is None else str(value)
        st.session_state[key(kind, info.name)] = value


def help_text(info: FieldInfo) -> str:
    """The field's description, its rule, and what leaving it empty means."""
    rule = (
        f"must be a numeric column of the uploaded {fmt.label(info.column_of)}"
        if info.column_of is not None
        else registry.rule(info)
    )
    parts = [info.description.strip(), f"Rule: {rule}."]
    if info.optional:
        parts.append("Leave empty for automatic.")
    return " ".join(p for p in parts if p)


def _value(wkey: str, default: Any) -> dict[str, Any]:
    """`value=` for a widget, unless the session already holds one (set by `fill`): giving both
    makes Streamlit warn on the page."""
    return {} if wkey in st.session_state else {"value": default}


def _widget(kind: Kind, info: FieldInfo, tables: Mapping[str, pd.DataFrame]) -> Any:
    """One input for one parameter; None means "left empty"."""
    wkey = key(kind, info.name)
    label = info.label
    help_ = help_text(info)
    if info.column_of is not None:
        table = tables.get(info.column_of)
        columns = [] if table is None else datasets.numeric_columns(table)
        if st.session_state.get(wkey) not in columns:  # none yet, or a column of another file
            # Set, not just given as the index: the browser keeps the picker's empty value
            # across the upload's rerun (the key is its identity) and would send it back.
            if columns and not info.optional:
                st.session_state[wkey] = columns[0]
            else:
                st.session_state.pop(wkey, None)
        return st.selectbox(
            label,
            columns,
            index=None if info.optional or not columns else 0,
            help=help_,
            placeholder="upload a file first" if table is None else "choose a numeric column",
            key=wkey,
        )
    if info.type == "bool":
        return st.checkbox(label, help=help_, key=wkey, **_value(wkey, bool(info.default)))
    if info.type == "choice":
        choices = list(info.choices)
        index = choices.index(info.default) if info.default in choices else None
        # Set by `fill`: giving an index as well makes Streamlit warn, as with `_value`.
        first = {} if wkey in st.session_state else {"index": index}
        return st.selectbox(
            label, choices, format_func=info.choice_label, help=help_, key=wkey, **first
        )
    if info.type in ("int", "float"):
        # Text, not a number input: a browser's number field drops what it cannot parse, so
        # `1e9` became 1 and `2.5` was cut to 2 without a word. The text is read as the CLI
        # reads it, and the model refuses, under the field, what is not a valid number.
        text = st.text_input(
            label,
            help=help_,
            placeholder="automatic" if info.optional else "required",
            key=wkey,
            **_value(wkey, param_text.number_text(info.default)),
        )
        return param_text.scalar(text, info.type)
    if info.type in param_text.TYPES:
        shown = param_text.to_text(info.default, info.type)
        box = st.text_input if info.type == "list" else st.text_area
        return text_value(info, box(label, help=help_, key=wkey, **_value(wkey, shown)))
    text = st.text_input(label, help=help_, key=wkey, **_value(wkey, info.default or ""))
    return text if text or not info.optional else None


def _slot(kind: Kind, info: FieldInfo, value: Any) -> DeltaGenerator:
    """The place under a field for its message; below it, a number typed as `1e9` is shown
    back as the form reads it (`= 1,000,000,000`), so that no one submits a value unseen."""
    slot = st.empty()
    if info.type in ("int", "float") and isinstance(value, int | float):
        shown = param_text.number_text(value)
        if shown != str(st.session_state.get(key(kind, info.name), "")).strip():
            st.caption(md_escape(f"= {shown}"))
    return slot


def _removed(wkey: str) -> None:
    """The file was taken out of the uploader: the form stops using it too."""
    if st.session_state.get(wkey) is None:
        st.session_state.pop(wkey + ".ref", None)
        st.session_state.pop(wkey + ".file", None)


def _upload(
    kind: Kind, info: FieldInfo, artifacts: ArtifactStore, tables: dict[str, pd.DataFrame]
) -> tuple[dict[str, Any] | None, str | None]:
    """An upload field: the file is checked and kept at once, and its table read for the
    column fields. Returns the reference for the parameters, and a message if it is refused."""
    wkey = key(kind, info.name)
    kept = st.session_state.get(wkey + ".ref")
    file = st.file_uploader(
        info.label,
        type=["csv", "txt", "tsv"],
        help=help_text(info),
        key=wkey,
        on_change=_removed,
        args=(wkey,),
    )
    if file is not None:
        seen = st.session_state.get(wkey + ".file")
        if seen is None or seen[0] != file.file_id:
            file.seek(0)  # read from the start, and at most one byte past the limit
            try:
                ref = datasets.store(artifacts, file.name, file)
            except UploadNotStored as exc:  # the folder's fault: tried again on the next run
                return None, next(iter(exc.errors.values()))
            except InvalidUpload as exc:  # named after the field "data": any name is this one
                message = next(iter(exc.errors.values()))
                st.session_state[wkey + ".file"] = (file.file_id, None, message)
            else:
                st.session_state[wkey + ".file"] = (file.file_id, ref.model_dump(), None)
        _, kept, refused = st.session_state[wkey + ".file"]
        if refused is not None:
            return None, refused
        st.session_state[wkey + ".ref"] = kept
    if not kept:
        return None, None
    try:
        tables[info.name] = datasets.load(artifacts, kept)
    except (InvalidUpload, UploadMissing) as exc:
        return None, next(iter(exc.errors.values())) if isinstance(exc, InvalidUpload) else str(exc)
    if file is None:
        st.caption(
            f"Using {md_escape(kept['name'])} ({kept['size']:,} bytes, "
            f"SHA-256 {kept['sha256'][:12]}…); upload another file to replace it."
        )
    return kept, None


def csv_filler(kind: Kind) -> None:
    """For kinds that can take their parameters from a CSV: an upload that fills the form."""
    if kind.from_csv is None:
        return
    wkey = key(kind, "__from_csv")
    file = st.file_uploader(
        "Fill the form from a CSV",
        type=["csv", "txt"],
        help=(kind.from_csv.__doc__ or "").strip().split("\n\n")[0],
        key=wkey,
    )
    if file is None or st.session_state.get(wkey + ".seen") == file.file_id:
        return
    st.session_state[wkey + ".seen"] = file.file_id
    try:
        values = kind.from_csv(file.getvalue())
    except InvalidParams as exc:
        st.error(md_escape("; ".join(exc.errors.values())), icon=":material/error:")
        return
    fill(kind, values, partial=True)
    st.success(
        md_escape(f"Filled {', '.join(fmt.label(k) for k in values)} from {file.name}."),
        icon=":material/check:",
    )


SAMPLING: dict[str, str] = {
    "grid": "Every combination",
    "random": "Random points",
    "lhs": "Latin hypercube",
}
AXIS_HELP = (
    "A list (0.5,1,2), a range with a step, both ends included (0.1:0.5:0.05), n evenly spaced "
    "points (lin:0.1:0.5:9) or a log range of n points (log:0.01:1:5). With random or "
    "Latin-hypercube points, low:high or log:low:high gives the bounds to draw from."
)


def _sweep_fields(
    kind: Kind, infos: Sequence[FieldInfo], leading: set[str], slots: dict[str, DeltaGenerator]
) -> SweepInput | None:
    """Above the form, where every change redraws at once: the parameters to sweep, each one's
    values as text, and the number of jobs they make, said before anything is submitted."""
    sweepable = {
        i.name: i
        for i in infos
        if i.type in sweeps.SWEEPABLE and i.name not in leading and i.column_of is None
    }
    if not sweepable:
        return None
    chosen = st.multiselect(
        "Sweep",
        list(sweepable),
        format_func=lambda n: sweepable[n].label,
        placeholder="optional: parameters to sweep, one job per value",
        help="Run one job per combination of the values you give: a sweep, with its own page.",
        key=key(kind, "__sweep"),
    )
    if not chosen:
        return None
    with st.container(border=True):
        method = st.segmented_control(
            "Points",
            list(SAMPLING),
            format_func=SAMPLING.__getitem__,
            default="grid",
            key=key(kind, "__sweep_method"),
        )
        sampled = method in ("random", "lhs")
        how = cast(sweeps.Method, method) if sampled else None
        axes: dict[str, str] = {}
        for name in chosen:
            info = sweepable[name]
            hint = (
                ",".join(str(c) for c in info.choices)
                if info.type == "choice"
                else ("low:high" if sampled else "0.1:0.5:0.05 or 0.1,0.2,0.4")
            )
            axes[name] = st.text_input(
                f"{info.label}: values",
                placeholder=hint,
                help=AXIS_HELP,
                key=key(kind, f"__sweep.{name}"),
            )
            slots[name] = st.empty()
        count, seed = 0, None
        if sampled:
            left, right = st.columns(2)
            count = int(
                left.number_input(
                    "Number of points",
                    min_value=1,
                    max_value=sweeps.MAX_JOBS,
                    value=20,
                    step=1,
                    key=key(kind, "__sweep_count"),
                )
            )
            seed_text = right.text_input(
                "Seed of the points",
                placeholder="drawn, and kept with the sweep",
                key=key(kind, "__sweep_seed"),
            )
            slots["sweep_seed"] = st.empty()
            try:
                seed = int(seed_text) if seed_text.strip() else None
            except ValueError:
                slots["sweep_seed"].error("a whole number, or empty", icon=":material/error:")
                return SweepInput(axes, how, count)
        out = SweepInput(axes, how, count, seed)
        try:
            out.plan = sweeps.plan(kind.name, axes, method=out.method, count=count, seed=seed)
        except InvalidParams as exc:
            for name, message in exc.errors.items():
                where = slots.get(name)
                (where or st).error(md_escape(message), icon=":material/error:")
        else:
            st.info(md_escape(out.plan.describe()), icon=":material/grid_view:")
    return out


def _queue_fields(kind: Kind, queues: Sequence[str]) -> tuple[str | None, int]:
    """The queue (when there is a choice) and the priority, side by side."""
    left, right = st.columns(2)
    queue = None
    if len(queues) > 1:
        options = list(queues)
        queue = left.selectbox(
            "Queue",
            options,
            index=options.index(kind.queue) if kind.queue in options else 0,
            key=key(kind, "__queue"),
            help="Where the job waits: each queue has its own runners and limit.",
        )
    priority = right.number_input(
        "Priority",
        value=0,
        step=1,
        min_value=-MAX_PRIORITY,
        max_value=MAX_PRIORITY,
        key=key(kind, "__priority"),
        help="Higher goes first in its queue; a waiting job's priority rises as it waits, so "
        "none waits for ever.",
    )
    return queue, int(priority)


def job_form(
    kind: Kind,
    artifacts: ArtifactStore,
    expected: expected_.Lookup | None = None,
    queues: Sequence[str] = ("default",),
) -> JobForm | None:
    """Draw the form; return what was entered once it is submitted, else None.

    Fields that others depend on (`when` in a field's schema, and uploads) are drawn above the
    form, where a change redraws the page at once, so that the form shows only the fields that
    apply and the columns of the file just uploaded. An uploaded table is summed up under its
    field. With `expected`, the page's way to past runs, the job's size and expected run time
    are said above Submit. A queue is offered only where the settings name more than one.
    Numbers and choices can be swept: those chosen above the form are typed there as values,
    and the number of jobs they make is said before Submit.
    """
    infos = registry.describe(kind.params)
    leading = {name for info in infos for name in info.when} | {
        info.name for info in infos if info.type == "upload"
    }
    params: dict[str, Any] = {}
    slots: dict[str, DeltaGenerator] = {}
    tables: dict[str, pd.DataFrame] = {}
    refused: dict[str, str] = {}
    for info in infos:
        if info.name not in leading:
            continue
        if info.type == "upload":
            value, message = _upload(kind, info, artifacts, tables)
            if message is not None:
                refused[info.name] = message
        else:
            value = _widget(kind, info, tables)
        slots[info.name] = _slot(kind, info, value)
        if info.name in tables and value is not None:  # below the field's message, if any
            summary = datasets.summarize(tables[info.name], upload_summary.HEAD_ROWS)
            upload_summary.show(value["name"], summary)
        if value is not None:
            params[info.name] = value
    for name, message in refused.items():
        slots[name].error(md_escape(message), icon=":material/error:")
    top = st.empty()  # messages that name no field: above every field that can be in error
    sweep = _sweep_fields(kind, infos, leading, slots)
    swept = set(sweep.axes) if sweep else set()
    with st.form(f"new-{kind.name}"):
        for info in infos:
            if info.name in leading or info.name in swept or not info.applies(params):
                continue
            value = _widget(kind, info, tables)
            slots[info.name] = _slot(kind, info, value)
            if value is not None:  # left empty: the model's default, "automatic" when optional
                params[info.name] = value
        # The job's own fields come first; what it is called and filed under, after them.
        name = st.text_input(
            "Name",
            max_chars=NAME_MAX,
            placeholder="optional: the kind and a short id by default",
            key=key(kind, "__name"),
        )
        slots["name"] = st.empty()
        tags = st.text_input(
            "Tags",
            placeholder="optional, comma-separated",
            key=key(kind, "__tags"),
        )
        slots["tags"] = st.empty()
        queue, priority = _queue_fields(kind, queues)
        slots["queue"] = st.empty()
        slots["priority"] = st.empty()
        if expected is not None and sweep is None:
            expected_.show(kind, params, expected)
        what = f"Submit {sweep.plan.size:,} jobs" if sweep and sweep.plan else "Submit"
        submitted = st.form_submit_button(what, type="primary", icon=":material/send:")
        with st.expander("Save these values as a preset"):
            preset_name = st.text_input(
                "Preset name", max_chars=presets.NAME_MAX, key=key(kind, "__preset_name")
            )
            slots["preset"] = st.empty()
            save = st.form_submit_button("Save preset", icon=":material/bookmark_add:")
    if not (submitted or save):
        return None
    form = JobForm(
        name=(name or "").strip(),
        tags=[t.strip() for t in (tags or "").split(",") if t.strip()],
        params=params,
        slots=slots,
        top=top,
        action="preset" if save else "submit",
        preset_name=preset_name or "",
        tables=tables,
        queue=queue,
        priority=priority,
        sweep=sweep,
    )
    if refused:  # the file's own message is already under it
        form.show_errors({k: v for k, v in refused.items() if k not in slots})
        return None
    return form
