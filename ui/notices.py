"""Messages that tell a user what to do next, shared by the pages that need them."""

from __future__ import annotations

import streamlit as st


def no_runner() -> None:
    """Jobs wait in the queue until a runner claims them; say how to start one."""
    st.warning(
        "No runner is alive: start one with `runlab runner` (or `runlab up`), "
        "or queued jobs will wait.",
        icon=":material/power_off:",
    )


def no_jobs() -> None:
    st.info("No jobs yet — submit one.", icon=":material/inbox:")
    st.page_link("pages/new.py", label="New job", icon=":material/add_circle:")


def no_such_sweep() -> None:
    st.title("No such sweep")
    st.info(
        "There is no sweep with this id. The link may be mistyped or incomplete, or its jobs "
        "have been purged.",
        icon=":material/search_off:",
    )
    st.page_link("pages/jobs.py", label="See all jobs", icon=":material/list:")


def no_such_pipeline() -> None:
    st.title("No such pipeline")
    st.info(
        "There is no pipeline with this id. The link may be mistyped or incomplete.",
        icon=":material/search_off:",
    )
    st.page_link("pages/jobs.py", label="See all jobs and pipelines", icon=":material/list:")


def no_such_job() -> None:
    """What an unknown or malformed link shows instead of a traceback."""
    st.title("No such job")
    st.info(
        "There is no job with this id. The link may be mistyped or incomplete, "
        "or the job has been purged.",
        icon=":material/search_off:",
    )
    st.page_link("pages/jobs.py", label="See all jobs", icon=":material/list:")
