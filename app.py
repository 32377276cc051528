"""Home: is a runner alive, how deep is the queue, what runs now, and what ran lately."""

from __future__ import annotations

import streamlit as st

from jobstore import queries
from ui import notices, resources, sidebar, tables

REFRESH_SECONDS = 2.0

sidebar.page("Home")
settings = resources.settings()
engine = resources.engine(settings)

st.title("Runlab")
st.caption("Submit long jobs, run them on Dask, and watch them live.")


@st.fragment(run_every=REFRESH_SECONDS)
def overview() -> None:
    """Live: new jobs and runners come and go while the page is open."""
    ov = queries.overview(engine, alive_within=resources.alive_within(settings))
    cols = st.columns(3)
    cols[0].metric("Runners alive", ov.runners_alive)
    cols[1].metric("Queued", ov.queued)
    cols[2].metric("Running", ov.running)
    if ov.runners_alive == 0:
        notices.no_runner()

    st.subheader("Running now")
    if ov.running_jobs:
        tables.job_table(ov.running_jobs, tables.RUNNING_COLUMNS, key="running")
    else:
        st.caption("Nothing is running.")

    st.subheader("Recent jobs")
    if ov.recent_jobs:
        tables.job_table(
            ov.recent_jobs, ["job", "status", "kind", "created", "duration"], key="recent"
        )
        st.page_link("pages/jobs.py", label="All jobs", icon=":material/list:")
    else:
        notices.no_jobs()


overview()
