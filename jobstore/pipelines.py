"""Storing a pipeline: its row and a row per step, in one transaction, and reading it back.

`compute.intake.submit_pipeline` checks the spec (compute/pipelines.py); this only stores it.
Every step starts `waiting`: none has a job yet, since a step's parameters may be read from the
results of the steps it needs. A crash leaves the whole pipeline or nothing. Under an idempotency
key already used for the same spec, the pipeline stored then is the answer.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from jobstore.engine import db_now, reading
from jobstore.models import Job, Pipeline, PipelineStep, Sweep, table_of
from jobstore.views import as_utc
from runlab.errors import InvalidParams, PipelineNotFound

pipelines_t = table_of(Pipeline)
steps_t = table_of(PipelineStep)
jobs = table_of(Job)
sweeps_t = table_of(Sweep)


class StepStatus(enum.StrEnum):
    WAITING = "waiting"  # for the steps it needs to end
    STARTED = "started"  # its job or sweep is in the store
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # itself, or a step it needs with the policy `fail`
    CANCELLED = "cancelled"


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
        steps = conn.execute(
            select(
                steps_t,
                jobs.c.public_id.label("job_public_id"),
                sweeps_t.c.public_id.label("sweep_public_id"),
            )
            .select_from(
                steps_t.outerjoin(jobs, jobs.c.id == steps_t.c.job_id).outerjoin(
                    sweeps_t, sweeps_t.c.id == steps_t.c.sweep_id
                )
            )
            .where(steps_t.c.pipeline_id == row.id)
            .order_by(steps_t.c.id)
        ).all()
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
            )
            for s in steps
        ],
    )


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
