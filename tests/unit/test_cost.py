"""The cost meter's pieces: adding costs up, the per-stage ledger, a task's event, and the
measurement a task runs under."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from dask.base import tokenize
from distributed import Client, LocalCluster

from compute.cost import CostLedger, MeteredClient, task_cost
from compute.metering import Metered, _peak_rss, _reset_peak_rss
from jobstore.reports import StageUpdate, _coalesce
from jobstore.views import Cost, JobCost, StageCost

MIB = 2**20


def test_costs_add_times_and_counts_and_keep_the_higher_peak() -> None:
    a, b = Cost(1.0, 2.0, 3, 100), Cost(0.5, 0.5, 1, 300)
    assert a.plus(b) == Cost(1.5, 2.5, 4, 300)
    assert b.plus(a) == a.plus(b)
    assert a.plus(Cost(1.0, 1.0, 1, None)).peak_memory_bytes == 100  # unknown is not zero
    assert Cost().plus(Cost()) == Cost(0.0, 0.0, 0, None)


def test_the_ledger_sums_per_stage_and_in_all_and_hands_over_only_what_changed() -> None:
    ledger = CostLedger()
    ledger.add((0, "plan"), Cost(0.1, 0.2, 1, 10))
    ledger.add((1, "sample"), Cost(1.0, 1.5, 1, 30))
    ledger.add((1, "sample"), Cost(1.0, 1.0, 1, 20))
    ledger.add(None, Cost(0.5, 0.5, 1, 5))  # submitted outside any stage: the total only
    total, stages = ledger.take()
    assert total == Cost(2.6, 3.2, 4, 30)
    assert stages == {0: ("plan", Cost(0.1, 0.2, 1, 10)), 1: ("sample", Cost(2.0, 2.5, 2, 30))}
    assert ledger.take() == (None, {})
    ledger.add((1, "sample"), Cost(1.0, 1.0, 1, 40))
    total, stages = ledger.take()
    # Cumulative values: a write that carries them is right whatever came before it.
    assert total == Cost(3.6, 4.2, 5, 40)
    assert stages == {1: ("sample", Cost(3.0, 3.5, 3, 40))}


def test_the_final_take_gives_the_totals_even_when_no_task_ran() -> None:
    ledger = CostLedger()
    assert ledger.take() == (None, {})
    assert ledger.take(final=True) == (Cost(), {})


def test_a_tasks_event_is_read_into_a_stage_and_a_cost() -> None:
    stage, cost = task_cost(
        {"token": "t", "idx": 2, "stage": "reduce", "cpu": 0.5, "wall": 0.75, "peak": 4096}
    )
    assert stage == (2, "reduce")
    assert cost == Cost(0.5, 0.75, 1, 4096)
    stage, cost = task_cost({"idx": -1, "stage": "", "cpu": -1e-9, "wall": 0.1, "peak": None})
    assert stage is None  # outside any stage
    assert cost == Cost(0.0, 0.1, 1, None)  # a clock's jitter never makes a negative cost
    _, cost = task_cost({"idx": 0, "stage": "x", "cpu": 1, "wall": 1, "peak": 1, "host": "w1"})
    assert cost.hosts == {"w1": 1}
    assert cost.plus(cost).plus(Cost(hosts={"w2": 1})).hosts == {"w1": 2, "w2": 1}
    with pytest.raises((KeyError, ValueError, TypeError)):
        task_cost({"idx": 0, "stage": "x", "cpu": "lots", "wall": 1})


def test_the_aggregate_reads_as_the_json_of_show() -> None:
    cost = JobCost(
        Cost(1.0, 2.0, 3, 4, {"w1": 2, "w2": 1}), [StageCost("a", Cost(1.0, 2.0, 3, 4, {"w1": 3}))]
    )
    assert cost.to_json() == {
        "cpu_seconds": 1.0,
        "task_seconds": 2.0,
        "tasks": 3,
        "peak_memory_bytes": 4,
        "hosts": {"w1": 2, "w2": 1},
        "stages": [
            {
                "name": "a",
                "cpu_seconds": 1.0,
                "task_seconds": 2.0,
                "tasks": 3,
                "peak_memory_bytes": 4,
                "hosts": {"w1": 3},
            }
        ],
    }


def test_a_stages_later_cost_wins_when_its_updates_are_coalesced() -> None:
    early, late = Cost(1.0, 1.0, 1), Cost(2.0, 2.0, 2)
    (merged,) = _coalesce(
        [
            StageUpdate(0, "plan", started=True, cost=early),
            StageUpdate(0, "plan", progress=0.5, cost=late),
            StageUpdate(0, "plan", progress=1.0),
        ]
    )
    assert merged.cost == late and merged.started and merged.progress == 1.0


def spin(seconds: float) -> float:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass
    return seconds


def test_a_metered_function_returns_its_own_result_and_raises_its_own_errors() -> None:
    metered = Metered(spin, "token", (1, "sample"))
    assert metered(0.01) == 0.01  # off a Dask worker there is no event to send, and no error
    with pytest.raises(ZeroDivisionError):
        Metered(lambda: 1 / 0, "token", None)()


def test_a_metered_task_keeps_its_functions_name_and_a_stable_token() -> None:
    metered = Metered(spin, "token", (1, "sample"))
    assert metered.__name__ == "spin"  # Dask names the task's key after it
    assert tokenize(metered) == tokenize(Metered(spin, "token", (1, "sample")))
    assert tokenize(metered) != tokenize(Metered(spin, "token", (2, "reduce")))
    assert tokenize(metered) != tokenize(Metered(spin, "other", (1, "sample")))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_the_peak_after_a_reset_sees_memory_held_and_already_freed() -> None:
    assert _reset_peak_rss()
    before = _peak_rss()
    assert before is not None
    block = np.ones(64 * MIB // 8)  # every page touched
    del block  # freed before the read: the high-water mark still has it
    after = _peak_rss()
    assert after is not None and after - before >= 60 * MIB
    assert _reset_peak_rss()
    again = _peak_rss()
    assert again is not None and again < after  # a reset starts from what is resident now


def test_a_client_that_cannot_subscribe_leaves_the_job_unmeasured_rather_than_failed() -> None:
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        client = Client(cluster)
        client.close()
        metered = MeteredClient(client, CostLedger(), lambda: None)  # raises nothing
        assert metered.token
