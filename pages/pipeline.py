"""/pipeline?id=<public_id>: a pipeline's steps as a graph and a list, live while a step has
not ended.

The live part (the state, the graph, the steps and what a collect step gathered) redraws about
once a second while a step has not ended, and stops once every step has: then the whole page
runs again once, without the Cancel button and without a timer.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from jobstore import pipelines as pipeline_store
from jobstore import queries
from runlab.errors import Forbidden, PipelineNotFound, PipelineUnreadable
from ui import confirm, notices, resources, sidebar
from ui import format as fmt
from ui import pipeline_view as view
from ui.text import md_escape, one_line

OUTCOME_KEY = "pipeline.outcome"
CANCEL_ASKED = "pipeline.cancel_asked"

who = sidebar.page("Pipeline")
settings = resources.settings()
engine = resources.engine(settings)
public_id = st.query_params.get("id", "")

try:
    pipeline = pipeline_store.get(engine, public_id)
except PipelineNotFound:
    notices.no_such_pipeline()
    st.stop()
except PipelineUnreadable as exc:
    st.title("Pipeline")
    st.error(md_escape(str(exc)), icon=":material/error:")
    st.stop()


def _cancel(engine: Engine, public_id: str) -> None:
    st.session_state.pop(CANCEL_ASKED, None)
    try:
        done = pipeline_store.cancel(engine, public_id, actor=who)
    except Forbidden as exc:
        st.session_state[OUTCOME_KEY] = str(exc)
        return
    st.session_state[OUTCOME_KEY] = (
        f"Cancelled {done.cancelled:,} waiting steps; asked {done.asked:,} started ones to stop."
    )


def _ask_cancel() -> None:
    st.session_state[CANCEL_ASKED] = True


def _keep() -> None:
    st.session_state.pop(CANCEL_ASKED, None)


@st.dialog("Cancel this pipeline?", on_dismiss=_keep)
def _confirm_cancel(left: int) -> None:
    if CANCEL_ASKED not in st.session_state:
        st.rerun()
    st.markdown(
        f"Cancel the {left:,} steps of **{md_escape(one_line(pipeline.name, 80))}** that have "
        "not ended? Waiting steps never start; the jobs and sweeps of started ones are "
        "cancelled. The steps that ended keep their results."
    )
    confirm.yes_or_no(
        yes="Yes, cancel them",
        icon=":material/cancel:",
        on_yes=_cancel,
        args=(engine, public_id),
        no="Keep them going",
        on_no=_keep,
        key="pipeline.cancel",
    )


title, action = st.columns([4, 1], vertical_alignment="center")
with title:
    st.title(md_escape(one_line(pipeline.name)))
    zone = fmt.browser_zone()
    count = len(pipeline.steps)
    facts = [
        f"Pipeline of {count} step{'s' if count != 1 else ''}",
        f"id `{pipeline.public_id}`",
        f"submitted {fmt.timestamp(pipeline.created_at, zone)} ({fmt.ago(pipeline.created_at)})",
    ]
    if pipeline.owner:
        facts.append(f"by {md_escape(pipeline.owner)}")
    st.caption(" · ".join(facts))
left = sum(not s.status.ended for s in pipeline.steps)
if left and who.may_act_on(pipeline.owner):
    action.button(
        "Cancel pipeline",
        icon=":material/cancel:",
        on_click=_ask_cancel,
        width="stretch",
        help="Cancel every step that has not ended; ended ones keep their results.",
        key="pipeline.cancel",
    )
    if st.session_state.get(CANCEL_ASKED):
        _confirm_cancel(left)
if OUTCOME_KEY in st.session_state:
    st.toast(md_escape(st.session_state.pop(OUTCOME_KEY)), icon=":material/info:")


@st.fragment(run_every=view.refresh_every(pipeline))
def live(was_done: bool) -> None:
    """The state, the graph, the steps and what a collect step gathered, on every tick."""
    try:
        now = pipeline_store.get(engine, public_id)
    except (PipelineNotFound, PipelineUnreadable):
        st.rerun()
    if view.refresh_every(now) is None and not was_done:
        st.rerun()  # every step ended: the whole page, with no timer and no Cancel
    view.overall(now)
    if not was_done and not any(
        r.alive for r in queries.runners(engine, alive_within=resources.alive_within(settings))
    ):
        notices.no_runner()
    view.graph(now, key="pipeline.graph")
    st.subheader("Steps")
    view.steps_table(now, key="pipeline.steps")
    view.reasons(now)
    view.collected(engine, now)


live(view.refresh_every(pipeline) is None)
