"""What a job's Dask tasks cost, for the job page: four numbers, a few notes, a table per stage.

The figures come from `JobDetail.cost` (compute/cost.py measures them inside each task). They are
the latest attempt's, like the stages above them on the page.
"""

from __future__ import annotations

import streamlit as st

from jobstore.views import JobCost, JobDetail
from ui import format as fmt

CPU_HELP = (
    "CPU time of the worker threads that ran the job's tasks, summed: what the work used, "
    "whatever else the machine was doing."
)
TASK_HELP = (
    "Wall time of the job's tasks, summed: from the start to the end of each, waits included. "
    "Tasks that ran side by side each count in full."
)
PEAK_HELP = (
    "The highest resident memory of a Dask worker process while one of the job's tasks ran, "
    "the worker's own footprint included. Measured on Linux workers; — elsewhere."
)


def cost(job: JobDetail) -> None:
    """The job's CPU time, task time, tasks and peak memory; then the same per stage."""
    if job.cost is None or job.cost.total.tasks == 0:
        # A job that ran no Dask task costs zero; zeros in four metrics would say less.
        st.caption(
            "Nothing was measured for this job: it ran no Dask task that reported a cost."
            if job.status.terminal
            else "Nothing measured yet: the cost appears as the job's first tasks finish."
        )
        return
    total = job.cost.total
    with st.container(horizontal=True, gap="large"):
        st.metric("CPU time", fmt.duration(total.cpu_seconds), help=CPU_HELP, width="content")
        st.metric("Task time", fmt.duration(total.task_seconds), help=TASK_HELP, width="content")
        st.metric("Tasks", fmt.number(total.tasks), width="content")
        st.metric("Peak memory", fmt.size(total.peak_memory_bytes), help=PEAK_HELP, width="content")
    for line in notes(job):
        st.caption(line)
    rows = stage_rows(job.cost)
    if rows:
        st.dataframe(rows, hide_index=True)


def notes(job: JobDetail) -> list[str]:
    """What a reader needs to read the numbers right: how busy the tasks were, and whose
    cost it is."""
    if job.cost is None:
        return []
    total = job.cost.total
    out: list[str] = []
    if total.task_seconds > 0:
        busy = total.cpu_seconds / total.task_seconds
        out.append(
            f"The tasks used the CPU {fmt.percent(busy)} of their time; "
            "the rest they waited (for data, a lock, or a busy core)."
        )
    if total.hosts:
        where = "host" if len(total.hosts) == 1 else "hosts"
        out.append(f"Ran on the Dask worker {where} {fmt.hosts(total.hosts)}.")
    outside = total.tasks - sum(s.cost.tasks for s in job.cost.stages)
    if outside > 0:
        out.append(f"{fmt.number(outside)} of the tasks ran outside any stage.")
    if not job.status.terminal:
        out.append("So far: these grow as the tasks finish.")
    if job.attempt > 1:
        out.append(f"Attempt {job.attempt} alone: earlier attempts are not counted.")
    return out


def stage_rows(cost: JobCost) -> list[dict[str, str]]:
    """One row per stage, formatted; a stage that ran no task shows dashes, not zeros."""
    rows = []
    for s in cost.stages:
        c = s.cost
        ran = c.tasks > 0
        rows.append(
            {
                "Stage": s.name,
                "Tasks": fmt.number(c.tasks),
                "CPU time": fmt.duration(c.cpu_seconds) if ran else fmt.DASH,
                "Task time": fmt.duration(c.task_seconds) if ran else fmt.DASH,
                "Peak memory": fmt.size(c.peak_memory_bytes) if ran else fmt.DASH,
            }
        )
    return rows
