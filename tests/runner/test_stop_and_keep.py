""" "Stop and keep": a running Monte Carlo job ends `succeeded` with an honest partial result."""

from __future__ import annotations

import math

from click.testing import CliRunner
from sqlalchemy import select

from compute import intake, registry
from jobstore import queries, transitions
from jobstore.models import JobEvent, Status
from runlab.cli import cli
from tests.conftest import on_sqlite_only
from tests.polling import wait_for
from tests.runner.helpers import assert_sound, expected_inside, pi_under_way, watch

STOPPABLE = [k.name for k in registry.all_kinds() if k.stoppable]


def test_stop_and_keep_ends_a_pi_job_succeeded_with_the_chunks_that_finished(
    engine, start_runner, db_url
):
    start_runner()
    params = {"samples": 6_000_000_000, "chunks": 60, "seed": 8}
    job = pi_under_way(engine, params, past=0.1)
    out = CliRunner().invoke(cli, ["stop", job], env={"RUNLAB_DATABASE_URL": db_url})
    assert out.exit_code == 0, out.output
    assert "stop requested" in out.output
    final = watch(engine, job, timeout=30)[-1]
    assert final.status is Status.SUCCEEDED, final.error
    r = final.result
    assert r["partial"] is True
    per_chunk = params["samples"] // params["chunks"]
    assert 0 < r["samples"] < params["samples"] and r["samples"] % per_chunk == 0
    # The estimate is the honest one over the samples kept, with its wider error.
    assert r["estimate"] == 4.0 * r["inside"] / r["samples"]
    assert r["standard_error"] > math.sqrt(math.pi * (4 - math.pi) / params["samples"])
    assert abs(r["estimate"] - math.pi) < 6 * r["standard_error"]
    with engine.connect() as conn:
        asked = conn.execute(select(JobEvent.message).where(JobEvent.kind == "request")).scalars()
        assert list(asked) == ["stop and keep requested"]
    assert_sound(engine)


def test_a_job_run_to_the_end_is_not_partial_and_stop_after_the_end_changes_nothing(
    engine, start_runner
):
    start_runner()
    job = intake.submit(engine, "monte_carlo_pi", {"samples": 4_000_000, "chunks": 4, "seed": 3})
    final = watch(engine, job, timeout=60)[-1]
    assert final.status is Status.SUCCEEDED
    assert final.result["partial"] is False
    assert final.result["inside"] == expected_inside(4_000_000, 4, 3)
    outcome = transitions.request_stop(engine, job, STOPPABLE)
    assert outcome is transitions.StopOutcome.ALREADY_FINISHED
    assert queries.get_job(engine, job).result == final.result
    assert_sound(engine)


@on_sqlite_only
def test_stop_and_keep_on_option_pricing_keeps_a_wider_interval(engine, start_runner):
    start_runner()
    params = {"option_type": "asian_call", "paths": 200_000_000, "steps": 20, "seed": 4}
    job = intake.submit(engine, "option_pricing", params)
    wait_for(
        lambda: queries.get_job(engine, job).progress > 0.1, timeout=60, what="some chunks done"
    )
    assert transitions.request_stop(engine, job, STOPPABLE) is transitions.StopOutcome.REQUESTED
    final = watch(engine, job, timeout=60)[-1]
    assert final.status is Status.SUCCEEDED, final.error
    r = final.result
    assert r["partial"] is True and 0 < r["paths"] < params["paths"]
    assert r["ci_low"] < r["price"] < r["ci_high"]
    assert_sound(engine)


def test_stop_refuses_queued_jobs_and_kinds_without_a_partial_result(engine, db_url):
    queued = intake.submit(engine, "monte_carlo_pi", {"samples": 1000, "chunks": 1})
    demo = intake.submit(engine, "demo_stages", {})
    env = {"RUNLAB_DATABASE_URL": db_url}
    out = CliRunner().invoke(cli, ["stop", queued], env=env)
    assert out.exit_code == 1
    assert "has not started, so there is nothing to keep" in out.output
    assert "demo_stages" not in STOPPABLE
    outcome = transitions.request_stop(engine, demo, STOPPABLE)
    assert outcome is transitions.StopOutcome.NOT_STOPPABLE
    out = CliRunner().invoke(cli, ["stop", "nope"], env=env)
    assert out.exit_code == 1 and "no such job: nope" in out.output
    assert queries.get_job(engine, queued).status is Status.QUEUED
