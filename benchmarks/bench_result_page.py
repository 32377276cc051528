"""How long the Result tab of a 32-start Himmelblau optimisation takes to show its answer in
Chromium, with its headline, its per-start table and its chart drawn, a few times over.

Three figures, each the median and the worst of the timed loads after one warm-up:

- a fresh page, on the browser's own clock: from the navigation's start to the last of the
  three drawn, as a visitor sees it (`performance.now()`, noted by a MutationObserver);
- the same loads on this script's clock, from asking Playwright for the page to hearing back
  that all three are drawn: the first figure plus Playwright's own round trips;
- the tab switch: on a page opened at its Parameters tab, from the click on Result to the
  three drawn.

Beside them, loads of the lightest page, /runners with no runner, alternate with them:
Streamlit's own floor on this machine, from the request to its first heading, that no page of
the app can go below. Most of the rest is the browser evaluating Plotly's 4.7 MB bundle, which
Streamlit loads on the first chart of a page.

The result is the kind's own (its driver run in this process on the tests' stand-in context),
stored in a fresh SQLite file that a real `runlab web` serves.

Run: .venv/bin/python benchmarks/bench_result_page.py [--loads 5]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import click
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compute import registry  # noqa: E402
from compute.results import clean_result  # noqa: E402
from jobstore import transitions  # noqa: E402
from jobstore.engine import make_engine, migrate  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.processes import served  # noqa: E402
from tests.ui import seed  # noqa: E402
from tests.unit.fake_context import FakeContext  # noqa: E402

PARAMS = {"objective": "himmelblau", "starts": 32, "seed": 4}


def stored_job(url: str) -> str:
    registry.load(())
    kind = registry.get("optimize")
    result = clean_result(kind.run(FakeContext(), kind.parse(PARAMS)))
    engine = make_engine(url)
    migrate(engine)
    seed.runner(engine)
    public_id, lease = seed.running_kind(engine, "optimize", PARAMS, name="Himmelblau, 32 starts")
    transitions.succeed(engine, lease, result)
    engine.dispose()
    return public_id


# Each mark is the browser's clock when the first element that matches it appeared.
MARKS = {
    "headline": "[data-testid=stMetricLabel]",
    "table": "[data-testid=stDataFrame] canvas",
    "chart": ".js-plotly-plot .main-svg",
}
OBSERVE = (
    "window.__drawn = {}; new MutationObserver(() => { for (const [k, s] of Object.entries("
    + repr(MARKS).replace("'", '"')
    + ")) if (!(k in window.__drawn) && document.querySelector(s)) "
    "window.__drawn[k] = performance.now(); }).observe(document, {subtree: true, childList: true});"
)


def drawn(page: Page) -> None:
    """Wait for the headline's minima count, the table and the chart."""
    label = page.get_by_test_id("stMetricLabel")
    label.filter(has_text="Minima found").wait_for(timeout=60_000)
    for selector in MARKS.values():
        page.locator(selector).first.wait_for(timeout=60_000)


def last_mark(page: Page) -> float:
    """Seconds on the page's own clock until the last of the three was drawn."""
    marks: dict[str, float] = page.evaluate("window.__drawn")
    return max(marks[k] for k in MARKS) / 1000


def line(what: str, figures: list[float]) -> str:
    return f"{what}: median {statistics.median(figures):.2f} s, worst {max(figures):.2f} s"


@click.command()
@click.option("--loads", default=5, show_default=True, help="Timed loads, after one warm-up.")
def main(loads: int) -> None:
    from playwright.sync_api import sync_playwright

    browser_clock: list[float] = []
    wall: list[float] = []
    switch: list[float] = []
    floor: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'runlab.db'}"
        public_id = stored_job(url)
        with served(url, Path(tmp)) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            context.add_init_script(OBSERVE)
            for i in range(loads + 1):
                timed = bool(i)  # the first round warms the server's imports and caches
                page = context.new_page()
                started = time.monotonic()
                page.goto(f"{base}/job?id={public_id}")
                drawn(page)
                if timed:
                    wall.append(time.monotonic() - started)
                    browser_clock.append(last_mark(page))
                page.close()

                page = context.new_page()
                page.goto(f"{base}/job?id={public_id}&tab=Parameters")
                page.get_by_test_id("stJson").first.wait_for(timeout=60_000)
                started = time.monotonic()
                page.get_by_role("tab", name="Result").click()
                drawn(page)
                if timed:
                    switch.append(time.monotonic() - started)
                page.close()

                page = context.new_page()
                started = time.monotonic()
                page.goto(f"{base}/runners")
                page.get_by_test_id("stHeading").first.wait_for(timeout=60_000)
                if timed:
                    floor.append(time.monotonic() - started)
                page.close()
            browser.close()
    print(f"optimize Result tab, 32-start Himmelblau, over {loads} loads (target: under 2 s)")
    print("  " + line("fresh page, browser's clock", browser_clock))
    print("  " + line("fresh page, this script's clock", wall))
    print("  " + line("switch to the Result tab", switch))
    print("  " + line("floor, /runners to its heading", floor))
    print(
        f"  ratio: fresh page (browser's clock) / floor = "
        f"{statistics.median(browser_clock) / statistics.median(floor):.2f}"
    )


if __name__ == "__main__":
    main()
