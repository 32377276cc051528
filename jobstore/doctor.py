"""Checks a store against the invariants of the design, and names every violation.

Fault tests end with it, and `runlab doctor` runs it on a live store. It only reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from jobstore.engine import db_now, reading
from jobstore.models import (
    TERMINAL,
    Job,
    JobEvent,
    JobResult,
    Pipeline,
    PipelineStep,
    Runner,
    Status,
    Sweep,
    table_of,
)
from jobstore.states import StepStatus

jobs = table_of(Job)
events = table_of(JobEvent)
results = table_of(JobResult)
runners = table_of(Runner)
sweeps = table_of(Sweep)
pipelines_t = table_of(Pipeline)
steps_t = table_of(PipelineStep)


@dataclass(frozen=True)
class Violation:
    job: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.job}: {self.rule}: {self.detail}"


def check(
    engine: Engine, *, lease_grace: float = 0.0, stuck_after: float | None = None
) -> list[Violation]:
    """Every violation in the store; an empty list means it is sound.

    `lease_grace` forgives leases that lapsed less than that many seconds ago, for a store whose
    reaper has not passed yet. With `stuck_after`, a running job is stuck when its runner's
    cluster has had no worker, and the job no progress, for that many seconds: its runner
    should have handed it back by then.
    """
    out: list[Violation] = []
    with reading(engine) as conn:
        now = conn.execute(select(db_now())).scalar_one()
        job_rows = conn.execute(
            select(
                jobs.c.id,
                jobs.c.public_id,
                jobs.c.status,
                jobs.c.attempt,
                jobs.c.max_attempts,
                jobs.c.lease_until,
                jobs.c.finished_at,
                jobs.c.progress_at,
                jobs.c.kind,
                jobs.c.sweep_id,
                jobs.c.sweep_point,
                sweeps.c.kind.label("sweep_kind"),
                runners.c.no_workers_since,
            )
            .select_from(
                jobs.outerjoin(runners, runners.c.id == jobs.c.runner_id).outerjoin(
                    sweeps, sweeps.c.id == jobs.c.sweep_id
                )
            )
            .order_by(jobs.c.id)
        ).all()
        moves: dict[int, list[Any]] = defaultdict(list)
        for e in conn.execute(
            select(events.c.job_id, events.c.attempt, events.c.to_status)
            .where(events.c.kind == "transition")
            .order_by(events.c.job_id, events.c.id)
        ):
            moves[e.job_id].append(e)
        result_count: dict[int, int] = dict(
            conn.execute(select(results.c.job_id, func.count()).group_by(results.c.job_id)).all()
        )
        empty_sweeps = conn.execute(
            select(sweeps.c.public_id).where(
                ~select(jobs.c.id).where(jobs.c.sweep_id == sweeps.c.id).exists()
            )
        ).scalars()
        for sweep_id in empty_sweeps:
            out.append(Violation(sweep_id, "a sweep is its jobs", "a sweep without any job"))
        step_rows = conn.execute(
            select(
                steps_t,
                pipelines_t.c.public_id.label("pipeline"),
                jobs.c.kind.label("job_kind"),
                sweeps.c.kind.label("sweep_kind"),
            )
            .select_from(
                steps_t.join(pipelines_t, pipelines_t.c.id == steps_t.c.pipeline_id)
                .outerjoin(jobs, jobs.c.id == steps_t.c.job_id)
                .outerjoin(sweeps, sweeps.c.id == steps_t.c.sweep_id)
            )
            .order_by(steps_t.c.id)
        ).all()
        empty_pipelines = conn.execute(
            select(pipelines_t.c.public_id).where(
                ~select(steps_t.c.id).where(steps_t.c.pipeline_id == pipelines_t.c.id).exists()
            )
        ).scalars()
        for pipeline_id in empty_pipelines:
            out.append(
                Violation(pipeline_id, "a pipeline is its steps", "a pipeline without steps")
            )
    out += _steps(step_rows)
    known = {s.value for s in Status}
    for j in job_rows:

        def bad(rule: str, detail: str, j: Any = j) -> None:
            out.append(Violation(j.public_id, rule, detail))

        if j.status not in known:
            bad("one known state", f"status is {j.status!r}")
            continue
        status = Status(j.status)
        trail = moves.get(j.id, [])
        ends = [m for m in trail if m.to_status in TERMINAL]
        if status in TERMINAL:
            if len(ends) != 1:
                bad("exactly one terminal state", f"{len(ends)} terminal events for a {status} job")
            if j.finished_at is None:
                bad("exactly one terminal state", f"{status} without a finished time")
        else:
            if ends:
                bad("exactly one terminal state", f"{status} after a terminal event")
            if j.finished_at is not None:
                bad("exactly one terminal state", f"{status} with a finished time")
        n_results = result_count.get(j.id, 0)
        if n_results > 1:
            bad("at most one result", f"{n_results} results")
        if n_results and status is not Status.SUCCEEDED:
            bad("a result only beside succeeded", f"a result on a {status} job")
        if status is Status.SUCCEEDED and not n_results:
            bad("a result only beside succeeded", "succeeded without a result")
        if status is Status.RUNNING and j.lease_until is not None:
            overdue = (now - j.lease_until).total_seconds()
            if overdue > lease_grace:
                bad("no running job with a lapsed lease", f"lease lapsed {overdue:.1f} s ago")
        if status is Status.RUNNING and j.lease_until is None:
            bad("no running job with a lapsed lease", "running without a lease")
        if status is Status.RUNNING and stuck_after is not None and j.no_workers_since:
            idle = (now - j.no_workers_since).total_seconds()
            still = (now - j.progress_at).total_seconds() if j.progress_at else idle
            if min(idle, still) > stuck_after:
                bad(
                    "no job stuck on a cluster without workers",
                    f"its runner's cluster has had no worker for {idle:.0f} s, "
                    f"and the job no progress for {still:.0f} s",
                )
        if (j.sweep_id is None) != (j.sweep_point is None):
            bad(
                "a sweep is its jobs", "a sweep's job without its point, or a point without a sweep"
            )
        if j.sweep_id is not None and j.kind != j.sweep_kind:
            bad("a sweep is its jobs", f"a {j.kind} job in a sweep of {j.sweep_kind}")
        claims = [m.attempt for m in trail if m.to_status == Status.RUNNING]
        if claims != list(range(1, len(claims) + 1)):
            bad("attempts strictly increasing", f"claims numbered {claims}")
        if (claims[-1] if claims else 0) != j.attempt:
            bad("attempts strictly increasing", f"attempt {j.attempt}, last claim {claims[-1:]}")
        attempts = [m.attempt for m in trail]
        if attempts != sorted(attempts):
            bad("attempts strictly increasing", f"events go back in attempts: {attempts}")
        if not trail or trail[-1].to_status != status:
            last = trail[-1].to_status if trail else None
            bad("events match the status", f"status {status}, last transition to {last}")
    return out


def _steps(rows: Sequence[Any]) -> list[Violation]:
    """A step's own state, and the order of its start after what it needs."""
    out: list[Violation] = []
    by_pipeline: dict[str, dict[str, Any]] = defaultdict(dict)
    for r in rows:
        by_pipeline[r.pipeline][r.name] = r
    known = {s.value for s in StepStatus}
    for pipeline, steps in by_pipeline.items():
        for r in steps.values():

            def bad(rule: str, detail: str, at: str = f"{pipeline} step {r.name}") -> None:
                out.append(Violation(at, rule, detail))

            if r.status not in known:
                bad("a step is in one known state", f"status is {r.status!r}")
                continue
            status = StepStatus(r.status)
            if status.ended != (r.ended_at is not None):
                bad("a step is in one known state", f"{status} with ended time {r.ended_at}")
            made = (r.job_id is not None) + (r.sweep_id is not None)
            if status is StepStatus.WAITING and (made or r.started_at is not None):
                bad("a step starts once", "waiting, with a start or a job")
            if made > 1:
                bad("a step starts once", "both a job and a sweep")
            if status is StepStatus.STARTED and not made:
                bad("a step starts once", "started, with neither a job nor a sweep")
            if made and r.kind != (r.job_kind or r.sweep_kind):
                bad("a step starts once", f"a {r.kind} step made a {r.job_kind or r.sweep_kind}")
            if r.started_at is None:
                continue
            for dep, policy in dict(r.needs).items():
                d = steps.get(dep)
                if d is None:
                    bad("a step starts after what it needs", f"needs {dep!r}, not in its pipeline")
                elif d.ended_at is None or d.ended_at > r.started_at:
                    bad("a step starts after what it needs", f"started before {dep} ended")
                elif policy == "fail" and d.status != StepStatus.SUCCEEDED:
                    bad("a step starts after what it needs", f"started after {dep} {d.status}")
    return out
