"""How long a job will take: when a queued job should start, and when a running one and its
current stage should end. Reads only.

A running job's end comes from two sources, blended:

- its progress rate: a job that did a fraction p of its work in t seconds needs t(1 - p)/p more.
  The times at which the page saw the progress change (`Seen`) date each step, and once three
  steps are dated, the totals they imply give a range;
- its past runs: the latest succeeded jobs of its kind whose size (`job_size`) is within ×2 of
  its own, their durations scaled linearly by size, and only those longer than the time it has
  already run. Their median is the estimate, and their 10–90 % spread a range once there are
  `MIN_RUNS_FOR_SPREAD`.

The progress rate weighs as much as the progress itself (0 to 1), so it takes over as the job
advances. A job whose progress has not moved for `STALL_FACTOR` times the wait its own pace
predicts (at least `STALL_FLOOR_SECONDS`) gets no time at all: a wrong time is worse than none.
The store dates each change of a job's progress (`progress_at`), so a page that opens on a
stalled job says so at once.

A queued job's start comes from a simulation of the queue: the job slots of the alive runners
free up as the running jobs end, and the jobs ahead of it, in claim order, take the earliest
free slot for their kind's typical duration.

Past runs are read as the latest `SCAN` jobs of a kind through the (kind, id) index, then
filtered: a bounded read whatever the size of the store.
"""

from __future__ import annotations

import enum
import heapq
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from jobstore import queues
from jobstore.engine import db_now, reading
from jobstore.models import JobStage, StageStatus, Status, table_of
from jobstore.queries import _queue_position, jobs, runners
from jobstore.views import JobDetail, as_utc

SCAN = 500  # latest jobs of a kind read to find its past runs
PAST_RUNS = 50  # of them, the latest of a matching size that count
SIZE_RATIO = 2.0  # a past run counts when its size is within this factor of the job's
MIN_RUNS_FOR_SPREAD = 5
MIN_STEPS_FOR_SPREAD = 3
MIN_PROGRESS = 0.01  # below it, the progress rate says nothing yet
STALL_FLOOR_SECONDS = 120.0
STALL_FACTOR = 3.0
MAX_AHEAD = 200  # jobs ahead read one by one; any beyond count as their average
MAX_RUNNING = 1000
# Parameters that split the work or seed it without changing how much there is.
NOT_SIZE = frozenset({"seed", "chunks"})

stages_t = table_of(JobStage)


def size_parts(params: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The parameters that make a job's size, in their order: its integers but `NOT_SIZE`."""
    return [
        (name, value)
        for name, value in params.items()
        if name not in NOT_SIZE and isinstance(value, int) and not isinstance(value, bool)
    ]


def job_size(params: Mapping[str, Any]) -> float | None:
    """How much work a job has: the product of its `size_parts`.

    Kinds name their main size as an integer (samples, paths, scenarios, resamples, starts),
    and those that have several (optimize's starts × max_iterations × dimension) do work in
    proportion to their product. None when a kind has no such parameter: all its runs match.
    """
    size = None
    for _, value in size_parts(params):
        size = (size or 1.0) * max(1, value)
    return size


@dataclass(frozen=True)
class Seen:
    """When a page first saw a running job's progress at a value, by the store's clock."""

    at: datetime
    progress: float


@dataclass(frozen=True)
class Spread:
    """A duration in seconds, with its 10–90 % range once that is known."""

    mid: float
    low: float | None = None
    high: float | None = None

    @property
    def ranged(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def lo(self) -> float:
        return self.mid if self.low is None else self.low

    @property
    def hi(self) -> float:
        return self.mid if self.high is None else self.high


@dataclass(frozen=True)
class Window:
    """When something is expected to happen, and between which times once the spread is known."""

    at: datetime
    low: datetime | None = None
    high: datetime | None = None


class Unknown(enum.StrEnum):
    """Why the main time is missing. Data, not words: `ui.eta` says each to the viewer."""

    RUNNER_SILENT = "runner_silent"  # its runner stopped heartbeating; the job will be handed on
    STALLED = "stalled"  # no progress for `Estimate.stalled_for` seconds
    OUTRAN_PAST_RUNS = "outran_past_runs"  # it has run longer than all `past_runs` of its size
    NOTHING_TO_GO_BY = "nothing_to_go_by"  # no progress yet, and no past runs of its kind and size
    NO_RUNNER = "no_runner"  # no runner is alive to claim it
    AHEAD_NEVER_RAN = "ahead_never_ran"  # jobs ahead of it are of a kind with no past runs
    WAITS_ON_UNKNOWN = "waits_on_unknown"  # it waits on a job whose end cannot be estimated


@dataclass(frozen=True)
class Estimate:
    """What a page says about a job's timing. `unknown` says why the main time is missing."""

    now: datetime  # the store's clock when it was made
    status: Status
    start: Window | None = None  # queued: when it should be claimed
    finish: Window | None = None  # when it should end
    stage: Window | None = None  # running: when its current stage should end
    stage_name: str | None = None
    unknown: Unknown | None = None
    stalled_for: float | None = None  # with Unknown.STALLED: seconds since its progress moved
    # Of the job's kind and size: those behind `finish`, or with OUTRAN_PAST_RUNS, all of them.
    past_runs: int = 0
    from_progress: bool = False  # whether its progress rate is behind `finish`
    ahead: int = 0
    slots: int = 0


@dataclass(frozen=True)
class _Past:
    id: int
    size: float | None
    seconds: float


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks, as numpy's default."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def from_history(durations: Sequence[float], elapsed: float = 0.0) -> Spread | None:
    """The runs longer than `elapsed` (those it may still be like): median and 10–90 %."""
    longer = sorted(d for d in durations if d > elapsed)
    if not longer:
        return None
    mid = statistics.median(longer)
    if len(longer) < MIN_RUNS_FOR_SPREAD:
        return Spread(mid)
    return Spread(mid, _quantile(longer, 0.1), _quantile(longer, 0.9))


@dataclass(frozen=True)
class _Pace:
    total: Spread | None  # seconds from the start, by the progress rate
    stalled_for: float | None = None  # seconds without progress, when that is too long


def from_progress(
    started: datetime,
    now: datetime,
    progress: float,
    trail: Sequence[Seen] = (),
    progress_at: datetime | None = None,
) -> _Pace:
    """The total duration the progress so far implies, or that the job has stalled.

    Each change of value in `trail`, after the first (which may have happened before the page
    looked), dates a step. A current value the trail has not seen yet was reached at
    `progress_at`, the store's date for it, or else just now.
    """
    seen = sorted((s for s in trail if started <= s.at <= now), key=lambda s: s.at)
    steps: list[Seen] = []
    for s in seen:
        if not steps or s.progress != steps[-1].progress:
            steps.append(s)
    if not steps or steps[-1].progress != progress:
        at = progress_at if progress_at is not None and started <= progress_at <= now else now
        steps.append(Seen(max(at, steps[-1].at) if steps else at, progress))
    last = steps[-1]
    quiet = (now - last.at).total_seconds()
    if last.progress < MIN_PROGRESS:
        return _Pace(None)
    ran = max(1e-3, (last.at - started).total_seconds())
    step = last.progress - steps[-2].progress if len(steps) > 1 else last.progress
    expected_wait = step * ran / last.progress
    if quiet > max(STALL_FLOOR_SECONDS, STALL_FACTOR * expected_wait):
        return _Pace(None, quiet)
    total = max(ran / last.progress, (now - started).total_seconds())
    dated = [
        (s.at - started).total_seconds() / s.progress
        for s in steps[1:]
        if s.progress >= MIN_PROGRESS and s.at > started
    ][-10:]
    if len(dated) < MIN_STEPS_FOR_SPREAD:
        return _Pace(Spread(total))
    return _Pace(Spread(total, min(*dated, total), max(*dated, total)))


def blend(pace: Spread | None, past: Spread | None, progress: float) -> Spread | None:
    """The two sources weighed by progress; a range when either has one."""
    if pace is None or past is None:
        return pace or past
    w = min(1.0, max(0.0, progress))
    mid = w * pace.mid + (1 - w) * past.mid
    if not (pace.ranged or past.ranged):
        return Spread(mid)
    low = w * pace.lo + (1 - w) * past.lo
    high = w * pace.hi + (1 - w) * past.hi
    return Spread(mid, min(low, mid), max(high, mid))


class _History:
    """Past runs per kind, read once per estimate."""

    def __init__(self, conn: Connection, size: Callable[[Mapping[str, Any]], float | None]):
        self.conn = conn
        self.size = size
        self.kinds: dict[str, list[_Past]] = {}

    def runs(self, kind: str) -> list[_Past]:
        if kind not in self.kinds:
            self.kinds[kind] = past_runs(self.conn, kind, self.size)
        return self.kinds[kind]

    def matching(self, kind: str, params: Mapping[str, Any]) -> list[tuple[_Past, float]]:
        """The latest runs of a size within ×2, each with its factor to this job's size."""
        size = self.size(params)
        out: list[tuple[_Past, float]] = []
        for run in self.runs(kind):
            if len(out) == PAST_RUNS:
                break
            if size is None or run.size is None:
                if size is None and run.size is None:
                    out.append((run, 1.0))
                continue
            factor = size / run.size
            if 1 / SIZE_RATIO <= factor <= SIZE_RATIO:
                out.append((run, factor))
        return out

    def duration(self, kind: str, params: Mapping[str, Any], elapsed: float = 0.0) -> Spread | None:
        return from_history([r.seconds * f for r, f in self.matching(kind, params)], elapsed)


def expected_duration(
    engine: Engine,
    kind: str,
    params: Mapping[str, Any],
    *,
    size: Callable[[Mapping[str, Any]], float | None] = job_size,
) -> tuple[Spread | None, int]:
    """How long a job of these parameters should run, before it is submitted, and how many
    past runs of its kind and a size within ×2 that comes from; (None, 0) when there are none.

    The same past runs, scaled by size, as a job that has just started gets: one read of at
    most `SCAN` rows, so the form can ask on every run of its page.
    """
    with reading(engine) as conn:
        matching = _History(conn, size).matching(kind, params)
    return from_history([r.seconds * f for r, f in matching]), len(matching)


def past_runs(
    conn: Connection, kind: str, size: Callable[[Mapping[str, Any]], float | None] = job_size
) -> list[_Past]:
    """The succeeded jobs among the latest `SCAN` of a kind, newest first.

    The LIMIT bounds the rows read, in the order of the (kind, id) index, however many jobs of
    the kind there are, or failed; nothing is sorted but those rows.
    """
    latest = (
        select(jobs.c.id, jobs.c.status, jobs.c.params, jobs.c.started_at, jobs.c.finished_at)
        .where(jobs.c.kind == kind)
        .order_by(jobs.c.id.desc())
        .limit(SCAN)
        .subquery()
    )
    rows = conn.execute(
        select(latest).where(
            latest.c.status == Status.SUCCEEDED,
            latest.c.started_at.is_not(None),
            latest.c.finished_at.is_not(None),
        )
    ).all()
    return [
        _Past(r.id, size(dict(r.params or {})), seconds)
        for r in sorted(rows, key=lambda r: -r.id)  # in Python: a few hundred rows, no plan sort
        if (seconds := _took(r.started_at, r.finished_at)) is not None
    ]


def _took(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from `start` to `end`; None unless both are known and the span is above 0."""
    a, b = as_utc(start), as_utc(end)
    seconds = None if a is None or b is None else (b - a).total_seconds()
    return seconds if seconds is not None and seconds > 0 else None


def _stage_durations(
    conn: Connection, runs: Sequence[tuple[_Past, float]], idx: int
) -> list[float]:
    """How long stage `idx` took in those runs, scaled; through the (job_id, idx) key."""
    if not runs:
        return []
    factor = {r.id: f for r, f in runs}
    rows = conn.execute(
        select(stages_t.c.job_id, stages_t.c.started_at, stages_t.c.finished_at).where(
            stages_t.c.job_id.in_(list(factor)),
            stages_t.c.idx == idx,
            stages_t.c.status == StageStatus.DONE,
        )
    ).all()
    return [
        seconds * factor[r.job_id]
        for r in rows
        if (seconds := _took(r.started_at, r.finished_at)) is not None
    ]


def _window(base: datetime, now: datetime, s: Spread) -> Window:
    """Seconds from `base` as times, never before now."""

    def at(seconds: float) -> datetime:
        return max(now, base + timedelta(seconds=seconds))

    if not s.ranged:
        return Window(at(s.mid))
    return Window(at(s.mid), at(s.lo), at(s.hi))


@dataclass(frozen=True)
class _Total:
    total: Spread | None  # seconds from the start
    pace: _Pace
    matching: int  # past runs of the kind and size
    used: int  # of them, those behind `total`


def _running_total(
    history: _History,
    kind: str,
    params: Mapping[str, Any],
    elapsed: float,
    pace: _Pace,
    progress: float,
) -> _Total:
    """A running job's total duration, its `pace` blended with its past runs longer than the
    `elapsed` seconds it has run; none once it has stalled."""
    matching = len(history.matching(kind, params))
    past = history.duration(kind, params, elapsed)
    if pace.stalled_for is not None:
        return _Total(None, pace, matching, 0)
    return _Total(blend(pace.total, past, progress), pace, matching, matching if past else 0)


def estimate(
    engine: Engine,
    job: JobDetail,
    *,
    alive_within: float,
    trail: Sequence[Seen] = (),
    size: Callable[[Mapping[str, Any]], float | None] = job_size,
    limits: Mapping[str, int] | None = None,
) -> Estimate:
    """The job's expected start (queued) or end (running); nothing to say once it ended.

    A queued job waits for the runners that serve its queue, and for no more job slots than
    its queue's limit (`limits`, the settings' `queue_limits`).

    `trail` holds the page's earlier sightings of this attempt's progress: with them a stall
    is noticed, and the pace gets a range.
    """
    alive = [r for r in runners(engine, alive_within=alive_within) if r.alive]
    with reading(engine) as conn:
        now = as_utc(conn.execute(select(db_now())).scalar_one())
        assert now is not None
        row = conn.execute(
            select(
                jobs.c.id,
                jobs.c.queue,
                jobs.c.effective_priority,
                jobs.c.turn,
                jobs.c.run_after,
                jobs.c.runner_id,
            ).where(jobs.c.public_id == job.id)
        ).first()
        if row is None or job.status.terminal:
            return Estimate(now, job.status)
        limit = (limits or {}).get(row.queue)
        if job.status is Status.QUEUED:  # only the runners that serve its queue will take it
            alive = [r for r in alive if r.serves(row.queue)]
        facts = _Facts(conn, _History(conn, size), job, row, now, alive, limit)
        return _queued(facts) if job.status is Status.QUEUED else _running(facts, trail)


@dataclass(frozen=True)
class _Facts:
    """What every part of an estimate reads: the job and its row, the store's clock, the alive
    runners, and the past runs."""

    conn: Connection
    history: _History
    job: JobDetail
    row: Any
    now: datetime
    alive: Sequence[Any]
    limit: int | None = None  # of its queue's running jobs, across every runner

    def base(self, **values: Any) -> Estimate:
        """The estimate before any time is known, with the alive runners' job slots, no more
        than its queue's limit."""
        slots = sum(r.concurrency for r in self.alive)
        if self.limit is not None:
            slots = min(slots, self.limit)
        return Estimate(self.now, self.job.status, slots=slots, **values)


def _running(facts: _Facts, trail: Sequence[Seen]) -> Estimate:
    job, now = facts.job, facts.now
    base = facts.base()
    if job.started_at is None:
        return base
    if facts.row.runner_id not in {r.id for r in facts.alive}:
        return _with(base, unknown=Unknown.RUNNER_SILENT)
    elapsed = (now - job.started_at).total_seconds()
    pace = from_progress(job.started_at, now, job.progress, trail, job.progress_at)
    t = _running_total(facts.history, job.kind, job.params, elapsed, pace, job.progress)
    if t.pace.stalled_for is not None:
        return _with(base, unknown=Unknown.STALLED, stalled_for=t.pace.stalled_for)
    if t.total is None:
        if t.matching:
            return _with(base, unknown=Unknown.OUTRAN_PAST_RUNS, past_runs=t.matching)
        return _with(base, unknown=Unknown.NOTHING_TO_GO_BY)
    finish = _window(job.started_at, now, t.total)
    stage = _stage_window(facts, finish)
    return _with(
        base,
        finish=finish,
        past_runs=t.used,
        from_progress=t.pace.total is not None,
        stage=stage[0] if stage else None,
        stage_name=stage[1] if stage else None,
    )


def _stage_window(facts: _Facts, finish: Window) -> tuple[Window, str] | None:
    """The current stage's end, by its own progress and its past durations, before the job's."""
    job, now = facts.job, facts.now
    current = next((g for g in job.stages if g.status == StageStatus.RUNNING), None)
    if current is None or current.started_at is None:
        return None
    elapsed = (now - current.started_at).total_seconds()
    past = from_history(
        _stage_durations(facts.conn, facts.history.matching(job.kind, job.params), current.idx),
        elapsed,
    )
    pace = from_progress(current.started_at, now, current.progress)
    total = blend(pace.total, past, current.progress)
    if total is None:
        return None
    w = _window(current.started_at, now, total)

    def cap(t: datetime | None) -> datetime | None:
        return None if t is None else min(t, finish.high or finish.at)

    return Window(min(w.at, finish.at), cap(w.low), cap(w.high)), current.name


def _queued(facts: _Facts) -> Estimate:
    job, row, now = facts.job, facts.row, facts.now
    position = job.queue_position or _queue_position(facts.conn, row.id)
    base = facts.base(ahead=position - 1)
    if base.slots <= 0:
        return _with(base, unknown=Unknown.NO_RUNNER)
    free = _slots_free(facts, base.slots)
    ahead = _ahead(facts, position - 1)
    if ahead is None:
        return _with(base, unknown=Unknown.AHEAD_NEVER_RAN)
    waits = [_simulate(free, ahead, i) for i in range(3)]
    if math.isinf(waits[0]):
        return _with(base, unknown=Unknown.WAITS_ON_UNKNOWN)
    ranged = not any(map(math.isinf, waits)) and all(
        len(x) == 3 for x in [*free, *ahead] if not math.isinf(x[0])
    )
    earliest = max(now, as_utc(row.run_after) or now)

    def at(seconds: float) -> datetime:
        return max(earliest, now + timedelta(seconds=seconds))

    start = Window(at(waits[0]), at(waits[1]), at(waits[2])) if ranged else Window(at(waits[0]))
    own = facts.history.duration(job.kind, job.params)
    if own is None:
        return _with(base, start=start)
    # Its own spread on top of the queue's: the ends of both ranges at once, a wide range.
    finish = Window(
        start.at + timedelta(seconds=own.mid),
        start.low + timedelta(seconds=own.lo) if start.low is not None and own.ranged else None,
        start.high + timedelta(seconds=own.hi) if start.high is not None and own.ranged else None,
    )
    used = len(facts.history.matching(job.kind, job.params))
    return _with(base, start=start, finish=finish, past_runs=used)


# A slot's free time or a job's duration, as (mid, low, high) or (mid,) when not ranged.
Triple = tuple[float, ...]
INF: Triple = (math.inf, math.inf, math.inf)


def _triple(s: Spread | None) -> Triple:
    if s is None:
        return INF
    return (s.mid, s.lo, s.hi) if s.ranged else (s.mid,)


def _slots_free(facts: _Facts, slots: int) -> list[Triple]:
    """When each job slot of the alive runners frees up, in seconds from now."""
    now = facts.now
    ids = [r.id for r in facts.alive]
    # A limited queue's slots are held by its own running jobs, on whichever runner.
    holding = (
        jobs.c.queue == facts.row.queue if facts.limit is not None else jobs.c.runner_id.in_(ids)
    )
    rows = facts.conn.execute(
        select(jobs.c.kind, jobs.c.params, jobs.c.progress, jobs.c.started_at, jobs.c.progress_at)
        .where(jobs.c.status == Status.RUNNING, holding)
        .order_by(jobs.c.id)
        .limit(MAX_RUNNING)
    ).all()
    out: list[Triple] = []
    for r in rows:
        started = as_utc(r.started_at) or now
        elapsed = (now - started).total_seconds()
        progress = float(r.progress)
        pace = from_progress(started, now, progress, progress_at=as_utc(r.progress_at))
        t = _running_total(facts.history, r.kind, dict(r.params or {}), elapsed, pace, progress)
        out.append(tuple(max(0.0, x - elapsed) for x in _triple(t.total)))
    out.sort(key=lambda t: t[0])
    return (out + [(0.0, 0.0, 0.0)] * slots)[:slots]


def _ahead(facts: _Facts, count: int) -> list[Triple] | None:
    """The durations of the jobs ahead, in claim order; None if one of their kinds has none."""
    if count <= 0:
        return []
    row = facts.row
    rows = facts.conn.execute(
        select(jobs.c.kind, jobs.c.params)
        .where(queues.before(row.queue, row.effective_priority, row.turn, row.id))
        .order_by(*queues.CLAIM_ORDER)
        .limit(min(count, MAX_AHEAD))
    ).all()
    out = [_triple(facts.history.duration(r.kind, dict(r.params or {}))) for r in rows]
    if any(math.isinf(t[0]) for t in out):
        return None
    if out and count > len(out):
        ranged = all(len(t) == 3 for t in out)
        width = 3 if ranged else 1
        mean = tuple(statistics.fmean(t[i] if ranged else t[0] for t in out) for i in range(width))
        out += [mean] * (count - len(out))
    return out


def _simulate(free: Sequence[Triple], ahead: Sequence[Triple], i: int) -> float:
    """Seconds until a slot is free for the job: each job ahead takes the earliest free slot."""
    heap = [t[i] if len(t) == 3 else t[0] for t in free]
    heapq.heapify(heap)
    for d in ahead:
        heapq.heappush(heap, heapq.heappop(heap) + (d[i] if len(d) == 3 else d[0]))
    return heap[0]


def _with(e: Estimate, **changes: Any) -> Estimate:
    return replace(e, **changes)
