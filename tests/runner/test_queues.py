"""Named queues with real runner processes on one Dask cluster, on both backends: a queue's limit
holds across runners, one owner's batch does not hold up another's single job, and a waiting
job of low priority ages past a steady stream of high-priority ones."""

from __future__ import annotations

import json
import statistics
import threading
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, Row, func, select

from compute import intake
from jobstore import queries
from jobstore.models import Job, JobEvent, Status
from tests.polling import wait_for

QUEUES = json.dumps({"img": {"limit": 1}, "batch": {"limit": 2}, "steady": {"limit": 1}})
AGING_SECONDS = 1.0
HEARTBEAT_SECONDS = 0.5


def _spans(engine: Engine, queue: str) -> list[tuple[datetime, datetime]]:
    """Each attempt of the queue's jobs, from its claim to the event that ended it."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(JobEvent.job_id, JobEvent.attempt, JobEvent.at, JobEvent.from_status)
            .join(Job, Job.id == JobEvent.job_id)
            .where(Job.queue == queue, JobEvent.kind == "transition")
            .order_by(JobEvent.id)
        ).all()
    started: dict[tuple[int, int], datetime] = {}
    spans = []
    for r in rows:
        key = (r.job_id, r.attempt)
        if r.from_status == Status.QUEUED and key not in started:
            started[key] = r.at
        elif r.from_status == Status.RUNNING:
            spans.append((started.pop(key), r.at))
    assert not started, "every claim ended"
    return spans


def _most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    now = most = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


def _row(engine: Engine, public_id: str) -> Row[Any]:
    with engine.connect() as conn:
        return conn.execute(select(Job.__table__).where(Job.public_id == public_id)).one()


@pytest.mark.timeout(300)
def test_a_limit_of_one_holds_across_three_runners(engine, start_runner, dask_cluster) -> None:
    others = [intake.submit(engine, "test_waits", {"seconds": 0.3}) for _ in range(2)]
    runners = [
        start_runner(
            "--scheduler",
            dask_cluster.address,
            "--concurrency",
            "2",
            "--queues",
            "img",
            wait=False,
            RUNLAB_QUEUES=QUEUES,
        )
        for _ in range(3)
    ]
    for r in runners:  # all three poll the queue, each with room for two, before any job
        r.registered(engine)
    ids = [
        intake.submit(engine, "test_waits", {"seconds": 0.5}, queue="img", owner="ann")
        for _ in range(6)
    ]
    # The default queue, which none of them serves, keeps its own count.
    assert [queries.get_job(engine, i).queue_position for i in others] == [1, 2]

    running_seen: list[int] = []

    def done() -> bool:
        for r in runners:
            assert r.proc.poll() is None, r.log()
        with engine.connect() as conn:
            by = dict(
                conn.execute(
                    select(Job.status, func.count()).where(Job.queue == "img").group_by(Job.status)
                ).all()
            )
        running_seen.append(by.get(Status.RUNNING, 0))
        return by.get(Status.SUCCEEDED, 0) == 6

    wait_for(done, timeout=180, what="the six img jobs to succeed", interval=0.05)
    spans = _spans(engine, "img")
    assert len(spans) == 6
    assert _most_at_once(spans) == 1, spans
    assert max(running_seen) == 1
    assert all(r.proc.poll() is None for r in runners)
    assert {queries.get_job(engine, i).status for i in ids} == {Status.SUCCEEDED}
    # The default queue is served by none of them.
    assert {queries.get_job(engine, i).status for i in others} == {Status.QUEUED}


@pytest.mark.timeout(300)
def test_a_single_job_passes_another_owners_batch(engine, start_runner, dask_cluster) -> None:
    batch = intake.submit_many(
        engine, "test_waits", [{"seconds": 0.2}] * 500, owner="alice", queue="batch"
    )
    runner = start_runner(
        "--scheduler",
        dask_cluster.address,
        "--concurrency",
        "2",
        "--queues",
        "batch",
        RUNLAB_QUEUES=QUEUES,
    )

    def alices_done() -> int | None:
        assert runner.proc.poll() is None, runner.log()
        with engine.connect() as conn:
            n = conn.execute(
                select(func.count()).where(Job.owner == "alice", Job.status == Status.SUCCEEDED)
            ).scalar_one()
        return n if n >= 6 else None

    wait_for(alices_done, timeout=120, what="alice's batch to be under way")  # 6 done
    bobs = intake.submit(engine, "test_waits", {"seconds": 0.2}, owner="bob", queue="batch")
    b = wait_for(
        lambda: (row := _row(engine, bobs)).started_at and row,
        timeout=60,
        what="bob's job to start",
        interval=0.02,
    )
    with engine.connect() as conn:
        alice = conn.execute(
            select(Job.started_at, Job.finished_at).where(
                Job.owner == "alice", Job.status == Status.SUCCEEDED
            )
        ).all()
        passed = conn.execute(
            select(func.count()).where(
                Job.owner == "alice",
                Job.started_at > b.created_at,
                Job.started_at < b.started_at,
            )
        ).scalar_one()
        waiting = conn.execute(
            select(func.count()).where(Job.owner == "alice", Job.status == Status.QUEUED)
        ).scalar_one()
    length = statistics.median((f - s).total_seconds() for s, f in alice)
    waited = (b.started_at - b.created_at).total_seconds()
    assert waiting > 400, "bob's job did not wait for alice's queue"
    assert passed <= 2, f"{passed} of alice's jobs started first"
    assert waited <= 2 * length + 1.0, f"waited {waited:.2f} s; a job takes {length:.2f} s"
    assert len(batch) == 500


# Aging is one statement of the store's, tested on both backends in tests/store; this shows
# the bound end to end, on one.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.timeout(300)
def test_a_low_priority_job_ages_past_a_steady_stream(engine, start_runner, dask_cluster) -> None:
    runner = start_runner(
        "--scheduler",
        dask_cluster.address,
        "--concurrency",
        "1",
        "--queues",
        "steady",
        RUNLAB_QUEUES=QUEUES,
        RUNLAB_AGING_SECONDS=str(AGING_SECONDS),
        RUNLAB_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
    )
    stop = threading.Event()

    def stream() -> None:
        """Keep three priority-10 jobs waiting, from one owner, until told to stop."""
        while not stop.is_set():
            with engine.connect() as conn:
                waiting = conn.execute(
                    select(func.count()).where(
                        Job.queue == "steady", Job.status == Status.QUEUED, Job.priority == 10
                    )
                ).scalar_one()
            for _ in range(3 - waiting):
                intake.submit(
                    engine,
                    "test_waits",
                    {"seconds": 0.2},
                    owner="carol",
                    queue="steady",
                    priority=10,
                )
            stop.wait(0.05)

    feeder = threading.Thread(target=stream, daemon=True)
    feeder.start()
    try:
        wait_for(
            lambda: _count(engine, Job.priority == 10, Job.status == Status.SUCCEEDED) >= 3,
            timeout=120,
            what="the stream to flow",
        )
        low = intake.submit(
            engine, "test_waits", {"seconds": 0.2}, owner="dan", queue="steady", priority=0
        )
        x = wait_for(
            lambda: (row := _row(engine, low)).started_at and row,
            timeout=60,
            what="the priority-0 job to start",
            interval=0.05,
        )
    finally:
        stop.set()
        feeder.join()
    assert runner.proc.poll() is None, runner.log()
    with engine.connect() as conn:
        high = conn.execute(
            select(Job.started_at, Job.finished_at, Job.created_at).where(
                Job.priority == 10, Job.status == Status.SUCCEEDED
            )
        ).all()
    passed_by = sum(1 for h in high if h.created_at > x.created_at and h.started_at < x.started_at)
    length = statistics.median((h.finished_at - h.started_at).total_seconds() for h in high)
    waited = (x.started_at - x.created_at).total_seconds()
    # The bound the docs state: (10 - 0) steps of aging and one heartbeat, then the job ahead.
    bound = 10 * AGING_SECONDS + HEARTBEAT_SECONDS + 2 * length + 1.0
    assert passed_by > 0, "the stream kept going past it while it aged"
    assert waited <= bound, f"waited {waited:.1f} s, over the bound {bound:.1f} s"
    assert waited >= 10 * AGING_SECONDS * 0.8, "it should have waited its aging out"


def _count(engine: Engine, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(*where)).scalar_one())


@pytest.mark.timeout(300)
def test_a_gpu_queue_runs_only_on_the_worker_with_a_gpu(
    sqlite_engine: Engine, tmp_path, artifacts
) -> None:
    from distributed import Client

    from tests.runner.conftest import DaskCluster, launch

    cluster = DaskCluster(tmp_path, workers=2)
    try:
        cluster.start_scheduler()
        cluster.start_workers(1, "--resources", "GPU=1", "--name", "gpu-worker")
        cluster.start_workers(1, "--name", "plain-worker")
        cluster.wait_ready()
        with Client(cluster.address, timeout="30s") as client:
            named = {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}
        gpu, plain = named["gpu-worker"], named["plain-worker"]
        url = str(sqlite_engine.url)
        queues = json.dumps({"gpu": {"limit": 1, "resources": {"GPU": 1}}})
        runner = launch(
            url,
            artifacts,
            tmp_path / "runner.log",
            "--scheduler",
            cluster.address,
            RUNLAB_QUEUES=queues,
        )
        try:
            on_gpu = intake.submit(sqlite_engine, "test_where", {"tasks": 8}, queue="gpu")
            anywhere = intake.submit(sqlite_engine, "test_where", {"tasks": 8})

            def ended() -> bool:
                assert runner.proc.poll() is None, runner.log()
                return all(
                    queries.get_job(sqlite_engine, i).status.terminal for i in (on_gpu, anywhere)
                )

            wait_for(ended, timeout=120, what="both jobs to end")
        finally:
            runner.kill()
        gpu_job = queries.get_job(sqlite_engine, on_gpu)
        other = queries.get_job(sqlite_engine, anywhere)
        assert gpu_job.status is Status.SUCCEEDED, gpu_job.error
        assert gpu_job.result is not None and other.result is not None
        assert gpu_job.result["workers"] == [gpu] * 16
        # The same tasks without the queue's resources run on the plain worker too: it was
        # there to take them.
        assert plain in set(other.result["workers"])
        assert gpu_job.cost is not None and gpu_job.cost.total.tasks == 16
    finally:
        cluster.close()
