"""π with 2×10⁹ samples: plain NumPy on all cores against Runlab's whole path.

plain:  a warm process pool runs the same kernel on the same seeded chunks (no Dask, no store).
runlab: submit to the store, a warm runner claims it and runs it on its LocalCluster, and the
        job reaches `succeeded`: timed by the store's own clock, from the job's created time to
        its finished time (the wall time seen by this script, polling every 0.25 s, is printed
        beside it).

Prints both times and the ratio plain ÷ runlab (1.0 means Runlab costs nothing on top).
Run: .venv/bin/python benchmarks/bench_pi.py [--samples 2e9] [--repeat 3]
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
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compute import intake, registry  # noqa: E402
from compute.kinds.monte_carlo_pi import chunk_sizes, count_inside  # noqa: E402
from jobstore import queries  # noqa: E402
from jobstore.engine import make_engine, migrate  # noqa: E402
from jobstore.models import Status  # noqa: E402


def plain(samples: int, chunks: int, seed: int, pool: ProcessPoolExecutor) -> tuple[float, int]:
    start = time.perf_counter()
    seeds = np.random.SeedSequence(seed).spawn(chunks)
    inside = sum(pool.map(count_inside, chunk_sizes(samples, chunks), seeds))
    return time.perf_counter() - start, inside


def through_runlab(engine, samples: int, seed: int) -> tuple[float, float, int]:
    start = time.perf_counter()
    public_id = intake.submit(engine, "monte_carlo_pi", {"samples": samples, "seed": seed})
    while True:
        job = queries.get_job(engine, public_id, log_lines=0, max_points=1)
        if job.status.terminal:
            break
        time.sleep(0.25)  # light polling: this process must not steal the workers' cores
    wall = time.perf_counter() - start
    if job.status is not Status.SUCCEEDED:
        raise SystemExit(f"the job ended {job.status}: {job.error}")
    stored = (job.finished_at - job.created_at).total_seconds()
    return wall, stored, int(job.result["inside"])


@click.command()
@click.option("--samples", default="2e9", help="Samples per run.")
@click.option("--repeat", default=3, show_default=True, help="Runs of each; the median counts.")
@click.option("--database-url", default=None, help="Store to use; default a temporary SQLite file.")
def main(samples: str, repeat: int, database_url: str | None) -> None:
    n = int(float(samples))
    params = registry.validate("monte_carlo_pi", {"samples": n, "seed": 20261123})
    chunks, seed = params["chunks"], params["seed"]
    cores = os.cpu_count() or 1
    tmp = tempfile.mkdtemp(prefix="bench-pi-")
    url = database_url or f"sqlite:///{tmp}/runlab.db"
    engine = make_engine(url)
    migrate(engine)
    print(
        f"machine: {platform.node()} {platform.machine()}, {cores} cores, Python "
        f"{platform.python_version()}, NumPy {np.__version__}"
    )
    print(f"store: {engine.dialect.name}; samples {n:,} in {chunks} chunks; median of {repeat}")

    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(count_inside, [1000] * cores, np.random.SeedSequence(0).spawn(cores)))
        plain_runs = [plain(n, chunks, seed, pool) for _ in range(repeat)]

    env = {**os.environ, "RUNLAB_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "runlab.cli", "runner", "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        through_runlab(engine, 1_000_000, 1)  # warm: workers started, NumPy imported
        runlab_runs = [through_runlab(engine, n, seed) for _ in range(repeat)]
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        try:
            runner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)

    assert {r[1] for r in plain_runs} == {r[2] for r in runlab_runs}, "results differ"
    t_plain = statistics.median(r[0] for r in plain_runs)
    t_wall = statistics.median(r[0] for r in runlab_runs)
    t_runlab = statistics.median(r[1] for r in runlab_runs)
    print(
        f"plain NumPy, {cores} processes: {t_plain:6.2f} s  ({n / t_plain / 1e6:,.0f} M samples/s)"
    )
    print(
        f"Runlab, submit to succeeded: {t_runlab:6.2f} s  ({n / t_runlab / 1e6:,.0f} M samples/s;"
        f" {t_wall:.2f} s of wall time until this script saw it)"
    )
    print(f"ratio plain / runlab: {t_plain / t_runlab:.3f}")


if __name__ == "__main__":
    main()
