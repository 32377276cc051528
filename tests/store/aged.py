"""Jobs in every state, made through the store's own verbs, then back-dated with a plain UPDATE.

The retention tests (store, CLI and runner) share them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update

from compute import intake
from jobstore import queries, reports
from jobstore import transitions as T
from jobstore.engine import db_later, reading
from jobstore.models import Job, JobEvent, JobMetric, JobResult, JobStage, Status
from runlab.artifacts import ArtifactStore
from runlab.errors import JobNotFound
from tests.pi_report import sampling

RUNNER = "runner-retention"
PI = {"samples": 1000, "chunks": 2, "seed": 7}
CHILD_MODELS = {"stages": JobStage, "events": JobEvent, "metrics": JobMetric, "results": JobResult}


def _busy(progress: float) -> reports.Report:
    """A report that writes a stage, two metrics and a log line: rows for a purge to find."""
    return sampling(
        progress,
        metrics=[("estimate", 500.0, 3.1), ("estimate", 1000.0, 3.14)],
        logs=[("info", "sampling")],
    )


def make_job(
    engine: Engine,
    status: Status,
    *,
    kind: str = "monte_carlo_pi",
    params: dict[str, Any] | None = None,
    while_queued: bool = False,
) -> str:
    """A job that reached `status` the way a runner takes it there, with rows in every table.

    Claims the oldest queued job: make queued and running ones last.
    """
    public_id = intake.submit(engine, kind, dict(PI if params is None else params))
    if status is Status.QUEUED:
        return public_id
    if status is Status.CANCELLED and while_queued:
        T.request_cancel(engine, public_id)
        return public_id
    (lease,) = T.claim(engine, RUNNER, limit=1)
    assert lease.public_id == public_id, "make jobs one at a time, with nothing else queued"
    reports.report(engine, lease, _busy(0.5), lease_seconds=30)
    if status is Status.SUCCEEDED:
        T.succeed(engine, lease, {"estimate": 3.14}, None)
    elif status is Status.FAILED:
        T.fail(engine, lease, "ValueError", "boom", "Traceback: boom")
    elif status is Status.CANCELLED:
        T.cancelled(engine, lease)
    return public_id


def back_date(engine: Engine, public_id: str, age: timedelta, *, finished: bool = True) -> None:
    """Make the job look as if it was made, and ended, `age` ago by the database's clock."""
    seconds = age.total_seconds()
    values: dict[str, Any] = {
        "created_at": db_later(-seconds - 60),
        "run_after": db_later(-seconds),
    }
    if finished:
        values["finished_at"] = db_later(-seconds)
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.public_id == public_id).values(**values))


def aged_job(engine: Engine, status: Status, age: timedelta, **kwargs: Any) -> str:
    public_id = make_job(engine, status, **kwargs)
    back_date(engine, public_id, age, finished=status.terminal)
    return public_id


def exists(engine: Engine, public_id: str) -> bool:
    """Whether the store still holds the job: a purge takes it with all its rows."""
    try:
        queries.get_job(engine, public_id)
    except JobNotFound:
        return False
    return True


def put_files(artifacts: ArtifactStore, public_id: str) -> None:
    """Two files of a job's own in the artifact store, as a checkpoint and a report."""
    artifacts.put_json(public_id, "checkpoints/0.json", {"inside": 785})
    artifacts.put_json(public_id, "report.json", {"public_id": public_id})


def job_ids(engine: Engine) -> dict[str, int]:
    with reading(engine) as conn:
        return dict(conn.execute(select(Job.public_id, Job.id)).all())


def child_counts(engine: Engine, public_ids: list[str]) -> dict[str, int]:
    """Rows the given jobs hold in each child table."""
    with reading(engine) as conn:
        ids = select(Job.id).where(Job.public_id.in_(public_ids))
        return {
            name: conn.execute(
                select(func.count()).select_from(model).where(model.job_id.in_(ids))
            ).scalar_one()
            for name, model in CHILD_MODELS.items()
        }


def orphans(engine: Engine) -> dict[str, int]:
    """Child rows whose job is gone: each must be 0."""
    with reading(engine) as conn:
        return {
            name: conn.execute(
                select(func.count()).select_from(model).where(model.job_id.not_in(select(Job.id)))
            ).scalar_one()
            for name, model in CHILD_MODELS.items()
        }


def everything(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the job tables, to compare a store before and after."""
    with reading(engine) as conn:
        out = {"jobs": sorted(tuple(r) for r in conn.execute(select(Job.__table__)).all())}
        for name, model in CHILD_MODELS.items():
            rows = conn.execute(select(model.__table__)).all()
            out[name] = sorted((tuple(repr(v) for v in r) for r in rows), key=str)
        return out
