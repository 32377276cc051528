"""A team's deployment across hosts (network namespaces of the test's own): PostgreSQL, an S3
bucket, a Dask scheduler, two worker hosts, two runner hosts and two web hosts, each started
with its ordinary command (tests/deploy/deployment.py). The scenarios run in order on one
deployment, and the last checks the store's invariants.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from jobstore import queries
from jobstore.models import Status
from tests.deploy.deployment import Deployment
from tests.polling import wait_for

MIXED = 40


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
