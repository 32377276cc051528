"""π with 2×10⁹ samples: plain NumPy on all cores against Runlab's whole path, on each store.

plain:  a warm `multiprocessing` pool of one process per core runs the same kernel on the same
        seeded chunks (no Dask, no store).
runlab: submit to the store, a warm runner claims it and runs it on its LocalCluster of one
        worker per core, and the job reaches `succeeded`: timed by the store's own clock, from
        the job's created time to its finished time.

The two alternate, run for run (plain, Runlab, plain, …), so that noise on a shared machine falls
on both alike; each run's pair gives a ratio plain ÷ Runlab (1.0: Runlab costs nothing on top).
Prints each run, the median with min and max, the per-core rates, the load average before and
after, and a last summary line with every store's median ratio against the target of 0.9.

Run: .venv/bin/python benchmarks/bench_pi.py [--backend sqlite|postgres|both] [--repeat 5]
"""

from __future__ import annotations

import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stores import store  # noqa: E402
from compute import intake, registry  # noqa: E402
from compute.kinds.monte_carlo_pi import chunk_sizes, count_inside  # noqa: E402
from jobstore import queries  # noqa: E402
from jobstore.models import Status  # noqa: E402

TARGET = 0.9
SEED = 20261123
POLL = 0.25  # seconds: this process must not steal the workers' cores


@dataclass(frozen=True)
class Pair:
    plain: float
    runlab: float  # the store's created → finished
    wall: float  # submit → this script saw `succeeded`

    @property
    def ratio(self) -> float:
        return self.plain / self.runlab


def plain(samples: int, chunks: int, pool: ProcessPoolExecutor) -> tuple[float, int]:
    start = time.perf_counter()
    seeds = np.random.SeedSequence(SEED).spawn(chunks)
    inside = sum(pool.map(count_inside, chunk_sizes(samples, chunks), seeds))
    return time.perf_counter() - start, inside


def through_runlab(engine: Engine, samples: int) -> tuple[float, float, int]:
    start = time.perf_counter()
    public_id = intake.submit(engine, "monte_carlo_pi", {"samples": samples, "seed": SEED})
    while True:
        job = queries.get_job(engine, public_id, log_lines=0, max_points=1)
        if job.status.terminal:
            break
        time.sleep(POLL)
    wall = time.perf_counter() - start
    if job.status is not Status.SUCCEEDED or job.result is None or job.finished_at is None:
        raise SystemExit(f"the job ended {job.status}: {job.error}")
    stored = (job.finished_at - job.created_at).total_seconds()
    return wall, stored, int(job.result["inside"])


def spread(values: list[float], unit: str = "s", digits: int = 2) -> str:
    return (
        f"{statistics.median(values):.{digits}f} {unit} "
        f"(min {min(values):.{digits}f}, max {max(values):.{digits}f})"
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def run(backend: str, folder: Path, n: int, repeat: int, pool: ProcessPoolExecutor) -> list[Pair]:
    chunks = registry.validate("monte_carlo_pi", {"samples": n, "seed": SEED})["chunks"]
    cores = os.cpu_count() or 1
    print(f"\n== {backend}: {n:,} samples in {chunks} chunks; {repeat} alternated runs ==")
    print(f"load average before: {load()}")
    with store(backend, folder, "bench_pi") as (engine, url):
        env = {**os.environ, "RUNLAB_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
        runner = subprocess.Popen(
            [sys.executable, "-m", "runlab.cli", "runner", "--concurrency", "1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        pairs: list[Pair] = []
        try:
            through_runlab(engine, 1_000_000)  # warm: workers started, NumPy imported
            for i in range(repeat):
                t_plain, inside = plain(n, chunks, pool)
                wall, stored, counted = through_runlab(engine, n)
                if counted != inside:
                    raise SystemExit(f"run {i + 1}: Runlab counted {counted}, plain {inside}")
                pairs.append(Pair(t_plain, stored, wall))
                print(
                    f"  run {i + 1}: plain {t_plain:.2f} s, Runlab {stored:.2f} s "
                    f"({wall:.2f} s seen here): ratio {t_plain / stored:.3f}"
                )
        finally:
            os.killpg(runner.pid, signal.SIGTERM)
            try:
                runner.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(runner.pid, signal.SIGKILL)
    plain_s = [p.plain for p in pairs]
    runlab_s = [p.runlab for p in pairs]
    print(f"plain NumPy, {cores} processes: {spread(plain_s)}")
    print(f"Runlab, submit to succeeded:   {spread(runlab_s)}")
    per_core = [n / t / cores / 1e6 for t in plain_s], [n / t / cores / 1e6 for t in runlab_s]
    print(
        f"per core: plain {statistics.median(per_core[0]):.0f} M samples/s, "
        f"Runlab {statistics.median(per_core[1]):.0f} M samples/s"
    )
    print(f"ratio plain ÷ Runlab: {spread([p.ratio for p in pairs], unit='', digits=3)}")
    print(f"load average after: {load()}")
    return pairs


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgres", "both"]),
    default="both",
    show_default=True,
)
@click.option("--samples", default="2e9", show_default=True, help="Samples per run.")
@click.option("--repeat", default=5, show_default=True, help="Alternated runs of each.")
def main(backend: str, samples: str, repeat: int) -> None:
    n = int(float(samples))
    cores = os.cpu_count() or 1
    print(
        f"machine: {platform.node()} {platform.machine()}, {cores} cores, Python "
        f"{platform.python_version()}, NumPy {np.__version__}"
    )
    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    results: dict[str, list[Pair]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pi-") as tmp, ProcessPoolExecutor(cores) as pool:
        list(pool.map(count_inside, [1000] * cores, np.random.SeedSequence(0).spawn(cores)))
        for b in backends:
            results[b] = run(b, Path(tmp), n, repeat, pool)
    parts = []
    ok = True
    for b, pairs in results.items():
        ratio = statistics.median(p.ratio for p in pairs)
        ok &= ratio >= TARGET
        parts.append(f"{b} {ratio:.3f} (min {min(p.ratio for p in pairs):.3f})")
    print(
        f"\nsummary: π, plain ÷ Runlab, median of {repeat} alternated runs: "
        + "; ".join(parts)
        + f"; target ≥ {TARGET}: "
        + ("met" if ok else "MISSED")
    )


if __name__ == "__main__":
    main()
