"""/jobs: what runs now, what waits, and the history, filtered and paged through the URL."""

from __future__ import annotations

import math

import streamlit as st

from compute import registry
from jobstore import queries
from jobstore.models import Status
from ui import notices, resources, sidebar, tables

PAGE_SIZE = 25
REFRESH_SECONDS = 2.0
HISTORY_COLUMNS: list[tables.Column] = ["job", "status", "kind", "name", "created", "duration"]

sidebar.page("Jobs")
settings = resources.settings()
engine = resources.engine(settings)

st.title("Jobs")


@st.fragment(run_every=REFRESH_SECONDS)
def live() -> None:
    """Running and queued jobs move on their own; the history below does not need to."""
    running = queries.running_jobs(engine)
    st.subheader(f"Running · {len(running)}")
    if running:
        tables.job_table(
            running, ["job", "name", "kind", "stage", "progress", "duration"], key="running"
        )
    else:
        st.caption("Nothing is running.")
    queued = queries.queued_jobs(engine)
    st.subheader(f"Queued · {len(queued)}")
    if queued:
        tables.job_table(
            [job for _, job in queued],
            ["position", "job", "name", "kind", "created"],
            positions={job.id: pos for pos, job in queued},
            key="queued",
        )
    else:
        st.caption("The queue is empty.")


def _first_page() -> None:
    """New filters start again at page 1, which also drops ?page= from the URL."""
    st.session_state["page"] = 1


live()

st.subheader("History")
left, right = st.columns(2)
# Widgets bound to the URL (?status=…&kind=…&page=…): a shared link opens the same view.
# A bound widget writes its option labels to the URL, so the options are shown as they are.
statuses = left.multiselect(
    "Status",
    [s.value for s in Status],
    key="status",
    bind="query-params",
    on_change=_first_page,
    placeholder="any status",
)
chosen_kinds = right.multiselect(
    "Kind",
    [k.name for k in registry.all_kinds()],
    key="kind",
    bind="query-params",
    on_change=_first_page,
    placeholder="any kind",
)

total = queries.list_jobs(engine, status=statuses, kind=chosen_kinds, limit=1).total
pages = max(1, math.ceil(total / PAGE_SIZE))
page_no = st.pagination(pages, key="page", bind="query-params")
history = queries.list_jobs(
    engine,
    status=statuses,
    kind=chosen_kinds,
    limit=PAGE_SIZE,
    offset=(page_no - 1) * PAGE_SIZE,
)
if history.rows:
    first, last = history.offset + 1, history.offset + len(history.rows)
    st.caption(f"Jobs {first}–{last} of {history.total}, newest first")
    tables.job_table(history.rows, HISTORY_COLUMNS, key="history")
elif statuses or chosen_kinds:
    st.info("No jobs match these filters.", icon=":material/filter_alt_off:")
else:
    notices.no_jobs()
