""" "Stop and keep" refused where there is nothing to keep: a job not started, a kind that
cannot keep a partial result, a job that does not exist. A stop of a running job is checked for
every stoppable kind in test_kinds_contract.py."""

from __future__ import annotations

from click.testing import CliRunner

from compute import intake, registry
from jobstore import queries, transitions
from jobstore.models import Status
from runlab.cli import cli

STOPPABLE = [k.name for k in registry.all_kinds() if k.stoppable]


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
