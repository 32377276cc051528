"""The page frame every page opens with: its title in the browser tab, sign-in where it is
configured (`ui.auth`), and our own sidebar.

`client.showSidebarNavigation = false` hides the navigation Streamlit would build from
`pages/`, so the labels and icons here are the only ones a user sees.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import streamlit as st

from jobstore import queries, sweeps
from runlab.identity import Actor
from ui import auth, badges, resources
from ui.text import md_escape, one_line

log = logging.getLogger(__name__)
WATCH_SECONDS = 5.0
MAX_TOASTS = 5
SEEN = "sidebar.finished_seen"  # the store's time up to which ended jobs were toasted
SWEEPS_TOLD = "sidebar.sweeps_told"  # (sweep, its last end) already toasted

LINKS: tuple[tuple[str, str, str], ...] = (
    ("app.py", "Home", ":material/home:"),
    ("pages/new.py", "New job", ":material/add_circle:"),
    ("pages/jobs.py", "Jobs", ":material/list:"),
    ("pages/compare.py", "Compare", ":material/compare_arrows:"),
    ("pages/runners.py", "Runners", ":material/dns:"),
)


# Each page's script by its title, for the way back after sign-in.
SCRIPTS = {label: path for path, label, _icon in LINKS} | {
    "Job": "pages/job.py",
    "Sweep": "pages/sweep.py",
    "Pipeline": "pages/pipeline.py",
}


def page(title: str) -> Actor:
    """Set up the page, ask for sign-in where it is configured, and draw the sidebar; call it
    first on every page. Returns who is using the page."""
    st.set_page_config(
        page_title=f"{title} · Runlab", page_icon=":material/science:", layout="wide"
    )
    auth.gate(SCRIPTS.get(title, "app.py"))
    settings = resources.settings()
    who = auth.actor(settings)
    with st.sidebar:
        st.markdown("### :material/science: Runlab")
        for path, label, icon in LINKS:
            st.page_link(path, label=label, icon=icon)
        auth.sidebar(settings)
        _finished_jobs(who.name)
    return who


@st.fragment(run_every=WATCH_SECONDS)
def _finished_jobs(me: str) -> None:
    """A toast for each of your jobs, and each sweep of yours, that ends while this session is
    open, on any page.

    The first look only notes the store's clock: jobs that ended before you came are history.
    """
    settings = resources.settings()
    try:
        engine = resources.engine(settings)
        since = st.session_state.get(SEEN)
        now, ended = queries.finished_since(
            engine, me, since or datetime.now(UTC), limit=MAX_TOASTS
        )
        swept = [] if since is None else sweeps.ended_since(engine, me, since, limit=MAX_TOASTS)
    except Exception:  # a store that is down is the page's to report, not a toast's
        log.debug("could not look for finished jobs", exc_info=True)
        return
    if since is None:
        st.session_state[SEEN] = now
        return
    showing = st.query_params.get("id")
    for job in ended:
        st.session_state[SEEN] = max(st.session_state[SEEN], job.finished_at or now)
        if job.id == showing:
            continue  # its own page already says so
        look = badges.LOOKS[job.status]
        st.toast(
            f"Your job **{md_escape(one_line(job.name, 60))}** {job.status}. "
            f"[Open it](job?id={job.id})",
            icon=look.icon,
        )
    _ended_sweeps(swept, showing)
    if len(ended) < MAX_TOASTS:
        st.session_state[SEEN] = max(st.session_state[SEEN], now)


def _ended_sweeps(ended: list[sweeps.Ended], showing: str | None) -> None:
    """One toast per sweep of yours whose last job ended, not one per job."""
    told: set[tuple[str, datetime]] = st.session_state.setdefault(SWEEPS_TOLD, set())
    for sweep in ended:
        if (sweep.public_id, sweep.at) in told or sweep.public_id == showing:
            continue
        told.add((sweep.public_id, sweep.at))
        counts = ", ".join(f"{n:,} {status}" for status, n in sweep.statuses.items())
        st.toast(
            f"Your sweep **{md_escape(one_line(sweep.name, 60))}** ended: {counts}. "
            f"[Open it](sweep?id={sweep.public_id})",
            icon=":material/grid_view:",
        )
