"""The parts of a job's page, each drawn from one `JobDetail`, so the page reads as a list.

The tabs and the chart's settings are widgets bound to the URL; the link to the view is made
from their values, and the downloads are made when clicked (see `ui.report`).

User text (name, tags, log lines, error messages) is shown with `st.code`, `st.json` or
through `md_escape`, never as Markdown of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy import Engine
from streamlit.delta_generator import DeltaGenerator

from compute import registry
from compute.headline import Headline
from compute.registry import Kind
from jobstore import queries
from jobstore.models import StageStatus, Status
from jobstore.views import JobDetail
from runlab.errors import JobNotFound
from runlab.status import partial_note
from ui import badges, charts, confirm, cost, report
from ui import format as fmt
from ui.text import md_escape, one_line

STAGE_MARK: dict[str, str] = {
    StageStatus.PENDING: "○",
    StageStatus.RUNNING: "◐",
    StageStatus.DONE: "●",
    StageStatus.FAILED: "✕",
}
MAX_RESULT_METRICS = 6
# About once a second feels live, yet costs the store only a few small reads per viewer.
LIVE_SECONDS = 0.75
# The page's own URL state (?id=…&tab=…&series=…&log=…): what a shared link carries.
# Tab labels are the values in the URL, so renaming one breaks links already shared.
TABS = ("Result", "Progress", "Timeline", "Parameters", "Log")
TAB_KEY, SERIES_KEY, LOG_KEY = "tab", "series", "log"
# Jobs this session watched unfinished, and the tab the viewer picked on each.
WATCHED, PICKED = "tab.watched", "tab.picked"
# (key, value) pairs of the URL beyond ?id=, in the order a link lists them.
ViewState = list[tuple[str, str]]
PAGE_PATH = "job"
# What a download reads afresh when clicked: every point and a long log, not the page's cut.
DOWNLOAD_LOG_LINES = 1000
DOWNLOAD_MAX_POINTS = 1_000_000
# A job that has run longer than this asks before it is cancelled: its work so far is lost.
CONFIRM_CANCEL_AFTER = 60.0
CANCEL_ASKED = "job.cancel_asked"  # (id, seconds run) of the cancel waiting for a yes
Cancel = Callable[[Engine, str], None]  # the page's own cancel: engine, public id
# A tab's first Plotly chart makes the browser load and compile Plotly's bundle, most of a
# second that blocks its drawing; sent with the headline, it held the headline back too. The
# Result tab's chart is sent last, and in a session that has not had one yet, this long after
# the rest of the page, time for the browser to draw the headline first (benchmarks/bench_ui.py).
FIRST_CHART_AFTER = 0.3
CHARTED = "job.charted"  # this session's browser tab has drawn a chart of the job page


def refresh_every(status: Status) -> float | None:
    """The live fragment's timer: none once the job can no longer change."""
    return None if status.terminal else LIVE_SECONDS


def kind_of(job: JobDetail) -> Kind | None:
    """The job's kind, or None when its module is not installed in this server."""
    return registry.find(job.kind)


def header(job: JobDetail, kind: Kind | None) -> None:
    st.title(md_escape(one_line(job.name)))
    title = kind.title if kind else "kind not installed here"
    zone = fmt.browser_zone()
    facts = [
        f"{md_escape(title)} ({md_escape(job.kind)})",
        f"id `{job.id}`",
        f"submitted {fmt.timestamp(job.created_at, zone)} ({fmt.ago(job.created_at)})",
    ]
    if job.owner:
        facts.append(f"by {md_escape(job.owner)}")
    if job.queue != "default":
        facts.append(f"queue {md_escape(job.queue)}")
    if job.priority:
        facts.append(f"priority {job.priority:+d}")
    st.caption(" · ".join(facts))
    if job.tags:
        st.caption("Tags: " + ", ".join(md_escape(one_line(t, 50)) for t in job.tags))


def status_row(
    job: JobDetail, *, now: datetime | None = None, lease_seconds: float | None = None
) -> None:
    """Badge, time so far and place in the queue: the numbers that change while one waits."""
    now = now or datetime.now(UTC)
    with st.container(horizontal=True, vertical_alignment="center"):
        badges.status_badge(job.status, cancel_requested=job.cancel_requested, partial=job.partial)
        if job.status is Status.RUNNING and job.lease_until and lease_seconds:
            # Each heartbeat sets the lease to now + lease_seconds, so this is the beat's age.
            beat = job.lease_until - timedelta(seconds=lease_seconds)
            st.caption(f"last heartbeat {fmt.duration(max(0.0, (now - beat).total_seconds()))} ago")
    cols = st.columns(3)
    cols[0].metric("Progress", fmt.percent(job.progress))
    if job.status is Status.QUEUED:
        cols[1].metric("Waiting", fmt.elapsed(job.created_at, None, now))
        if job.queue_position is not None:
            ahead = job.queue_position - 1
            cols[2].metric(
                "Position in queue",
                job.queue_position,
                help=f"{ahead} job{'s' if ahead != 1 else ''} ahead of this one in the "
                f"{job.queue} queue",
            )
    else:
        cols[1].metric("Elapsed", fmt.elapsed(job.started_at, job.finished_at, now))
        cols[2].metric(
            "Attempt",
            f"{job.attempt} of {job.max_attempts}",
            help="A job whose runner died, or that hit a retryable error, runs again.",
        )


def overall(job: JobDetail) -> None:
    st.progress(job.progress, text=f"Overall · {fmt.percent(job.progress)}")


def default_tab(status: Status) -> str:
    """The outcome once there is one; until then, how far the job has got."""
    return "Result" if status.terminal else "Progress"


class Later:
    """Parts of the page drawn once the rest has been sent, each into the place kept for it."""

    def __init__(self) -> None:
        self.parts: list[tuple[DeltaGenerator, Callable[[], None]]] = []

    def add(self, draw: Callable[[], None]) -> None:
        self.parts.append((st.container(), draw))

    def draw(self) -> None:
        for slot, draw in self.parts:
            with slot:
                draw()
        self.parts.clear()


def tabs(job: JobDetail, kind: Kind | None, later: Later | None = None) -> ViewState:
    """The tabs, bound to ?tab=…; only the open one is drawn, on each tick of the live part.

    Returns what the URL now holds, for the link to this view. With `later`, the Result
    tab's chart and JSON are left to it, for the caller to draw after the rest of the page.
    """
    default = default_tab(job.status)
    _follow_the_outcome(job)
    panes = st.tabs(
        list(TABS),
        key=TAB_KEY,
        bind="query-params",
        default=default,
        on_change=_picked,
        args=(job.id,),
    )
    draw: dict[str, Callable[[], ViewState | None]] = {
        "Result": lambda: outcome(job, kind, later),
        "Progress": lambda: progress(job),
        "Timeline": lambda: timeline(job),
        "Parameters": lambda: parameters(job),
        "Log": lambda: logs(job),
    }
    for label, pane in zip(TABS, panes, strict=True):
        if pane.open:
            with pane:
                state = draw[label]() or []
            # A bound widget at its default leaves the URL, so the link leaves it out too.
            return ([] if label == default else [(TAB_KEY, label)]) + state
    return []


def _follow_the_outcome(job: JobDetail) -> None:
    """A job watched to its end turns from its Progress to its Result, as a job opened once
    it has ended would, unless the viewer picked a tab meanwhile or a link named another."""
    watched: set[str] = st.session_state.setdefault(WATCHED, set())
    if not job.status.terminal:
        watched.add(job.id)
    elif job.id in watched:
        # Said outright: the tabs' default changes with the status, and with it the widget.
        watched.discard(job.id)
        picked = st.session_state.get(PICKED, {}).get(job.id)
        if picked is not None:
            st.session_state[TAB_KEY] = picked
        elif st.session_state.get(TAB_KEY) in (None, "Progress"):
            st.session_state[TAB_KEY] = "Result"


def _picked(job_id: str) -> None:
    st.session_state.setdefault(PICKED, {})[job_id] = st.session_state.get(TAB_KEY)


def outcome(job: JobDetail, kind: Kind | None, later: Later | None = None) -> None:
    if job.status is Status.SUCCEEDED:
        result(job, kind, later)
    elif job.status is Status.FAILED:
        failure(job)
    elif job.status is Status.CANCELLED:
        cancelled(job)
    else:
        st.info(
            "The result appears here when the job ends; its partial results are under Progress.",
            icon=":material/hourglass_top:",
        )


def progress(job: JobDetail) -> ViewState:
    """A bar per stage, then the metric series."""
    stages(job)
    return metrics(job)


def stages(job: JobDetail) -> None:
    for s in job.stages:
        mark = STAGE_MARK.get(s.status, "")  # StrEnum keys match the stored strings
        took = f" · {fmt.elapsed(s.started_at, s.finished_at)}" if s.started_at else ""
        text = f"{mark} {md_escape(one_line(s.name, 80))} · {s.status}{took}"
        st.progress(s.progress, text=text)


def metrics(job: JobDetail) -> ViewState:
    """The metric series, with which ones are shown and the log scale kept in the URL."""
    names = sorted(n for n, (steps, _) in job.series.items() if steps)
    if not names:
        if not job.status.terminal:
            st.caption("The chart appears with the job's first partial result.")
        else:
            st.caption("This job reported no metric series.")
        return []
    with st.container(horizontal=True, vertical_alignment="bottom", gap="medium"):
        picked = st.pills(
            "Series",
            names,
            selection_mode="multi",
            key=SERIES_KEY,
            bind="query-params",
            help="None picked: all of them are shown.",
        )
        log_y = st.toggle("Log scale", key=LOG_KEY, bind="query-params")
    shown = {n: job.series[n] for n in (picked or names)}
    fig = charts.series_figure(shown, log_y=log_y)
    if fig is not None:
        show(fig, key=f"series-{job.id}")
    return [(SERIES_KEY, n) for n in picked] + ([(LOG_KEY, "true")] if log_y else [])


def actions(job: JobDetail) -> None:
    """Who asked what of the job: its submit, cancels, stops, tags and re-runs."""
    if not job.actions:
        return
    st.markdown("**Who did what**")
    zone = fmt.browser_zone()
    st.dataframe(
        [{"When": fmt.timestamp(a.at, zone), "Who": a.actor, "What": a.what} for a in job.actions],
        hide_index=True,
        column_config={"What": st.column_config.TextColumn(width="large")},
    )


def timeline(job: JobDetail) -> None:
    """When the job waited, each attempt on its runner, the latest attempt's stages, what its
    Dask tasks cost, and who asked what of it."""
    fig = charts.timeline_figure(job, zone=fmt.browser_zone())
    if fig is None:
        st.caption("Nothing has happened yet.")
        actions(job)
        return
    show(fig, key=f"timeline-{job.id}")
    if job.attempts:
        # The dashboard column only where some runner serves one: not a column of blanks.
        linked = any(a.dashboard_link for a in job.attempts)
        st.dataframe(
            [
                {
                    "Attempt": a.attempt,
                    "Runner": a.runner_id or "",
                    "Started": fmt.timestamp(a.started_at, fmt.browser_zone()),
                    "Took": fmt.elapsed(a.started_at, a.ended_at),
                    "Outcome": a.outcome,
                    "Note": a.note or "",
                    **({"Dashboard": a.dashboard_link} if linked else {}),
                }
                for a in job.attempts
            ],
            hide_index=True,
            column_config={
                "Note": st.column_config.TextColumn(width="large"),
                "Dashboard": st.column_config.LinkColumn(
                    "Dask dashboard",
                    display_text="open",
                    help="The live Dask dashboard of the runner's cluster, while it runs",
                ),
            },
        )
    actions(job)
    st.subheader("What it cost")
    cost.cost(job)


def show(fig: go.Figure, *, key: str) -> None:
    """Draw a figure; a stable key lets a live chart update in place instead of flashing."""
    st.plotly_chart(fig, key=key, config=charts.PLOTLY_CONFIG, width="stretch")
    st.session_state[CHARTED] = True


def logs(job: JobDetail) -> None:
    """Who asked what of the job, then its last log lines as one code block: text, never
    Markdown."""
    actions(job)
    if not job.logs:
        st.caption("No log lines yet.")
        return
    n = len(job.logs)
    st.caption("The last line." if n == 1 else f"The last {n} lines.")
    zone = fmt.browser_zone()
    lines = [f"{fmt.clock(x.at, zone)}  {x.level.upper():<7} {x.message}" for x in job.logs]
    st.code("\n".join(lines), language="text", wrap_lines=True)


def result(job: JobDetail, kind: Kind | None, later: Later | None = None) -> None:
    """The kind's headline (or the key numbers), its chart, then the whole result, folded.

    With `later`, the chart and the folded result are left to it: the headline is the answer,
    and a tab's first chart would hold it back (`FIRST_CHART_AFTER`).
    """
    summary = job.result or {}
    if job.partial:
        st.warning(partial_note(job.progress), icon=":material/content_cut:")
    headline = kind.summary(summary, job.params) if kind is not None else None
    if headline is not None:
        show_headline(headline)
    else:
        numbers = [
            (k, v)
            for k, v in summary.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ][:MAX_RESULT_METRICS]
        if numbers:
            # As wide as each number needs, wrapping on narrow screens, so none is cut short.
            with st.container(horizontal=True, gap="large"):
                for k, v in numbers:
                    st.metric(md_escape(fmt.label(k)), fmt.number(v), width="content")

    def chart_and_json() -> None:
        fig = charts.result_figure(kind, summary, job.series) or charts.series_figure(job.series)
        if fig is not None:
            if later is not None and not st.session_state.get(CHARTED):
                time.sleep(FIRST_CHART_AFTER)
            show(fig, key=f"result-{job.id}")
        # Folded, with long lists cut to their size: the whole result is in the download.
        with st.expander("Result as JSON", expanded=False, icon=":material/data_object:"):
            st.json(fmt.browser_json(fmt.folded(summary)), expanded=2)

    if later is None:
        chart_and_json()
    else:
        later.add(chart_and_json)


def show_headline(headline: Headline) -> None:
    """The figures as metrics, each as wide as it needs; then the tables and notes."""
    with st.container(horizontal=True, gap="large"):
        for f in headline.figures:
            st.metric(md_escape(f.label), f.text, help=md_escape(f.help) or None, width="content")
    for table in headline.tables:
        st.markdown(f"**{md_escape(table.title)}**")
        frame = pd.DataFrame(table.rows, columns=table.columns)
        st.dataframe(frame, hide_index=True, height="content" if len(table.rows) <= 40 else 600)
    for note in headline.notes:
        st.caption(md_escape(note))


def failure(job: JobDetail) -> None:
    """The error in plain text; the traceback is there for whoever debugs it."""
    err = job.error
    text = f"{err.type}: {err.message}" if err else "The job failed without an error message."
    st.error(md_escape(text), icon=":material/error:")
    if job.traceback:
        with st.expander("Traceback", icon=":material/bug_report:"):
            st.code(job.traceback, language="text")


def cancelled(job: JobDetail) -> None:
    when = fmt.timestamp(job.finished_at, fmt.browser_zone())
    st.warning(f"Cancelled at {when}.", icon=":material/block:")


def parameters(job: JobDetail) -> None:
    """What an exact re-run must match: the parameters with their seed, and the versions."""
    st.json(fmt.browser_json(job.params))
    limits = [f"at most {job.max_attempts} attempts"]
    if job.timeout_seconds:
        limits.append(f"{fmt.duration(job.timeout_seconds)} each")
    st.caption(md_escape("Runs " + ", ".join(limits)))
    if job.versions:
        st.caption(md_escape("Ran with " + " · ".join(f"{k} {v}" for k, v in job.versions.items())))


def view_link(job: JobDetail, state: ViewState) -> str:
    """The address of this view: the page, its job, and the tab and chart settings.

    Made from the widgets' values, not st.query_params: the browser writes a bound widget's
    value to its URL, and the server's copy of the URL can lag a rerun behind. The server's
    address is the one the browser used; without one, as in tests, the link is relative.
    """
    base = st.context.url or f"/{PAGE_PATH}"
    return f"{base}?{urlencode([('id', job.id), *state])}"


def share(slot: DeltaGenerator, job: JobDetail, state: ViewState) -> None:
    """The link to this view as plain text, to select and copy.

    Not a code block: its copy icon would cost every job page the browser's syntax highlighter,
    about half a second of a slow machine's first paint. Drawn into `slot`, near the top, once
    the tabs and chart controls have said their state.
    """
    with slot.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.caption("Link to this view", width="content")
        st.text(view_link(job, state), width="stretch")


def downloads(engine: Engine, job: JobDetail, kind: Kind | None) -> None:
    """The result, the series and a standalone report, each read afresh when clicked.

    The files are made on the click, in a thread of their own: a page that refreshes
    does not rebuild a report nobody asked for.
    """

    def fresh() -> JobDetail:
        return queries.get_job(
            engine, job.id, log_lines=DOWNLOAD_LOG_LINES, max_points=DOWNLOAD_MAX_POINTS
        )

    def offer(label: str, data: Any, name: str, mime: str, icon: str, **more: Any) -> None:
        """A button that downloads the job's file `name`; a click does not rerun the page."""
        st.download_button(
            label,
            data,
            file_name=report.file_name(job, name),
            mime=mime,
            on_click="ignore",
            icon=icon,
            width="stretch",
            key=f"job.download.{name.partition('.')[0]}",
            **more,
        )

    link = f"{st.context.url or '/' + PAGE_PATH}?{urlencode({'id': job.id})}"
    with st.popover("Download", icon=":material/download:"):
        offer(
            "Result · JSON",
            (lambda: report.result_json(fresh())) if job.result is not None else "",
            "result.json",
            "application/json",
            ":material/data_object:",
            disabled=job.status is not Status.SUCCEEDED or job.result is None,
        )
        offer(
            "Metric series · CSV",
            lambda: report.series_csv(fresh()),
            "series.csv",
            "text/csv",
            ":material/table:",
        )
        offer(
            "Report · HTML",
            lambda: report.html_report(fresh(), kind, made_at=datetime.now(UTC), link=link),
            "report.html",
            "text/html",
            ":material/description:",
            help="One file with the charts inside, that opens without Runlab or a network.",
        )


def cancel_button(slot: DeltaGenerator, engine: Engine, job: JobDetail, cancel: Cancel) -> None:
    """Cancel job: at once for a queued job or one that started under a minute ago; a longer
    run asks first. `cancel(engine, id)` does the cancelling, once decided."""
    slot.button(
        "Cancel job",
        icon=":material/cancel:",
        on_click=_ask_cancel,
        args=(engine, job.id, cancel),
        disabled=job.cancel_requested,
        help="Queued jobs stop at once; running ones at their next check. "
        "A job that has run for over a minute asks first.",
        key="job.cancel",
    )
    asked = st.session_state.get(CANCEL_ASKED)
    if asked is not None and asked[0] == job.id:
        _confirm_cancel(engine, job, asked[1], cancel)


def _ask_cancel(engine: Engine, public_id: str, cancel: Cancel) -> None:
    """Decided from the job as it is at the click: the page around the button only reruns
    when the job ends, so it may have been drawn before the job started."""
    try:
        now = queries.get_job(engine, public_id, log_lines=0, max_points=1)
    except JobNotFound:
        now = None
    ran = now.duration_seconds if now is not None and now.status is Status.RUNNING else None
    if ran is not None and ran > CONFIRM_CANCEL_AFTER:
        st.session_state[CANCEL_ASKED] = (public_id, ran)
    else:
        cancel(engine, public_id)


def _cancel_confirmed(engine: Engine, public_id: str, cancel: Cancel) -> None:
    st.session_state.pop(CANCEL_ASKED, None)
    cancel(engine, public_id)


def _keep_running() -> None:
    st.session_state.pop(CANCEL_ASKED, None)


@st.dialog("Cancel this job?", on_dismiss=_keep_running)
def _confirm_cancel(engine: Engine, job: JobDetail, ran: float, cancel: Cancel) -> None:
    """Asked in a dialog; the choice is a callback, so it holds whatever reruns next."""
    if CANCEL_ASKED not in st.session_state:  # answered: a click in a dialog reruns only it
        st.rerun()
    st.markdown(
        f"Cancel job **{md_escape(one_line(job.name, 80))}**, which has run for "
        f"{fmt.duration_in_a_sentence(ran)}? It stops at its next check, and its work so "
        "far will be lost."
    )
    confirm.yes_or_no(
        yes="Yes, cancel",
        icon=":material/cancel:",
        on_yes=_cancel_confirmed,
        args=(engine, job.id, cancel),
        no="Keep it running",
        on_no=_keep_running,
        key="job.cancel",
    )
