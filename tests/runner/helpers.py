"""What the fault tests share: waiting on jobs, expected π counts, and the invariant check."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from distributed import Client
from sqlalchemy import Engine

from compute import intake
from compute.kinds.monte_carlo_pi import chunk_sizes, count_inside
from jobstore import queries
from jobstore.doctor import check
from jobstore.views import JobDetail
from tests.polling import wait_for

# The runners of these tests wait the default 60 s without a worker, at two heartbeats a second.
STUCK_AFTER = 61.0


def assert_sound(engine: Engine, lease_grace: float = 0.0) -> None:
    """Every fault test ends here: the store still keeps every invariant, and no job is stuck
    on a cluster without workers."""
    found = check(engine, lease_grace=lease_grace, stuck_after=STUCK_AFTER)
    assert [str(v) for v in found] == []


def pi_under_way(engine: Engine, params: dict[str, int], *, past: float) -> str:
    """Submit a π job and return once its progress is past `past`: a job to interrupt."""
    job = intake.submit(engine, "monte_carlo_pi", params)
    wait_for(
        lambda: queries.get_job(engine, job).progress > past,
        timeout=60,
        what=f"the job to pass {past:.0%}",
    )
    return job


def watch(engine: Engine, public_id: str, timeout: float) -> list[JobDetail]:
    """Every distinct state the job passes through, polled until it ends."""
    seen: list[JobDetail] = []

    def ended() -> bool:
        job = queries.get_job(engine, public_id)
        if not seen or (job.progress, job.status, job.stage) != (
            seen[-1].progress,
            seen[-1].status,
            seen[-1].stage,
        ):
            seen.append(job)
        return job.status.terminal

    wait_for(ended, timeout=timeout, what=f"job {public_id} to end", interval=0.02)
    return seen


def scheduler_tasks(engine: Engine) -> Callable[[], int]:
    """How many tasks the live runner's Dask scheduler holds, asked over a client of our own."""
    (runner,) = [r for r in queries.runners(engine, alive_within=60) if r.alive]
    client = Client(runner.scheduler_address, timeout="20s")

    def count() -> int:
        return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

    count.client = client  # type: ignore[attr-defined]
    return count


def expected_inside(samples: int, chunks: int, seed: int) -> int:
    """The π kernel's count for a plan, computed here without Dask or the store."""
    seeds = np.random.SeedSequence(seed).spawn(chunks)
    return sum(count_inside(n, s) for n, s in zip(chunk_sizes(samples, chunks), seeds, strict=True))


def _lowest_priority() -> None:
    """Nice 19, in a session of its own: where the kernel groups processes by session
    (autogroup), a nice value weighs only against the same session's, and a runner (or each
    role of a deployment) has a session of its own, so the session's own weight is lowered
    too."""
    os.setsid()
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text("19")
    os.nice(19)


@contextlib.contextmanager
def idle_pool() -> Iterator[ProcessPoolExecutor]:
    """Two processes for what a test checks against, on the CPU the runners leave idle: never
    in the way of their heartbeats and leases."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn, initializer=_lowest_priority) as pool:
        yield pool


def counted(pool: ProcessPoolExecutor, samples: int, chunks: int, seed: int) -> Callable[[], int]:
    """`expected_inside`, started at once in `pool`, chunk by chunk, while the test goes on:
    call the result for the count."""
    seeds = np.random.SeedSequence(seed).spawn(chunks)
    counts = [
        pool.submit(count_inside, n, s)
        for n, s in zip(chunk_sizes(samples, chunks), seeds, strict=True)
    ]
    return lambda: sum(c.result() for c in counts)


@contextlib.contextmanager
def counted_meanwhile(samples: int, chunks: int, seed: int) -> Iterator[Callable[[], int]]:
    """`counted` in a pool of its own, for one job; a test that fails early does not wait for
    the chunks not yet begun."""
    with idle_pool() as pool:
        try:
            yield counted(pool, samples, chunks, seed)
        finally:
            pool.shutdown(cancel_futures=True)


def older_runlab(folder: Path) -> Path:
    """A folder that, first on a Dask worker's path, makes it an install of Runlab 0.0.1: its
    metadata is what `runlab.versions` reads."""
    info = folder / "runlab-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: runlab\nVersion: 0.0.1\n")
    return folder
