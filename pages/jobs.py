"""/jobs: what runs now, what waits, the latest pipelines, and the whole history, searched,
sorted and paged.

Every control of the history is in the URL, so a link opens the same view for a colleague.
"""

from __future__ import annotations

import streamlit as st

from jobstore import pipelines as pipeline_store
from jobstore import queries
from ui import history, notices, pipeline_view, resources, sidebar, tables

REFRESH_SECONDS = 2.0

who = sidebar.page("Jobs")
settings = resources.settings()
engine = resources.engine(settings)

st.title("Jobs")


@st.fragment(run_every=REFRESH_SECONDS)
def live() -> None:
    """Running and queued jobs move on their own; the history below does not need to."""
    running = queries.running_jobs(engine)
    st.subheader(f"Running · {len(running)}")
    if running:
        tables.job_table(running, tables.RUNNING_COLUMNS, key="running")
    else:
        st.caption("Nothing is running.")
    queued = queries.queued_jobs(engine)
    st.subheader(f"Queued · {len(queued)}")
    if queued:
        several = len({job.queue for _, job in queued}) > 1 or len(settings.queue_names) > 1
        tables.job_table(
            [job for _, job in queued],
            ["position", "job", *(["queue"] if several else []), "kind", "created"],
            positions={job.id: pos for pos, job in queued},
            key="queued",
        )
    else:
        st.caption("The queue is empty.")


live()

# Above the history, but drawn once its filters are known: "My jobs" and the owner apply.
pipelines = st.container()
st.subheader("History")
history.notice()
view = history.controls(who.name, settings.queue_names)
shown, owners = pipeline_view.owners_shown(view.query)
if shown and view.error is None:
    with pipelines:
        pipeline_view.recent_table(
            pipeline_store.recent(engine, owner=owners, limit=pipeline_view.RECENT)
        )
if view.error is not None:
    history.search_error(view.error)
    st.stop()
history.understood(engine, view)
page = history.read(engine, view)
if page.rows:
    selected = history.table(engine, page, view)
    history.pager(page)
    history.selection_bar(engine, resources.artifacts(settings), selected, who)
elif view.filtered or st.query_params.get(history.CURSOR):
    st.info("No jobs match these filters.", icon=":material/filter_alt_off:")
    st.button("Clear the search and filters", on_click=history.clear, key="history.clear")
else:
    notices.no_jobs()
