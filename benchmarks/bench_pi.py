"""π with 2×10⁹ samples: plain NumPy on all cores against Runlab's whole path, on each store.

plain:  the kind's own driver with its chunks on a warm `multiprocessing` pool of one process
        per core (benchmarks/whole_path.py): the same kernel on the same seeded chunks, no Dask,
        no store.
runlab: submit to the store, a warm runner claims it and runs it on its LocalCluster of one
        worker per core, and the job reaches `succeeded`: timed by the store's own clock, from
        the job's created time to its finished time.

The two alternate, run for run (plain, Runlab; Runlab, plain; …), so that noise on a shared machine
falls on both alike; each run's pair gives a ratio plain ÷ Runlab (1.0: Runlab costs nothing on
top). Prints each run, the median with min and max, the per-core rates, the load average before and
after, and a last summary line with every store's median ratio against the target of 0.9.

Run: .venv/bin/python benchmarks/bench_pi.py [--backend sqlite|postgres|both] [--repeat 5]
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import whole_path
from benchmarks.stores import store
from benchmarks.whole_path import Pair, load, spread
from compute import registry
from runlab.artifacts import ArtifactStore

TARGET = 0.9
SEED = 20261123


def run(backend: str, folder: Path, n: int, repeat: int, pool: ProcessPoolExecutor) -> list[Pair]:
    params = {"samples": n, "seed": SEED}
    chunks = registry.validate("monte_carlo_pi", params)["chunks"]
    cores = os.cpu_count() or 1
    print(f"\n== {backend}: {n:,} samples in {chunks} chunks; {repeat} alternated runs ==")
    print(f"load average before: {load()}")
    artifacts = folder / backend / "artifacts"
    with (
        store(backend, folder, "bench_pi") as (engine, url),
        whole_path.runner(url, artifacts),
    ):
        keep = ArtifactStore(str(artifacts))
        pairs: list[Pair] = []
        # Warm: workers started, NumPy imported.
        whole_path.through_runlab(engine, keep, "monte_carlo_pi", {"samples": 1_000_000})
        for i in range(repeat):
            (t_plain, mine), (t_runlab, stored) = whole_path.both(
                i,
                lambda: whole_path.plain("monte_carlo_pi", params, pool),
                lambda: whole_path.through_runlab(engine, keep, "monte_carlo_pi", params),
            )
            if stored["inside"] != mine["inside"]:
                raise SystemExit(
                    f"run {i + 1}: Runlab counted {stored['inside']}, plain {mine['inside']}"
                )
            pairs.append(Pair(t_plain, t_runlab))
            print(
                f"  run {i + 1}: plain {t_plain:.2f} s, Runlab {t_runlab:.2f} s: "
                f"ratio {t_plain / t_runlab:.3f}"
            )
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
    with tempfile.TemporaryDirectory(prefix="bench-pi-") as tmp, whole_path.pool(cores) as pool:
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
