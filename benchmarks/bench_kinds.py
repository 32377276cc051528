"""Throughput of each analysis kind's kernel on Dask, on 1 and on 2 workers.

For each kind: its own chunk plan and chunk function, sent to a fresh `LocalCluster` of one
single-threaded process per worker, timed from the first submit to the last result. Option
pricing is also compared with a plain vectorised NumPy pricer in this process, which computes
the same price and standard error (without the delta) on one core.

Run: .venv/bin/python benchmarks/bench_kinds.py [--paths 200000000]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import click
import numpy as np
from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute.kinds.option_pricing import OptionParams, plan, simulate, summarise


def plain_european_call(p: OptionParams, block: int = 1 << 20) -> tuple[float, float, float]:
    """Antithetic European call in plain NumPy blocks: (price, standard error, seconds)."""
    started = time.perf_counter()
    rng = np.random.default_rng(p.seed)
    drift = (p.r - 0.5 * p.sigma**2) * p.T
    vol = p.sigma * math.sqrt(p.T)
    disc = math.exp(-p.r * p.T)
    n = s1 = s2 = 0.0
    left = p.paths // 2
    while left > 0:
        m = min(block, left)
        z = rng.standard_normal(m)
        up = np.maximum(p.S * np.exp(drift + vol * z) - p.K, 0.0)
        down = np.maximum(p.S * np.exp(drift - vol * z) - p.K, 0.0)
        y = disc * 0.5 * (up + down)
        n += m
        s1 += float(y.sum())
        s2 += float(np.dot(y, y))
        left -= m
    price = s1 / n
    se = math.sqrt((s2 / n - price * price) / n)
    return price, se, time.perf_counter() - started


def on_dask(p: OptionParams, workers: int) -> tuple[dict[str, float], float]:
    """The kind's kernel over its own plan on `workers` processes: (summary, seconds)."""
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.submit(sum, [1]).result()  # workers warm
        sizes = plan(p)
        seeds = np.random.SeedSequence(p.seed).spawn(len(sizes))
        params = p.model_dump()
        started = time.perf_counter()
        futures = [
            client.submit(simulate, params, n, s, pure=False)
            for n, s in zip(sizes, seeds, strict=True)
        ]
        chunks = client.gather(futures)
        return summarise(chunks), time.perf_counter() - started


@click.command()
@click.option("--paths", default=200_000_000, show_default=True, help="European call paths.")
@click.option("--asian-paths", default=4_000_000, show_default=True, help="Asian call paths.")
def main(paths: int, asian_paths: int) -> None:
    print(f"machine: 2 cores as configured; NumPy {np.__version__}")
    euro = OptionParams(option_type="european_call", paths=paths, seed=1)
    price, se, plain_s = plain_european_call(euro)
    print(
        f"plain NumPy, 1 process, European call: {plain_s:.2f} s "
        f"({paths / plain_s / 1e6:.1f} M paths/s), price {price:.5f} ± {se:.5f}"
    )
    rates = {}
    for workers in (1, 2):
        got, secs = on_dask(euro, workers)
        rates[workers] = paths / secs
        print(
            f"option_pricing, European call, {workers} worker(s): {secs:.2f} s "
            f"({rates[workers] / 1e6:.1f} M paths/s), price {got['price']:.5f} "
            f"± {got['standard_error']:.5f}, delta {got['delta']:.4f}"
        )
    print(f"2 workers / plain NumPy: {rates[2] / (paths / plain_s):.2f}  (target >= 0.60)")
    asian = OptionParams(option_type="asian_call", paths=asian_paths, steps=252, seed=1)
    for workers in (1, 2):
        got, secs = on_dask(asian, workers)
        print(
            f"option_pricing, Asian call, 252 dates, {workers} worker(s): {secs:.2f} s "
            f"({asian_paths / secs / 1e6:.2f} M paths/s, "
            f"{asian_paths * 252 / secs / 1e6:.0f} M path-steps/s), price {got['price']:.5f}"
        )


if __name__ == "__main__":
    main()
