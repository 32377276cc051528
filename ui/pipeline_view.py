"""The parts of /pipeline: the graph of steps, the list of steps and what its collect steps
gathered; and the pipeline's parts of other pages: the spec's upload and preview on /new, the
latest pipelines on /jobs, and the line on a job's or a sweep's page naming the step it is.

A step's name is lower-case letters, digits and _ (compute/pipelines.py), so it may sit in a
chart's label. A pipeline's name, a file's name and a step's reason are user text: they go into
dataframes, which show plain text, or through `md_escape`, and never into a chart.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy import Engine
from streamlit.runtime.uploaded_file_manager import UploadedFile

from compute import datasets, intake, registry
from compute import pipelines as specs
from jobstore import queries
from jobstore.models import Status
from jobstore.pipelines import (
    NewPipeline,
    NewStep,
    PipelineRow,
    PipelineView,
    StepOf,
    StepStatus,
    StepView,
)
from jobstore.search import Query
from runlab.artifacts import ArtifactStore
from runlab.errors import InvalidParams, InvalidUpload, JobNotFound
from ui import charts, job_view, palette, tables
from ui import format as fmt
from ui.text import md_escape, one_line

LIVE_SECONDS = 1.0
PAGE = "pages/pipeline.py"
LINK_PREFIX = "pipeline?id="  # relative, as the job and sweep links are
ICON = ":material/account_tree:"

# A step's state, in the words a job's status uses once it has a job; "waiting" before.
WAITING = "waiting"
PHASES = ("succeeded", "failed", "cancelled", "running", "queued", WAITING)
PHASE_HEX: dict[str, str] = {
    **{str(s): palette.STATUS_HEX[s] for s in Status},
    WAITING: "#B8C0CC",  # lighter than queued: no job exists yet
}
ARROW_HEX = "#6B7686"
# An arrow from a step whose failure the step it points to goes on without: the same grey,
# faint, so that it recedes on the light and the dark theme alike.
CONTINUE_RGBA = "rgba(107,118,134,0.4)"


# --- a step's state in words ---------------------------------------------------------------------


def phase(step: StepView) -> str:
    """What a step is doing: `waiting` for the steps it needs; once started, `queued` until its
    job (or a point of its sweep) is claimed, then `running`; else how it ended."""
    if step.status is not StepStatus.STARTED:
        return str(step.status)
    if step.sweep is not None:
        total = sum(step.points.values())
        queued = step.points.get(Status.QUEUED.value, 0)
        return "queued" if total and queued == total else "running"
    return "queued" if step.job_status is Status.QUEUED else "running"


def points_text(step: StepView) -> str:
    """A sweep step's points ended of all ("3 of 5 points"); empty for a single job."""
    total = sum(step.points.values())
    if step.sweep is None or not total:
        return ""
    ended = sum(n for s, n in step.points.items() if Status(s).terminal)
    return f"{ended:,} of {total:,} points"


def state_text(step: StepView) -> str:
    """The state with how far it has got: "running · 40 %", "succeeded · 5 of 5 points"."""
    now = phase(step)
    points = points_text(step)
    if points:
        return f"{now} · {points}"
    if now == "running":
        return f"{now} · {fmt.percent(step.progress)}"
    return now


def in_order(needs: Mapping[str, str], order: Sequence[str]) -> list[str]:
    """The steps of `needs` in the pipeline's order: a stored dict keeps no order of its own
    (PostgreSQL's JSONB sorts its keys)."""
    return sorted(needs, key=lambda d: order.index(d) if d in order else len(order))


def note(step: StepView, steps: Mapping[str, StepView]) -> str:
    """What a waiting step still waits for, or why a step failed or was cancelled."""
    if step.status is StepStatus.WAITING:
        needs = in_order(step.needs, list(steps))
        left = [d for d in needs if d not in steps or not steps[d].status.ended]
        return "waits for " + ", ".join(left) if left else "ready to start"
    if step.status in (StepStatus.FAILED, StepStatus.CANCELLED):
        return one_line(step.reason or "", 300)
    return ""


def refresh_every(view: PipelineView) -> float | None:
    """The live part's timer: none once every step has ended."""
    return None if all(s.status.ended for s in view.steps) else LIVE_SECONDS


def overall(view: PipelineView) -> None:
    """How many steps have ended, and the steps by state, as a bar."""
    total = len(view.steps)
    ended = sum(s.status.ended for s in view.steps)
    counts = Counter(phase(s) for s in view.steps)
    words = " · ".join(f"{counts[p]:,} {p}" for p in PHASES if counts[p])
    step_word = "step" if total == 1 else "steps"
    st.progress(
        ended / total if total else 0.0, text=f"{ended} of {total} {step_word} ended · {words}"
    )


# --- the graph -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A step as the graph draws it: a box in its state's colour, with a few lines of text."""

    name: str
    lines: list[str]  # below the name
    colour: str
    needs: Mapping[str, str]  # each step it waits for, with that step's failure policy
    share: float | None = None  # how much of a bar along its foot to fill; None: no bar
    hover: str = ""


def layers(needs: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each step's column: the longest path to it from a step that needs none, so that every
    arrow points to the right. A need that is not a step is left out."""
    out: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str]) -> int:
        if name not in out:
            deps = [d for d in needs[name] if d in needs and d not in seen]
            out[name] = 1 + max((depth(d, seen | {name}) for d in deps), default=-1)
        return out[name]

    for name in needs:
        depth(name, frozenset())
    return out


def places(needs: Mapping[str, Sequence[str]]) -> dict[str, tuple[int, float]]:
    """Each step's (column, height): a column's steps centred on the middle, each placed by
    the mean height of the steps it needs, which keeps arrows from crossing in a simple graph.
    Steps of the first column keep the spec's order, top down."""
    column = layers(needs)
    order = list(needs)
    out: dict[str, tuple[int, float]] = {}
    for c in sorted(set(column.values())):
        names = [n for n in order if column[n] == c]
        if c:
            names.sort(
                key=lambda n: (-_mean([out[d][1] for d in needs[n] if d in out]), order.index(n))
            )
        middle = (len(names) - 1) / 2
        for i, n in enumerate(names):
            out[n] = (c, middle - i)
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _rgba(hex_: str, alpha: float) -> str:
    r, g, b = (int(hex_[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


HALF_WIDTH, HALF_HEIGHT = 0.38, 0.36  # of a box, in columns and rows
ROW_PX = 118
BAR = 0.07  # the progress bar's height, in rows
MIN_COLUMNS = 3  # a graph of one or two columns keeps its boxes as wide as in a graph of three


INK = {"light": "#1F2937", "dark": "#E5E7EB"}  # a box's text, on the light and the dark theme


def ink() -> str:
    """The text colour that reads on the viewer's theme: Plotly's own, a muted grey, fades on a
    tinted box."""
    return INK["dark"] if st.context.theme.type == "dark" else INK["light"]


def graph_figure(nodes: Sequence[Node], *, text: str = INK["light"]) -> go.Figure:
    """The steps as boxes, one column per layer, with an arrow from each step to each step that
    needs it; an arrow of a need the step goes on without, should it fail, is faint. `text`
    is the colour of the boxes' text."""
    at = places({n.name: list(n.needs) for n in nodes})
    columns = max((c for c, _y in at.values()), default=0) + 1
    rows = max(Counter(c for c, _y in at.values()).values(), default=1)
    fig = go.Figure()
    for n in nodes:
        c, y = at[n.name]
        fig.add_shape(
            type="rect",
            x0=c - HALF_WIDTH,
            x1=c + HALF_WIDTH,
            y0=y - HALF_HEIGHT,
            y1=y + HALF_HEIGHT,
            fillcolor=_rgba(n.colour, 0.16),
            line={"color": n.colour, "width": 2},
            layer="below",
        )
        if n.share is not None:
            fig.add_shape(
                type="rect",
                x0=c - HALF_WIDTH,
                x1=c - HALF_WIDTH + 2 * HALF_WIDTH * max(0.0, min(1.0, n.share)),
                y0=y - HALF_HEIGHT,
                y1=y - HALF_HEIGHT + BAR,
                fillcolor=n.colour,
                line={"width": 0},
                layer="below",
            )
        fig.add_annotation(
            x=c,
            y=y + (BAR / 2 if n.share is not None else 0),
            text="<br>".join([f"<b>{n.name}</b>", *n.lines]),
            showarrow=False,
            font={"size": 13, "color": text},
            align="center",
        )
        for dep, policy in n.needs.items():
            if dep not in at:
                continue
            dc, dy = at[dep]
            fig.add_annotation(
                x=c - HALF_WIDTH,
                y=y,
                ax=dc + HALF_WIDTH,
                ay=dy,
                xref="x",
                yref="y",
                axref="x",
                ayref="y",
                text="",
                showarrow=True,
                arrowhead=2,
                arrowsize=1.2,
                arrowwidth=1.6,
                arrowcolor=CONTINUE_RGBA if policy == "continue" else ARROW_HEX,
            )
    # An invisible point on each box, for its hover text.
    fig.add_trace(
        go.Scatter(
            x=[at[n.name][0] for n in nodes],
            y=[at[n.name][1] for n in nodes],
            mode="markers",
            marker={"size": 60, "color": "rgba(0,0,0,0)"},
            hovertext=[n.hover or n.name for n in nodes],
            hovertemplate="%{hovertext}<extra></extra>",
            showlegend=False,
        )
    )
    pad = (max(columns, MIN_COLUMNS) - columns) / 2
    top = (rows - 1) / 2 + 0.5
    fig.update_layout(
        height=int(rows * ROW_PX + 16),
        margin={"l": 4, "r": 4, "t": 8, "b": 8},
        xaxis={"visible": False, "range": [-0.5 - pad, columns - 0.5 + pad], "fixedrange": True},
        yaxis={"visible": False, "range": [-top, top], "fixedrange": True},
        showlegend=False,
        hovermode="closest",
    )
    return fig


def kind_text(kind: str, spec: Mapping[str, Any]) -> str:
    """The kind's title, and whether the step is a sweep of it."""
    title = tables.kind_title(kind)
    return f"{title} · sweep" if spec.get("sweep") else title


def nodes_of(view: PipelineView) -> list[Node]:
    by_name = {s.name: s for s in view.steps}
    out = []
    for s in view.steps:
        now = phase(s)
        waits = note(s, by_name) if s.status is StepStatus.WAITING else ""
        share = (
            1.0 if now == "succeeded" else s.progress if s.status is StepStatus.STARTED else None
        )
        out.append(
            Node(
                s.name,
                [kind_text(s.kind, s.spec), state_text(s)],
                PHASE_HEX[now],
                s.needs,
                share,
                "<br>".join(
                    x
                    for x in (f"<b>{s.name}</b>", kind_text(s.kind, s.spec), state_text(s), waits)
                    if x
                ),
            )
        )
    return out


def graph(view: PipelineView, *, key: str) -> None:
    job_view.show(graph_figure(nodes_of(view), text=ink()), key=key)
    if any(p == "continue" for s in view.steps for p in s.needs.values()):
        st.caption("A faint arrow: the step goes on without that input if it fails.")


# --- the list of steps ---------------------------------------------------------------------------


def link_of(step: StepView) -> str | None:
    """The relative address of the step's job or sweep page, with what the link reads."""
    if step.job is not None:
        return f"{tables.LINK_PREFIX}{step.job}#open%20job"
    if step.sweep is not None:
        return f"{tables.SWEEP_LINK_PREFIX}{step.sweep}#open%20sweep"
    return None


def steps_frame(view: PipelineView) -> pd.DataFrame:
    by_name = {s.name: s for s in view.steps}
    rows = [
        {
            "step": s.name,
            "kind": kind_text(s.kind, s.spec),
            "status": phase(s),
            "progress": None if s.status is StepStatus.WAITING else 100 * s.progress,
            "points": points_text(s),
            "note": note(s, by_name),
            "link": link_of(s) or "",  # a missing link would read "None"
        }
        for s in view.steps
    ]
    return pd.DataFrame(
        rows, columns=["step", "kind", "status", "progress", "points", "link", "note"]
    )


def _status_colour(value: object) -> str:
    hex_ = PHASE_HEX.get(str(value))
    return f"color: {hex_}; font-weight: 600" if hex_ else ""


def steps_table(view: PipelineView, *, key: str) -> None:
    """Each step with its state, its progress, a link to its job's or sweep's page once it has
    one, and what it waits for or why it ended so."""
    frame = steps_frame(view)
    st.dataframe(
        frame.style.map(_status_colour, subset=["status"]),
        column_config={
            "step": st.column_config.TextColumn("Step", width=85),
            "kind": st.column_config.TextColumn("Kind", width=155),
            "status": st.column_config.TextColumn("Status", width=85),
            "progress": st.column_config.ProgressColumn(
                "Progress", min_value=0, max_value=100, format="%.0f %%", width=95
            ),
            "points": st.column_config.TextColumn(
                "Points", width=100, help="A sweep's points that ended"
            ),
            "link": st.column_config.LinkColumn(
                "Opens", display_text=r"#(.*)$", width=90, help="The step's job or sweep"
            ),
            "note": st.column_config.TextColumn("Waits for, or why it ended"),
        },
        hide_index=True,
        height=len(frame) * tables.ROW_PX + tables.HEADER_PX,
        key=key,
        width="stretch",
    )


def reasons(view: PipelineView) -> None:
    """Why each step that failed or was cancelled did, in full: the table's cell may cut it."""
    for s in view.steps:
        if s.status in (StepStatus.FAILED, StepStatus.CANCELLED) and s.reason:
            st.caption(md_escape(f"{s.name} {s.status}: {one_line(s.reason, 500)}"))


# --- what a collect step gathered ----------------------------------------------------------------


def collected(engine: Engine, view: PipelineView) -> None:
    """Each collect step that succeeded: its figures and its chart, as its job's page shows
    them; the table of every result stays on that page."""
    for s in view.steps:
        if s.kind != specs.COLLECT or s.status is not StepStatus.SUCCEEDED or s.job is None:
            continue
        try:
            job = queries.get_job(engine, s.job)
        except JobNotFound:  # purged: its step's row says what is left
            continue
        kind = registry.find(s.kind)
        result = job.result or {}
        st.subheader(f"Collected by {md_escape(s.name)}")
        headline = kind.summary(result, job.params) if kind is not None else None
        if headline is not None:
            job_view.show_headline(replace(headline, tables=[]))
        fig = charts.result_figure(kind, result, job.series)
        if fig is not None:
            fig.update_layout(margin={"t": 30})  # Plotly's default leaves room for a title
            job_view.show(fig, key=f"pipeline.collected.{s.name}")
        st.page_link(
            "pages/job.py",
            label="Every result, in its job's table",
            icon=":material/table:",
            query_params={"id": s.job},
        )


# --- on other pages ------------------------------------------------------------------------------


def step_link(where: StepOf | None) -> None:
    """On a job's or a sweep's page, the step of a pipeline it is, linking to the pipeline."""
    if where is None:
        return
    st.page_link(
        PAGE,
        label=f"Step {md_escape(where.step)} of pipeline {md_escape(one_line(where.name, 80))}",
        icon=ICON,
        query_params={"id": where.public_id},
    )


def owners_shown(query: Query) -> tuple[bool, frozenset[str] | None]:
    """Whether /jobs lists the latest pipelines under its filters, and of whom. Only the owner
    filters (My jobs, Owner, `owner:`) apply to a pipeline; any other is about jobs, and then
    the list is left out rather than shown unfiltered."""
    others = replace(query, owners=None, grouped=False)
    return others == Query(), query.owners


RECENT = 20


# A list's order of a pipeline's steps by status: how they ended first, then the rest.
STEP_ORDER = (
    StepStatus.SUCCEEDED,
    StepStatus.FAILED,
    StepStatus.CANCELLED,
    StepStatus.STARTED,
    StepStatus.WAITING,
)


def steps_text(row: PipelineRow) -> str:
    """How many steps ended, then every step by status: "3 of 5 ended · 3 succeeded · …"."""
    counts = [f"{row.statuses[s]:,} {s}" for s in STEP_ORDER if row.statuses.get(s)]
    return " · ".join([f"{row.ended:,} of {row.steps:,} ended", *counts])


def recent_table(rows: Sequence[PipelineRow], *, limit: int = RECENT) -> None:
    """The latest pipelines, each linking to its page; nothing at all when there are none."""
    if not rows:
        return
    st.subheader("Pipelines")
    zone = fmt.browser_zone()
    frame = pd.DataFrame(
        [
            {
                "pipeline": f"{LINK_PREFIX}{r.public_id}#" + quote(r.name, safe=""),
                "owner": r.owner,
                "steps": steps_text(r),
                "created": fmt.when(r.created_at, zone),
            }
            for r in rows
        ]
    )
    st.dataframe(
        frame,
        column_config={
            "pipeline": st.column_config.LinkColumn(
                "Pipeline", display_text=r"#(.*)$", width=280, help="Open its page"
            ),
            "owner": st.column_config.TextColumn("Owner", width=90),
            "steps": st.column_config.TextColumn("Steps", width=300),
            "created": st.column_config.TextColumn("Created"),
        },
        hide_index=True,
        width="stretch",
        key="pipelines.recent",
    )
    if len(rows) >= limit:
        st.caption(f"The latest {limit}.")


# --- the spec on /new ----------------------------------------------------------------------------

WHAT = {"job": "A job or a sweep", "pipeline": "A pipeline from a spec file"}
SPEC_KEY, FILES_KEY = "new.pipeline.spec", "new.pipeline.files"
READ = "new.pipeline.read"  # each uploaded data file read once: its id → Checked, or why not
SPEC_MAX_MB = 1
EXAMPLE = """\
name = "Call price across the volatility's 95% interval"

# The yearly returns' standard deviation, with its 95% bootstrap interval.
[steps.vol]
kind = "bootstrap"
params = { data = "returns.csv", column = "return", statistic = "std", seed = 7 }

# Nine prices, σ from the interval's low end to its high end.
[steps.price]
kind = "option_pricing"
params = { S = 100, K = 100, r = 0.03, T = 1, seed = 11 }
sweep = { sigma = "lin:${vol.result.ci_low}:${vol.result.ci_high}:9" }

# One table and chart of every price against σ.
[steps.prices]
kind = "collect"
inputs = ["price"]
"""


def what_to_submit() -> str:
    """A job (or sweep) by the form, or a pipeline by its spec; in the URL as ?what=pipeline.
    Synced by hand, as the kind is: `bind` would put the label shown in the URL."""
    wanted = "pipeline" if st.query_params.get("what") == "pipeline" else "job"
    chosen = st.segmented_control(
        "Submit",
        list(WHAT),
        format_func=WHAT.__getitem__,
        default=wanted,
        required=True,
        key="new.what",
        label_visibility="collapsed",
    )
    if chosen == "pipeline":
        st.query_params["what"] = "pipeline"
        return "pipeline"
    st.query_params.pop("what", None)
    return "job"


@dataclass
class Draft:
    """A spec as uploaded, with the files it names: what the preview shows and Submit stores."""

    doc: dict[str, Any] | None  # the spec read, each uploaded file's reference in its place
    errors: dict[str, str]  # by the key InvalidParams gives, such as steps.price.params.sigma
    checked: NewPipeline | None = None  # when there is no error
    files: dict[tuple[str, str], datasets.Checked] = field(default_factory=dict)


def where(key: str) -> str:
    """An error's key as the spec's author reads it: `price › params › sigma`."""
    if key == "file":
        return "The spec file"
    parts = key.split(".")
    if parts[0] == "steps" and len(parts) > 1:
        parts = parts[1:]
    return " › ".join(parts)


def errors_text(errors: Mapping[str, str]) -> str:
    """Each error on its own line, where it is and what is wrong, as Markdown of plain text."""
    return "\n\n".join(md_escape(f"{where(k)}: {m}") for k, m in errors.items())


def _read(file: UploadedFile) -> datasets.Checked | str:
    """An uploaded data file checked once per upload (a rerun does not read it again): its
    reference and table, or why it cannot be used."""
    seen: dict[str, datasets.Checked | str] = st.session_state.setdefault(READ, {})
    if file.file_id not in seen:
        try:
            seen[file.file_id] = datasets.check_upload(file.name, file.getvalue())
        except InvalidUpload as exc:
            seen[file.file_id] = next(iter(exc.errors.values()))
    return seen[file.file_id]


def spec_form() -> Draft | None:
    """The spec's uploader, and the uploader of the files it names; the spec read and checked
    with them. None until a spec is uploaded."""
    spec = st.file_uploader(
        "Pipeline spec",
        type=["toml"],
        key=SPEC_KEY,
        max_upload_size=SPEC_MAX_MB,
        help="A TOML file: its name, and a [steps.<name>] table per step with its kind and "
        "parameters. A step reads an earlier step's result as ${step.result.field}.",
    )
    with st.expander("What a spec looks like", icon=":material/description:"):
        st.code(EXAMPLE, language="toml")
    if spec is None:
        return None
    try:
        doc = tomllib.loads(spec.getvalue().decode("utf-8-sig"))
    except UnicodeDecodeError:
        return Draft(None, {"file": "not a text file in UTF-8"})
    except tomllib.TOMLDecodeError as exc:
        return Draft(None, {"file": f"not valid TOML: {exc}"})
    errors: dict[str, str] = {}
    files: dict[tuple[str, str], datasets.Checked] = {}
    named = specs.uploads(doc)
    if named:
        wanted = list(dict.fromkeys(PurePosixPath(n).name for _s, _f, n in named))
        them = "it" if len(wanted) == 1 else "them"
        st.info(
            md_escape(f"This spec reads {_and(wanted)}: upload {them} below."),
            icon=":material/upload_file:",
        )
        given = st.file_uploader(
            "Files the spec reads",
            type=["csv", "txt", "tsv"],
            accept_multiple_files=True,
            key=FILES_KEY,
        )
        by_name = {f.name: f for f in given or []}
        read_before: dict[str, Any] = st.session_state.get(READ, {})
        for gone in set(read_before) - {f.file_id for f in given or []}:
            del read_before[gone]  # taken out of the uploader: its bytes are not kept here
        for step, key, name in named:
            at = f"steps.{step}.params.{key}"
            upload = by_name.get(PurePosixPath(name).name)
            if upload is None:
                errors[at] = f"upload {PurePosixPath(name).name} below"
                continue
            read = _read(upload)
            if isinstance(read, str):
                errors[at] = f"{upload.name}: {read}"
            else:
                files[(step, key)] = read
        unused = [n for n in by_name if n not in wanted]
        if unused:
            st.caption(md_escape(f"Not named by the spec, so not used: {', '.join(unused)}."))
    if files:
        doc = specs.with_files(doc, {k: f.ref.model_dump() for k, f in files.items()})
    try:
        checked = intake.check_pipeline(doc, tables={k: f.table for k, f in files.items()})
    except InvalidParams as exc:
        return Draft(doc, {**exc.errors, **errors}, None, files)
    if errors:
        return Draft(doc, errors, None, files)
    return Draft(doc, {}, checked, files)


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def does(spec: Mapping[str, Any], kind: str) -> str:
    """What a stored step runs, in a few words: one job, a sweep over its axes, or a collect."""
    if kind == specs.COLLECT:
        return "collects " + ", ".join(str(i) for i in spec.get("inputs", []))
    axes = spec.get("sweep") or {}
    if axes:
        drawn = f" ({spec.get('count')} {spec.get('method')} points)" if spec.get("method") else ""
        return "a sweep of " + "; ".join(f"{k} = {t}" for k, t in axes.items()) + drawn
    reads = [r.text for v in (spec.get("params") or {}).values() for r in _refs(v)]
    return "one job" + (f", reading {', '.join(reads)}" if reads else "")


def _refs(value: Any) -> list[specs.Ref]:
    try:
        return specs.refs_in(value)
    except ValueError:
        return []


def waits_text(needs: Mapping[str, str], order: Sequence[str]) -> str:
    """The steps waited for in the pipeline's order; those it goes on without, last."""
    ordered = in_order(needs, order)
    firm = [d for d in ordered if needs[d] != "continue"]
    loose = [d for d in ordered if needs[d] == "continue"]
    text = ", ".join(firm)
    if loose:
        text += ("; " if firm else "") + f"goes on without {_and(loose)} if it fails"
    return text


def step_line(step: NewStep, order: Sequence[str]) -> str:
    """A stored step in one line of Markdown: its name, kind, what it runs and waits for."""
    parts = [tables.kind_title(step.kind), does(step.spec, step.kind)]
    parts.append("waits for " + waits_text(step.needs, order) if step.needs else "starts first")
    return f"**{md_escape(step.name)}** · " + md_escape(" · ".join(parts))


def preview(draft: Draft) -> None:
    """The errors, each at its step and field; or the steps in the order they can start, what
    each runs and waits for, and their graph."""
    if draft.errors:
        st.error(errors_text(draft.errors), icon=":material/error:")
        return
    if draft.checked is None:
        return
    new = draft.checked
    order = [s.name for s in new.steps]
    count = len(new.steps)
    st.subheader(md_escape(one_line(new.name)))
    st.caption(f"{count} step{'s' if count != 1 else ''}, in an order they can start in.")
    nodes = [
        Node(
            s.name,
            [
                kind_text(s.kind, s.spec),
                "starts first"
                if not s.needs
                else "waits for " + ", ".join(in_order(s.needs, order)),
            ],
            PHASE_HEX[WAITING],
            s.needs,
        )
        for s in new.steps
    ]
    job_view.show(graph_figure(nodes, text=ink()), key="new.pipeline.graph")
    # A list, not a table: a sweep's text and a step's needs are long, and a list wraps them.
    st.markdown("\n".join(f"{i}. {step_line(s, order)}" for i, s in enumerate(new.steps, 1)))
    for (step, key), f in draft.files.items():
        rows, columns = f.table.shape
        st.caption(md_escape(f"{step} › {key}: {f.ref.name}, {rows:,} rows × {columns:,} columns"))


def submit(engine: Engine, artifacts: ArtifactStore, draft: Draft, *, owner: str) -> str:
    """Keep the spec's files, then check and store the pipeline; its public id.

    The files are kept first, as the CLI keeps a job's: a pipeline once stored may start its
    first step within a second, and its job must find its file. A file kept for a pipeline
    that is then refused is one that no job names, which retention removes.
    """
    if draft.doc is None or draft.checked is None:
        raise InvalidParams(draft.errors or {"file": "upload a spec first"})
    for (step, key), f in draft.files.items():
        artifacts.put_upload(f.data, f"steps.{step}.params.{key}")
    return intake.submit_pipeline(
        engine, draft.doc, owner=owner, tables={k: f.table for k, f in draft.files.items()}
    )
