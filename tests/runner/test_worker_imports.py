"""What a Dask worker imports to run a kind's task: the kernel and the meter, never the store.

A worker unpickles each task's function, importing the module it lives in. Were a kernel to
live beside its driver, every worker would import the job store, SQLAlchemy and Alembic to run
a NumPy loop.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from distributed import Client
from sqlalchemy import Engine

from compute import intake, registry
from compute.cluster import Cluster, connect
from compute.context import JobContext
from compute.kinds.monte_carlo_pi import count_inside
from jobstore import queries, transitions
from jobstore.models import Status
from tests.conftest import on_sqlite_only
from tests.runner.helpers import expected_inside, watch

PI = {"samples": 2_000_000, "chunks": 2, "seed": 5}
HEAVY = {"jobstore", "sqlalchemy", "alembic"}


def _heavy(client: Client) -> list[str]:
    """The store's modules and its libraries' loaded in any worker of the client's cluster."""
    loaded = client.run(lambda: sorted(sys.modules))
    assert loaded, "the cluster has no worker"
    return sorted({m for mods in loaded.values() for m in mods if m.split(".")[0] in HEAVY})


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """The runner's own LocalCluster: worker processes, here one of one thread."""
    made = connect(n_workers=1)
    try:
        yield made
    finally:
        made.close()


def test_a_worker_runs_the_pi_kinds_tasks_without_importing_the_store(
    sqlite_engine: Engine, cluster: Cluster
) -> None:
    intake.submit(sqlite_engine, "monte_carlo_pi", PI)
    (lease,) = transitions.claim(sqlite_engine, "worker-imports", lease_seconds=30)
    kind = registry.get("monte_carlo_pi")
    params = kind.parse(lease.params)
    # The driver sends its tasks as it does in a runner: through the context's metered client.
    ctx = JobContext(
        sqlite_engine,
        lease,
        cluster.client,
        stage_names=kind.stages(params),
        stage_weights=kind.stage_weights(params),
        stoppable=kind.stoppable,
    )

    result = kind.run(ctx, params)

    assert result["inside"] == expected_inside(PI["samples"], PI["chunks"], PI["seed"])
    cost = ctx.take_pending().cost
    assert cost is not None and cost.tasks == PI["chunks"]  # each ran under the meter
    (loaded,) = cluster.client.run(lambda: sorted(sys.modules)).values()
    assert count_inside.__module__ in loaded  # the worker unpickled the kernel itself
    assert _heavy(cluster.client) == []


@on_sqlite_only
def test_a_runners_own_workers_run_a_pi_job_without_importing_the_store(
    engine: Engine, start_runner
) -> None:
    """The runner's process holds the store; its LocalCluster's workers, spawned from it, do
    not: spawn would import the runner's main module, the CLI, in each of them."""
    start_runner(workers=1)
    job = intake.submit(engine, "monte_carlo_pi", PI)
    assert watch(engine, job, timeout=120)[-1].status is Status.SUCCEEDED
    (runner,) = queries.runners(engine, alive_within=60)
    assert runner.scheduler_address
    with Client(runner.scheduler_address, timeout="30s") as client:
        assert _heavy(client) == []
