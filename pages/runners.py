"""/runners: the queues, each runner and whether it is alive, its Dask workers, and the last
hour's work."""

from __future__ import annotations

import streamlit as st

from jobstore import activity, queries, queues
from ui import resources, sidebar
from ui import runners as view

REFRESH_SECONDS = 2.0
# Per-minute charts move slowly; redrawing them less often keeps the page light.
ACTIVITY_REFRESH_SECONDS = 10.0

sidebar.page("Runners")
settings = resources.settings()
engine = resources.engine(settings)
alive_within = resources.alive_within(settings)

st.title("Runners")
st.caption(
    f"A runner is alive while its heartbeat is under {alive_within:g} s old. "
    "Each runs jobs on its own Dask cluster, or on a shared scheduler."
)


@st.fragment(run_every=REFRESH_SECONDS)
def live() -> None:
    """Runners come, go silent and stop, and workers fill up, while the page is open."""
    runners = queries.runners(engine, alive_within=alive_within)
    found = view.clusters(view.schedulers(runners))
    view.summary(runners, found)
    view.queues_section(queues.states(engine, settings.queue_names, settings.queue_limits, runners))
    view.runners_section(runners, alive_within)
    view.cluster_section(runners, found)


@st.fragment(run_every=ACTIVITY_REFRESH_SECONDS)
def last_hour() -> None:
    st.subheader("The last hour")
    view.activity_section(activity.last_hour(engine))


live()
last_hour()
