"""Runlab's Dask defaults: what an idle runner's LocalCluster costs depends on them."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import dask.config
import distributed.scheduler as scheduler_module
import pytest

from compute.cluster import DASK_DEFAULTS, HEARTBEAT_SECONDS, TRIM, quiet_dask


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from Dask's own configuration and heartbeat, whatever a runner started
    earlier in this process set, and leaves them as it found them. Dask's functions hold the
    configuration's dict itself, so it is restored in place."""
    saved = copy.deepcopy(dask.config.config)
    found = scheduler_module.heartbeat_interval
    monkeypatch.setattr(scheduler_module, "heartbeat_interval", getattr(found, "dasks_own", found))
    dask.config.refresh()
    yield
    dask.config.config.clear()
    dask.config.config.update(saved)


def test_runlab_defaults_apply_where_dask_is_not_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("DASK_"):
            monkeypatch.delenv(name)
    quiet_dask()
    for key, value in DASK_DEFAULTS.items():
        assert dask.config.get(key) == value, key
    assert dask.config.get("distributed.worker.profile.enabled") is False


def test_dask_s_own_configuration_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED", "True")
    monkeypatch.setenv("DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL", "20ms")
    quiet_dask()
    assert dask.config.get("distributed.worker.profile.enabled") is True
    assert dask.config.get("distributed.admin.tick.interval") == "20ms"
    assert dask.config.get("distributed.client.scheduler-info-interval") == "10s"


def test_a_small_cluster_s_workers_report_every_two_seconds_and_a_large_one_as_dask_says() -> None:
    dasks_own = scheduler_module.heartbeat_interval
    assert dasks_own(2) < HEARTBEAT_SECONDS  # else there is nothing to slow down
    quiet_dask()
    quiet_dask()  # once is enough: the second call does not wrap the first
    ours = scheduler_module.heartbeat_interval
    assert ours(2) == HEARTBEAT_SECONDS
    assert ours(1000) == dasks_own(1000) > HEARTBEAT_SECONDS
    assert ours.__closure__ is not None
    assert dasks_own in [c.cell_contents for c in ours.__closure__]


def test_workers_keep_glibc_s_own_memory_thresholds_unless_dask_is_told_otherwise() -> None:
    environ = "distributed.nanny.pre-spawn-environ"
    assert TRIM in dask.config.get(environ)  # Dask's default, which this removes
    quiet_dask()
    assert TRIM not in dask.config.get(environ)
    assert dask.config.get(environ)["OPENBLAS_NUM_THREADS"] == 1


def test_a_trim_threshold_set_in_dask_s_own_configuration_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        dask.config,
        "collect",
        lambda: {"distributed": {"nanny": {"pre-spawn-environ": {TRIM: 1 << 20}}}},
    )
    dask.config.set({f"distributed.nanny.pre-spawn-environ.{TRIM}": 1 << 20})
    quiet_dask()
    assert dask.config.get("distributed.nanny.pre-spawn-environ")[TRIM] == 1 << 20
