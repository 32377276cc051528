"""Every chart's labels inside the chart, in Chromium: the job page's Progress and Timeline tabs
and the standalone report, for a π job with a series of several points and for one computed in
a single chunk, whose x axis must hold its one point on a sane range."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from compute import registry
from jobstore import queries, reports
from jobstore import transitions as T
from jobstore.engine import make_engine, migrate
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.pi_report import sampling
from tests.processes import served
from tests.ui import seed
from ui import report

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

UI_TIMEOUT = 60_000
# Each chart's tick labels, axis titles and legend entries, as the browser laid them out, with
# the box of the chart's own SVG canvas: a label drawn past the canvas's edge is cut off.
OUTSIDE_JS = """
() => {
  const out = [];
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  plots.forEach((plot, i) => {
    const svg = plot.querySelector('svg.main-svg');
    if (!svg) { out.push({chart: i, text: '(not drawn)'}); return; }
    const box = svg.getBoundingClientRect();
    const texts = plot.querySelectorAll(
      '.xtick text, .ytick text, .g-xtitle text, .g-ytitle text, .legendtext, .gtitle');
    for (const t of texts) {
      const r = t.getBoundingClientRect();
      if (r.width === 0 || !t.textContent.trim()) continue;
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 ||
          r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
        out.push({chart: i, text: t.textContent,
                  label: [r.left, r.right, r.top, r.bottom].map(Math.round),
                  canvas: [box.left, box.right, box.top, box.bottom].map(Math.round)});
      }
    }
  });
  return out;
}
"""
# Each chart's x range and the x of every point it draws.
X_RANGES_JS = """
() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => ({
  range: plot._fullLayout.xaxis.range.slice(),
  type: plot._fullLayout.xaxis.type,
  xs: plot.data.flatMap(trace => (trace.x || []).filter(x => typeof x === 'number')),
}))
"""


@dataclass(frozen=True)
class Store:
    url: str
    folder: Path
    several: str  # a π job whose series has several points, after a wait in the queue
    one_chunk: str  # a π job that reported one point per series


def _one_chunk(engine: Any) -> str:
    """A π job computed in one chunk: each series has its single point at 4,000,000 samples."""
    public_id = seed.queued(engine, "one chunk", samples=4_000_000)
    [lease] = T.claim(engine, seed.RUNNER, limit=1, versions={"runlab": "0.1.0"})
    metrics = [("estimate", 4_000_000, 3.14163), ("standard_error", 4_000_000, 0.00082)]
    reports.report(engine, lease, sampling(1.0, metrics=metrics), lease_seconds=30)
    T.succeed(engine, lease, {**seed.PI_RESULT, "samples": 4_000_000}, None)
    return public_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("bounds")
    url = f"sqlite:///{folder / 'runlab.db'}"
    engine = make_engine(url)
    migrate(engine)
    seed.runner(engine)
    several = seed.succeeded(engine, "several points")
    one_chunk = _one_chunk(engine)
    engine.dispose()
    return Store(url, folder, several, one_chunk)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def drawn(page: Page, count: int) -> None:
    """Wait until `count` charts have drawn their axes."""
    page.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot .xtick text').length > 0 && "
        "document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= n",
        arg=count,
        timeout=UI_TIMEOUT,
    )


def assert_inside(page: Page, where: str) -> None:
    outside = page.evaluate(OUTSIDE_JS)
    assert outside == [], f"{where}: labels outside their chart: {outside}"


def assert_point_in_range(page: Page, where: str) -> None:
    """A one-point series sits inside its x range, and the range is not a sliver of a unit
    around it ("3.999999M … 4.000001M")."""
    charts = [c for c in page.evaluate(X_RANGES_JS) if c["xs"] and c["type"] == "linear"]
    assert charts, f"{where}: no chart with numeric x"
    for c in charts:
        lo, hi = c["range"]
        assert all(lo <= x <= hi for x in c["xs"]), f"{where}: {c}"
        assert hi - lo >= 1, f"{where}: x range {lo}..{hi} is a sliver around {c['xs']}"


@pytest.mark.timeout(300)
def test_the_reports_labels_are_inside_their_charts(
    store: Store, chromium: Browser, tmp_path: Path
) -> None:
    registry.load(())
    engine = make_engine(store.url)
    try:
        for public_id in (store.several, store.one_chunk):
            job = queries.get_job(engine, public_id)
            html = report.html_report(
                job, registry.find(job.kind), made_at=datetime.now(UTC), link="http://x/job"
            )
            path = tmp_path / f"{public_id}.html"
            path.write_text(html, encoding="utf-8")
            page = chromium.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(path.as_uri())
            drawn(page, 3)  # the result, the timeline and the series
            assert_inside(page, f"report of {job.name}")
            if public_id == store.one_chunk:
                assert_point_in_range(page, "report's series of the one-chunk job")
            page.close()
    finally:
        engine.dispose()


@pytest.mark.timeout(300)
def test_the_progress_and_timeline_tabs_labels_are_inside_their_charts(
    store: Store, chromium: Browser
) -> None:
    with served(store.url, store.folder) as base:
        page = chromium.new_page(viewport={"width": 1280, "height": 1000})
        for public_id in (store.several, store.one_chunk):
            for tab in ("Progress", "Timeline"):
                page.goto(f"{base}/job?id={public_id}&tab={tab}")
                drawn(page, 1)
                assert_inside(page, f"{tab} tab of {public_id}")
                if tab == "Progress" and public_id == store.one_chunk:
                    assert_point_in_range(page, "Progress tab of the one-chunk job")
        page.close()
