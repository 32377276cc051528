"""The app as an analyst's browser sees it: live progress on a job's page, a job's page in a new
tab, and the history at a million jobs from the sidebar.

Each part serves its store with `runlab web` (no runner to compete) to headless Chromium.

progress: a π job running in a fresh store, its page open. UPDATES times: a new progress value
          is written through the runner's own write (`jobstore.reports.report`, which
          `JobContext.flush` calls), and the clock runs until the page's overall progress bar
          shows it. The page notes the wall clock (`Date.now()`, the same clock as this
          script's `time.time()`) at the first animation frame after the bar's `aria-valuenow`
          changed. A random pause of up to one refresh period and a half separates the writes,
          so that they fall anywhere in the page's refresh cycle. p50, p95 and max.
          Target: p95 <= 1.5 s.
new tab:  a succeeded π job's page (`/job?id=…`, its Result tab: a headline and a chart) and
          a bare Streamlit page (a script of `st.write("x")` at `/`, run by `streamlit run`
          with the app's own settings, on another port), each opened in a new tab LOADS times,
          in turn, in one browser profile after a first visit of each: the HTTP cache is warm
          for both, as in an analyst's browser that has opened the app before (Streamlit's
          scripts and Plotly's bundle come from the cache, but every tab evaluates them
          afresh). Timed on the browser's clock from the navigation's start to the first
          animation frame after the content is in the page. The job's page counts as opened
          when its headline (the figures that answer the question) is shown; its chart, which
          the page sends after the headline, is timed too and printed beside it. The bare
          page's mark is its text. For reference, timed in the same turns: the same bare
          page at a page's own address (`/page`: Streamlit's browser code first looks for its
          server under that path, a round trip and a 0.1 s retry that every page but the
          home page pays), a page of the headline's one metric (`/metric`), Streamlit's own
          elements of a job's page alone (`/elements`: a sidebar link, a title, a caption,
          metrics, a progress bar and tabs, with none of Runlab's code), a failed job's page
          (the same page without a chart) and /runners (the sidebar, and charts).
          Target: median /job headline ÷ median bare page <= 1.3.
/jobs:    the million-job store of `bench_history.py` (the same seed, its file or schema), and
          its timing: from a click on the sidebar's Jobs link until the history's rows are
          painted, 10 times after one not counted. Target: median <= 1 s.

Run: .venv/bin/python benchmarks/bench_ui.py [--backend sqlite|postgres|both] [--updates 50]
     [--loads 10] [--jobs 1000000] [--reuse] [--part progress|tabs|jobs ...]
`--reuse` keeps bench_history's seeded store (data/bench_history.db, schema bench_history) and
uses it when it already holds the jobs; without it the store is seeded afresh (a few minutes).
`--part` runs only the parts named (all three by default).
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_history, whole_path  # noqa: E402
from benchmarks.stores import store  # noqa: E402
from jobstore import reports  # noqa: E402
from tests.processes import served  # noqa: E402
from tests.ui import seed  # noqa: E402
from ui.job_view import LIVE_SECONDS  # noqa: E402

UPDATES = 50
LOADS = 10
WARM_UPDATES = 3  # writes before the timed ones: the page's first ticks and the server's caches
FIRST_PROGRESS = 20  # percent, then one more per write
TARGET_PROGRESS_P95 = 1.5
TARGET_RATIO = 1.3
TARGET_JOBS_S = bench_history.TARGET_PAGE_S
LEASE_SECONDS = 600.0  # the benchmark's writes renew it; no runner reaps the job meanwhile
BARE_PAGE = 'import streamlit as st\nst.write("x")\n'
# The headline's one metric, alone on a page of its own.
METRIC_PAGE = 'import streamlit as st\nst.metric("Estimate of π", "3.14159")\n'
# Streamlit's own elements, in the kinds and order a finished job's page sends them before its
# headline, with none of Runlab's code: what Streamlit alone costs a page like /job. Most element
# kinds are scripts of their own that a new tab loads and runs before it draws them.
ELEMENTS_PAGE = """import streamlit as st
with st.sidebar:
    st.markdown("### Runlab")
    st.page_link("bare.py", label="Home")
st.title("Finished π")
st.caption("π by Monte Carlo · submitted")
columns = st.columns(3)
columns[0].metric("Progress", "100 %")
st.progress(1.0, text="Overall · 100 %")
result, _ = st.tabs(["Result", "Progress"])
with result:
    st.metric("Estimate of π", "3.14159")
"""

# On the job page: the value of the overall bar (the one whose label says "Overall"), and the
# wall clock of the first frame that showed each new value.
WATCH_PROGRESS = """() => {
  const seen = {};
  window.__progress = seen;
  let pending = false;
  function overall() {
    for (const box of document.querySelectorAll("[data-testid='stProgress']")) {
      if (box.innerText.includes('Overall')) {
        const bar = box.querySelector("[role='progressbar']");
        if (bar) return bar.getAttribute('aria-valuenow');
      }
    }
    return null;
  }
  function look() {
    pending = false;
    const v = overall();
    if (v !== null && !(v in seen)) seen[v] = Date.now();
  }
  new MutationObserver(() => {
    if (!pending) { pending = true; requestAnimationFrame(look); }
  }).observe(document.body, {subtree: true, childList: true, attributes: true,
                             characterData: true});
  look();
}"""

# In a new tab: for each mark, the browser's clock (ms from the navigation's start) at the
# first frame after an element matching its selector, and holding its text, is in the page.
OBSERVE = """(marks) => {
  const drawn = {};
  window.__drawn = drawn;
  let pending = false;
  function look() {
    pending = false;
    for (const [name, [selector, text]] of Object.entries(marks)) {
      if (name in drawn) continue;
      for (const el of document.querySelectorAll(selector)) {
        if (!text || el.textContent.includes(text)) { drawn[name] = performance.now(); break; }
      }
    }
  }
  new MutationObserver(() => {
    if (!pending) { pending = true; requestAnimationFrame(look); }
  }).observe(document, {subtree: true, childList: true});
}"""
JOB_MARKS = {
    "headline": ("[data-testid='stMetricLabel']", "Estimate of π"),
    "chart": (".js-plotly-plot .main-svg", ""),
}
BARE_MARKS = {"text": ("[data-testid='stMarkdownContainer'] p", "x")}
JOB_MARKS_HEADLINE = {"headline": JOB_MARKS["headline"]}
# Two pages of the app for reference: a failed job's, whose error stands where a result's
# headline and chart would; and the lightest page, /runners with no runner, to its heading.
FAILED_MARKS = {"error": ("[data-testid='stAlertContainer']", "did not converge")}
RUNNERS_MARKS = {"heading": ("h1", "Runners")}


def q(values: list[float], share: float) -> float:
    """The `share` quantile, the nearest rank below, as bench_history's p95."""
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))]


# --- progress reaching the browser ----------------------------------------------------------------


def fraction(percent: int) -> float:
    """A progress the bar shows as `percent`: Streamlit truncates to a whole percent, and
    0.29 * 100 is 28.999…"""
    return (percent + 0.5) / 100


def progress_seconds(url: str, folder: Path, updates: int) -> tuple[list[float], float]:
    """Seconds from each progress write to the frame that shows it, and the clock check: how
    far the page's `Date.now()` was from this script's `time.time()` (0 when they agree)."""
    from sqlalchemy import Engine

    from jobstore.engine import make_engine

    engine: Engine = make_engine(url)
    seed.runner(engine)
    public_id, lease = seed.running(engine, "Live progress", progress=fraction(FIRST_PROGRESS))
    rng = random.Random(18)
    out: list[float] = []
    with served(url, folder) as base, bench_history.chromium() as ctx:
        page = ctx.new_page()
        page.goto(f"{base}/job?id={public_id}")
        page.locator("[data-testid='stProgress']", has_text="Overall").wait_for(timeout=60_000)
        page.evaluate(WATCH_PROGRESS)
        before = time.time()
        theirs = page.evaluate("() => Date.now()") / 1000
        after = time.time()
        skew = 0.0 if before - 0.002 <= theirs <= after + 0.002 else theirs - (before + after) / 2
        percent = FIRST_PROGRESS
        page.wait_for_function(f"() => window.__progress['{percent}'] !== undefined")
        for i in range(WARM_UPDATES + updates):
            time.sleep(rng.uniform(0.1, 0.1 + 1.5 * LIVE_SECONDS))
            percent += 1
            written = time.time()
            reports.report(
                engine,
                lease,
                reports.Report(progress=fraction(percent)),
                lease_seconds=LEASE_SECONDS,
            )
            page.wait_for_function(
                f"() => window.__progress['{percent}'] !== undefined", timeout=30_000
            )
            shown = page.evaluate(f"() => window.__progress['{percent}']") / 1000
            if i >= WARM_UPDATES:
                out.append(shown - written)
    engine.dispose()
    return out, skew


# --- a new tab ------------------------------------------------------------------------------------


def finished_jobs(url: str) -> tuple[str, str]:
    """A π job that succeeded, with its result and a series for its chart; and one that
    failed, whose page has no chart."""
    from jobstore.engine import make_engine

    engine = make_engine(url)
    seed.runner(engine)
    succeeded = seed.succeeded(engine, "Finished π")
    failed = seed.failed(engine, "Failed π", message="the solver did not converge")
    engine.dispose()
    return succeeded, failed


@contextmanager
def bare_server(folder: Path) -> Iterator[str]:
    """`streamlit run` of a page that writes one word, with the app's own settings; the same
    page at `/page` too; one metric at `/metric`; Streamlit's own elements of a job's page at
    `/elements`."""
    site = folder / "bare"
    (site / ".streamlit").mkdir(parents=True)
    (site / "pages").mkdir()
    shutil.copy(ROOT / ".streamlit" / "config.toml", site / ".streamlit" / "config.toml")
    (site / "bare.py").write_text(BARE_PAGE)
    (site / "pages" / "page.py").write_text(BARE_PAGE)
    (site / "pages" / "elements.py").write_text(ELEMENTS_PAGE)
    (site / "pages" / "metric.py").write_text(METRIC_PAGE)

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "streamlit", "run", "bare.py"),
            *("--server.port", str(port), "--server.headless", "true"),
        ]

    with bench_history.serving(command, {}, site, folder / "bare.log") as base:
        yield base


def visit(ctx: Any, address: str, marks: dict[str, tuple[str, str]]) -> dict[str, float]:
    """A new tab's visit to `address`: seconds from the navigation's start to each mark."""
    page = ctx.new_page()
    page.add_init_script(f"({OBSERVE})({json.dumps(marks)})")
    page.goto(address, wait_until="commit")
    names = " && ".join(f"window.__drawn['{n}'] !== undefined" for n in marks)
    page.wait_for_function(f"() => window.__drawn && {names}", timeout=60_000)
    drawn: dict[str, float] = page.evaluate("() => window.__drawn")
    page.close()
    return {n: drawn[n] / 1000 for n in marks}


@dataclass
class Tabs:
    """Seconds to each mark of each page, per load."""

    loads: dict[str, list[dict[str, float]]]

    def marks(self, page: str, mark: str) -> list[float]:
        return [load[mark] for load in self.loads[page]]

    def ratio(self, figures: list[float]) -> float:
        return statistics.median(figures) / statistics.median(self.marks("bare", "text"))


def new_tabs(url: str, folder: Path, loads: int) -> Tabs:
    """Each page opened in a new tab, in turn, `loads` times after one visit not counted."""
    succeeded, failed = finished_jobs(url)
    out = Tabs({})
    with served(url, folder) as base, bare_server(folder) as bare, bench_history.chromium() as ctx:
        pages = {
            "job": (f"{base}/job?id={succeeded}", JOB_MARKS),
            "bare": (f"{bare}/", BARE_MARKS),
            "bare_page": (f"{bare}/page", BARE_MARKS),
            "metric": (f"{bare}/metric", JOB_MARKS_HEADLINE),
            "elements": (f"{bare}/elements", JOB_MARKS_HEADLINE),
            "failed": (f"{base}/job?id={failed}", FAILED_MARKS),
            "runners": (f"{base}/runners", RUNNERS_MARKS),
        }
        for i in range(loads + 1):  # the first of each warms the servers and the cache
            for name, (address, marks) in pages.items():
                drawn = visit(ctx, address, marks)
                if i:
                    out.loads.setdefault(name, []).append(drawn)
    return out


# --- /jobs at a million jobs ----------------------------------------------------------------------


def history_seconds(backend: str, n: int, reuse: bool) -> list[float]:
    """bench_history's store of `n` jobs (seeded unless reused and full), then seconds from a
    click on the sidebar's Jobs link until the rows are painted."""
    engine, url = bench_history.open_store(backend, reuse)
    seconds = bench_history.seed(engine, n)
    if seconds is not None:
        print(f"  seeded {n:,} jobs in {seconds:.1f} s")
    engine.dispose()
    with bench_history.web(url) as base:
        return [painted for painted, _ in bench_history.clicks(base)]


# --- the report -----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def spread(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):.2f} s, p95 {q(values, 0.95):.2f} s, "
        f"max {max(values):.2f} s"
    )


def typical(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, worst {max(values):.2f} s"


@dataclass
class Figures:
    backend: str
    progress: list[float]
    tabs: Tabs
    jobs: int
    history: list[float]

    def summary(self) -> str:
        said = []
        if self.progress:
            p95 = q(self.progress, 0.95)
            said.append(
                f"progress in the browser p95 {p95:.2f} s (target ≤ {TARGET_PROGRESS_P95} s: "
                f"{verdict(p95 <= TARGET_PROGRESS_P95)})"
            )
        if self.tabs.loads:
            opened = self.tabs.ratio(self.tabs.marks("job", "headline"))
            chart = self.tabs.ratio(self.tabs.marks("job", "chart"))
            page = self.tabs.ratio(self.tabs.marks("bare_page", "text"))
            alone = self.tabs.ratio(self.tabs.marks("elements", "headline"))
            metric = self.tabs.ratio(self.tabs.marks("metric", "headline"))
            said.append(
                f"/job opened in a new tab (its headline shown) {opened:.2f}× a bare page "
                f"(target ≤ {TARGET_RATIO}×: {verdict(opened <= TARGET_RATIO)}), its chart "
                f"drawn at {chart:.2f}×; the bare page at a page's address {page:.2f}×, one "
                f"metric alone there {metric:.2f}×, Streamlit's own elements of /job alone "
                f"{alone:.2f}×"
            )
        if self.history:
            jobs = statistics.median(self.history)
            said.append(
                f"/jobs at {self.jobs:,} jobs from the sidebar median {jobs:.2f} s "
                f"(≤ {TARGET_JOBS_S:.0f} s: {verdict(jobs <= TARGET_JOBS_S)})"
            )
        return f"{self.backend}: " + "; ".join(said)


PARTS = ("progress", "tabs", "jobs")


def run(
    backend: str, folder: Path, updates: int, loads: int, n: int, reuse: bool, parts: set[str]
) -> Figures:
    print(f"\n== {backend} ==")
    print(f"load average before: {whole_path.load()}")
    figures = Figures(backend, [], Tabs({}), n, [])
    if "progress" in parts:
        with store(backend, folder, "bench_ui") as (_, url):
            print(
                f"progress: {updates} writes to a running job's store, each until its open "
                f"page's overall bar shows it (the page refreshes every {LIVE_SECONDS} s):"
            )
            figures.progress, skew = progress_seconds(url, folder, updates)
            print(f"  {spread(figures.progress)} (target p95 ≤ {TARGET_PROGRESS_P95} s)")
            print("  each: " + " ".join(f"{s:.2f}" for s in figures.progress))
            if skew:
                print(f"  the page's clock was {skew * 1000:+.1f} ms from this script's")
    if "tabs" in parts:
        with store(backend, folder, "bench_ui_tabs") as (_, url):
            print(
                f"new tab: {loads} loads of each page in turn, on the browser's clock from the "
                "navigation's start:"
            )
            figures.tabs = tabs = new_tabs(url, folder, loads)
            rows = [
                ("bare page (st.write), its text", tabs.marks("bare", "text")),
                ("… the same at a page's address (/page)", tabs.marks("bare_page", "text")),
                ("… one metric alone (/metric)", tabs.marks("metric", "headline")),
                ("Streamlit's elements of /job alone", tabs.marks("elements", "headline")),
                ("/job of a succeeded π job, its headline", tabs.marks("job", "headline")),
                ("… its chart, sent after the headline", tabs.marks("job", "chart")),
                ("/job of a failed job (no chart), its error", tabs.marks("failed", "error")),
                ("/runners (no runner), its heading", tabs.marks("runners", "heading")),
            ]
            for what, values in rows:
                print(f"  {what:<46} {typical(values)}  ({tabs.ratio(values):.2f}× bare)")
            opened = tabs.ratio(tabs.marks("job", "headline"))
            print(
                f"  /job opened (its headline) ÷ bare, medians: {opened:.2f} "
                f"(target ≤ {TARGET_RATIO})"
            )
    if "jobs" in parts:
        print(f"/jobs at {n:,} jobs, from the sidebar's Jobs link until the rows are painted:")
        figures.history = history_seconds(backend, n, reuse)
        print(
            f"  {typical(figures.history)} of {len(figures.history)} "
            f"(target median ≤ {TARGET_JOBS_S:.0f} s)"
        )
    print(f"load average after: {whole_path.load()}")
    return figures


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgres", "both"]),
    default="sqlite",
    show_default=True,
)
@click.option("--updates", default=UPDATES, show_default=True, help="Timed progress writes.")
@click.option("--loads", default=LOADS, show_default=True, help="Timed new tabs of each page.")
@click.option("--jobs", "n", default=1_000_000, show_default=True, help="Jobs in the history.")
@click.option("--reuse", is_flag=True, help="Keep bench_history's store; reuse it if full.")
@click.option(
    "--part",
    "parts",
    type=click.Choice(PARTS),
    multiple=True,
    help="Run only this part (repeatable); all three by default.",
)
def main(
    backend: str, updates: int, loads: int, n: int, reuse: bool, parts: tuple[str, ...]
) -> None:
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        chosen = set(parts or PARTS)
        results = [run(b, Path(tmp), updates, loads, n, reuse, chosen) for b in backends]
    print("\nsummary: " + "; ".join(f.summary() for f in results))


if __name__ == "__main__":
    main()
