"""Storing new jobs: a checked job, its stages and its `submitted` event, in one transaction.

The store does not know the kinds. `compute.intake.check` validates a submission (the kind's
model, its uploads and columns, and the limits below) and hands over a `NewJob`; `enqueue`
only stores it. A job is born `queued` here; every later change of its status is a move of
`jobstore.states`.
"""

from __future__ import annotations

import functools
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from jobstore import queues
from jobstore.engine import db_now, is_postgres, reading
from jobstore.ledger import NOTIFY_CHANNEL, events_t, notify
from jobstore.models import Job, JobStage, StageStatus, Status, table_of
from runlab.errors import InvalidParams, JobNotFound
from runlab.text import bad_character

jobs = table_of(Job)
stages_t = table_of(JobStage)

MAX_TAGS = 20
MAX_TAG_LENGTH = 50
# The columns' own sizes, checked before SQL so that both backends refuse the same input:
# SQLite would store a longer value where PostgreSQL refuses it.
MAX_NAME_LENGTH = 200
MAX_OWNER_LENGTH = 100
MAX_KEY_LENGTH = 200
MAX_PRIORITY = 1_000_000
MAX_ATTEMPTS = 100
MAX_TIMEOUT_SECONDS = 30 * 86400
CHUNK = 1000  # jobs per executemany of a bulk insert


@dataclass(frozen=True)
class NewJob:
    """A job that passed every check, ready to store; made by `compute.intake.check`."""

    kind: str
    params: dict[str, Any]
    stage_names: list[str]
    name: str
    owner: str
    tags: list[str]
    priority: int
    max_attempts: int
    timeout_seconds: float | None
    idempotency_key: str | None
    queue: str = "default"
    # What its `submitted` event adds, such as the job it re-runs.
    note: str | None = None
    # The seed was drawn for this submission, not given: a resubmission under the same
    # idempotency key draws another, which is not a different request.
    seed_drawn: bool = False


def envelope_errors(
    *,
    name: str,
    tags: Sequence[str],
    owner: str,
    priority: int,
    max_attempts: int,
    timeout_seconds: float | None,
    idempotency_key: str | None,
) -> dict[str, str]:
    """What is wrong with a job's name, tags, owner, limits and key, by field; the store's
    columns set these bounds, whatever the kind."""
    errors: dict[str, str] = {}
    if len(name) > MAX_NAME_LENGTH:
        errors["name"] = f"must be at most {MAX_NAME_LENGTH} characters"
    elif why := bad_character(name):
        errors["name"] = why
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH for t in tags):
        errors["tags"] = f"at most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} characters each"
    elif why := next(filter(None, map(bad_character, tags)), None):
        errors["tags"] = why
    if len(owner) > MAX_OWNER_LENGTH:
        errors["owner"] = f"must be at most {MAX_OWNER_LENGTH} characters"
    elif why := bad_character(owner):
        errors["owner"] = why
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        errors["priority"] = f"must be an integer between {-MAX_PRIORITY} and {MAX_PRIORITY}"
    if not 1 <= max_attempts <= MAX_ATTEMPTS:
        errors["max_attempts"] = f"must be an integer between 1 and {MAX_ATTEMPTS}"
    if timeout_seconds is not None and not 1 <= timeout_seconds <= MAX_TIMEOUT_SECONDS:
        errors["timeout_seconds"] = f"must be a number between 1 and {MAX_TIMEOUT_SECONDS}"
    if idempotency_key is not None:
        if not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
            errors["idempotency_key"] = f"must be 1 to {MAX_KEY_LENGTH} characters"
        elif why := bad_character(idempotency_key):
            errors["idempotency_key"] = why
    return errors


def new_public_id() -> str:
    """96 random bits, URL-safe: the only id shown or shared.

    Never with a leading "-", which a command line would read as an option (`runlab show -x…`).
    """
    while True:
        public_id = secrets.token_urlsafe(12)
        if not public_id.startswith("-"):
            return public_id


_INSERT_JOB = (
    insert(jobs)
    .values(run_after=db_now(), created_at=db_now())
    .returning(jobs.c.id, sort_by_parameter_order=True)
)
# Past this many jobs at once, PostgreSQL gets their ids from the sequence first and the rows
# in one pipelined executemany: psycopg parses an INSERT … RETURNING of a thousand rows' values
# in Python, anew for each, which cost 3 s of the 4 that 10,000 jobs took.
RESERVE_FROM = 100
_RESERVE_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('jobs', 'id')) FROM generate_series(1, :n)"
)
_INSERT_JOB_WITH_ID = insert(jobs).values(run_after=db_now(), created_at=db_now())
_INSERT_SUBMITTED = insert(events_t).values(
    at=db_now(), attempt=0, kind="transition", to_status=Status.QUEUED
)


def _row(
    public_id: str, j: NewJob, turn: Any, sweep_id: int | None, point: int | None
) -> dict[str, Any]:
    """A new job's row; `turn` is a value or, on PostgreSQL's one-statement path, an expression."""
    return {
        "public_id": public_id,
        "kind": j.kind,
        "name": j.name or f"{j.kind} {public_id[:6]}",
        "owner": j.owner,
        "tags": j.tags,
        "params": j.params,
        "idempotency_key": j.idempotency_key,
        "priority": j.priority,
        "effective_priority": j.priority,
        "queue": j.queue,
        "turn": turn,
        "status": Status.QUEUED,
        "attempt": 0,
        "max_attempts": j.max_attempts,
        "timeout_seconds": j.timeout_seconds,
        "progress": 0.0,
        "cancel_requested": False,
        "stop_requested": False,
        "partial": False,
        "sweep_id": sweep_id,
        "sweep_point": point,
    }


def _submitted(j: NewJob) -> dict[str, Any]:
    """What a new job's `submitted` event says, besides its job and the clock."""
    return {"actor": j.owner or None, "message": f"submitted {j.note}" if j.note else "submitted"}


def insert_jobs(
    conn: Connection,
    new: Sequence[NewJob],
    sweep_id: int | None = None,
    points: Sequence[int] | None = None,
) -> list[str]:
    """Rows, stages and `submitted` events of checked jobs, a few executemany statements;
    `sweep_id` makes them the children of a sweep, and `points` numbers each one's point."""
    where = list(points) if points is not None else [None] * len(new)
    public_ids = [new_public_id() for _ in new]
    counts = Counter((j.queue, j.owner) for j in new)
    turns = {key: iter(queues.next_turns(conn, *key, n)) for key, n in counts.items()}
    rows = [
        _row(public_id, j, next(turns[(j.queue, j.owner)]), sweep_id, point)
        for public_id, j, point in zip(public_ids, new, where, strict=True)
    ]
    if conn.dialect.name == "postgresql" and len(rows) >= RESERVE_FROM:
        ids = list(conn.execute(_RESERVE_IDS, {"n": len(rows)}).scalars())
        conn.execute(_INSERT_JOB_WITH_ID, [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
    else:
        ids = list(conn.execute(_INSERT_JOB, rows).scalars())
    stages = [
        {"job_id": job_id, "idx": i, "name": s, "status": StageStatus.PENDING}
        for job_id, j in zip(ids, new, strict=True)
        for i, s in enumerate(j.stage_names)
    ]
    if stages:
        conn.execute(insert(stages_t), stages)
    conn.execute(
        _INSERT_SUBMITTED,
        [{"job_id": job_id, **_submitted(j)} for job_id, j in zip(ids, new, strict=True)],
    )
    return public_ids


def enqueue(engine: Engine, job: NewJob) -> str:
    """Store and queue a checked job; return its public id once it is committed.

    Under an idempotency key already used for the same request, the job stored then.
    """
    if job.idempotency_key is not None:
        existing = _by_idempotency_key(engine, job)
        if existing is not None:
            return existing
    try:
        if is_postgres(engine):
            public_id = _enqueue_in_one_statement(engine, job)
        else:
            with engine.begin() as conn:
                (public_id,) = insert_jobs(conn, [job])
                notify(conn)
    except IntegrityError:
        if job.idempotency_key is None:
            raise
        existing = _by_idempotency_key(engine, job)
        if existing is None:
            raise
        return existing
    return public_id


def _enqueue_in_one_statement(engine: Engine, job: NewJob) -> str:
    """PostgreSQL: the job's row, stages, `submitted` event and NOTIFY in one statement, which
    commits on its own: one round trip in place of eight (BEGIN, the owner's turn and the
    queue's head, the row, the stages, the event, the NOTIFY, COMMIT).

    The job's clock starts at its row, and a runner hears of it only at the commit: each round
    trip between the two added to a job's submit-to-running time. A single statement is
    atomic, so the job is stored whole or not at all, as in `insert_jobs`.
    """
    public_id = new_public_id()
    row = _row(public_id, job, None, None, None)
    del row["turn"]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            _one_statement(),
            {**row, **_submitted(job), "stage_names": list(job.stage_names)},
        ).one()
    return public_id


@functools.cache
def _one_statement() -> Select[Any]:
    """`_enqueue_in_one_statement`'s statement, built once so that SQLAlchemy compiles it
    once: its values are all bound parameters."""
    queue, owner = bindparam("queue", type_=String), bindparam("owner", type_=String)
    head, last = queues.turn_bounds(queue, owner)
    # As in `queues.next_turns`: after the owner's last waiting job, never before the head.
    turn = func.greatest(
        func.coalesce(head.scalar_subquery(), 0),
        func.coalesce(last.scalar_subquery() + 1, -1),
    )
    blank = NewJob("", {}, [], "", "", [], 0, 1, None, None)
    names = [k for k in _row("", blank, 0, None, None) if k not in ("turn", "queue", "owner")]
    new = (
        insert(jobs)
        .values(
            **{k: bindparam(k, type_=jobs.c[k].type) for k in names},
            queue=queue,
            owner=owner,
            turn=turn,
            run_after=db_now(),
            created_at=db_now(),
        )
        .returning(jobs.c.id)
        .cte("new_job")
    )
    submitted = insert(events_t).from_select(
        ["job_id", "at", "attempt", "kind", "to_status", "actor", "message"],
        select(
            new.c.id,
            db_now(),
            literal(0),
            literal("transition"),
            literal(Status.QUEUED, String),
            bindparam("actor", type_=String),
            bindparam("message", type_=String),
        ),
    )
    stage = (
        func.unnest(bindparam("stage_names", type_=ARRAY(String)))
        .table_valued("name", with_ordinality="position")
        .render_derived("stage")
    )
    stages = insert(stages_t).from_select(
        ["job_id", "idx", "name", "status", "progress"],
        select(
            new.c.id,
            stage.c.position - 1,
            stage.c.name,
            literal(StageStatus.PENDING, String),
            literal(0.0),
        ).select_from(new.join(stage, true())),
    )
    woken = select(func.pg_notify(NOTIFY_CHANNEL, "").label("sent")).cte("woken")
    return (
        select(new.c.id)
        .select_from(new.join(woken, true()))
        .add_cte(submitted.cte("submitted"), stages.cte("stages"))
    )


def enqueue_many(engine: Engine, new: Sequence[NewJob], *, chunk: int = CHUNK) -> list[str]:
    """Store many checked jobs in one transaction: all of them, or none."""
    out: list[str] = []
    with engine.begin() as conn:
        for start in range(0, len(new), chunk):
            out.extend(insert_jobs(conn, new[start : start + chunk]))
        if out:
            notify(conn)
    return out


@dataclass(frozen=True)
class Request:
    """What a stored job was submitted with, for a re-run."""

    kind: str
    name: str
    params: dict[str, Any]
    tags: list[str]
    max_attempts: int
    queue: str = "default"
    priority: int = 0


def request_of(engine: Engine, public_id: str) -> Request:
    """The stored request of a job; its parameters are the validated ones, seed included."""
    with reading(engine) as conn:
        row = conn.execute(
            select(
                jobs.c.kind,
                jobs.c.name,
                jobs.c.params,
                jobs.c.tags,
                jobs.c.max_attempts,
                jobs.c.queue,
                jobs.c.priority,
            ).where(jobs.c.public_id == public_id)
        ).first()
    if row is None:
        raise JobNotFound(public_id)
    return Request(
        row.kind,
        row.name,
        dict(row.params),
        list(row.tags or []),
        row.max_attempts,
        row.queue,
        row.priority,
    )


def _by_idempotency_key(engine: Engine, job: NewJob) -> str | None:
    """The job already stored under `job`'s key, if any; InvalidParams if it is another job.

    The same key must mean the same request: another kind or other parameters under it is a
    mistake worth saying, not a reason to hand back a job the caller did not ask for. A seed
    the caller left out is drawn afresh each time, so it is not compared.
    """
    with reading(engine) as conn:
        row = conn.execute(
            select(jobs.c.public_id, jobs.c.kind, jobs.c.params).where(
                jobs.c.idempotency_key == job.idempotency_key
            )
        ).first()
    if row is None:
        return None
    drawn = {"seed"} if job.seed_drawn else set()
    mine = _without(job.params, drawn)
    theirs = _without(dict(row.params), drawn)
    if row.kind != job.kind or mine != theirs:
        what = "a job of another kind" if row.kind != job.kind else "other parameters"
        raise InvalidParams(
            {
                "idempotency_key": f"already used by job {row.public_id}, with {what}; "
                "use a new key for a different job"
            }
        )
    return str(row.public_id)


def _without(params: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in keys}
