"""The state machines: the one place a statement that writes a job's or a pipeline step's
`status` is made.

`move` builds every such statement (the claim, the group succeed and each single fenced
verb alike) and refuses a pair missing from `ALLOWED`, so no caller can write a move the
machine does not have. A job is born `queued` by `jobstore.enqueue`; every change after that
goes through `move`. A pipeline step is born `waiting` by `jobstore.pipelines.create`, and
`move_step` builds every change after that, from `STEP_ALLOWED`.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Connection, Row, Update, update

from jobstore.ledger import event_row, insert_events
from jobstore.models import Job, PipelineStep, Status, table_of
from runlab.errors import LostJob

jobs = table_of(Job)

# The only moves a job can make, each with the message its event carries.
ALLOWED: dict[tuple[Status, Status], str] = {
    (Status.QUEUED, Status.RUNNING): "claimed",
    (Status.QUEUED, Status.CANCELLED): "cancelled while queued",
    (Status.RUNNING, Status.SUCCEEDED): "succeeded",
    (Status.RUNNING, Status.FAILED): "failed",
    (Status.RUNNING, Status.CANCELLED): "cancelled while running",
    (Status.RUNNING, Status.QUEUED): "requeued",
}


class NotAllowed(ValueError):
    """A move the state machine does not have; a programming error, never a user's."""


def move(src: Status, dst: Status, *where: Any, **values: Any) -> Update:
    """`UPDATE jobs SET status = dst … WHERE status = src AND …where`, for an allowed pair only.

    The caller adds its fence (`where`: the id and attempt, a lapsed lease, a set of keys) and
    any `RETURNING`; the `status = src` condition is always part of it.
    """
    if (src, dst) not in ALLOWED:
        raise NotAllowed(f"no transition from {src} to {dst}")
    return update(jobs).where(jobs.c.status == src, *where).values(status=dst, **values)


def transition(
    conn: Connection,
    job_id: int,
    attempt: int,
    src: Status,
    dst: Status,
    *,
    actor: str | None = None,
    detail: str | None = None,
    message: str | None = None,
    also: Any = None,
    by: str | None = None,
    **values: Any,
) -> Row[Any]:
    """One job's fenced move, with its event. Zero rows matched means the caller lost the job.

    `also` adds a condition to the fence, such as "the lease has lapsed" for the reaper; `by`
    names the person who asked for the move, in its event.
    """
    fence = [jobs.c.id == job_id, jobs.c.attempt == attempt]
    if also is not None:
        fence.append(also)
    row = conn.execute(move(src, dst, *fence, **values).returning(jobs.c.id, jobs.c.status)).first()
    if row is None:
        raise LostJob(job_id, attempt)
    insert_events(
        conn,
        [
            event_row(
                job_id,
                attempt,
                message or ALLOWED[(src, dst)],
                runner_id=actor,
                from_status=src,
                to_status=dst,
                detail=detail,
                actor=by,
            )
        ],
    )
    return row


def moved_events(
    src: Status, dst: Status, moved: list[tuple[int, int, str | None]], *, by: str | None = None
) -> list[dict[str, Any]]:
    """The events of a set-based move, one per (job id, attempt, runner) it moved; `by` names
    the person who asked for it."""
    return [
        event_row(
            job_id,
            attempt,
            ALLOWED[(src, dst)],
            runner_id=runner,
            from_status=src,
            to_status=dst,
            actor=by,
        )
        for job_id, attempt, runner in moved
    ]


# --- pipeline steps ------------------------------------------------------------------------------

steps_t = table_of(PipelineStep)


class StepStatus(enum.StrEnum):
    WAITING = "waiting"  # for the steps it needs to end
    STARTED = "started"  # its job or sweep is in the store
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # itself, or a step it needs with the policy `fail`
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED)


# The only moves a pipeline step can make. A step never runs anything itself: it starts when
# its job or sweep is stored, in the same transaction, and ends as that job or sweep ends, or
# without starting when a step it needs fails or the pipeline is cancelled.
STEP_ALLOWED: frozenset[tuple[StepStatus, StepStatus]] = frozenset(
    {
        (StepStatus.WAITING, StepStatus.STARTED),
        (StepStatus.WAITING, StepStatus.FAILED),
        (StepStatus.WAITING, StepStatus.CANCELLED),
        (StepStatus.STARTED, StepStatus.SUCCEEDED),
        (StepStatus.STARTED, StepStatus.FAILED),
        (StepStatus.STARTED, StepStatus.CANCELLED),
    }
)


def move_step(src: StepStatus, dst: StepStatus, *where: Any, **values: Any) -> Update:
    """`UPDATE pipeline_steps SET status = dst … WHERE status = src AND …where`: the one
    statement that writes a step's `status`, for an allowed pair only."""
    if (src, dst) not in STEP_ALLOWED:
        raise NotAllowed(f"no step transition from {src} to {dst}")
    return update(steps_t).where(steps_t.c.status == src, *where).values(status=dst, **values)
