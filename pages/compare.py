"""/compare?ids=a,b,c: two to ten jobs side by side, and their series on one chart; with no
ids, a search to pick them from. When one parameter varies, each headline result is drawn
against it.

The ids, the series drawn and the "only differences" switch all live in the URL, so a shared
link opens the same comparison. /jobs opens this page with the ids it has selected.
"""

from __future__ import annotations

import streamlit as st

from jobstore import compare
from runlab.errors import InvalidParams
from ui import compare as view
from ui import resources, sidebar

who = sidebar.page("Compare")
settings = resources.settings()
engine = resources.engine(settings)

if not compare.parse_ids(st.query_params.get_all("ids")):
    view.picker(engine, who.name)
    st.stop()
try:
    comparison = compare.compare(engine, compare.parse_ids(st.query_params.get_all("ids")))
    comparison = view.in_form_order(comparison)
except InvalidParams as exc:
    view.refused(exc.errors.get("ids", str(exc)))
    st.stop()

enough = len(comparison.jobs) >= compare.MIN_JOBS
if comparison.unknown:
    view.unknown(comparison.unknown, enough_left=enough)
if not enough:
    st.stop()

st.title(f"Compare {len(comparison.jobs)} jobs")
view.job_links(comparison)

st.subheader("Parameters and results")
only_differences = st.toggle(
    "Only differences",
    key="diff",
    bind="query-params",
    help="Hide the fields whose values are the same in every job.",
)
st.caption(
    f"{len(comparison.differing)} of {len(comparison.fields)} fields differ between these jobs."
)
view.field_table(comparison, only_differences=only_differences, key="fields")
view.against_parameter(comparison)

st.subheader("Series")
chosen = st.multiselect(
    "Series",
    comparison.series_names,
    default=[first] if (first := view.default_series(comparison)) else [],
    key="series",
    bind="query-params",
    placeholder="pick a series",
    label_visibility="collapsed",
)
view.overlay_chart(comparison, chosen)
