"""The page frame every page opens with: its title in the browser tab and our own sidebar.

`client.showSidebarNavigation = false` hides the navigation Streamlit would build from
`pages/`, so the labels and icons here are the only ones a user sees.
"""

from __future__ import annotations

import streamlit as st

LINKS: tuple[tuple[str, str, str], ...] = (
    ("app.py", "Home", ":material/home:"),
    ("pages/new.py", "New job", ":material/add_circle:"),
    ("pages/jobs.py", "Jobs", ":material/list:"),
    ("pages/compare.py", "Compare", ":material/compare_arrows:"),
    ("pages/runners.py", "Runners", ":material/dns:"),
)


def page(title: str) -> None:
    """Set up the page and draw the sidebar; call it first on every page."""
    st.set_page_config(
        page_title=f"{title} · Runlab", page_icon=":material/science:", layout="wide"
    )
    with st.sidebar:
        st.markdown("### :material/science: Runlab")
        for path, label, icon in LINKS:
            st.page_link(path, label=label, icon=icon)
