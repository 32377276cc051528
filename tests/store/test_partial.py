"""A job stopped early with part of its result: marked `partial`, its progress the share its
result covers, and told apart from a whole success by the history's filter."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine

from jobstore import queries
from jobstore import transitions as T
from jobstore.engine import _config, migrate
from tests.ui import seed


def test_a_stopped_job_is_marked_partial_with_the_share_it_covers(engine: Engine) -> None:
    seed.runner(engine)
    stopped = seed.stopped(engine, covered=0.4)
    whole = seed.succeeded(engine)

    job = queries.get_job(engine, stopped)
    assert (job.status, job.partial, job.outcome, job.progress) == (
        "succeeded",
        True,
        "partial",
        0.4,
    )
    other = queries.get_job(engine, whole)
    assert (other.partial, other.outcome, other.progress) == (False, "succeeded", 1.0)


def test_the_upgrade_marks_the_partial_results_stored_before_the_flag(engine: Engine) -> None:
    seed.runner(engine)
    # As a runner did before migration 0009: the result says partial, the job does not.
    public_id, lease = seed.running(engine)
    T.request_stop(engine, public_id, {"monte_carlo_pi"})
    T.succeed(engine, lease, {**seed.PI_RESULT, "partial": True})
    whole = seed.succeeded(engine)
    cfg, _heads = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")

    migrate(engine)

    assert queries.get_job(engine, public_id).outcome == "partial"
    assert queries.get_job(engine, public_id).progress == 1.0  # its share was not recorded
    assert queries.get_job(engine, whole).outcome == "succeeded"
