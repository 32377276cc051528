"""A runner's Dask workers, read through the scheduler address it registered in the store."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from compute import cluster_info, intake
from jobstore import queries, transitions
from tests.polling import wait_for
from tests.runner.conftest import RunnerProcess, free_port


def _only_scheduler(engine: Engine) -> str:
    (runner,) = [r for r in queries.runners(engine, alive_within=60) if r.alive]
    assert runner.scheduler_address
    return runner.scheduler_address


def test_a_runners_local_cluster_workers_appear_with_memory_and_tasks(
    engine: Engine, start_runner: Callable[..., RunnerProcess]
) -> None:
    start_runner(workers=2)
    address = _only_scheduler(engine)

    info = cluster_info.ask([address])[address]

    assert info.error is None
    assert [w.nthreads for w in info.workers] == [1, 1]
    assert [w.name for w in info.workers] == ["0", "1"]
    assert len({w.address for w in info.workers}) == 2
    assert all(w.address.startswith("tcp://") for w in info.workers)
    assert all(w.memory_used > 0 for w in info.workers)
    assert all(w.memory_limit and w.memory_limit > w.memory_used for w in info.workers)
    assert info.threads == 2
    assert info.memory_limit == sum(w.memory_limit or 0 for w in info.workers)
    assert {w.status for w in info.workers} == {"running"}

    job = intake.submit(engine, "demo_stages", {"stages": 1, "seconds_per_stage": 60})
    busy = wait_for(
        lambda: [w for w in cluster_info.ask([address])[address].workers if w.processing],
        timeout=60,
        what="a worker to report a task in hand",
        interval=0.2,
    )
    assert busy[0].processing >= 1
    transitions.request_cancel(engine, job)


def test_a_stopped_runners_scheduler_is_reported_unreachable_not_hung(
    engine: Engine, start_runner: Callable[..., RunnerProcess]
) -> None:
    runner = start_runner(workers=1)
    address = _only_scheduler(engine)
    assert cluster_info.ask([address])[address].error is None

    assert runner.stop() == 0
    info = cluster_info.ask([address], timeout=0.5)[address]

    assert info.workers == ()
    assert info.error == "no answer within 0.5 s"


def test_several_schedulers_are_asked_at_once_and_each_failure_says_why() -> None:
    closed = f"tcp://127.0.0.1:{free_port()}"

    found = cluster_info.ask([closed, "not an address", closed], timeout=0.3)

    assert list(found) == [closed, "not an address"]
    assert found[closed].error == "no answer within 0.3 s"
    assert found["not an address"].error == (
        "not a Dask address: missing port number in address 'not an address'"
    )
    assert cluster_info.ask([]) == {}
