"""A runner's LocalCluster runs only the scheduler checks that have something to act on."""

from __future__ import annotations

import dask.config
import pytest

from compute.cluster import Cluster, connect
from tests.polling import wait_for

CHECKS = ("idle-timeout", "no-workers-timeout")


def running(cluster: Cluster, name: str) -> bool:
    assert cluster.local is not None and cluster.local.scheduler is not None
    return bool(cluster.local.scheduler.periodic_callbacks[name].is_running())


@pytest.mark.parametrize(
    "config, kept",
    [({}, set()), ({"distributed.scheduler.idle-timeout": "1h"}, {"idle-timeout"})],
    ids=["no timeout set", "an idle timeout set"],
)
def test_a_check_runs_only_when_its_timeout_is_set(config: dict, kept: set[str]) -> None:
    with dask.config.set(config):
        cluster = connect(n_workers=1, dashboard="127.0.0.1:0")
    try:
        for name in CHECKS:
            if name in kept:
                assert running(cluster, name), name
            else:
                wait_for(
                    lambda name=name: not running(cluster, name),
                    timeout=10,
                    what=f"the scheduler's {name} check to stop",
                )
    finally:
        cluster.close()
