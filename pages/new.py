"""/new?kind=<kind>: a form per kind; a good submit opens the new job's page."""

from __future__ import annotations

import streamlit as st

from compute import registry
from jobstore import transitions
from runlab.errors import InvalidParams
from ui import forms, resources, sidebar

sidebar.page("New job")
settings = resources.settings()
engine = resources.engine(settings)

st.title("New job")
kinds = {k.name: k for k in registry.all_kinds()}
names = list(kinds)
# ?kind=<name> opens that kind's form. Synced by hand rather than with bind="query-params",
# which would put the displayed title, not the kind's name, in the URL.
wanted = st.query_params.get("kind")
choice = st.selectbox(
    "Kind",
    names,
    index=names.index(wanted) if wanted in kinds else 0,
    format_func=lambda name: kinds[name].title,
    key="new.kind",
)
st.query_params["kind"] = choice
kind = kinds[choice]
st.caption(kind.description)

form = forms.job_form(kind)
if form is not None:
    try:
        public_id = transitions.submit(
            engine,
            kind.name,
            form.params,
            name=form.name,
            owner=settings.owner,
            tags=form.tags,
        )
    except InvalidParams as exc:
        form.show_errors(exc.errors)
    else:
        st.switch_page("pages/job.py", query_params={"id": public_id})
