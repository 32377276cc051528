"""A worker's heartbeat cut short by its own close is no error in the runner's log."""

from __future__ import annotations

import logging

from distributed import LocalCluster

from compute.cluster import HEARTBEAT_FAILED, HeartbeatCutByClose


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1, message, (), None)


def test_a_heartbeat_error_is_dropped_only_once_its_worker_is_closing() -> None:
    heartbeat = _record(f"{HEARTBEAT_FAILED}.")
    other = _record("Unexpected exception during heartbeat. Closing worker.")
    with LocalCluster(
        n_workers=1, processes=False, dashboard_address=None, worker_dashboard_address=None
    ) as cluster:
        (worker,) = cluster.workers.values()
        kept = HeartbeatCutByClose(worker)
        assert kept.filter(heartbeat), "a running worker's failed heartbeat must be logged"
        assert kept.filter(other)
    assert worker.status.name == "closed"
    assert not kept.filter(heartbeat)
    assert kept.filter(other), "only the heartbeat's closed stream is expected of a close"
