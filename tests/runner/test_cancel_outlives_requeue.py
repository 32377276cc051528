"""A cancel asked for while a job runs is never lost, even when its runner stops at once."""

from __future__ import annotations

from sqlalchemy import Engine

from compute import intake
from jobstore import queries, transitions
from jobstore.models import Status
from tests.polling import wait_for
from tests.runner.helpers import assert_sound


def test_a_job_cancelled_then_handed_back_by_a_stopping_runner_ends_cancelled(
    engine: Engine, start_runner
) -> None:
    # No grace: the SIGTERM hands back at once whatever is running, racing the driver's own
    # look at the request. Either way the job must end cancelled, on its first attempt.
    runner = start_runner(workers=1, RUNLAB_GRACE_SECONDS="0")
    job = intake.submit(engine, "test_waits", {"seconds": 600})
    wait_for(
        lambda: queries.get_job(engine, job).stage == "wait", timeout=60, what="the job to run"
    )

    assert transitions.request_cancel(engine, job) is transitions.CancelOutcome.REQUESTED
    assert runner.stop() == 0
    start_runner(workers=1)  # a runner that would take the job again, were it queued

    wait_for(
        lambda: queries.get_job(engine, job).status.terminal,
        timeout=60,
        what="the job to end",
    )
    final = queries.get_job(engine, job)
    assert final.status is Status.CANCELLED
    assert final.attempt == 1 and len(final.attempts) == 1
    assert_sound(engine)
