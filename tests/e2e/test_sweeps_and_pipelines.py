"""A sweep and a pipeline as an analyst runs them, on one `runlab up`.

The sweep: a 6 × 8 option-pricing grid typed into /new, watched on its /sweep page to the end,
sorted, its best point and heatmap read, extended by one more σ, and its failed points re-run.
The pipeline: the worked example's spec and returns uploaded on /new, watched on its /pipeline
page to the end, its prices read from the collect step's chart.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import pytest

from compute import intake, registry
from jobstore import pipelines, queries, sweeps
from jobstore.models import Status
from tests.e2e.conftest import START_TIMEOUT, RunlabUp
from tests.polling import wait_for
from tests.processes import ROOT
from ui import sweep_view

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e

SIGMAS = "0.1:0.6:0.1"  # 6 values
MATURITIES = "0.25,0.5,1,2,3,4,5,6"  # 8 values
# About 0.4 s a job on one core: the 48 take long enough on the app's two workers for the
# page to be seen at several points on the way.
PATHS = 10_000_000
SWEEP_TIMEOUT = 180.0
POLL = 0.2


def ended_count(page: Page) -> int | None:
    """The number the sweep's progress bar says has ended."""
    text = page.get_by_test_id("stProgress").first.inner_text(timeout=2_000)
    found = re.search(r"([\d,]+) of ([\d,]+) jobs ended", text)
    return int(found[1].replace(",", "")) if found else None


def watch_until(page: Page, total: int, timeout: float) -> list[int]:
    """The ended counts the page shows, in order of sight, until it shows `total`."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1] < total:
        try:
            n = ended_count(page)
        except Exception:  # redrawn as we read it
            n = None
        if n is not None and (not seen or n != seen[-1]):
            seen.append(n)
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not reach {total} ended; it showed {seen}")
        time.sleep(POLL)
    return seen


def table_rows(page: Page) -> list[str]:
    """The texts of the points table's rows on screen (its accessible copy of the grid)."""
    grid = page.get_by_test_id("stDataFrame").first
    return grid.locator("table [role=row]").all_inner_texts()[1:]


def click_header(page: Page, column: str, columns: list[str]) -> None:
    """Click a column's header on the grid's canvas: the columns have fixed widths."""
    box = page.get_by_test_id("stDataFrame").first.bounding_box()
    assert box is not None
    at = columns.index(column)
    x = box["x"] + sum(sweep_view.width(c) for c in columns[:at]) + sweep_view.width(column) / 2
    page.mouse.click(x, box["y"] + 18)


def pick(page: Page, multiselect: Locator, option: str) -> None:
    multiselect.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def submit_grid(page: Page, base_url: str) -> str:
    from playwright.sync_api import expect

    page.goto(f"{base_url}/new?kind=option_pricing")
    expect(page.get_by_role("combobox", name="Kind")).to_have_value(
        "Option pricing", timeout=30_000
    )
    sweep = page.get_by_test_id("stMultiSelect").filter(has_text="Sweep")
    pick(page, sweep, "Volatility σ (per year)")
    pick(page, sweep, "Maturity T (years)")
    for label, text in (
        ("Volatility σ (per year): values", SIGMAS),
        ("Maturity T (years): values", MATURITIES),
    ):
        box = page.get_by_label(label, exact=True)
        box.fill(text)
        box.press("Enter")
    # The size of the sweep, said before anything is submitted.
    expect(page.get_by_text("48 jobs: 6 sigma × 8 T")).to_be_visible(timeout=15_000)
    form = page.get_by_test_id("stForm")
    paths = form.get_by_label("Paths", exact=True)
    paths.fill(str(PATHS))
    paths.press("Tab")
    form.get_by_label("Name", exact=True).fill("Vol grid")
    form.get_by_role("button", name="Submit 48 jobs").click()
    page.wait_for_url(re.compile(r"/sweep\?(.*&)?id="), timeout=30_000)
    ids = parse_qs(urlparse(page.url).query).get("id")
    assert ids, page.url
    return ids[0]


@pytest.mark.timeout(START_TIMEOUT + 2 * SWEEP_TIMEOUT + 180)
def test_a_grid_sweep_from_the_form_runs_sorts_extends_and_reruns_its_failures(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    sweep_id = submit_grid(page, runlab_app.url)
    engine = runlab_app.engine
    stored = sweeps.get(engine, sweep_id)
    assert stored.children == 48 and stored.name == "Vol grid"
    points = sweeps.points(engine, sweep_id)
    assert {p.params["paths"] for p in points} == {PATHS}
    assert len({(p.params["sigma"], p.params["T"]) for p in points}) == 48

    seen = watch_until(page, 48, SWEEP_TIMEOUT)
    print(f"ended counts seen: {seen}")
    assert len(set(seen)) >= 3, f"the progress did not move on the page: {seen}"
    assert seen == sorted(seen), seen
    points = sweeps.points(engine, sweep_id)
    assert all(p.status is Status.SUCCEEDED for p in points)
    prices = {p.public_id: p.result["price"] for p in points if p.result}

    # The table: every point, and a click on Price sorts it (once up, twice down).
    expect(page.get_by_text("48 of 48 jobs ended")).to_be_visible(timeout=15_000)
    fields = sweep_view.result_fields(registry.get("option_pricing"), points)
    columns = list(sweep_view.frame(points, ["sigma", "T"], fields).columns)
    for _ in range(2):
        click_header(page, "result.price", columns)
    top = max(prices, key=prices.__getitem__)
    wait_for(
        lambda: table_rows(page) and top in table_rows(page)[0],
        timeout=15,
        what="the highest price at the top of the table",
    )

    # The best point by price, lowest by default, names its job.
    low = min(prices, key=prices.__getitem__)
    best = page.get_by_text(re.compile(r"^Price [\d.]+ at Volatility"))
    expect(best).to_be_visible()
    assert best.get_by_role("link").get_attribute("href", timeout=5_000).endswith(low)

    # A heatmap of the price over σ and T.
    heat = page.locator(".js-plotly-plot .heatmaplayer")
    expect(heat.first).to_be_attached(timeout=15_000)

    # Extend by one more σ: exactly the 8 new points run.
    page.get_by_role("button", name="Extend").click()
    box = page.get_by_label("Volatility σ (per year)", exact=True)
    box.fill("0.1:0.7:0.1")
    page.get_by_test_id("stForm").filter(has=box).get_by_role("button").click()
    wait_for(
        lambda: sweeps.get(engine, sweep_id).children == 56,
        timeout=15,
        what="the extension's points in the store",
    )
    assert len(sweeps.children(engine, sweep_id)) == 56
    added = {p.params["sigma"] for p in sweeps.points(engine, sweep_id) if p.point >= 48}
    assert added == {0.7}
    watch_until(page, 56, SWEEP_TIMEOUT)

    # A failure, forced by a timeout one point cannot meet and the other meets with room to
    # spare on a loaded machine, and the re-run of only that one. An Asian call of 10⁸ paths of
    # 252 dates is minutes of both cores; a European call of 10⁹ paths took under 10 s.
    failing = intake.submit_sweep(
        engine,
        "option_pricing",
        {"seed": 5, "option_type": "asian_call", "steps": 252},
        {"paths": "1000,100000000"},
        name="Timed out",
        timeout_seconds=10,
        max_attempts=1,
    )
    page.goto(f"{runlab_app.url}/sweep?id={failing}")
    watch_until(page, 2, SWEEP_TIMEOUT)
    before = {p.point: p for p in sweeps.points(engine, failing)}
    assert [before[i].status for i in (0, 1)] == [Status.SUCCEEDED, Status.FAILED]
    page.get_by_role("button", name="Re-run failed").click()
    wait_for(
        lambda: len(sweeps.children(engine, failing)) == 3,
        timeout=15,
        what="one re-run in the store",
    )
    after = {p.point: p for p in sweeps.points(engine, failing)}
    assert after[0].public_id == before[0].public_id  # the point that succeeded is left alone
    assert after[1].public_id != before[1].public_id
    assert after[1].params == before[1].params


EXAMPLE = ROOT / "examples" / "volatility_to_price"
PIPELINE_TIMEOUT = 180.0


@pytest.mark.timeout(START_TIMEOUT + PIPELINE_TIMEOUT + 120)
def test_the_worked_pipeline_from_its_spec_file_runs_to_its_chart(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{runlab_app.url}/new?what=pipeline")
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLE / "pipeline.toml"))
    expect(page.get_by_text("This spec reads returns.csv")).to_be_visible(timeout=30_000)
    page.locator("input[type=file]").nth(1).set_input_files(str(EXAMPLE / "returns.csv"))
    submit = page.get_by_role("button", name="Submit pipeline")
    expect(submit).to_be_enabled(timeout=30_000)
    submit.click()
    page.wait_for_url(re.compile(r"/pipeline\?(.*&)?id="), timeout=30_000)
    public_id = parse_qs(urlparse(page.url).query)["id"][0]

    expect(page.get_by_text("3 of 3 steps ended")).to_be_visible(timeout=PIPELINE_TIMEOUT * 1000)
    engine = runlab_app.engine
    vol, price, prices = pipelines.get(engine, public_id).steps
    assert [s.status for s in (vol, price, prices)] == [pipelines.StepStatus.SUCCEEDED] * 3
    assert vol.job and price.sweep and prices.job

    # The σ of the pricing step span the bootstrap's interval, as its stored result says.
    interval = queries.get_job(engine, vol.job).result or {}
    sigmas = sorted(p.params["sigma"] for p in sweeps.points(engine, price.sweep))
    assert len(sigmas) == 9
    assert sigmas[0] == pytest.approx(interval["ci_low"])
    assert sigmas[-1] == pytest.approx(interval["ci_high"])

    # The collect step's chart, drawn on the pipeline page, holds every price.
    stored = sorted(
        r["values"]["price"] for r in queries.get_job(engine, prices.job).params["rows"]
    )
    expect(page.get_by_text("Collected by prices")).to_be_visible(timeout=15_000)
    drawn = wait_for(
        lambda: page.evaluate(
            """() => [...document.querySelectorAll('.js-plotly-plot')]
                .flatMap(p => p.data || [])
                .filter(t => t.name === 'price')
                .flatMap(t => [...t.y])"""
        ),
        timeout=15,
        what="the collect step's chart",
    )
    assert sorted(drawn) == pytest.approx(stored)
