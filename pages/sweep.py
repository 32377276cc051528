"""/sweep?id=<public_id>: a sweep as one piece of work, live while its jobs run.

Two live parts, the progress with the table and the analysis (best point, charts), redraw
about every two seconds while a job of the sweep is open, and stop once every point has ended;
the points are read again only when one of its jobs has moved (`ui.sweep_view.table_of`).
A choice in the analysis redraws only it. The chosen result field, which end of it is best and
the heatmap's axes live in the URL, so a shared link opens the same view.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from compute import intake, registry
from jobstore import pipelines as pipeline_store
from jobstore import sweeps as sweep_store
from jobstore import transitions
from runlab.errors import Forbidden, InvalidParams, SweepNotFound
from runlab.format import label
from ui import confirm, job_view, notices, pipeline_view, resources, sidebar
from ui import format as fmt
from ui import sweep_view as view
from ui.text import md_escape, one_line

OUTCOME_KEY = "sweep.outcome"
CANCEL_ASKED = "sweep.cancel_asked"

who = sidebar.page("Sweep")
settings = resources.settings()
engine = resources.engine(settings)
public_id = st.query_params.get("id", "")

try:
    sweep = sweep_store.get(engine, public_id)
except SweepNotFound:
    notices.no_such_sweep()
    st.stop()

kind = registry.find(sweep.kind)
names = view.swept(sweep)


def _cancel(engine: Engine, public_id: str) -> None:
    st.session_state.pop(CANCEL_ASKED, None)
    try:
        done = transitions.cancel_sweep(engine, public_id, actor=who)
    except Forbidden as exc:
        st.session_state[OUTCOME_KEY] = str(exc)
        return
    st.session_state[OUTCOME_KEY] = (
        f"Cancelled {done.cancelled:,} queued jobs; asked {done.asked:,} running ones to stop."
    )


def _ask_cancel() -> None:
    st.session_state[CANCEL_ASKED] = True


def _keep() -> None:
    st.session_state.pop(CANCEL_ASKED, None)


@st.dialog("Cancel this sweep?", on_dismiss=_keep)
def _confirm_cancel(left: int) -> None:
    if CANCEL_ASKED not in st.session_state:
        st.rerun()
    st.markdown(
        f"Cancel the {left:,} jobs of **{md_escape(one_line(sweep.name, 80))}** that have not "
        "ended? Queued ones never start; running ones stop at their next check. The jobs that "
        "ended keep their results."
    )
    confirm.yes_or_no(
        yes="Yes, cancel them",
        icon=":material/cancel:",
        on_yes=_cancel,
        args=(engine, public_id),
        no="Keep them running",
        on_no=_keep,
        key="sweep.cancel",
    )


def _rerun_failed(engine: Engine, public_id: str) -> None:
    new = intake.rerun_failed(engine, public_id, owner=who.name)
    st.session_state[OUTCOME_KEY] = (
        f"Re-running {len(new):,} failed or cancelled jobs." if new else "No job needed a re-run."
    )


def _extend(engine: Engine, public_id: str) -> None:
    texts = {n: st.session_state.get(f"sweep.extend.{n}", "") for n in names}
    changed = {n: t for n, t in texts.items() if t.strip() != sweep.axes.get(n)}
    try:
        new = intake.extend_sweep(
            engine, public_id, changed, owner=who.name, queues=settings.queue_names
        )
    except InvalidParams as exc:
        st.session_state["sweep.extend_errors"] = exc.errors
        return
    st.session_state.pop("sweep.extend_errors", None)
    st.session_state[OUTCOME_KEY] = (
        f"Added {len(new):,} jobs: only the points not computed before."
        if new
        else "Every point of the extended plan was already computed: nothing to add."
    )


title, action = st.columns([4, 1], vertical_alignment="center")
with title:
    st.title(md_escape(one_line(sweep.name)))
    zone = fmt.browser_zone()
    facts = [
        f"Sweep of {md_escape(kind.title if kind else sweep.kind)}",
        md_escape(view.describe(sweep, kind)),
        f"id `{sweep.public_id}`",
        f"submitted {fmt.timestamp(sweep.created_at, zone)} ({fmt.ago(sweep.created_at)})",
    ]
    if sweep.owner:
        facts.append(f"by {md_escape(sweep.owner)}")
    st.caption(" · ".join(facts))
    st.caption(
        "Swept: "
        + "; ".join(
            f"{md_escape(view.param_label(kind, n))} = {md_escape(view.axis_text(t))}"
            for n, t in sweep.axes.items()
        )
    )
    pipeline_view.step_link(pipeline_store.of_sweep(engine, sweep.public_id))
left = sweep.children - sweep.ended
if left and who.may_act_on(sweep.owner):
    action.button(
        "Cancel sweep",
        icon=":material/cancel:",
        on_click=_ask_cancel,
        width="stretch",
        help="Cancel every job of the sweep that has not ended; ended ones keep their results.",
        key="sweep.cancel",
    )
    if st.session_state.get(CANCEL_ASKED):
        _confirm_cancel(left)
failed = sweep.statuses.get("failed", 0) + sweep.statuses.get("cancelled", 0)
action.button(
    "Re-run failed",
    icon=":material/replay:",
    on_click=_rerun_failed,
    args=(engine, public_id),
    disabled=not failed,
    width="stretch",
    help="Run again only the points whose job failed or was cancelled, with the same "
    "parameters and seed.",
    key="sweep.rerun_failed",
)
if not sweep.plan.get("method") and kind is not None and who.may_act_on(sweep.owner):
    with action.popover("Extend", icon=":material/add:", width="stretch"):
        st.caption("Widen any swept parameter's values. Only the points not computed before run.")
        errors = st.session_state.get("sweep.extend_errors", {})
        with st.form("sweep.extend", border=False):
            for n in names:
                st.text_input(
                    view.param_label(kind, n),
                    value=sweep.axes[n],
                    key=f"sweep.extend.{n}",
                )
                if n in errors:
                    st.error(md_escape(errors[n]), icon=":material/error:")
            for k, message in errors.items():
                if k not in names:
                    st.error(md_escape(f"{label(k)}: {message}"), icon=":material/error:")
            st.form_submit_button(
                "Extend", type="primary", on_click=_extend, args=(engine, public_id)
            )
action.download_button(
    "Download CSV",
    lambda: view.points_csv(sweep_store.points(engine, public_id)),
    file_name=f"sweep-{public_id}.csv",
    mime="text/csv",
    on_click="ignore",
    icon=":material/download:",
    width="stretch",
    help="Every point's parameters and result fields, one row each.",
    key="sweep.csv",
)
action.page_link(
    "pages/jobs.py",
    label="Its jobs",
    icon=":material/list:",
    query_params={"sweep": public_id},
)
if OUTCOME_KEY in st.session_state:
    st.toast(md_escape(st.session_state.pop(OUTCOME_KEY)), icon=":material/info:")


@st.fragment(run_every=view.refresh_every(sweep))
def live(was_done: bool) -> None:
    """The progress and the table of points, on every tick."""
    try:
        now = sweep_store.get(engine, public_id)
        table = view.table_of(engine, public_id, kind, names)
    except SweepNotFound:
        st.rerun()
    if view.refresh_every(now) is None and not was_done:
        st.rerun()  # every point ended: the whole page, with no timer
    view.progress(view.progress_of(table.points))
    st.subheader("Points")
    view.table(table.frame, kind, key="sweep.table")
    if not table.fields:
        st.caption("The result fields appear as the jobs succeed.")


@st.fragment(run_every=view.refresh_every(sweep))
def analysis() -> None:
    """The best point and the charts: a choice here redraws only them, not the table."""
    try:
        table = view.table_of(engine, public_id, kind, names)
    except SweepNotFound:
        return  # the live part says so
    if not table.fields:
        return
    df = table.frame
    st.subheader("Best point")
    pick, way = st.columns([3, 2], vertical_alignment="bottom")
    field = pick.selectbox(
        "Result field", table.fields, format_func=label, key="field", bind="query-params"
    )
    highest = (
        way.segmented_control(
            "Best is",
            ["lowest", "highest"],
            default="lowest",
            key="best",
            bind="query-params",
        )
        == "highest"
    )
    view.show_best(view.best(table.points, field, highest=highest), field, names, kind)

    if len(names) >= 2:
        st.subheader(f"{label(field)} over two swept parameters")
        cx, cy = st.columns(2)
        x = cx.selectbox(
            "Across",
            names,
            format_func=lambda n: view.param_label(kind, n),
            key="x",
            bind="query-params",
        )
        others = [n for n in names if n != x]
        y = cy.selectbox(
            "Down",
            others,
            format_func=lambda n: view.param_label(kind, n),
            key="y",
            bind="query-params",
        )
        if (fig := view.heatmap_figure(df, x, y, field, kind)) is not None:
            job_view.show(fig, key="sweep.heatmap")
    st.subheader("Parallel coordinates")
    if (fig := view.parallel_figure(df, names, field, kind, highest=highest)) is not None:
        job_view.show(fig, key="sweep.parallel")
        done = int(df[view.RESULT + field].notna().sum())
        if done > view.MAX_LINES:
            st.caption(
                f"The {view.MAX_LINES:,} best of {done:,} points by {label(field).lower()}; the "
                "table and the heatmap hold them all."
            )


live(view.refresh_every(sweep) is None)
analysis()
