"""The parts of /runners: the runners, their Dask workers, and the store's last hour.

Host names, addresses and error texts come from other processes, so they are drawn in
dataframes or through `md_escape`, never as Markdown of their own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from compute import cluster_info
from compute.cluster_info import ClusterInfo
from jobstore.activity import Activity
from jobstore.queues import QueueState
from jobstore.views import RunnerView
from ui import charts, notices, palette
from ui import format as fmt
from ui.text import md_escape

# Workers change every second; a short cache lets every open page share one ask per scheduler.
CLUSTER_TTL_SECONDS = 2.0
# Runners killed outright never say they stopped, so their rows stay; the page shows the latest.
SILENT_SHOWN = 20
FINISHED_COLOURS = palette.STATUS_HEX
DEPTH_COLOUR = "#3559E0"
CHART_HEIGHT = 300


@st.cache_data(ttl=CLUSTER_TTL_SECONDS, show_spinner=False)
def clusters(addresses: tuple[str, ...]) -> dict[str, ClusterInfo]:
    """Each scheduler's workers, asked at most once per `CLUSTER_TTL_SECONDS` by all viewers."""
    return cluster_info.ask(addresses)


def schedulers(runners: Sequence[RunnerView]) -> tuple[str, ...]:
    """The schedulers of the alive runners, once each: several runners may share one."""
    return tuple(
        dict.fromkeys(r.scheduler_address for r in runners if r.alive and r.scheduler_address)
    )


def summary(runners: Sequence[RunnerView], found: dict[str, ClusterInfo]) -> None:
    alive = [r for r in runners if r.alive]
    reached = [c for c in found.values() if c.error is None]
    cols = st.columns(5)
    cols[0].metric("Runners alive", len(alive))
    cols[1].metric("Silent", len(runners) - len(alive))
    cols[2].metric("Running jobs", sum(r.running_jobs for r in alive))
    cols[3].metric("Dask workers", sum(len(c.workers) for c in reached))
    cols[4].metric("Threads", sum(c.threads for c in reached))


def _link(url: str | None) -> str | None:
    """Only web links become clickable: the address comes from another process."""
    return url if url and url.startswith(("http://", "https://")) else None


def runner_table(runners: Sequence[RunnerView], *, key: str) -> None:
    rows = [
        {
            "state": "alive" if r.alive else "silent",
            "host": r.host,
            "pid": r.pid,
            "running": r.running_jobs,
            "concurrency": r.concurrency,
            "queues": "every queue" if r.queues is None else ", ".join(r.queues),
            "heartbeat": f"{fmt.duration(r.heartbeat_age)} ago",
            "started": r.started_at,
            "scheduler": r.scheduler_address or fmt.DASH,
            "dashboard": _link(r.dashboard_link),
        }
        for r in runners
    ]
    zone = st.context.timezone or "UTC"
    with st.container(key=key):
        st.dataframe(
            rows,
            hide_index=True,
            column_config={
                "state": st.column_config.TextColumn("State", width="small"),
                "host": st.column_config.TextColumn("Host"),
                "pid": st.column_config.NumberColumn("PID", format="%d", width="small"),
                "running": st.column_config.NumberColumn(
                    "Running jobs", format="%d", width="small"
                ),
                "concurrency": st.column_config.NumberColumn(
                    "Concurrency", format="%d", width="small", help="Jobs it runs at once"
                ),
                "queues": st.column_config.TextColumn(
                    "Serves", width="small", help="The queues it claims from"
                ),
                "heartbeat": st.column_config.TextColumn("Last heartbeat", width="small"),
                "started": st.column_config.DatetimeColumn(
                    "Started", format="YYYY-MM-DD HH:mm:ss", timezone=zone
                ),
                "scheduler": st.column_config.TextColumn("Dask scheduler"),
                "dashboard": st.column_config.LinkColumn(
                    "Dashboard", display_text="open", help="The Dask dashboard, if it has one"
                ),
            },
        )


def queues_section(states: Sequence[QueueState]) -> None:
    """Each queue: what waits and runs in it, its limit, its oldest wait and who serves it.
    Nothing while the one queue there is stands empty."""
    if len(states) <= 1 and not any(q.queued or q.running for q in states):
        return
    st.subheader("Queues")
    rows = [
        {
            "queue": q.name,
            "waiting": q.queued,
            "running": q.running,
            "limit": "no limit" if q.limit is None else f"{q.limit:,}",
            "oldest": fmt.DASH if q.oldest_wait is None else fmt.duration(q.oldest_wait),
            "runners": len(q.runners),
        }
        for q in states
    ]
    st.dataframe(
        rows,
        hide_index=True,
        key="queues_table",
        column_config={
            "queue": st.column_config.TextColumn("Queue"),
            "waiting": st.column_config.NumberColumn("Waiting", format="%d", width="small"),
            "running": st.column_config.NumberColumn("Running", format="%d", width="small"),
            "limit": st.column_config.TextColumn(
                "Limit", width="small", help="Most of its jobs running at once, on every runner"
            ),
            "oldest": st.column_config.TextColumn(
                "Oldest wait", width="small", help="How long its longest-waiting job has waited"
            ),
            "runners": st.column_config.NumberColumn(
                "Runners serving it",
                format="%d",
                width="small",
                help="Alive runners that claim from it",
            ),
        },
    )
    unserved = [q.name for q in states if q.queued and not q.runners]
    if unserved:
        whose = "its" if len(unserved) == 1 else "their"
        st.warning(
            f"No alive runner serves {md_escape(', '.join(unserved))}: {whose} jobs wait until "
            "one starts "
            "(`runlab runner --queues …`, or a runner without --queues, which serves them all).",
            icon=":material/hourglass_empty:",
        )


def runners_section(runners: Sequence[RunnerView], alive_within: float) -> None:
    """Alive runners, then silent ones apart: a silent runner must never read as alive."""
    alive = [r for r in runners if r.alive]
    silent = sorted((r for r in runners if not r.alive), key=lambda r: r.heartbeat_age)
    if not alive:
        notices.no_runner()
    if alive:
        st.subheader(f"Alive · {len(alive)}")
        runner_table(alive, key="alive_runners")
    if silent:
        st.subheader(f"Silent · {len(silent)}")
        st.warning(
            f"No heartbeat for more than {fmt.duration(alive_within)}: these runners crashed, "
            "hang, or lost the store. Their running jobs go back to the queue once their "
            "leases lapse.",
            icon=":material/heart_broken:",
        )
        runner_table(silent[:SILENT_SHOWN], key="silent_runners")
        if len(silent) > SILENT_SHOWN:
            st.caption(f"… and {len(silent) - SILENT_SHOWN} more, silent for longer.")
    st.caption("Runners that stopped cleanly are not listed: they handed their jobs back.")


def _bytes(n: int | None) -> str:
    """A worker's memory; a limit that is not set reads as such, not as a dash."""
    return "no limit" if n is None else fmt.size(n)


def cluster_section(runners: Sequence[RunnerView], found: dict[str, ClusterInfo]) -> None:
    """Per scheduler of an alive runner: its workers, their memory and tasks, or why not."""
    alive = [r for r in runners if r.alive]
    if not alive:
        return
    st.subheader("Dask workers")
    for r in alive:
        if not r.scheduler_address:
            st.caption(f"Runner {md_escape(r.host)} (pid {r.pid}) recorded no Dask scheduler.")
    for address in schedulers(runners):
        users = ", ".join(
            f"{r.host} (pid {r.pid})" for r in alive if r.scheduler_address == address
        )
        info = found.get(address) or ClusterInfo(address, error="not asked yet")
        with st.container(border=True, key=cluster_key(address)):
            st.markdown(f"**Scheduler** {md_escape(address)}")
            st.caption(md_escape(f"Used by {users}"))
            if info.error is not None:
                st.warning(
                    f"Cannot read this scheduler's workers: {md_escape(info.error)}. "
                    "A runner's own LocalCluster listens on the runner's machine only; "
                    "a scheduler elsewhere must be reachable from the web app.",
                    icon=":material/cloud_off:",
                )
                continue
            if not info.workers:
                st.info(
                    "The scheduler has no workers: jobs sent to it wait.",
                    icon=":material/hourglass_empty:",
                )
                continue
            st.caption(
                f"{len(info.workers)} workers · {info.threads} threads · "
                f"{_bytes(info.memory_used)} of {_bytes(info.memory_limit)} memory in use"
            )
            worker_table(info)


def cluster_key(address: str) -> str:
    """The container of one scheduler's section, by which tests and CSS find it."""
    return "cluster_" + re.sub(r"\W", "_", address)


def worker_table(info: ClusterInfo) -> None:
    rows: list[dict[str, Any]] = [
        {
            "worker": w.address,
            "name": w.name,
            "threads": w.nthreads,
            "memory": (w.memory_used / w.memory_limit) if w.memory_limit else None,
            "memory_text": f"{_bytes(w.memory_used)} of {_bytes(w.memory_limit)}",
            "processing": w.processing,
            "in_memory": w.in_memory,
            "status": w.status,
        }
        for w in info.workers
    ]
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "worker": st.column_config.TextColumn("Worker"),
            "name": st.column_config.TextColumn("Name", width="small"),
            "threads": st.column_config.NumberColumn("Threads", format="%d", width="small"),
            "memory": st.column_config.ProgressColumn(
                "Memory", min_value=0.0, max_value=1.0, format="percent"
            ),
            "memory_text": st.column_config.TextColumn("Used of limit"),
            "processing": st.column_config.NumberColumn(
                "Processing", format="%d", width="small", help="Tasks in hand, running or next"
            ),
            "in_memory": st.column_config.NumberColumn(
                "In memory", format="%d", width="small", help="Task results the worker holds"
            ),
            "status": st.column_config.TextColumn("Status", width="small"),
        },
    )


def _layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title=title,
        height=CHART_HEIGHT,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis={"title": y_title, "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def throughput_figure(act: Activity, zone: tzinfo) -> go.Figure:
    """Stacked bars per minute, so the total and its make-up read at once."""
    x = [t.astimezone(zone) for t in act.minutes]
    fig = go.Figure(
        [
            go.Bar(x=x, y=counts, name=str(status), marker_color=FINISHED_COLOURS.get(status))
            for status, counts in act.finished.items()
        ]
    )
    fig.update_layout(barmode="stack")
    return _layout(fig, "Jobs finished per minute", "jobs")


def depth_figure(act: Activity, zone: tzinfo) -> go.Figure:
    x = [t.astimezone(zone) for t in act.depth_at]
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=act.depth,
            mode="lines",
            line={"shape": "hv", "color": DEPTH_COLOUR},
            fill="tozeroy",
            name="queued",
        )
    )
    return _layout(fig, "Jobs waiting in the queue", "jobs")


def activity_section(act: Activity) -> None:
    zone = fmt.browser_zone()
    left, right = st.columns(2)
    with left:
        _chart(throughput_figure(act, zone), key="throughput_chart")
        if act.finished_total:
            st.caption(
                f"{act.finished_total} jobs finished in the last {len(act.minutes)} minutes."
            )
        else:
            st.caption("No job finished in the last hour. Jobs appear here as runners finish them.")
    with right:
        _chart(depth_figure(act, zone), key="depth_chart")
        st.caption(
            f"{act.depth[-1]} waiting now; at most {max(act.depth)} in the last hour. "
            "Counted from each job's creation to its latest claim."
        )


def _chart(fig: go.Figure, *, key: str) -> None:
    """A stable key lets the chart update in place instead of flashing on each refresh."""
    st.plotly_chart(fig, key=key, config=charts.PLOTLY_CONFIG, width="stretch")
