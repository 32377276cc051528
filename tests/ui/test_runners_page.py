"""/runners: alive and silent runners apart, a real cluster's workers, and the last hour."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from distributed import LocalCluster
from sqlalchemy import Engine, update
from streamlit.testing.v1 import AppTest

from jobstore import registration
from jobstore.engine import db_later
from jobstore.models import Runner
from tests.runner.conftest import free_port
from tests.ui import seed
from tests.ui.conftest import markdown_texts, open_page
from ui.runners import cluster_key

PAGE = "pages/runners.py"
runners_t = Runner.__table__


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A real Dask cluster on TCP, in this process to keep the test light: 1 worker, 2 threads."""
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=":0",  # a free port: None still takes 8787, which may be in use
    ) as lc:
        yield lc


def register(
    engine: Engine, runner_id: str, *, host: str = "h", pid: int = 1, scheduler: str | None = None
) -> None:
    registration.register(
        engine,
        runner_id,
        host=host,
        pid=pid,
        concurrency=2,
        scheduler_address=scheduler,
        dashboard_link=None,
    )


def silence(engine: Engine, runner_id: str, *, for_: timedelta) -> None:
    """The runner's last heartbeat, moved back in the database's own clock."""
    with engine.begin() as conn:
        conn.execute(
            update(runners_t)
            .where(runners_t.c.id == runner_id)
            .values(heartbeat_at=db_later(-for_.total_seconds()))
        )


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at: AppTest, key: str) -> Any:
    return at.container(key).dataframe[0].value


def figures(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_no_runner_says_how_to_start_one(store: Engine) -> None:
    at = open_page(PAGE)

    assert metrics(at)["Runners alive"] == "0"
    assert metrics(at)["Silent"] == "0"
    [warning] = at.warning
    assert "`runlab runner`" in warning.value and "`runlab up`" in warning.value
    assert not at.dataframe
    assert any("No job finished in the last hour" in c.value for c in at.caption)
    assert len(figures(at)) == 2


def test_alive_runner_shows_its_jobs_heartbeat_and_its_clusters_workers(
    store: Engine, cluster: LocalCluster
) -> None:
    address = cluster.scheduler_address
    assert address.startswith("tcp://")
    register(store, seed.RUNNER, host="node-7", pid=4242, scheduler=address)
    seed.running(store, "busy")

    at = open_page(PAGE)

    assert not at.warning
    assert metrics(at) == {
        "Runners alive": "1",
        "Silent": "0",
        "Running jobs": "1",
        "Dask workers": "1",
        "Threads": "2",
    }
    alive = table(at, "alive_runners")
    assert list(alive["state"]) == ["alive"]
    assert list(alive["host"]) == ["node-7"]
    assert list(alive["pid"]) == [4242]
    assert list(alive["running"]) == [1]
    assert list(alive["concurrency"]) == [2]
    assert list(alive["scheduler"]) == [address]
    assert alive["heartbeat"][0].endswith(" ago")

    workers = at.container(cluster_key(address)).dataframe[0].value
    [worker_address] = cluster.scheduler_info["workers"]
    assert list(workers["worker"]) == [worker_address]
    assert list(workers["threads"]) == [2]
    assert 0 < workers["memory"][0] < 1
    assert list(workers["status"]) == ["running"]


def test_silent_runner_is_shown_as_silent_with_its_last_heartbeat_never_as_alive(
    store: Engine, cluster: LocalCluster
) -> None:
    register(store, "quiet", host="node-q", scheduler=f"tcp://127.0.0.1:{free_port()}")
    silence(store, "quiet", for_=timedelta(minutes=10))
    register(store, "gone", host="node-g")
    registration.stopped(store, "gone")
    register(store, "fine", host="node-f", scheduler=cluster.scheduler_address)

    at = open_page(PAGE)

    assert metrics(at)["Runners alive"] == "1"
    assert metrics(at)["Silent"] == "1"
    assert list(table(at, "alive_runners")["host"]) == ["node-f"]
    silent = table(at, "silent_runners")
    assert list(silent["host"]) == ["node-q"]
    assert list(silent["state"]) == ["silent"]
    assert silent["heartbeat"][0].startswith("10 min ")
    assert silent["heartbeat"][0].endswith(" ago")
    [warning] = at.warning
    assert "No heartbeat for more than" in warning.value
    # Only the alive runner's scheduler is asked; the stopped runner is not listed at all.
    assert "Cannot read" not in " ".join(markdown_texts(at))
    assert "node-g" not in json.dumps([list(d.value["host"]) for d in at.dataframe[:2]])


def test_only_silent_runners_means_none_is_alive(store: Engine) -> None:
    register(store, "quiet", host="node-q")
    silence(store, "quiet", for_=timedelta(seconds=90))

    at = open_page(PAGE)

    assert metrics(at)["Runners alive"] == "0"
    assert any("`runlab runner`" in w.value for w in at.warning)
    [heartbeat] = table(at, "silent_runners")["heartbeat"]
    assert heartbeat.startswith("1 min 3") and heartbeat.endswith(" s ago")
    assert len(at.dataframe) == 1


def test_unreachable_scheduler_gets_a_clear_message_not_a_hang(store: Engine) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    register(store, "lonely", host="**node**", scheduler=address)

    at = open_page(PAGE)

    section = at.container(cluster_key(address))
    [warning] = section.warning
    assert "Cannot read this scheduler's workers: no answer within 1 s" in warning.value
    assert metrics(at)["Dask workers"] == "0"
    # A host name is someone else's text: never Markdown of its own.
    assert not any("**node**" in t for t in markdown_texts(at))


def test_last_hour_charts_count_finished_jobs_by_status_and_the_queue(store: Engine) -> None:
    seed.runner(store)
    seed.succeeded(store, "ok")
    seed.failed(store, "bad")
    seed.cancelled(store, "stopped")
    seed.queued(store, "waiting")
    seed.queued(store, "waiting too")

    at = open_page(PAGE)

    throughput, depth = figures(at)
    totals = {t["name"]: sum(t["y"]) for t in throughput["data"]}
    assert totals == {"succeeded": 1, "failed": 1, "cancelled": 1}
    assert depth["data"][0]["y"][-1] == 2
    captions = [c.value for c in at.caption]
    assert "3 jobs finished in the last 60 minutes." in captions
    assert any(c.startswith("2 waiting now") for c in captions)
