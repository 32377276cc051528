"""The store's tables as typed SQLAlchemy models. Only Alembic migrations create or change them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Defined in runlab/, so that the settings name statuses without importing the store.
from runlab.status import TERMINAL as TERMINAL
from runlab.status import Status as Status

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# JSONB on PostgreSQL, so that later searches on params and results can be indexed.
Json = JSON().with_variant(JSONB(), "postgresql")


# Made by migration 0005 for one backend, or on an expression: not in the models' metadata.
MIGRATION_ONLY_INDEXES = frozenset(
    {
        "ix_jobs_duration_id",
        "ix_jobs_tags_gin",
        "ix_jobs_params_gin",
        "ix_job_results_summary_gin",
        "ix_jobs_name_trgm",
    }
)


class StageStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: Json, list[Any]: Json}


def table_of(model: type[Base]) -> Table:
    """`model.__table__` typed as the Table it is, for Core's insert(), update() and delete().

    SQLAlchemy types `__table__` as a FromClause, since a class may be mapped to any
    selectable; every model here is mapped to a Table.
    """
    table = model.__table__
    assert isinstance(table, Table)
    return table


Stamp = DateTime(timezone=True)


class Sweep(Base):
    """Many jobs of one kind as one piece of work (migration 0012): its children are jobs whose
    `sweep_id` names it. `plan` holds what makes their parameters again (compute/sweeps.py), so
    that an extension knows which were already made."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(100))
    # The swept parameters' texts, and the sampling method, count and seed.
    plan: Mapped[dict[str, Any]] = mapped_column(Json)
    # The parameters every child shares, as the submitter gave them.
    params: Mapped[dict[str, Any]] = mapped_column(Json)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    queue: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Stamp)


class Pipeline(Base):
    """A graph of steps (migration 0013): `spec` is the pipeline as submitted and checked
    (compute/pipelines.py); its steps are rows of `pipeline_steps`."""

    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(Stamp)

    __table_args__ = (Index("ix_pipelines_owner_id", "owner", "id"),)


class PipelineStep(Base):
    """One step of a pipeline: `waiting` until what it `needs` has ended, then the job or sweep
    it became. `needs` maps each step it waits for to that step's failure policy."""

    __tablename__ = "pipeline_steps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    needs: Mapped[dict[str, Any]] = mapped_column(Json)
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)  # why it failed or was cancelled
    started_at: Mapped[datetime | None] = mapped_column(Stamp)
    ended_at: Mapped[datetime | None] = mapped_column(Stamp)

    __table_args__ = (
        UniqueConstraint("pipeline_id", "name", name="uq_pipeline_steps_pipeline_name"),
        Index("ix_pipeline_steps_status", "status", "pipeline_id"),
        Index("ix_pipeline_steps_job_id", "job_id"),
        Index("ix_pipeline_steps_sweep_id", "sweep_id"),
    )


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(100))
    tags: Mapped[list[Any]] = mapped_column(Json)
    params: Mapped[dict[str, Any]] = mapped_column(Json)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[str] = mapped_column(String(64), default="default")
    # A queued job's place (migration 0011, jobstore/queues.py): its priority raised as it waits,
    # then its round between the queue's owners, then its id.
    effective_priority: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    turn: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after: Mapped[datetime] = mapped_column(Stamp)
    lease_until: Mapped[datetime | None] = mapped_column(Stamp)
    runner_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Stamp)
    started_at: Mapped[datetime | None] = mapped_column(Stamp)
    finished_at: Mapped[datetime | None] = mapped_column(Stamp)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    # When `progress` last changed value, in the database's clock (migration 0007): a page that
    # opens on a stalled job sees the stall at once, not only after watching it.
    progress_at: Mapped[datetime | None] = mapped_column(Stamp)
    stage: Mapped[str | None] = mapped_column(String(100))
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # "Stop and keep": end early as succeeded with the partial result. Kept across attempts, so
    # an attempt that resumes after a crash stops at once with what was already done.
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A succeeded job whose result covers only part of its planned work, as a stop and keep
    # leaves it (migration 0009); its `progress` is then the share that the result covers.
    partial: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    # Of the runner that claimed the latest attempt: with the seed in `params`, what an exact
    # re-run needs to match.
    versions: Mapped[dict[str, str] | None] = mapped_column(Json)
    # What the latest attempt's Dask tasks cost (migration 0006; see compute/cost.py). NULL
    # until it reports; a requeue clears them with the rest of the attempt's progress.
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    task_seconds: Mapped[float | None] = mapped_column(Float)
    tasks: Mapped[int | None] = mapped_column(Integer)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Tasks per worker host, by host name (migration 0010).
    task_hosts: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # The sweep this job is a child of (migration 0012), or NULL; and which of its points it
    # computes, numbered from 0: a re-run of a failed child computes the same point again.
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id"))
    sweep_point: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_jobs_owner_turn", "status", "queue", "owner", "turn"),
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_sweep_point", "sweep_id", "sweep_point", "id"),
        Index("ix_jobs_kind_id", "kind", "id"),
        # The history's sorts and filters (migration 0005, which also adds the expression and
        # PostgreSQL-only indexes that a model cannot spell for both backends).
        Index("ix_jobs_owner_id", "owner", "id"),
        Index("ix_jobs_name_id", "name", "id"),
        Index("ix_jobs_created_at_id", "created_at", "id"),
        Index("ix_jobs_started_at_id", "started_at", "id"),
        Index("ix_jobs_finished_at_id", "finished_at", "id"),
    )


# The claim's order (jobstore/queues.py), across queues for a runner that serves them all and
# within one for a queue's head and a job's place; made here, as a model's own table arguments
# cannot name a column's descending order.
Index("ix_jobs_claim", Job.status, Job.effective_priority.desc(), Job.turn, Job.id)
Index("ix_jobs_queue_order", Job.status, Job.queue, Job.effective_priority.desc(), Job.turn, Job.id)


class JobStage(Base):
    __tablename__ = "job_stages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    idx: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime | None] = mapped_column(Stamp)
    finished_at: Mapped[datetime | None] = mapped_column(Stamp)
    message: Mapped[str | None] = mapped_column(Text)
    # The cost of the tasks submitted in this stage, as on `jobs` (migration 0006).
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    task_seconds: Mapped[float | None] = mapped_column(Float)
    tasks: Mapped[int | None] = mapped_column(Integer)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Tasks per worker host, by host name (migration 0010).
    task_hosts: Mapped[dict[str, Any] | None] = mapped_column(Json)

    __table_args__ = (UniqueConstraint("job_id", "idx", name="uq_job_stages_job_idx"),)


class JobEvent(Base):
    """Append-only ledger: transitions (kind 'transition') and log lines (kind 'log')."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(Stamp)
    attempt: Mapped[int] = mapped_column(Integer)
    runner_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    level: Mapped[str | None] = mapped_column(String(16))
    # The person who asked for it (a submit, cancel, stop, tag, delete or re-run), where one did:
    # the signed-in identity, or the CLI's operator (migration 0011).
    actor: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_job_events_job_id", "job_id", "id"),)


class JobMetric(Base):
    __tablename__ = "job_metrics"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    step: Mapped[float] = mapped_column(Float)
    value: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_job_metrics_job_name_step", "job_id", "name", "step"),)


class JobResult(Base):
    __tablename__ = "job_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    attempt: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(Json)
    chart: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(Stamp)


class Runner(Base):
    __tablename__ = "runners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(Stamp)
    heartbeat_at: Mapped[datetime] = mapped_column(Stamp)
    stopped_at: Mapped[datetime | None] = mapped_column(Stamp)
    concurrency: Mapped[int] = mapped_column(Integer)
    scheduler_address: Mapped[str | None] = mapped_column(String(255))
    dashboard_link: Mapped[str | None] = mapped_column(String(255))
    # Since when the runner's Dask cluster has had no worker (its heartbeat says so); NULL
    # while it has one. `runlab doctor` reads it to find jobs stuck on a cluster with none.
    no_workers_since: Mapped[datetime | None] = mapped_column(Stamp)
    # The queues it claims from (migration 0011); NULL: every queue.
    queues: Mapped[list[Any] | None] = mapped_column(Json)


class Preset(Base):
    __tablename__ = "presets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(Stamp)
    # Who saved it (migration 0011): they, or an admin, may replace or remove it. NULL: saved
    # before presets had owners.
    owner: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("kind", "name", name="uq_presets_kind_name"),)
