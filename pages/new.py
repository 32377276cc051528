"""/new?kind=<kind>: a form per kind; a good submit opens the new job's page, or the new
sweep's page when parameters are swept.

`?clone=<job id>` opens the form filled in with that job's parameters; presets save and load
the form's values by name. `?what=pipeline` takes a pipeline's spec file instead, with the files
it reads, and opens the new pipeline's page.
"""

from __future__ import annotations

import streamlit as st

from compute import intake, registry
from jobstore import estimates, presets, queries
from runlab.errors import InvalidParams, JobNotFound
from ui import forms, pipeline_view, resources, sidebar
from ui.text import md_escape

who = sidebar.page("New job")
settings = resources.settings()
engine = resources.engine(settings)

heading = st.empty()
if pipeline_view.what_to_submit() == "pipeline":
    heading.title("New pipeline")
    draft = pipeline_view.spec_form()
    if draft is not None:
        pipeline_view.preview(draft)
        if st.button(
            "Submit pipeline",
            type="primary",
            icon=":material/send:",
            disabled=draft.checked is None,
            key="new.pipeline.submit",
        ):
            try:
                pipeline_id = pipeline_view.submit(
                    engine, resources.artifacts(settings), draft, owner=who.name
                )
            except InvalidParams as exc:
                st.error(pipeline_view.errors_text(exc.errors), icon=":material/error:")
            else:
                st.switch_page("pages/pipeline.py", query_params={"id": pipeline_id})
    st.stop()

heading.title("New job")
# Only the kinds a person fills in: a pipeline makes a collect step's parameters itself.
kinds = {k.name: k for k in registry.all_kinds() if k.listed}
names = list(kinds)
DEFAULT_KIND = "monte_carlo_pi"  # the quickest to try, and it needs no file

# ?clone=<id>: the cloned job's kind and parameters, put in the form once per job.
clone_id = st.query_params.get("clone")
if clone_id and st.session_state.get(forms.CLONED) != clone_id:
    st.session_state[forms.CLONED] = clone_id
    try:
        source = queries.get_job(engine, clone_id)
    except JobNotFound:
        st.error(md_escape(f"No job {clone_id} to clone."), icon=":material/error:")
    else:
        if source.kind in kinds:
            st.query_params["kind"] = source.kind
            st.session_state["new.kind"] = source.kind
            forms.fill(kinds[source.kind], source.params)
            st.session_state["new.clone_note"] = f"Cloned from {source.name} ({clone_id})."
        elif registry.find(source.kind) is not None:
            st.error(
                md_escape(
                    f"Job {clone_id} is of kind {source.kind}, which has no form to clone "
                    "into: a program makes its parameters, as a pipeline does a collect step's."
                ),
                icon=":material/error:",
            )
        else:
            st.error(
                md_escape(f"Job {clone_id} is of kind {source.kind}, which is not installed here."),
                icon=":material/error:",
            )

# ?kind=<name> opens that kind's form. Synced by hand rather than with bind="query-params",
# which would put the displayed title, not the kind's name, in the URL.
wanted = st.query_params.get("kind")
first = names.index(wanted if wanted in kinds else DEFAULT_KIND)
choice = st.selectbox(
    "Kind",
    names,
    format_func=lambda name: kinds[name].title,
    key="new.kind",
    # A clone sets the choice in the session; an index as well would make Streamlit warn.
    **({} if "new.kind" in st.session_state else {"index": first}),
)
st.query_params["kind"] = choice
kind = kinds[choice]
st.caption(kind.description)
if note := st.session_state.pop("new.clone_note", None):
    st.info(md_escape(note) + " Change what you like, then submit.", icon=":material/content_copy:")


def _load_preset() -> None:
    name = st.session_state.get(f"new.{kind.name}.__preset")
    if name:
        forms.fill(kind, presets.load(engine, kind.name, name))
        st.session_state["new.preset_note"] = f"Loaded preset {name}."


saved = presets.list_presets(engine, kind.name)
if saved:
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.selectbox(
        "Preset",
        [p.name for p in saved],
        index=None,
        placeholder="load saved values",
        key=f"new.{kind.name}.__preset",
    )
    right.button("Load", on_click=_load_preset, icon=":material/bookmark:")
if loaded := st.session_state.pop("new.preset_note", None):
    st.success(md_escape(loaded), icon=":material/bookmark:")
if saved_as := st.session_state.pop("new.preset_saved", None):
    st.toast(md_escape(f"Saved preset {saved_as}."), icon=":material/bookmark_add:")

forms.csv_filler(kind)
form = forms.job_form(
    kind,
    resources.artifacts(settings),
    expected=lambda values: estimates.expected_duration(engine, kind.name, values),
    queues=settings.queue_names,
)
if form is not None and form.action == "preset":
    try:
        kind.parse(form.params)  # a preset holds values that would submit
        name = presets.save(engine, kind.name, form.preset_name, form.params, actor=who)
    except InvalidParams as exc:
        form.show_errors(exc.errors)
    else:
        st.session_state["new.preset_saved"] = name  # shown by the run below, with the list
        st.rerun()
elif form is not None and form.sweep is not None:
    if form.sweep.plan is None:
        form.top.error("Fix the sweep's values above first.", icon=":material/error:")
    else:
        try:
            sweep_id = intake.submit_sweep(
                engine,
                kind.name,
                form.params,
                form.sweep.axes,
                method=form.sweep.method,
                count=form.sweep.count,
                seed=form.sweep.seed,
                **form.options(who.name, settings.queue_names),
            )
        except InvalidParams as exc:
            form.show_errors(exc.errors)
        else:
            st.switch_page("pages/sweep.py", query_params={"id": sweep_id})
elif form is not None:
    try:
        public_id = intake.submit(
            engine, kind.name, form.params, **form.options(who.name, settings.queue_names)
        )
    except InvalidParams as exc:
        form.show_errors(exc.errors)
    else:
        st.switch_page("pages/job.py", query_params={"id": public_id})
