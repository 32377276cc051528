"""What measuring a job's cost costs: the same tasks, plain and metered, on one LocalCluster.

Two workloads, each run in rounds that alternate plain and metered so that a change in the
machine's load falls on both alike:

pi:     the `monte_carlo_pi` kind's own chunk plan and kernel (`count_inside`), as
        `benchmarks/bench_kinds.py` times it; the figure is the median round's seconds.
no-op:  many tasks that return at once, so the meter's fixed cost per task (two clock reads,
        two small /proc file operations, one event) is all there is to see.

Metered tasks go through `compute.cost.MeteredClient`, as a job's driver sends them. Every
metered round must give the plain round's numbers and put exactly its tasks in the ledger.

Run: .venv/bin/python benchmarks/bench_cost.py [--samples 2000000000] [--rounds 5] [--noops 2000]
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute.cost import CostLedger, MeteredClient
from compute.kinds.monte_carlo_pi import PiParams, chunk_sizes, count_inside


def noop(i: int) -> int:
    return i


def rounds(
    client: Client,
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    n: int,
) -> tuple[list[float], list[float]]:
    """Seconds of each plain round and each metered round, alternated, checked alike."""
    plain: list[float] = []
    metered: list[float] = []
    expected: list[Any] | None = None
    for _ in range(n):
        for runs, meter in ((plain, False), (metered, True)):
            ledger = CostLedger()
            sender: Any = MeteredClient(client, ledger, lambda: (0, "bench")) if meter else client
            started = time.perf_counter()
            out = client.gather([sender.submit(fn, *args, pure=False) for args in jobs])
            runs.append(time.perf_counter() - started)
            expected = out if expected is None else expected
            if out != expected:
                raise click.ClickException(f"{fn.__name__}: a round gave other results")
            if meter and ledger.total().tasks != len(jobs):
                raise click.ClickException(
                    f"the ledger saw {ledger.total().tasks} of {len(jobs)} tasks"
                )
    return plain, metered


def line(what: str, plain: list[float], metered: list[float], per: int = 1) -> str:
    p, m = statistics.median(plain), statistics.median(metered)
    extra = (m - p) / p * 100
    each = (m - p) / per * 1e6
    tail = f", {each:+.0f} µs per task" if per > 1 else ""
    spread = f"{min(plain):.2f}-{max(plain):.2f} s plain, {min(metered):.2f}-{max(metered):.2f} s"
    return (
        f"{what}: plain {p:.3f} s, metered {m:.3f} s (median of {len(plain)}; rounds {spread}): "
        f"{extra:+.1f} %{tail}"
    )


@click.command()
@click.option("--samples", default=2_000_000_000, show_default=True, help="π samples per round.")
@click.option("--rounds", "n", default=5, show_default=True, help="Rounds of each, alternated.")
@click.option("--noops", default=2000, show_default=True, help="No-op tasks per round.")
def main(samples: int, n: int, noops: int) -> None:
    print(
        f"machine: {os.cpu_count()} cores, {platform.platform()}; NumPy {np.__version__}; "
        f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}",
        flush=True,
    )
    p = PiParams(samples=samples, seed=1)
    assert p.chunks is not None
    sizes = chunk_sizes(p.samples, p.chunks)
    seeds = np.random.SeedSequence(p.seed).spawn(p.chunks)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.gather([client.submit(count_inside, 1000, seeds[0], pure=False)])  # warm up
        print(f"pi: {samples:,} samples in {len(sizes)} chunks on 2 workers", flush=True)
        pi = rounds(client, count_inside, list(zip(sizes, seeds, strict=True)), n)
        print(f"no-op: {noops:,} tasks on 2 workers", flush=True)
        nothing = rounds(client, noop, [(i,) for i in range(noops)], n)
    print()
    print(line("monte_carlo_pi", *pi))
    print(line("no-op tasks", *nothing, per=noops))
    print(f"load average now {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
