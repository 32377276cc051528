"""When a job should start or end, in the viewer's time zone, for the job page's live part.

The estimate (`jobstore.estimates`) reads a few rows. It is made again whenever the job's
status, progress or stage moves, and otherwise every `RECOMPUTE_SECONDS`, so the live part's
quick timer costs the store little. The session keeps the time at which each progress value
was first seen: those date the job's steps, so that a stall is noticed and the pace gets a range.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from jobstore.estimates import Estimate, Seen, Unknown, Window, estimate
from jobstore.models import StageStatus, Status
from jobstore.views import JobDetail
from runlab.format import rough_duration
from runlab.settings import Settings
from ui import format as fmt
from ui import resources
from ui.text import md_escape

RECOMPUTE_SECONDS = 5.0
TRAIL_LENGTH = 50
STATE_KEY = "eta"
SOON_SECONDS = 10.0  # closer than this, a time reads "any moment now"
# Why a time is missing, as the page says it; the reasons that carry a number are worded in `why`.
REASONS = {
    Unknown.RUNNER_SILENT: "its runner has gone silent; the job will be handed on",
    Unknown.NOTHING_TO_GO_BY: "no progress yet, and no past runs of this kind and size",
    Unknown.NO_RUNNER: "no runner is alive",
    Unknown.AHEAD_NEVER_RAN: "jobs ahead of it are of a kind with no past runs",
    Unknown.WAITS_ON_UNKNOWN: "it waits on a job whose end cannot be estimated",
}


@dataclass
class _Kept:
    """One job attempt's estimate and progress sightings, across the live part's runs."""

    trail: list[Seen] = field(default_factory=list)
    estimate: Estimate | None = None
    made: float = 0.0  # time.monotonic() when made: local throttling only
    looked: tuple[Any, ...] = ()


def eta(engine: Engine, job: JobDetail, settings: Settings) -> None:
    """Captions with the expected start or end; nothing once the job has ended."""
    if job.status.terminal:
        return
    e, now = _current(engine, job, settings)
    for line in lines(e, fmt.browser_zone(), now):
        st.caption(line)


def _current(engine: Engine, job: JobDetail, settings: Settings) -> tuple[Estimate, datetime]:
    """The kept estimate while the job has not moved and it is fresh, else a new one."""
    states: dict[tuple[str, int], _Kept] = st.session_state.setdefault(STATE_KEY, {})
    kept = states.setdefault((job.id, job.attempt), _Kept())
    running = next((s for s in job.stages if s.status == StageStatus.RUNNING), None)
    looked = (job.status, job.progress, job.stage, running and (running.idx, running.progress))
    age = time.monotonic() - kept.made
    if kept.estimate is None or kept.looked != looked or age > RECOMPUTE_SECONDS:
        kept.estimate = estimate(
            engine,
            job,
            alive_within=resources.alive_within(settings),
            trail=kept.trail,
            limits=settings.queue_limits,
        )
        kept.made, kept.looked, age = time.monotonic(), looked, 0.0
        if job.status is Status.RUNNING and (
            not kept.trail or kept.trail[-1].progress != job.progress
        ):
            kept.trail = [*kept.trail, Seen(kept.estimate.now, job.progress)][-TRAIL_LENGTH:]
    return kept.estimate, kept.estimate.now + timedelta(seconds=age)


def lines(e: Estimate, zone: tzinfo, now: datetime) -> list[str]:
    """What the page says, one caption each: the main time first, then the rest."""
    if e.status is Status.QUEUED:
        return _queued(e, zone, now)
    if e.status is Status.RUNNING:
        return _running(e, zone, now)
    return []


def _queued(e: Estimate, zone: tzinfo, now: datetime) -> list[str]:
    if e.start is None:
        return [f"Start time unknown: {why(e)}."]
    ahead = _count(e.ahead, "job") + " ahead" if e.ahead else "first in line"
    out = [
        f"Expected to start {_when(e.start, zone, now)}; {ahead}, "
        f"{_count(e.slots, 'job slot')} on the runners alive."
    ]
    if e.finish is not None:
        out.append(f"Expected to finish {_when(e.finish, zone, now)}, {_basis(e)}.")
    return out


def _running(e: Estimate, zone: tzinfo, now: datetime) -> list[str]:
    if e.finish is None:
        return [f"End time unknown: {why(e)}."]
    out = [f"Expected to finish {_when(e.finish, zone, now)}, {_basis(e)}."]
    if e.stage is not None and e.stage_name:
        out.append(f"Stage {md_escape(e.stage_name)}: {_when(e.stage, zone, now)}.")
    return out


def why(e: Estimate) -> str:
    """Why the estimate has no main time, in words."""
    if e.unknown is Unknown.STALLED:
        return f"no progress for {rough_duration(e.stalled_for or 0.0)}"
    if e.unknown is Unknown.OUTRAN_PAST_RUNS:
        return f"it has run longer than its {e.past_runs} past runs of this size"
    reason = REASONS.get(e.unknown) if e.unknown is not None else None
    return reason or "not enough to go by"


def _basis(e: Estimate) -> str:
    runs = _count(e.past_runs, "past run") if e.past_runs else ""
    if e.from_progress and runs:
        return f"from its progress and {runs}"
    return f"from {runs}" if runs else "from its progress"


def _when(w: Window, zone: tzinfo, now: datetime) -> str:
    """`about 14:32, in 6 min (between 14:29 and 14:40)`, or `any moment now`."""
    seconds = (w.at - now).total_seconds()
    if seconds < SOON_SECONDS:
        text = "any moment now"
    else:
        text = f"about {clock(w.at, zone, now)}, {until(seconds)}"
    if w.low is not None and w.high is not None:
        low, high = clock(max(w.low, now), zone, now), clock(w.high, zone, now)
        if low != high:
            text += f" (between {low} and {high})"
    return text


def clock(ts: datetime, zone: tzinfo, now: datetime) -> str:
    """`14:32` today in the viewer's zone, `Tue 4 Mar 09:15` on another day."""
    local = ts.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return f"{local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def until(seconds: float) -> str:
    """A coarse wait: `in under a minute`, `in 6 min`, `in 2 h 05 min`, `in 3 d 4 h`."""
    return f"in {rough_duration(seconds)}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
