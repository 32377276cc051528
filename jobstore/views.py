"""Plain, detached records that the store hands to pages and the CLI (never ORM objects)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

from jobstore.models import Status
from runlab.status import outcome


@overload
def as_utc(ts: datetime) -> datetime: ...
@overload
def as_utc(ts: None) -> None: ...
def as_utc(ts: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC times, PostgreSQL aware ones: make them all aware."""
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True)
class StageView:
    idx: int
    name: str
    status: str
    progress: float
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Cost:
    """What a set of Dask tasks cost.

    `cpu_seconds`: the CPU time of the worker threads that ran them; `task_seconds`: their
    wall time, waits included; `peak_memory_bytes`: the highest resident memory of a worker
    process while one of them ran, the worker's own footprint included (None: not measured,
    off Linux); `hosts`: how many of them each worker host ran, by its host name.
    """

    cpu_seconds: float = 0.0
    task_seconds: float = 0.0
    tasks: int = 0
    peak_memory_bytes: int | None = None
    hosts: Mapping[str, int] = field(default_factory=dict)

    def plus(self, other: Cost) -> Cost:
        """Times and counts add up; the peak is the higher of the two."""
        peaks = [p for p in (self.peak_memory_bytes, other.peak_memory_bytes) if p is not None]
        hosts = dict(self.hosts)
        for host, n in other.hosts.items():
            hosts[host] = hosts.get(host, 0) + n
        return Cost(
            self.cpu_seconds + other.cpu_seconds,
            self.task_seconds + other.task_seconds,
            self.tasks + other.tasks,
            max(peaks) if peaks else None,
            hosts,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StageCost:
    name: str
    cost: Cost


@dataclass(frozen=True)
class JobCost:
    """The latest attempt's cost, in all and per stage (every stage, in order; one that ran no
    task costs zero). The total also counts tasks submitted outside any stage."""

    total: Cost
    stages: list[StageCost] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.total.to_json(),
            "stages": [{"name": s.name, **s.cost.to_json()} for s in self.stages],
        }


@dataclass(frozen=True)
class ErrorView:
    type: str
    message: str


@dataclass(frozen=True)
class LogLine:
    at: datetime
    attempt: int
    level: str
    message: str


@dataclass(frozen=True)
class AttemptView:
    """One claim of a job and how it ended (None while it runs)."""

    attempt: int
    runner_id: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str  # running, succeeded, failed, cancelled or requeued
    note: str | None
    # The Dask dashboard of the attempt's runner, while that runner has not stopped.
    dashboard_link: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "runner": self.runner_id,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "outcome": self.outcome,
            "note": self.note,
        }


@dataclass(frozen=True)
class ActionView:
    """Something a person asked of a job: submit, cancel, stop, tag, re-run."""

    at: datetime
    actor: str
    what: str


@dataclass(frozen=True)
class JobSummary:
    """One row of a job list."""

    id: str
    kind: str
    name: str
    owner: str
    status: Status
    attempt: int
    progress: float
    stage: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress_at: datetime | None = None  # when the progress last changed value
    # Succeeded with a result over only part of its work (a stop and keep); `progress` is then
    # the share covered.
    partial: bool = False
    error_line: str | None = None  # a failed job's message, its first line
    queue: str = "default"
    priority: int = 0

    @property
    def outcome(self) -> str:
        """The status, or `partial`: how the history shows and filters the job."""
        return outcome(self.status, self.partial)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return max(0.0, (end - self.started_at).total_seconds())


@dataclass(frozen=True)
class JobDetail(JobSummary):
    """One job with everything its page shows."""

    tags: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    max_attempts: int = 1
    timeout_seconds: float | None = None
    cancel_requested: bool = False
    stop_requested: bool = False
    error: ErrorView | None = None
    traceback: str | None = None
    stages: list[StageView] = field(default_factory=list)
    result: dict[str, Any] | None = None
    chart: dict[str, Any] | None = None
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    logs: list[LogLine] = field(default_factory=list)
    queue_position: int | None = None
    attempts: list[AttemptView] = field(default_factory=list)
    lease_until: datetime | None = None
    versions: dict[str, str] = field(default_factory=dict)
    cost: JobCost | None = None  # None until the job's first attempt reports one
    actions: list[ActionView] = field(default_factory=list)  # oldest first

    def to_json(self) -> dict[str, Any]:
        """The public shape of `runlab show --json`: a contract, so change it with care."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "owner": self.owner,
            "queue": self.queue,
            "priority": self.priority,
            "tags": list(self.tags),
            "status": str(self.status),
            "partial": self.partial,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "timeout_seconds": self.timeout_seconds,
            "progress": self.progress,
            "stage": self.stage,
            "stages": [
                {"name": s.name, "status": s.status, "progress": s.progress} for s in self.stages
            ],
            "params": self.params,
            "result": self.result,
            "error": None if self.error is None else asdict(self.error),
            "queue_position": self.queue_position,
            "attempts": [a.to_json() for a in self.attempts],
            "versions": dict(self.versions),
            "cost": None if self.cost is None else self.cost.to_json(),
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


@dataclass(frozen=True)
class JobPage:
    rows: list[JobSummary]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class RunnerView:
    id: str
    host: str
    pid: int
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age: float
    alive: bool
    running_jobs: int
    scheduler_address: str | None
    dashboard_link: str | None
    queues: list[str] | None = None  # those it serves; None: every queue

    def serves(self, queue: str) -> bool:
        return self.queues is None or queue in self.queues


@dataclass(frozen=True)
class Overview:
    """The home page's numbers, read in one snapshot."""

    queued: int
    running: int
    runners_alive: int
    running_jobs: list[JobSummary]
    recent_jobs: list[JobSummary]
