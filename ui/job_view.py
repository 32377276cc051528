"""The parts of a job's page, each drawn from one `JobDetail`, so the page reads as a list.

User text (name, tags, log lines, error messages) is shown with `st.code`, `st.json` or
through `md_escape`, never as Markdown of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from compute import registry
from compute.registry import Kind
from jobstore.models import StageStatus, Status
from jobstore.views import JobDetail
from runlab.errors import UnknownKind
from ui import badges, charts
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


def refresh_every(status: Status) -> float | None:
    """The live fragment's timer: none once the job can no longer change."""
    return None if status.terminal else LIVE_SECONDS


def kind_of(job: JobDetail) -> Kind | None:
    """The job's kind, or None when its module is not installed in this server."""
    try:
        return registry.get(job.kind)
    except UnknownKind:
        return None


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
    st.caption(" · ".join(facts))
    if job.tags:
        st.caption("Tags: " + ", ".join(md_escape(one_line(t, 50)) for t in job.tags))


def status_row(
    job: JobDetail, *, now: datetime | None = None, lease_seconds: float | None = None
) -> None:
    """Badge, time so far and place in the queue: the numbers that change while one waits."""
    now = now or datetime.now(UTC)
    with st.container(horizontal=True, vertical_alignment="center"):
        badges.status_badge(job.status, cancel_requested=job.cancel_requested)
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
                help=f"{ahead} job{'s' if ahead != 1 else ''} ahead of this one",
            )
    else:
        cols[1].metric("Elapsed", fmt.elapsed(job.started_at, job.finished_at, now))
        cols[2].metric(
            "Attempt",
            f"{job.attempt} of {job.max_attempts}",
            help="A job whose runner died, or that hit a retryable error, runs again.",
        )


def progress(job: JobDetail) -> None:
    """The overall bar, then one bar per stage."""
    st.progress(job.progress, text=f"Overall · {fmt.percent(job.progress)}")
    for s in job.stages:
        mark = STAGE_MARK.get(s.status, "")  # StrEnum keys match the stored strings
        took = f" · {fmt.elapsed(s.started_at, s.finished_at)}" if s.started_at else ""
        text = f"{mark} {md_escape(one_line(s.name, 80))} · {s.status}{took}"
        st.progress(s.progress, text=text)


def live_chart(job: JobDetail) -> None:
    fig = charts.series_figure(job.series)
    if fig is None:
        if job.status is Status.RUNNING:
            st.caption("The chart appears with the job's first partial result.")
        return
    charts.show(fig, key=f"series-{job.id}")


def logs(job: JobDetail) -> None:
    """The last log lines as one code block: text, never Markdown."""
    n = len(job.logs)
    label = {0: "Log", 1: "Log · last line"}.get(n, f"Log · last {n} lines")
    with st.expander(label, expanded=not job.status.terminal, icon=":material/notes:"):
        if not job.logs:
            st.caption("No log lines yet.")
            return
        zone = fmt.browser_zone()
        lines = [f"{fmt.clock(x.at, zone)}  {x.level.upper():<7} {x.message}" for x in job.logs]
        st.code("\n".join(lines), language="text", wrap_lines=True)


def result(job: JobDetail, kind: Kind | None) -> None:
    """Key numbers, the kind's chart, then the whole result."""
    summary = job.result or {}
    numbers = [
        (k, v) for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)
    ][:MAX_RESULT_METRICS]
    if numbers:
        # As wide as each number needs, wrapping on narrow screens, so none is cut short.
        with st.container(horizontal=True, gap="large"):
            for k, v in numbers:
                st.metric(md_escape(fmt.label(k)), fmt.number(v), width="content")
    fig = charts.result_figure(kind, summary, job.series) or charts.series_figure(job.series)
    if fig is not None:
        charts.show(fig, key=f"result-{job.id}")
    with st.expander("Result", expanded=True, icon=":material/data_object:"):
        st.json(fmt.browser_json(summary))


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


def attempts(job: JobDetail) -> None:
    """Every attempt: who ran it, when, and how it ended. Shown once there is a second one."""
    if len(job.attempts) < 2:
        return
    with st.expander(f"Attempts · {len(job.attempts)}", icon=":material/replay:"):
        st.dataframe(
            [
                {
                    "Attempt": a.attempt,
                    "Runner": a.runner_id or "",
                    "Started": fmt.timestamp(a.started_at),
                    "Took": fmt.elapsed(a.started_at, a.ended_at),
                    "Outcome": a.outcome,
                    "Note": a.note or "",
                }
                for a in job.attempts
            ],
            hide_index=True,
        )


def parameters(job: JobDetail) -> None:
    with st.expander("Parameters", expanded=True, icon=":material/tune:"):
        st.json(fmt.browser_json(job.params))
        if job.versions:
            # What an exact re-run must match, with the seed above.
            st.caption(
                md_escape("Ran with " + " · ".join(f"{k} {v}" for k, v in job.versions.items()))
            )
