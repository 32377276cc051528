"""A sweep of 10,000 jobs: how long it takes to store, and to open its page, on each backend.

For each store (a fresh SQLite file; a fresh schema in PostgreSQL):

store:    `compute.intake.submit_sweep` of a 100 × 100 option-pricing grid: the plan, every
          child checked by the kind's model, then the sweep and its 10,000 jobs in one
          transaction. Target: under 5 s, checks included.
points:   every child then claimed and ended with a result, through the runner's own verbs,
          so that the page has 10,000 rows of results to tabulate and chart.
read:     `jobstore.sweeps.points`, the one statement the page makes per refresh, p50 of
          REPEAT.
page:     `runlab web` on the store, and Chromium timed, REPEAT_PAGE times each way:
          - in the app: from a click that redraws the page's live part (the table, the best
            point, the heatmap and the parallel coordinates over all 10,000 points) until the
            new best point is shown. Target: median under 1 s;
          - in a new tab: from the address bar until the table's rows are there, which also
            loads Streamlit's scripts and opens its connection; shown beside a bare Streamlit
            page's figure, Streamlit's floor here.

Run: .venv/bin/python benchmarks/bench_sweeps.py [--backend sqlite|postgres|both]
Exits 1 when a target is missed.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stores import store  # noqa: E402
from compute import intake, registry  # noqa: E402
from jobstore import sweeps  # noqa: E402
from jobstore import transitions as T  # noqa: E402
from tests.processes import served  # noqa: E402

PG_SCHEMA = "bench_sweeps"
AXES = {"sigma": "log:0.05:1:100", "T": "log:0.1:10:100"}  # 100 × 100
REPEAT = 10
REPEAT_PAGE = 7
TARGET_STORE_S = 5.0
TARGET_PAGE_S = 1.0
IDLE = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
BARE_PAGE = 'import streamlit as st\nst.title("Bare")\n'


def finish_all(engine: Engine) -> None:
    """Claim every child and end it with a price, as a runner would, a thousand at a time."""
    while leases := T.claim(engine, "bench", limit=1000, versions={"runlab": "bench"}):
        T.succeed_many(
            engine,
            [
                T.Success(
                    lease,
                    {
                        "price": 100 * lease.params["sigma"] * lease.params["T"] ** 0.5,
                        "standard_error": 0.01,
                        "delta": 0.5,
                    },
                )
                for lease in leases
            ],
        )


def median_ms(samples: list[float]) -> str:
    return f"{1000 * statistics.median(samples):,.0f} ms (min {1000 * min(samples):,.0f})"


def browser_times(url: str, sweep_id: str, folder: Path) -> tuple[list[float], list[float]]:
    """Seconds for the live part to redraw after a click, and for a new tab to show rows."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    in_app: list[float] = []
    new_tab: list[float] = []
    with served(url, folder) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        rows = "[data-testid='stDataFrame'] td[role='gridcell']"
        for _ in range(REPEAT_PAGE + 1):  # the first, a cold start, is left out
            t0 = time.perf_counter()
            page.goto(f"{base}/sweep?id={sweep_id}")
            page.wait_for_selector(rows, state="attached", timeout=60_000)
            new_tab.append(time.perf_counter() - t0)
        new_tab = new_tab[1:]
        best = page.locator("p", has_text=" at Volatility")
        best.first.wait_for(timeout=60_000)
        # Settled: both charts drawn, before the clicks are timed.
        page.locator(".js-plotly-plot").nth(1).wait_for(state="attached", timeout=60_000)
        page.evaluate(IDLE)
        for i in range(REPEAT_PAGE):
            want = "highest" if i % 2 == 0 else "lowest"
            before = best.first.inner_text()
            t0 = time.perf_counter()
            page.get_by_test_id("stButtonGroup").get_by_text(want, exact=True).click()
            page.wait_for_function(
                "([old]) => [...document.querySelectorAll('p')].some(p =>"
                " p.innerText.includes(' at Volatility') && p.innerText !== old)",
                arg=[before],
                timeout=60_000,
            )
            # Drawn: two frames in a row with the browser's main thread free again.
            page.evaluate(IDLE)
            in_app.append(time.perf_counter() - t0)
        print("  in-app samples:", ", ".join(f"{t:.2f}" for t in in_app))
        browser.close()
    return in_app, new_tab


def bare_page(folder: Path) -> list[float]:
    """Seconds for a new tab to show a bare Streamlit page: Streamlit's floor here."""
    import subprocess

    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.processes import free_port

    script = folder / "bare.py"
    script.write_text(BARE_PAGE)
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("streamlit")),
            "run",
            str(script),
            "--server.headless=true",
            f"--server.port={port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    out: list[float] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            deadline = time.monotonic() + 60
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5_000)
                    page.wait_for_selector("h1", timeout=5_000)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
            for _ in range(REPEAT_PAGE):
                t0 = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("h1", timeout=30_000)
                out.append(time.perf_counter() - t0)
            browser.close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    return out


def run(backend: str, folder: Path, bare: list[float]) -> dict[str, Any]:
    print(f"\n== {backend} ==")
    with store(backend, folder, PG_SCHEMA) as (engine, url):
        t0 = time.perf_counter()
        sweep_id = intake.submit_sweep(
            engine, "option_pricing", {"paths": 1000, "seed": 1}, AXES, name="Bench grid"
        )
        stored = time.perf_counter() - t0
        n = sweeps.get(engine, sweep_id).children
        print(f"  stored {n:,} children in {stored:.2f} s (target < {TARGET_STORE_S:.0f} s)")
        t0 = time.perf_counter()
        finish_all(engine)
        print(f"  ended them with results in {time.perf_counter() - t0:.1f} s")
        reads = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            points = sweeps.points(engine, sweep_id)
            reads.append(time.perf_counter() - t0)
        assert len(points) == n
        print(f"  the page's read of {n:,} points: {median_ms(reads)}")
        in_app, new_tab = browser_times(url, sweep_id, folder)
        print(f"  page, in the app (a redraw of the live part): {median_ms(in_app)}")
        print(
            f"  page, in a new tab: {median_ms(new_tab)}; a bare Streamlit page: {median_ms(bare)}"
        )
    return {
        "stored": stored,
        "in_app": statistics.median(in_app),
        "new_tab": statistics.median(new_tab),
    }


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgres", "both"]),
    default="both",
    show_default=True,
)
def main(backend: str) -> None:
    registry.load()
    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    with tempfile.TemporaryDirectory(prefix="bench-sweeps-") as tmp:
        folder = Path(tmp)
        bare = bare_page(folder)
        results = {b: run(b, folder, bare) for b in backends}
    ok = True
    parts = []
    for b, r in results.items():
        ok &= r["stored"] < TARGET_STORE_S and r["in_app"] < TARGET_PAGE_S
        parts.append(
            f"{b}: stored {r['stored']:.2f} s, page {r['in_app']:.2f} s in the app, "
            f"{r['new_tab']:.2f} s in a new tab"
        )
    print(
        "\nsummary: "
        + "; ".join(parts)
        + f"; bare page {statistics.median(bare):.2f} s; "
        + ("all targets met" if ok else "A TARGET WAS MISSED")
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
