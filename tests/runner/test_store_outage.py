"""The PostgreSQL server restarted under running jobs: every job still ends, none twice.

It restarts the machine's own server, so it runs under CI=true only.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from sqlalchemy import create_engine, text

from compute import intake
from jobstore import queries
from jobstore.models import Status
from tests.conftest import IN_CI, PG_ADMIN_URL
from tests.polling import wait_for
from tests.runner.helpers import assert_sound, counted_meanwhile

pytestmark = [
    pytest.mark.serial,
    pytest.mark.skipif(not IN_CI, reason="restarts the machine's PostgreSQL: CI=true only"),
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),
]


def server_cluster(port: int = 5432) -> tuple[str, str]:
    """The (version, name) of the local cluster on `port`, as pg_ctlcluster names it."""
    assert shutil.which("pg_lsclusters"), "pg_lsclusters is needed to restart the server"
    out = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return version, name
    raise AssertionError(f"no PostgreSQL cluster on port {port}:\n{out}")


def server_answers() -> bool:
    eng = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
    try:
        with eng.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar_one() == 1
    except Exception:
        return False
    finally:
        eng.dispose()


# Its deadlines add up to 680 s: the runner's start (60 s), both jobs under way (60 s), the
# server's stop (120 s), the runner noticing (20 s), the server's start (120 s), its first
# answer (120 s), then every job's end (180 s).
@pytest.mark.timeout(740)
def test_postgres_restarted_while_jobs_run_every_job_still_ends(engine, start_runner):
    # The outage is far shorter than the lease, so the running jobs carry on as attempt 1.
    runner = start_runner("--concurrency", "2", RUNLAB_LEASE_SECONDS="30")
    # The expected count goes on alongside, on whatever CPU the runner leaves idle.
    with counted_meanwhile(1_600_000_000, 24, 4) as expected_inside:
        pi = intake.submit(
            engine, "monte_carlo_pi", {"samples": 1_600_000_000, "chunks": 24, "seed": 4}
        )
        demo = intake.submit(engine, "demo_stages", {"stages": 4, "seconds_per_stage": 2.0})
        queued = [
            intake.submit(engine, "demo_stages", {"stages": 1, "seconds_per_stage": 0.2})
            for _ in range(4)
        ]
        wait_for(
            lambda: (
                queries.get_job(engine, pi).progress > 0.1
                and queries.get_job(engine, demo).status is Status.RUNNING
            ),
            timeout=60,
            what="both jobs to be under way",
        )
        version, name = server_cluster()

        def pg_ctl(*args: str) -> None:
            subprocess.run(["pg_ctlcluster", version, name, *args], check=True, timeout=120)

        # A restart with a gap the runner must notice: stop, wait until it has met the outage,
        # then start. The whole outage stays well inside the 30 s lease.
        try:
            pg_ctl("stop", "-m", "fast")
            wait_for(
                lambda: "the store did not answer" in runner.log(),
                timeout=20,
                what="the runner to meet the outage",
            )
        finally:
            pg_ctl("start")
            wait_for(server_answers, timeout=120, what="PostgreSQL to answer again")

        def all_ended() -> bool:
            return all(queries.get_job(engine, j).status.terminal for j in (pi, demo, *queued))

        wait_for(all_ended, timeout=180, what="every job to end", interval=0.5)
        final = {j: queries.get_job(engine, j) for j in (pi, demo, *queued)}
        assert {j.status for j in final.values()} == {Status.SUCCEEDED}
        assert final[pi].attempt == 1 and final[demo].attempt == 1
        assert final[pi].result["inside"] == expected_inside()
        log = runner.log()
        assert log.count("the store did not answer") == 1, log  # once per outage, not per retry
        assert "the store answers again" in log
        assert runner.proc.poll() is None
        assert_sound(engine)
