"""/job?id=<public_id>: one job, live while it runs, and the link people share.

The live part is a fragment that re-reads the job about once a second. Its timer is chosen
when the page runs: none once the job is terminal. When the fragment sees the job finish, it
reruns the whole page, which then drops the Cancel button and stops refreshing.

The tabs and the chart's settings live in the URL (?tab=…&series=…&log=…), inside the
fragment, so switching them redraws only that part; the link shown is the one to share.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from compute import intake
from jobstore import pipelines as pipeline_store
from jobstore import queries, transitions
from jobstore.models import Status
from runlab.errors import Forbidden, JobNotFound
from ui import eta, forms, job_view, notices, pipeline_view, resources, sidebar

OUTCOME_KEY = "job.cancel_outcome"
CANCEL_TEXT = {
    transitions.CancelOutcome.CANCELLED: "Cancelled before it started.",
    transitions.CancelOutcome.REQUESTED: "Cancel requested: the job stops at its next check.",
    transitions.CancelOutcome.ALREADY_FINISHED: "The job had already finished.",
}
# Apart from CANCEL_TEXT: both enums have a "requested", and equal strings are one dict key.
STOP_TEXT = {
    transitions.StopOutcome.ALREADY_FINISHED: "The job had already finished.",
    transitions.StopOutcome.REQUESTED: "Stop requested: the job ends with the chunks done so far.",
    transitions.StopOutcome.NOT_STARTED: "The job has not started: there is nothing to keep yet.",
    transitions.StopOutcome.NOT_STOPPABLE: "This kind cannot keep a partial result.",
}

who = sidebar.page("Job")
settings = resources.settings()
engine = resources.engine(settings)
public_id = st.query_params.get("id", "")

try:
    job = queries.get_job(engine, public_id)
except JobNotFound:
    notices.no_such_job()
    st.stop()

kind = job_view.kind_of(job)


def _cancel(engine: Engine, public_id: str) -> None:
    """A callback, so that the page drawn right after already shows the new state."""
    try:
        outcome = transitions.request_cancel(engine, public_id, actor=who)
    except Forbidden as exc:
        st.session_state[OUTCOME_KEY] = str(exc)
        return
    st.session_state[OUTCOME_KEY] = CANCEL_TEXT[outcome]


def _stop(engine: Engine, public_id: str, stoppable: list[str]) -> None:
    try:
        outcome = transitions.request_stop(engine, public_id, stoppable, actor=who)
    except Forbidden as exc:
        st.session_state[OUTCOME_KEY] = str(exc)
        return
    st.session_state[OUTCOME_KEY] = STOP_TEXT[outcome]


# Wide enough for the longest button, "Stop and keep", on one line at 1,280 px.
title, action = st.columns([4, 1], vertical_alignment="center")
with title:
    job_view.header(job, kind)
    pipeline_view.step_link(pipeline_store.of_job(engine, job.id))
mine = who.may_act_on(job.owner)  # the store refuses the rest; no button offers it
if not job.status.terminal and mine:
    job_view.cancel_button(action, engine, job, _cancel)  # a long run asks first
    if kind is not None and kind.stoppable:
        action.button(
            "Stop and keep",
            icon=":material/stop_circle:",
            on_click=_stop,
            args=(engine, job.id, [kind.name]),
            disabled=job.stop_requested or job.cancel_requested,
            help="End now as succeeded, with the result over the chunks done so far.",
            key="job.stop",
        )
elif job.status.terminal and action.button(
    "Re-run",
    icon=":material/replay:",
    help="The same kind, parameters and seed: the same numbers, if the versions match.",
):
    st.switch_page(
        "pages/job.py",
        query_params={"id": intake.rerun(engine, job.id, owner=who.name)},
    )
if (
    kind is not None
    and kind.listed
    and action.button(
        "Clone",
        icon=":material/content_copy:",
        help="Open the form filled in with this job's parameters.",
    )
):
    st.session_state.pop(forms.CLONED, None)  # filled again, even if cloned before
    st.switch_page("pages/new.py", query_params={"kind": kind.name, "clone": job.id})
with action:
    job_view.downloads(engine, job, kind)
if OUTCOME_KEY in st.session_state:
    st.toast(st.session_state.pop(OUTCOME_KEY), icon=":material/cancel:")


@st.fragment(run_every=job_view.refresh_every(job.status))
def live(was_terminal: bool) -> None:
    """Status, overall progress, the open tab and the link to this view, on every tick."""
    try:
        now = queries.get_job(engine, public_id)
    except JobNotFound:  # deleted meanwhile: let the page say so
        st.rerun()
    if now.status.terminal and not was_terminal:
        st.rerun()  # the whole page: no Cancel button, no timer
    job_view.status_row(now, lease_seconds=settings.lease_seconds)
    if now.status is Status.QUEUED and not any(
        r.alive for r in queries.runners(engine, alive_within=resources.alive_within(settings))
    ):
        notices.no_runner()
    job_view.overall(now)
    eta.eta(engine, now, settings)
    link = st.empty()  # above the tabs, filled once they have said what they show
    later = job_view.Later()  # the Result's chart, sent after the headline and the link
    view = job_view.tabs(now, kind, later)
    job_view.share(link, now, view)
    later.draw()


live(job.status.terminal)
