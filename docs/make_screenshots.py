"""`make screenshots`: a PNG of every page and job tab, from a store seeded with real results.

Each kind's result is made by its own driver, run in this process on the tests' stand-in
context, and stored through the same verbs a runner uses; one job is left running and one
queued. The worked pipeline (examples/volatility_to_price) is submitted with its returns file
and moved on as a runner moves it to its end, each step's job run by its kind's driver. A real
`runlab web` serves the store, and Debian's Chromium draws each page into docs/screenshots/.

Run: .venv/bin/python docs/make_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compute import advance, datasets, intake, registry  # noqa: E402
from compute import pipelines as pipeline_specs  # noqa: E402
from compute.results import clean_result  # noqa: E402
from jobstore import pipelines as pipeline_store  # noqa: E402
from jobstore import reports, transitions  # noqa: E402
from jobstore.engine import make_engine, migrate  # noqa: E402
from runlab.artifacts import ArtifactStore  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.pi_report import sampling  # noqa: E402
from tests.processes import served  # noqa: E402
from tests.ui import seed  # noqa: E402
from tests.unit.fake_context import FakeContext  # noqa: E402
from ui.job_view import TABS  # noqa: E402

SIGMAS = (0.1, 0.2, 0.3, 0.4, 0.5)
EXAMPLE = ROOT / "examples" / "volatility_to_price" / "pipeline.toml"


class Context(FakeContext):
    """The stand-in context, with JobContext's cancellation check (never cancelled here), which
    the collect kind's driver calls."""

    def check_cancelled(self) -> None:
        return None


def finished(engine: Any, kind: str, params: dict[str, Any], name: str) -> str:
    """A job of `kind` with the result and the live series that its driver made."""
    k = registry.get(kind)
    ctx = FakeContext()
    result = clean_result(k.run(ctx, k.parse(params)))
    public_id, lease = seed.running_kind(engine, kind, params, name=name)
    reports.report(engine, lease, reports.Report(metrics=list(ctx.metrics)), lease_seconds=30)
    transitions.succeed(engine, lease, result)
    return public_id


def swept(engine: Any) -> str:
    """A 5 × 3 option-pricing sweep, every point's result made by the kind's own driver."""
    sweep_id = intake.submit_sweep(
        engine,
        "option_pricing",
        {"paths": 100_000, "seed": 5},
        {"sigma": "0.1:0.5:0.1", "T": "0.5,1,2"},
        name="Volatility × maturity",
    )
    k = registry.get("option_pricing")
    while leases := transitions.claim(engine, seed.RUNNER, limit=20, versions={"runlab": "0"}):
        for lease in leases:
            result = clean_result(k.run(FakeContext(), k.parse(lease.params)))
            transitions.succeed(engine, lease, result)
    return sweep_id


def piped(engine: Any, artifacts: ArtifactStore) -> str:
    """The worked pipeline, its returns file read beside the spec as `runlab pipeline submit`
    reads it, moved on to its end: each step's job run by its kind's own driver."""
    doc = tomllib.loads(EXAMPLE.read_text())
    refs: dict[tuple[str, str], dict[str, Any]] = {}
    tables: dict[tuple[str, str], Any] = {}
    files: dict[str, bytes] = {}
    for step, field, name in pipeline_specs.uploads(doc):
        data = (EXAMPLE.parent / name).read_bytes()
        checked = datasets.check_upload(name, data, f"steps.{step}.params.{field}")
        refs[(step, field)] = checked.ref.model_dump()
        tables[(step, field)] = checked.table
        files[checked.ref.sha256] = data
    pipeline_id = intake.submit_pipeline(
        engine, pipeline_specs.with_files(doc, refs), tables=tables
    )
    for data in files.values():  # kept once the whole pipeline has passed, as the CLI keeps it
        artifacts.put_upload(data)
    while not all(s.status.ended for s in pipeline_store.get(engine, pipeline_id).steps):
        moved = advance.advance(engine)
        ran = 0
        while leases := transitions.claim(engine, seed.RUNNER, limit=20, versions={"runlab": "0"}):
            for lease in leases:
                k = registry.get(lease.kind)
                result = clean_result(k.run(Context(files=files), k.parse(lease.params)))
                transitions.succeed(engine, lease, result)
                ran += 1
        if not moved and not ran:
            raise RuntimeError(f"pipeline {pipeline_id} stopped before its steps ended")
    return pipeline_id


def seeded(url: str, artifacts: str) -> dict[str, Any]:
    """The store's jobs, by what each screenshot shows."""
    registry.load(())
    engine = make_engine(url)
    migrate(engine)
    seed.runner(engine)
    jobs: dict[str, Any] = {}
    # Seeded first: the latest jobs, on the home page and /jobs, are the ones seeded below.
    jobs["pipeline"] = piped(engine, ArtifactStore(artifacts))
    jobs["options"] = [
        finished(engine, "option_pricing", {"sigma": s, "paths": 200_000}, f"Call, σ = {s}")
        for s in SIGMAS
    ]
    jobs["sweep"] = swept(engine)
    jobs["portfolio"] = finished(
        engine, "portfolio_risk", {"scenarios": 50_000, "seed": 2}, "Three-asset book"
    )
    jobs["optimize"] = finished(
        engine, "optimize", {"objective": "himmelblau", "starts": 32, "seed": 4}, "Himmelblau"
    )
    jobs["pi"] = finished(engine, "monte_carlo_pi", {"samples": 4_000_000, "seed": 7}, "π")
    jobs["stopped"] = seed.stopped(engine, "π, stopped early", covered=0.27)
    jobs["failed"] = seed.failed(engine, "Bad correlation", message="the matrix is not positive")
    jobs["running"], jobs["lease"] = running_pi(engine)
    jobs["queued"] = seed.queued(engine, "π, waiting")
    engine.dispose()
    return jobs


def running_pi(engine: Any) -> tuple[str, reports.Lease]:
    """A π job of ten billion samples, 42 % through, with the estimate and its 95 % interval
    at each of its chunks so far, as its driver reports them."""
    samples = 10_000_000_000
    public_id, lease = seed.running_kind(
        engine, "monte_carlo_pi", {"samples": samples, "seed": 11}, name="π, ten billion samples"
    )
    rng = random.Random(11)
    metrics: list[tuple[str, float, float]] = []
    for chunk in range(1, 43):
        done = chunk * 100_000_000
        p = math.pi / 4
        se = 4 * math.sqrt(p * (1 - p) / done)
        est = math.pi + rng.gauss(0.0, se)
        metrics += [("estimate", done, est), ("ci_low", done, est - 1.96 * se)]
        metrics += [("ci_high", done, est + 1.96 * se)]
    reports.report(engine, lease, sampling(0.42, metrics=metrics), lease_seconds=3600)
    return public_id, lease


def alive(url: str, lease: reports.Lease) -> None:
    """The runner's heartbeat, fresh for each page: a page drawn later must not find it silent."""
    engine = make_engine(url)
    reports.heartbeat(engine, seed.RUNNER, [lease], lease_seconds=3600)
    engine.dispose()


def pages(jobs: dict[str, Any]) -> list[tuple[str, str]]:
    """(file name, path) of every page and tab."""
    option = jobs["options"][2]
    shots = [
        ("home", "/"),
        ("new-job", "/new?kind=option_pricing"),
        ("jobs", "/jobs"),
        ("jobs-search", "/jobs?q=kind%3Aoption_pricing+sigma+%3E%3D+0.3"),
        ("compare", "/compare?ids=" + ",".join(jobs["options"])),
        ("compare-pick", "/compare"),
        ("runners", "/runners"),
        ("sweep", f"/sweep?id={jobs['sweep']}"),
        ("pipeline", f"/pipeline?id={jobs['pipeline']}"),
        ("job-running", f"/job?id={jobs['running']}&tab=Progress"),
        ("job-stopped", f"/job?id={jobs['stopped']}"),
        ("job-failed", f"/job?id={jobs['failed']}"),
        ("job-portfolio", f"/job?id={jobs['portfolio']}"),
        ("job-optimize", f"/job?id={jobs['optimize']}"),
    ]
    shots += [(f"job-option-{tab.lower()}", f"/job?id={option}&tab={tab}") for tab in TABS]
    return shots


# Streamlit has run the page's script to its end, and every chart it sent has drawn its axes.
SETTLED_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]').length;
  const drawn = document.querySelectorAll('.js-plotly-plot .main-svg .xtick').length;
  return app && app.dataset.testScriptState === 'notRunning' && (charts === 0 || drawn > 0)
    && document.querySelectorAll('.js-plotly-plot').length >= charts;
}"""


def settled(page: Any) -> None:
    """Wait until the page is drawn: its script done, its charts drawn, its fonts loaded."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function(SETTLED_JS, timeout=60_000, polling=100)
    page.evaluate("document.fonts.ready")
    page.wait_for_timeout(300)  # the last layout pass of tables sized to their content


@click.command()
@click.option("--out", default=str(ROOT / "docs" / "screenshots"), show_default=True)
def main(out: str) -> None:
    from playwright.sync_api import sync_playwright

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'runlab.db'}"
        artifacts = f"{tmp}/artifacts"
        jobs = seeded(url, artifacts)
        with served(url, Path(tmp), RUNLAB_ARTIFACTS=artifacts) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            # Tall: Streamlit scrolls inside its own container, which a full-page shot of the
            # document does not extend.
            context = browser.new_context(viewport={"width": 1300, "height": 1800})
            for name, path in pages(jobs):
                alive(url, jobs["lease"])
                page = context.new_page()
                page.goto(base + path)
                page.get_by_test_id("stSidebar").wait_for(timeout=60_000)
                settled(page)
                target = folder / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                click.echo(str(target))
                page.close()
            browser.close()


if __name__ == "__main__":
    main()
