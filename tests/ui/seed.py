"""A store in a given state, reached through the same verbs the runner uses."""

from __future__ import annotations

from sqlalchemy import Engine

from compute import intake
from jobstore import registration, reports
from jobstore import transitions as T
from jobstore.views import Cost
from tests.pi_report import sampling

RUNNER = "r1"
PI_RESULT = {
    "estimate": 3.1416,
    "standard_error": 0.0016,
    "inside": 785_400,
    "samples": 1_000_000,
    "seed": 7,
}


def runner(engine: Engine, runner_id: str = RUNNER, dashboard_link: str | None = None) -> None:
    registration.register(
        engine,
        runner_id,
        host="h",
        pid=1,
        concurrency=2,
        scheduler_address=None,
        dashboard_link=dashboard_link,
    )


def queued(engine: Engine, name: str = "", samples: int = 1_000_000, **params: object) -> str:
    return intake.submit(engine, "monte_carlo_pi", {"samples": samples, **params}, name=name)


def running(
    engine: Engine,
    name: str = "",
    *,
    progress: float = 0.5,
    log: str = "sampling",
) -> tuple[str, reports.Lease]:
    """A π job halfway through its `sample` stage, with two points of its live series.

    Claims the oldest queued job, so call it before seeding other queued jobs.
    """
    public_id = queued(engine, name)
    [lease] = T.claim(engine, RUNNER, limit=1, versions={"numpy": "2.4.6", "runlab": "0.1.0"})
    assert lease.public_id == public_id, "seed running jobs before queued ones"
    reports.report(
        engine,
        lease,
        sampling(
            progress,
            metrics=[("estimate", 500_000, 3.1372), ("estimate", 1_000_000, 3.1391)],
            logs=[("info", log)],
        ),
        lease_seconds=30,
    )
    return public_id, lease


def running_kind(
    engine: Engine, kind: str, params: dict[str, object], name: str = ""
) -> tuple[str, reports.Lease]:
    """A job of `kind`, claimed and running: call it while no other job is queued."""
    public_id = intake.submit(engine, kind, params, name=name)
    [lease] = T.claim(engine, RUNNER, limit=1, versions={"runlab": "0.1.0"})
    assert lease.public_id == public_id, "seed running jobs before queued ones"
    return public_id, lease


def succeeded(engine: Engine, name: str = "") -> str:
    public_id, lease = running(engine, name)
    T.succeed(engine, lease, dict(PI_RESULT), None)
    return public_id


def stopped(engine: Engine, name: str = "", *, covered: float = 0.27) -> str:
    """A π job stopped early that kept a partial result over `covered` of its samples."""
    public_id, lease = running(engine, name)
    T.request_stop(engine, public_id, {"monte_carlo_pi"})
    result = {**PI_RESULT, "samples": int(PI_RESULT["samples"] * covered), "partial": True}
    T.succeed_many(engine, [T.Success(lease, result, covered=covered)])
    return public_id


def failed(engine: Engine, name: str = "", *, message: str = "boom") -> str:
    public_id, lease = running(engine, name)
    T.fail(
        engine,
        lease,
        "ValueError",
        message,
        'Traceback (most recent call last):\n  File "driver.py", line 1\nValueError: boom',
    )
    return public_id


def cancelled(engine: Engine, name: str = "") -> str:
    public_id, lease = running(engine, name)
    T.cancelled(engine, lease)
    return public_id


def with_cost(engine: Engine, plan: Cost, sample: Cost, *, outside: int = 0) -> str:
    """A running π job whose `plan` and `sample` stages report these costs; `outside` tasks
    ran outside any stage."""
    public_id, lease = running(engine)
    extra = Cost(0.0, 0.0, outside, None)
    reports.report(
        engine,
        lease,
        reports.Report(
            stage_updates=[
                reports.StageUpdate(0, "plan", cost=plan),
                reports.StageUpdate(1, "sample", cost=sample),
            ],
            cost=plan.plus(sample).plus(extra),
        ),
        lease_seconds=30,
    )
    return public_id
