"""Storing a pipeline, its steps' moves, and reading it back.

`compute.intake.submit_pipeline` checks the spec (compute/pipelines.py); `create` only stores it.
Every step starts `waiting`: none has a job yet, since a step's parameters may be read from the
results of the steps it needs. A crash leaves the whole pipeline or nothing. Under an idempotency
key already used for the same spec, the pipeline stored then is the answer.

`compute.advance` moves the steps on, through the verbs here: `start` stores a step's job or
sweep in the same transaction that moves it from `waiting`, so that two runners advancing the
same pipeline start it once; `end` follows its job or sweep to its end. Every status write is
`jobstore.states.move_step`, fenced by the status it expects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from jobstore import sweeps as sweep_store
from jobstore import transitions
from jobstore.engine import db_now, reading
from jobstore.enqueue import NewJob, insert_jobs
from jobstore.ledger import notify
from jobstore.models import Job, JobResult, Pipeline, PipelineStep, Status, Sweep, table_of
from jobstore.states import StepStatus as StepStatus  # where pages and the CLI find it
from jobstore.states import move_step
from jobstore.sweeps import NewSweep
from jobstore.views import as_utc
from runlab.errors import Forbidden, InvalidParams, PipelineNotFound, PipelineUnreadable
from runlab.identity import SYSTEM, Actor

pipelines_t = table_of(Pipeline)
steps_t = table_of(PipelineStep)
jobs = table_of(Job)
sweeps_t = table_of(Sweep)
results_t = table_of(JobResult)


@dataclass(frozen=True)
class NewStep:
    name: str
    kind: str
    needs: dict[str, str]  # each step it waits for, with that step's failure policy
    spec: dict[str, Any]  # its parameters, sweep, sampling and inputs, references unresolved


@dataclass(frozen=True)
class NewPipeline:
    public_id: str
    name: str
    owner: str
    spec: dict[str, Any]  # as submitted
    steps: Sequence[NewStep]  # every step after those it needs
    idempotency_key: str | None = None


@dataclass(frozen=True)
class StepView:
    name: str
    kind: str
    status: StepStatus
    needs: dict[str, str]
    spec: dict[str, Any]
    job: str | None  # the public id of the job it became, if it did
    sweep: str | None  # or of the sweep
    reason: str | None
    started_at: datetime | None
    ended_at: datetime | None
    job_status: Status | None = None  # its job's, while it has one
    progress: float = 0.0  # its job's progress, or the share of its sweep's points ended
    points: dict[str, int] = field(default_factory=dict)  # a sweep's points by status

    @property
    def waits_for(self) -> list[str]:
        """The steps it needs, for a page to name while it waits."""
        return list(self.needs)


@dataclass(frozen=True)
class PipelineView:
    public_id: str
    name: str
    owner: str
    spec: dict[str, Any]
    created_at: datetime
    steps: list[StepView]  # in the order they were stored: each after those it needs

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.public_id,
            "type": "pipeline",
            "name": self.name,
            "owner": self.owner,
            "created_at": self.created_at.isoformat(),
            "steps": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "status": s.status.value,
                    "needs": s.needs,
                    "job": s.job,
                    "sweep": s.sweep,
                    "reason": s.reason,
                    "progress": round(s.progress, 4),
                    "points": s.points,
                }
                for s in self.steps
            ],
        }


def create(engine: Engine, new: NewPipeline) -> str:
    """Store the pipeline and its steps, all waiting; return its public id once committed."""
    if new.idempotency_key is not None:
        existing = _by_idempotency_key(engine, new)
        if existing is not None:
            return existing
    try:
        with engine.begin() as conn:
            pipeline_id = conn.execute(
                insert(pipelines_t).values(created_at=db_now()).returning(pipelines_t.c.id),
                {
                    "public_id": new.public_id,
                    "name": new.name,
                    "owner": new.owner,
                    "spec": new.spec,
                    "idempotency_key": new.idempotency_key,
                },
            ).scalar_one()
            conn.execute(
                insert(steps_t),
                [
                    {
                        "pipeline_id": pipeline_id,
                        "name": s.name,
                        "kind": s.kind,
                        "status": StepStatus.WAITING,
                        "needs": s.needs,
                        "spec": s.spec,
                    }
                    for s in new.steps
                ],
            )
            notify(conn)  # the runners' pipelines threads start its first steps at once
    except IntegrityError:
        if new.idempotency_key is None:
            raise
        existing = _by_idempotency_key(engine, new)
        if existing is None:
            raise
        return existing
    return new.public_id


def get(engine: Engine, public_id: str) -> PipelineView:
    with reading(engine) as conn:
        row = conn.execute(select(pipelines_t).where(pipelines_t.c.public_id == public_id)).first()
        if row is None:
            raise PipelineNotFound(public_id)
        steps = conn.execute(_steps_of().where(steps_t.c.pipeline_id == row.id)).all()
        known = {s.value for s in StepStatus}
        if bad := next((s for s in steps if s.status not in known), None):
            raise PipelineUnreadable(
                public_id, f"step {bad.name} has the status {bad.status!r}, which it does not know"
            )
        points = {
            s.sweep_id: sweep_store.point_counts(conn, s.sweep_id)
            for s in steps
            if s.sweep_id is not None
        }
    return PipelineView(
        row.public_id,
        row.name,
        row.owner,
        dict(row.spec),
        as_utc(row.created_at),
        [
            StepView(
                s.name,
                s.kind,
                StepStatus(s.status),
                dict(s.needs),
                dict(s.spec),
                s.job_public_id,
                s.sweep_public_id,
                s.reason,
                as_utc(s.started_at),
                as_utc(s.ended_at),
                None if s.job_status is None else Status(s.job_status),
                _progress(s.job_progress, points.get(s.sweep_id)),
                points.get(s.sweep_id, {}),
            )
            for s in steps
        ],
    )


def _steps_of() -> Any:
    """Steps with their job's public id, status and progress and their sweep's public id, in
    the order they were stored; the caller says whose."""
    return (
        select(
            steps_t,
            jobs.c.public_id.label("job_public_id"),
            jobs.c.status.label("job_status"),
            jobs.c.progress.label("job_progress"),
            sweeps_t.c.public_id.label("sweep_public_id"),
        )
        .select_from(
            steps_t.outerjoin(jobs, jobs.c.id == steps_t.c.job_id).outerjoin(
                sweeps_t, sweeps_t.c.id == steps_t.c.sweep_id
            )
        )
        .order_by(steps_t.c.id)
    )


def _progress(job_progress: float | None, points: Mapping[str, int] | None) -> float:
    if points:
        ended = sum(n for s, n in points.items() if Status(s).terminal)
        return ended / sum(points.values())
    return float(job_progress or 0.0)


def _by_idempotency_key(engine: Engine, new: NewPipeline) -> str | None:
    """The pipeline already stored under `new`'s key; InvalidParams if it is another request."""
    with reading(engine) as conn:
        row = conn.execute(
            select(pipelines_t.c.public_id, pipelines_t.c.spec).where(
                pipelines_t.c.idempotency_key == new.idempotency_key
            )
        ).first()
    if row is None:
        return None
    if _canonical(row.spec) != _canonical(new.spec):
        raise InvalidParams(
            {
                "idempotency_key": f"already used by pipeline {row.public_id}, with another "
                "spec; use a new key for a different pipeline"
            }
        )
    return str(row.public_id)


def _canonical(doc: Mapping[str, Any]) -> Any:
    """A spec as JSON gives it back: PostgreSQL's JSONB orders keys its own way."""
    return json.loads(json.dumps(doc, sort_keys=True))


# --- the runtime: what `compute.advance` reads and the moves it makes -------------------------


@dataclass(frozen=True)
class StepState:
    """A step as the advancer sees it, with the state of its job or sweep once it started."""

    id: int
    name: str
    kind: str
    status: StepStatus
    needs: dict[str, str]
    spec: dict[str, Any]
    reason: str | None
    job: str | None  # public ids, once started
    sweep: str | None
    # The job's status, or the sweep's points counted by their latest job's status.
    job_status: Status | None
    points: dict[str, int]


@dataclass(frozen=True)
class OpenPipeline:
    id: int
    public_id: str
    name: str
    owner: str
    steps: dict[str, StepState]  # every step, ended ones too: a waiting step reads them


def open_pipelines(engine: Engine, *, limit: int = 100) -> list[OpenPipeline]:
    """The pipelines that have a step still waiting or started, oldest first, each with all
    its steps. One indexed probe when there are none, which is what an idle runner pays."""
    with reading(engine) as conn:
        ids = list(
            conn.execute(
                select(steps_t.c.pipeline_id)
                .where(steps_t.c.status.in_((StepStatus.WAITING, StepStatus.STARTED)))
                .group_by(steps_t.c.pipeline_id)
                .order_by(steps_t.c.pipeline_id)
                .limit(limit)
            ).scalars()
        )
        if not ids:
            return []
        heads = {
            r.id: r
            for r in conn.execute(
                select(
                    pipelines_t.c.id,
                    pipelines_t.c.public_id,
                    pipelines_t.c.name,
                    pipelines_t.c.owner,
                ).where(pipelines_t.c.id.in_(ids))
            )
        }
        rows = conn.execute(_steps_of().where(steps_t.c.pipeline_id.in_(ids))).all()
        started_sweeps = [
            r.sweep_id for r in rows if r.status == StepStatus.STARTED and r.sweep_id is not None
        ]
        counts = {sweep_id: sweep_store.point_counts(conn, sweep_id) for sweep_id in started_sweeps}
    out: dict[int, OpenPipeline] = {
        i: OpenPipeline(i, heads[i].public_id, heads[i].name, heads[i].owner, {}) for i in ids
    }
    unreadable: set[int] = set()
    for r in rows:
        try:
            out[r.pipeline_id].steps[r.name] = StepState(
                r.id,
                r.name,
                r.kind,
                StepStatus(r.status),
                dict(r.needs),
                dict(r.spec),
                r.reason,
                r.job_public_id,
                r.sweep_public_id,
                None if r.job_status is None else Status(r.job_status),
                counts.get(r.sweep_id, {}) if r.sweep_id is not None else {},
            )
        except (ValueError, TypeError):
            # A status or JSON this code does not know: that pipeline is left as it is, for
            # `runlab doctor` to name, and the others move on.
            unreadable.add(r.pipeline_id)
    return [p for i, p in out.items() if i not in unreadable]


def results_of(engine: Engine, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored result of each succeeded job among `job_ids`, by public id: only the final
    attempt's, since only the attempt that succeeded writes one."""
    if not job_ids:
        return {}
    with reading(engine) as conn:
        rows = conn.execute(
            select(jobs.c.public_id, results_t.c.summary)
            .select_from(jobs.join(results_t, results_t.c.job_id == jobs.c.id))
            .where(
                jobs.c.public_id.in_(list(job_ids)),
                jobs.c.status == Status.SUCCEEDED,
                results_t.c.attempt == jobs.c.attempt,
            )
        ).all()
    return {r.public_id: dict(r.summary) for r in rows}


def start(
    engine: Engine,
    step_id: int,
    *,
    job: NewJob | None = None,
    sweep: tuple[NewSweep, Sequence[NewJob]] | None = None,
) -> bool:
    """Move a waiting step to `started` and store its job or sweep, in one transaction; False
    when the step was no longer waiting (another runner started or ended it first), and then
    nothing is stored."""
    with engine.begin() as conn:
        moved = conn.execute(
            move_step(
                StepStatus.WAITING, StepStatus.STARTED, steps_t.c.id == step_id, started_at=db_now()
            ).returning(steps_t.c.id)
        ).first()
        if moved is None:
            return False
        if job is not None:
            (public_id,) = insert_jobs(conn, [job])
            job_id = conn.execute(select(jobs.c.id).where(jobs.c.public_id == public_id)).scalar()
            conn.execute(update(steps_t).where(steps_t.c.id == step_id).values(job_id=job_id))
        elif sweep is not None:
            sweep_id = sweep_store.insert_sweep(conn, *sweep)
            conn.execute(update(steps_t).where(steps_t.c.id == step_id).values(sweep_id=sweep_id))
        else:
            raise ValueError("a step starts as a job or a sweep")
    return True


def end(
    engine: Engine, step_id: int, src: StepStatus, dst: StepStatus, reason: str | None = None
) -> bool:
    """Move a step from `src` to an end; False when it was no longer at `src`."""
    with engine.begin() as conn:
        moved = conn.execute(
            move_step(src, dst, steps_t.c.id == step_id, ended_at=db_now(), reason=reason)
        ).rowcount
    return bool(moved)


@dataclass(frozen=True)
class PipelineCancel:
    """What a pipeline's cancel did: waiting steps cancelled, started ones asked to stop."""

    cancelled: int
    asked: int


def cancel(engine: Engine, public_id: str, *, actor: Actor = SYSTEM) -> PipelineCancel:
    """Cancel every waiting step at once, and cancel the job or sweep of every started one,
    whose step ends `cancelled` as its job or sweep does. Only the owner or an admin may."""
    with engine.begin() as conn:
        row = conn.execute(
            select(pipelines_t.c.id, pipelines_t.c.owner).where(
                pipelines_t.c.public_id == public_id
            )
        ).first()
        if row is None:
            raise PipelineNotFound(public_id)
        if not actor.may_act_on(row.owner):
            raise Forbidden(public_id, row.owner, "cancel it", of="pipeline")
        cancelled = conn.execute(
            move_step(
                StepStatus.WAITING,
                StepStatus.CANCELLED,
                steps_t.c.pipeline_id == row.id,
                ended_at=db_now(),
                reason=f"the pipeline was cancelled by {actor.name or 'the system'}",
            )
        ).rowcount
        started = conn.execute(
            select(jobs.c.public_id.label("job"), sweeps_t.c.public_id.label("sweep"))
            .select_from(
                steps_t.outerjoin(jobs, jobs.c.id == steps_t.c.job_id).outerjoin(
                    sweeps_t, sweeps_t.c.id == steps_t.c.sweep_id
                )
            )
            .where(steps_t.c.pipeline_id == row.id, steps_t.c.status == StepStatus.STARTED)
        ).all()
    asked = 0
    for s in started:
        if s.job is not None:
            outcome = transitions.request_cancel(engine, s.job, actor=actor)
            asked += outcome is not transitions.CancelOutcome.ALREADY_FINISHED
        elif s.sweep is not None:
            done = transitions.cancel_sweep(engine, s.sweep, actor=actor)
            asked += bool(done.cancelled or done.asked)
    return PipelineCancel(cancelled, asked)


# --- what the pages read: the latest pipelines, and the step a job or sweep is ----------------


@dataclass(frozen=True)
class PipelineRow:
    """A pipeline as a list shows it: its steps counted by status, not read one by one."""

    public_id: str
    name: str
    owner: str
    created_at: datetime
    statuses: dict[str, int]  # its steps, by status

    @property
    def steps(self) -> int:
        return sum(self.statuses.values())

    @property
    def ended(self) -> int:
        return sum(n for s, n in self.statuses.items() if StepStatus(s).ended)


def recent(
    engine: Engine, *, owner: str | Sequence[str] | frozenset[str] | None = None, limit: int = 20
) -> list[PipelineRow]:
    """The latest `limit` pipelines, newest first, of `owner` (one name, or any of several)
    when given: two statements however many there are, the heads and then their steps'
    counts."""
    heads_q = (
        select(
            pipelines_t.c.id,
            pipelines_t.c.public_id,
            pipelines_t.c.name,
            pipelines_t.c.owner,
            pipelines_t.c.created_at,
        )
        .order_by(pipelines_t.c.id.desc())
        .limit(limit)
    )
    if owner is not None:
        owners = [owner] if isinstance(owner, str) else list(owner)
        heads_q = heads_q.where(pipelines_t.c.owner.in_(owners))
    with reading(engine) as conn:
        heads = conn.execute(heads_q).all()
        if not heads:
            return []
        counts: dict[int, dict[str, int]] = {h.id: {} for h in heads}
        for pipeline_id, status, n in conn.execute(
            select(steps_t.c.pipeline_id, steps_t.c.status, func.count())
            .where(steps_t.c.pipeline_id.in_(list(counts)))
            .group_by(steps_t.c.pipeline_id, steps_t.c.status)
        ):
            counts[pipeline_id][str(status)] = int(n)
    return [
        PipelineRow(h.public_id, h.name, h.owner, as_utc(h.created_at), counts[h.id]) for h in heads
    ]


@dataclass(frozen=True)
class StepOf:
    """The pipeline step a job or a sweep is."""

    public_id: str  # the pipeline's
    name: str  # the pipeline's
    step: str


def of_job(engine: Engine, job_public_id: str) -> StepOf | None:
    """The step whose job this is, or None for a job no pipeline started (a sweep's point
    belongs to its sweep's step: `of_sweep`)."""
    return _step_of(jobs.join(steps_t, steps_t.c.job_id == jobs.c.id), jobs, job_public_id, engine)


def of_sweep(engine: Engine, sweep_public_id: str) -> StepOf | None:
    """The step whose sweep this is, or None for a sweep submitted on its own."""
    return _step_of(
        sweeps_t.join(steps_t, steps_t.c.sweep_id == sweeps_t.c.id),
        sweeps_t,
        sweep_public_id,
        engine,
    )


def _step_of(joined: Any, owner_t: Any, public_id: str, engine: Engine) -> StepOf | None:
    with reading(engine) as conn:
        row = conn.execute(
            select(pipelines_t.c.public_id, pipelines_t.c.name, steps_t.c.name.label("step"))
            .select_from(joined.join(pipelines_t, pipelines_t.c.id == steps_t.c.pipeline_id))
            .where(owner_t.c.public_id == public_id)
            .limit(1)
        ).first()
    return None if row is None else StepOf(row.public_id, row.name, row.step)
