"""How long the Result tab of a 32-start Himmelblau optimisation takes to show its answer in
Chromium: from the page's request to its headline, its per-start table and its chart drawn, a
few times over.

The result is the kind's own (its driver run in this process on the tests' stand-in context),
stored in a fresh SQLite file that a real `runlab web` serves. The figure printed is the
median and the worst of the timed loads, after one warm-up load. Beside it, loads of the
lightest page, /runners with no runner, alternate with them: Streamlit's own floor on this
machine, from the request to its first heading, that no page of the app can go below.

Run: .venv/bin/python benchmarks/bench_result_page.py [--loads 5]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import click

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


@click.command()
@click.option("--loads", default=5, show_default=True, help="Timed loads, after one warm-up.")
def main(loads: int) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'runlab.db'}"
        public_id = stored_job(url)
        took: list[float] = []
        floor: list[float] = []
        with served(url, Path(tmp)) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            for i in range(loads + 1):
                page = context.new_page()
                started = time.monotonic()
                page.goto(f"{base}/job?id={public_id}")
                label = page.get_by_test_id("stMetricLabel")
                label.filter(has_text="Minima found").wait_for(timeout=60_000)
                page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
                page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
                if i:  # the first load warms the server's imports and caches
                    took.append(time.monotonic() - started)
                page.close()
                page = context.new_page()
                started = time.monotonic()
                page.goto(f"{base}/runners")
                page.get_by_test_id("stHeading").first.wait_for(timeout=60_000)
                if i:
                    floor.append(time.monotonic() - started)
                page.close()
            browser.close()
    print(
        f"optimize Result tab, 32-start Himmelblau: median {statistics.median(took):.2f} s, "
        f"worst {max(took):.2f} s over {loads} loads (target: under 2 s)"
    )
    print(
        f"floor, /runners to its heading: median {statistics.median(floor):.2f} s, "
        f"worst {max(floor):.2f} s"
    )
    print(f"ratio: Result tab / floor = {statistics.median(took) / statistics.median(floor):.2f}")


if __name__ == "__main__":
    main()
