"""A team's deployment across hosts (network namespaces of the test's own): PostgreSQL, an S3
bucket, a Dask scheduler, two worker hosts, two runner hosts and two web hosts, each started
with its ordinary command (tests/deploy/deployment.py). The scenarios run in order on one
deployment, and the last checks the store's invariants.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from compute import intake
from jobstore import queries
from jobstore.models import Status
from jobstore.views import JobDetail
from runlab.versions import software_versions
from tests.deploy.deployment import BIN, ROOT, Deployment
from tests.deploy.hosts import Host, on
from tests.polling import wait_for
from tests.runner.helpers import counted, idle_pool, older_runlab

# Its scenarios wait on leases, heartbeats and timeouts of the deployment's own: they run after
# the other tests, in one process (`make test`).
pytestmark = pytest.mark.serial

MIXED = 40


@pytest.fixture(scope="module")
def kernels() -> Iterator[ProcessPoolExecutor]:
    """Two processes that count the π jobs' expected points while the scenarios run, on what
    CPU the deployment leaves idle (nice 19): never in the way of its heartbeats and leases."""
    with idle_pool() as pool:
        yield pool


def finished(deployment: Deployment, ids: list[str], timeout: float) -> list:
    engine = deployment.engine()
    try:

        def ended() -> list | None:
            jobs = [queries.get_job(engine, i) for i in ids]
            return jobs if all(j.status.terminal for j in jobs) else None

        return wait_for(ended, timeout=timeout, what=f"{len(ids)} jobs to end", interval=1.0)
    finally:
        engine.dispose()


def test_mixed_jobs_from_a_web_host_run_on_both_runner_and_worker_hosts(
    deployment: Deployment,
) -> None:
    web = deployment.webs[0]
    out = deployment.run_on(
        web, [sys.executable, "-m", "tests.deploy.submit_examples", str(MIXED)], timeout=300
    )
    ids = json.loads(out)
    assert len(ids) == MIXED

    jobs = finished(deployment, ids, timeout=600)

    failed = [(j.kind, j.status, j.error) for j in jobs if j.status is not Status.SUCCEEDED]
    assert failed == []
    kinds = Counter(j.kind for j in jobs)
    assert "bootstrap" in kinds and len(kinds) >= 5
    # A runner's id starts with its host's name; a task's cost names the worker host it ran on.
    runners = Counter((a.runner_id or "").rsplit("-", 2)[0] for j in jobs for a in j.attempts)
    assert set(runners) == {"runner-1", "runner-2"}, runners
    workers: Counter[str] = Counter()
    for j in jobs:
        assert j.cost is not None
        workers.update(j.cost.total.hosts)
    assert set(workers) == {"worker-1", "worker-2"}, workers
    assert sum(workers.values()) == sum(j.cost.total.tasks for j in jobs if j.cost)


def job_when(
    deployment: Deployment, job: str, ok: Callable[[JobDetail], bool], timeout: float, what: str
) -> JobDetail:
    engine = deployment.engine()
    try:
        return wait_for(
            lambda: j if ok(j := queries.get_job(engine, job)) else None,
            timeout=timeout,
            what=what,
            interval=0.2,
        )
    finally:
        engine.dispose()


def runner_host(attempt_runner: str | None) -> str:
    return (attempt_runner or "").rsplit("-", 2)[0]


def results_of(deployment: Deployment, job: str) -> int:
    engine = deployment.engine()
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM job_results r JOIN jobs j ON j.id = r.job_id "
                        "WHERE j.public_id = :job"
                    ),
                    {"job": job},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def submit(deployment: Deployment, kind: str, params: dict[str, Any]) -> str:
    engine = deployment.engine()
    try:
        return intake.submit(engine, kind, params)
    finally:
        engine.dispose()


def a_fifth_done(deployment: Deployment, params: dict[str, Any]) -> tuple[str, JobDetail]:
    """A π job submitted, once it is running and a fifth done: its id, and what it was then."""
    job = submit(deployment, "monte_carlo_pi", params)
    under_way = job_when(
        deployment,
        job,
        lambda j: j.status is Status.RUNNING and j.progress >= 0.2,
        timeout=120,
        what="the π job to be a fifth done",
    )
    return job, under_way


def test_a_runner_cut_off_loses_its_job_to_the_other_which_resumes_it_from_the_bucket(
    deployment: Deployment, kernels: ProcessPoolExecutor
) -> None:
    params = {"samples": 1_500_000_000, "chunks": 30, "seed": 77}
    job, under_way = a_fifth_done(deployment, params)
    cut_name = runner_host(under_way.attempts[-1].runner_id)
    cut = deployment.net.hosts[cut_name]
    deployment.net.cut(cut)
    # Counted from here on, not before: the count's processes must not slow the cut itself.
    expected = counted(kernels, **params)
    try:
        final = job_when(
            deployment, job, lambda j: j.status.terminal, timeout=240, what="the job to end"
        )
    finally:
        deployment.net.restore(cut)

    assert final.status is Status.SUCCEEDED, (final.error, final.traceback)
    assert [(a.attempt, a.outcome) for a in final.attempts] == [(1, "requeued"), (2, "succeeded")]
    heir = runner_host(final.attempts[1].runner_id)
    assert heir != cut_name and heir.startswith("runner-")
    # From the checkpoints that the cut runner left in the bucket, to the numbers of an
    # uninterrupted run of the same seed.
    assert final.result is not None
    assert final.result["inside"] == expected()
    resumed = [x.message for x in final.logs if x.attempt == 2 and "resuming" in x.message]
    assert resumed and not resumed[0].startswith("resuming: 0 of"), resumed

    # Back on the network, the cut runner finds its attempt gone and writes nothing more.
    wait_for(
        lambda: f"job {job} attempt 1 lost its lease" in deployment.runner_log(cut),
        timeout=240,
        what="the cut runner to find its attempt fenced out",
        interval=0.5,
    )
    assert results_of(deployment, job) == 1
    after = job_when(deployment, job, lambda j: True, timeout=5, what="the job")
    assert (after.status, after.attempt, after.result) == (Status.SUCCEEDED, 2, final.result)


def test_a_runner_cut_off_from_the_scheduler_alone_hands_its_job_back(
    deployment: Deployment, kernels: ProcessPoolExecutor
) -> None:
    """Its store still answers: the runner itself sees its Dask client lose the scheduler,
    and gives the job back to the queue, uncharged, for a runner that has one."""
    params = {"samples": 1_500_000_000, "chunks": 30, "seed": 83}
    job, under_way = a_fifth_done(deployment, params)
    cut = deployment.net.hosts[runner_host(under_way.attempts[-1].runner_id)]
    deployment.net.split(cut, deployment.scheduler)
    expected = counted(kernels, **params)
    try:
        handed = job_when(
            deployment,
            job,
            lambda j: j.attempt == 2 or j.status.terminal,
            timeout=240,
            what="the job to be handed back",
        )
    finally:
        deployment.net.join(cut, deployment.scheduler)
    final = job_when(deployment, job, lambda j: j.status.terminal, timeout=240, what="its end")

    assert handed.attempts[0].outcome == "requeued"
    assert "ClusterLost" in (handed.attempts[0].note or ""), handed.attempts[0].note
    assert final.status is Status.SUCCEEDED, (final.error, final.traceback)
    assert final.result is not None
    assert final.result["inside"] == expected()


def test_a_worker_host_lost_mid_job_leaves_the_job_to_succeed_bit_identical(
    deployment: Deployment, kernels: ProcessPoolExecutor
) -> None:
    params = {"samples": 1_500_000_000, "chunks": 30, "seed": 91}
    job, _ = a_fifth_done(deployment, params)
    lost = deployment.workers[1]
    deployment.net.kill(lost)  # the host goes, with its nanny and worker
    expected = counted(kernels, **params)

    final = job_when(deployment, job, lambda j: j.status.terminal, timeout=240, what="its end")

    assert final.status is Status.SUCCEEDED, (final.error, final.traceback)
    assert final.attempt == 1  # Dask ran the lost tasks again elsewhere: no retry of the job
    assert final.result is not None
    assert final.result["inside"] == expected()
    # Brought back, as its supervisor would, for the scenarios after this one.
    deployment.start_worker(lost)
    deployment.workers_joined(len(deployment.workers))


def test_a_restarted_scheduler_is_rejoined_by_the_runners_and_every_job_succeeds(
    deployment: Deployment, kernels: ProcessPoolExecutor
) -> None:
    runs = [{"samples": 1_500_000_000, "chunks": 30, "seed": 100 + i} for i in range(3)]
    jobs = [submit(deployment, "monte_carlo_pi", params) for params in runs]
    job_when(
        deployment,
        jobs[0],
        lambda j: j.status is Status.RUNNING and j.progress >= 0.1,
        timeout=120,
        what="the first job to be under way",
    )
    sched = deployment.scheduler
    deployment.net.kill(sched)
    expected = [counted(kernels, **params) for params in runs]
    for runner in deployment.runners:
        wait_for(
            lambda r=runner: re.search(r"lost its (Dask )?scheduler", deployment.runner_log(r)),
            timeout=120,
            what=f"{runner.name} to notice",
            interval=0.5,
        )
    # Its supervisor brings the scheduler back at its address, and the workers, which close
    # once their scheduler is gone, after it.
    deployment.start_scheduler()
    for worker in deployment.workers:
        wait_for(
            lambda w=worker: all(p.poll() is not None for p in w.procs),
            timeout=120,
            what=f"the old worker on {worker.name} to close",
            interval=0.5,
        )
        deployment.start_worker(worker)
    deployment.workers_joined(len(deployment.workers))

    for job, inside in zip(jobs, expected, strict=True):
        final = job_when(deployment, job, lambda j: j.status.terminal, timeout=300, what="end")
        assert final.status is Status.SUCCEEDED, (final.error, final.traceback)
        assert final.result is not None
        assert final.result["inside"] == inside()
    for runner in deployment.runners:
        assert "connected a fresh Dask client" in deployment.runner_log(runner)


def test_a_worker_of_another_runlab_version_stops_every_runner_claiming(
    deployment: Deployment, tmp_path: Path
) -> None:
    older = older_runlab(tmp_path / "older")
    odd = deployment.net.add("worker-odd")
    deployment.start_worker(odd, PYTHONPATH=f"{older}{os.pathsep}{ROOT}")

    def refusal(runner: Host) -> str | None:
        lines = deployment.runner_log(runner).splitlines()
        return next((line for line in lines if "refusing to claim" in line), None)

    for runner in deployment.runners:
        line = wait_for(
            lambda r=runner: refusal(r),
            timeout=120,
            what=f"{runner.name} to refuse",
            interval=0.5,
        )
        mine = re.escape(software_versions()["runlab"])
        expected = (
            rf"refusing to claim: the Dask worker tcp://{re.escape(odd.address)}:\d+ "
            rf"on host worker-odd runs runlab 0\.0\.1 \(this runner: {mine}\)$"
        )
        assert re.search(expected, line), line
    job = submit(deployment, "monte_carlo_pi", {"samples": 10_000_000, "chunks": 2, "seed": 5})
    engine = deployment.engine()
    try:
        assert queries.get_job(engine, job).status is Status.QUEUED
    finally:
        engine.dispose()

    deployment.net.kill(odd)
    final = job_when(deployment, job, lambda j: j.status.terminal, timeout=120, what="its end")
    assert final.status is Status.SUCCEEDED, final.error


def test_a_job_submitted_through_one_web_host_is_watched_live_on_the_other(
    deployment: Deployment,
) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, require_browser
    from tests.e2e.test_browser import overall_bar, status_badge, submit_pi_job

    require_browser()
    a, b = (deployment.web_url(h) for h in deployment.webs)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            # Warm web-2 first: a fresh server's first page imports every kind, and the job
            # must not run half its course while that page loads.
            page.goto(f"{b}/new?kind=monte_carlo_pi")
            page.get_by_test_id("stForm").wait_for(state="visible", timeout=60_000)
            job = submit_pi_job(browser.new_page(), a)
            page.goto(f"{b}/job?id={job}")
            bar, done = overall_bar(page), status_badge(page, "succeeded")
            seen: list[float] = []

            def watched() -> bool:
                try:
                    raw = bar.get_attribute("aria-valuenow", timeout=1_000)
                except Exception:  # redrawn under the reading
                    raw = None
                if raw is not None and (not seen or float(raw) != seen[-1]):
                    seen.append(float(raw))
                return done.is_visible()

            wait_for(watched, timeout=180, what="web-2 to show the job succeeded", interval=0.1)
            page.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=30_000)
            estimate = page.get_by_test_id("stMetric").filter(has_text="Estimate of π")
            estimate.first.wait_for(state="visible", timeout=30_000)
        finally:
            browser.close()
    assert len(set(seen)) >= 3, f"web-2 showed fewer than 3 progress values: {seen}"
    assert seen == sorted(seen), seen


def test_the_purge_role_runs_on_the_team_store(deployment: Deployment) -> None:
    """The scheduled purge's own unit: nothing here is 30 days old, so nothing goes."""
    out = deployment.run_unit(deployment.runners[0], "runlab-purge.service")
    assert out.startswith("removed, of succeeded, failed, cancelled jobs that ended over 30d ago")
    assert re.search(r"^  jobs +0$", out, re.M), out
    engine = deployment.engine()
    try:
        assert queries.list_jobs(engine, limit=1).total >= MIXED
    finally:
        engine.dispose()


def test_the_store_keeps_every_invariant(deployment: Deployment) -> None:
    """Last: whatever the scenarios did, `runlab doctor`, run on a web host, finds nothing."""
    web = deployment.webs[0]
    done = subprocess.run(
        [*on(web), str(BIN / "runlab"), "doctor"],
        env=deployment.env(web),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.strip().startswith("0 violation(s) in "), done.stderr
