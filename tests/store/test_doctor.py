"""The invariant checker: silent on a sound store, precise on a corrupted one."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, insert, select, update

from compute.intake import submit
from jobstore.doctor import check
from jobstore.engine import db_now
from jobstore.models import Job, JobEvent, JobResult, Status
from jobstore.reports import Report
from jobstore.transitions import cancelled, claim, fail, reap, request_cancel, succeed
from runlab.cli import cli
from tests.polling import wait_for


def sound_store(engine: Engine) -> dict[str, str]:
    """One job in every state, each reached through the verbs."""
    ids = {
        name: submit(engine, "demo_stages", {}, name=name)
        for name in (
            "queued",
            "succeeded",
            "failed",
            "cancelled",
            "cancelled_queued",
            "retried",
            "running",
        )
    }
    request_cancel(engine, ids["cancelled_queued"])
    leases = {lease.public_id: lease for lease in claim(engine, "r1", limit=10, lease_seconds=30)}
    by_name = {name: leases.get(pid) for name, pid in ids.items()}
    succeed(engine, by_name["succeeded"], {"x": 1}, None, Report(logs=[("info", "done")]))
    fail(engine, by_name["failed"], "ValueError", "boom", "Traceback")
    cancelled(engine, by_name["cancelled"])
    succeed(engine, by_name["queued"], {"x": 2})  # "queued" was claimed too: finish it
    return ids


def test_a_sound_store_has_no_violations(engine: Engine) -> None:
    sound_store(engine)
    assert check(engine) == []


def test_a_reaped_and_reclaimed_job_is_sound(engine: Engine) -> None:
    submit(engine, "demo_stages", {})
    claim(engine, "r1", lease_seconds=0.05)
    wait_for(lambda: reap(engine, backoff_base=0), timeout=10, what="the reaper")
    [lease] = claim(engine, "r2", lease_seconds=30)
    succeed(engine, lease, {"x": 1})
    assert check(engine) == []


def test_a_lapsed_lease_is_reported_until_the_reaper_passes(engine: Engine) -> None:
    submit(engine, "demo_stages", {})
    claim(engine, "r1", lease_seconds=0.05)
    wait_for(
        lambda: [v.rule for v in check(engine)] == ["no running job with a lapsed lease"],
        timeout=10,
        what="the lapsed lease to show",
    )
    assert check(engine, lease_grace=3600) == []
    wait_for(lambda: reap(engine, backoff_base=0), timeout=10, what="the reaper")
    assert check(engine) == []


@pytest.mark.parametrize(
    ("corrupt", "rule"),
    [
        ("status_without_event", "events match the status|exactly one terminal state"),
        ("second_result_job", "a result only beside succeeded"),
        ("succeeded_without_result", "a result only beside succeeded"),
        ("two_terminal_events", "exactly one terminal state"),
        ("unknown_status", "one known state"),
        ("attempt_skipped", "attempts strictly increasing"),
    ],
)
def test_each_kind_of_corruption_is_named(engine: Engine, corrupt: str, rule: str) -> None:
    ids = sound_store(engine)
    jobs = Job.__table__
    with engine.begin() as conn:

        def job_id(name: str) -> int:
            return conn.execute(
                jobs.select().with_only_columns(jobs.c.id).where(jobs.c.public_id == ids[name])
            ).scalar_one()

        if corrupt == "status_without_event":
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id("cancelled"))
                .values(status=Status.QUEUED, finished_at=None)
            )
        elif corrupt == "second_result_job":
            conn.execute(
                insert(JobResult.__table__).values(
                    job_id=job_id("failed"), attempt=1, summary={}, created_at=db_now()
                )
            )
        elif corrupt == "succeeded_without_result":
            conn.execute(
                JobResult.__table__.delete().where(
                    JobResult.__table__.c.job_id == job_id("succeeded")
                )
            )
        elif corrupt == "two_terminal_events":
            conn.execute(
                insert(JobEvent.__table__).values(
                    job_id=job_id("failed"),
                    at=db_now(),
                    attempt=1,
                    kind="transition",
                    from_status="running",
                    to_status="failed",
                    message="again",
                )
            )
        elif corrupt == "unknown_status":
            conn.execute(update(jobs).where(jobs.c.id == job_id("failed")).values(status="zombie"))
        elif corrupt == "attempt_skipped":
            conn.execute(update(jobs).where(jobs.c.id == job_id("succeeded")).values(attempt=3))
    found = check(engine)
    assert found, "the corruption went unnoticed"
    assert {v.rule for v in found} == set(rule.split("|"))


def test_runlab_doctor_exits_1_and_prints_the_violations(
    engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNLAB_DATABASE_URL", db_url)
    sound_store(engine)
    clean = CliRunner().invoke(cli, ["doctor"])
    assert clean.exit_code == 0, clean.output
    assert "0 violation(s) in 7 job(s)" in clean.stderr
    jobs = Job.__table__
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.name == "failed").values(status=Status.SUCCEEDED))
    broken = CliRunner().invoke(cli, ["doctor"])
    assert broken.exit_code == 1
    assert "succeeded without a result" in broken.stdout
    assert "violation(s) in 7 job(s)" in broken.stderr


def test_the_doctor_names_a_job_stuck_on_a_cluster_without_workers(engine: Engine) -> None:
    """What the doctor sees of a runner that held a job past the bound (as one that does not
    hand jobs back would): its row dated without workers, the job without progress."""
    from datetime import timedelta

    from jobstore.models import Runner
    from jobstore.registration import register as register_runner
    from jobstore.reports import heartbeat

    job = submit(engine, "demo_stages", {})
    register_runner(
        engine, "r1", host="h", pid=1, concurrency=1, scheduler_address=None, dashboard_link=None
    )
    (lease,) = claim(engine, "r1", lease_seconds=600)
    heartbeat(engine, "r1", [lease], lease_seconds=600, workers=0)
    assert check(engine, stuck_after=30) == []  # not yet past the bound

    with engine.begin() as conn:  # two minutes on
        ago = conn.execute(select(db_now())).scalar_one() - timedelta(minutes=2)
        conn.execute(update(Runner).values(no_workers_since=ago))
        conn.execute(update(Job).values(progress_at=ago))
    found = [str(v) for v in check(engine, stuck_after=30)]

    assert found == [
        f"{job}: no job stuck on a cluster without workers: its runner's cluster has had no "
        "worker for 120 s, and the job no progress for 120 s"
    ]
    assert check(engine) == []  # the check is asked for: a store alone does not know the bound
    heartbeat(engine, "r1", [lease], lease_seconds=600, workers=1)  # a worker is back
    assert check(engine, stuck_after=30) == []
