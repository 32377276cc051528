"""What a job page hands out, in a real browser: the standalone report opened from disk with no
network, the downloads, and the link to a view (tab and chart settings) opened by somebody else."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import pytest

from compute import intake
from jobstore import queries
from jobstore.models import Status
from jobstore.views import JobDetail
from tests.e2e.conftest import RunlabUp
from tests.polling import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

pytestmark = pytest.mark.e2e

# A name that runs script if any part of the page or the report renders it as HTML.
NASTY = "<img src=x onerror=alert(1)>"
# Three Dask tasks of about half a second: three series (price and its 95 % band).
PARAMS = {"option_type": "european_call", "paths": 200_000, "seed": 42}
JOB_TIMEOUT = 90.0
# A page's first widgets of a kind load their code on demand: on a busy machine, that can take
# longer than Playwright's default few seconds.
UI_TIMEOUT = 60_000
SERIES = ["ci_high", "ci_low", "price"]


@pytest.fixture(scope="module")
def finished(runlab_app: RunlabUp) -> JobDetail:
    """One option-pricing job named NASTY, run to the end by the app's own runner."""
    public_id = intake.submit(runlab_app.engine, "option_pricing", PARAMS, name=NASTY)

    def ended() -> JobDetail | None:
        job = queries.get_job(runlab_app.engine, public_id, log_lines=0)
        return job if job.status.terminal else None

    job = wait_for(ended, timeout=JOB_TIMEOUT, what=f"job {public_id} to end")
    assert job.status is Status.SUCCEEDED, (job.status, job.error)
    assert sorted(job.series) == SERIES
    return job


def open_job(page: Page, app: RunlabUp, public_id: str, query: str = "") -> None:
    page.goto(f"{app.url}/job?id={public_id}{query}")
    page.get_by_role("tab", name="Result").wait_for(state="visible", timeout=UI_TIMEOUT)


def download(page: Page, label: str, into: Path) -> Path:
    """Click one of the Download menu's buttons; the saved file."""
    menu = page.get_by_test_id("stPopoverButton").filter(has_text="Download")
    button = page.get_by_role("button", name=label, exact=True)
    if not button.is_visible():
        menu.click(timeout=UI_TIMEOUT)
    with page.expect_download(timeout=UI_TIMEOUT) as started:
        button.click(timeout=UI_TIMEOUT)
    got = started.value
    path = into / got.suggested_filename
    got.save_as(path)
    return path


def switch_on(page: Page, name: str) -> None:
    """Turn a toggle on. A click that lands while the page reruns can be lost; a toggle that
    is still off a few seconds after its click is clicked again."""
    from playwright.sync_api import expect

    switch = page.get_by_role("switch", name=name)

    def on() -> bool:
        if switch.is_checked():
            return True
        switch.click(force=True, timeout=UI_TIMEOUT)
        try:
            expect(switch).to_be_checked(timeout=5_000)
        except AssertionError:  # still off: the click was lost
            return False
        return True

    wait_for(on, timeout=UI_TIMEOUT / 1000, what=f"the {name!r} toggle to be on")


# Its deadlines add up to 540 s: the app's start (90 s) and the job's (90 s), as the module's
# first test, then the page (30 + 60 s), the download (3 × 60 s) and the report (30 + 60 s).
@pytest.mark.timeout(600)
def test_the_report_opens_from_disk_offline_with_its_charts(
    runlab_app: RunlabUp,
    new_page: Callable[[], Page],
    browser: Browser,
    finished: JobDetail,
    tmp_path: Path,
) -> None:
    page = new_page()
    open_job(page, runlab_app, finished.id)
    saved = download(page, "Report · HTML", tmp_path)
    assert saved.name == f"runlab-{finished.id}-report.html"

    # Somebody opens the file later, with no Runlab and no network.
    offline = browser.new_context(offline=True, viewport={"width": 1280, "height": 1000})
    fetched: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    try:

        def refuse(route: Route) -> None:
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                fetched.append(route.request.url)
                route.abort()

        offline.route("**/*", refuse)
        report = offline.new_page()
        report.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        report.on("pageerror", lambda exc: errors.append(str(exc)))
        report.goto(saved.as_uri())

        plots = report.locator(".js-plotly-plot")
        plots.first.locator("svg.main-svg").first.wait_for(state="visible", timeout=UI_TIMEOUT)
        assert plots.count() == 3  # the result, the timeline, the series
        for i in range(plots.count()):
            assert plots.nth(i).locator("svg.main-svg").count() > 0, f"chart {i} not drawn"
        # The timeline draws a bar for the attempt on its runner.
        assert report.locator(".js-plotly-plot .barlayer .point").count() >= 2
        assert report.locator("h1").inner_text() == NASTY  # as text, not as an element
        assert report.locator("img").count() == 0
        assert report.get_by_text("an immutable snapshot").is_visible()
        assert fetched == [], f"the report asked the network for {fetched}"
        assert dialogs == [], f"a dialog fired: {dialogs}"
        assert errors == [], f"the report's scripts failed: {errors}"
    finally:
        offline.close()


# Its deadlines add up to 450 s: the page (30 + 60 s), then two downloads of 3 × 60 s.
@pytest.mark.timeout(510)
def test_downloads_hold_the_result_and_every_point(
    runlab_app: RunlabUp, new_page: Callable[[], Page], finished: JobDetail, tmp_path: Path
) -> None:
    page = new_page()
    open_job(page, runlab_app, finished.id)

    result = download(page, "Result · JSON", tmp_path)
    series = download(page, "Metric series · CSV", tmp_path)

    assert result.name == f"runlab-{finished.id}-result.json"
    assert json.loads(result.read_text()) == finished.result
    with series.open(newline="") as f:
        rows = list(csv.DictReader(f))
    points = {
        (name, float(step), float(value))
        for name, (steps, values) in finished.series.items()
        for step, value in zip(steps, values, strict=True)
    }
    assert {(r["series"], float(r["step"]), float(r["value"])) for r in rows} == points
    assert len(rows) == len(points)


# Its deadlines add up to 965 s: the page (30 + 60 s), twelve steps of up to 60 s, the toggle
# (up to 125 s) and the second page's load (30 s).
@pytest.mark.timeout(1020)
def test_a_shared_view_opens_with_the_same_tab_and_chart_settings(
    runlab_app: RunlabUp, new_page: Callable[[], Page], finished: JobDetail
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    open_job(page, runlab_app, finished.id)
    page.get_by_role("tab", name="Progress").click(timeout=UI_TIMEOUT)
    page.wait_for_url(re.compile(r"[?&]tab=Progress"), timeout=UI_TIMEOUT)
    series = page.get_by_role("toolbar", name="Series")
    series.get_by_role("button", name="price").click(timeout=UI_TIMEOUT)
    page.wait_for_url(re.compile(r"[?&]series=price"), timeout=UI_TIMEOUT)
    switch_on(page, "Log scale")
    page.wait_for_url(re.compile(r"[?&]log=true"), timeout=UI_TIMEOUT)

    shown = page.get_by_test_id("stText").filter(has_text="/job?id=")
    expect(shown).to_contain_text("log=true", timeout=UI_TIMEOUT)
    link = shown.inner_text().strip()
    want = {"id": [finished.id], "tab": ["Progress"], "series": ["price"], "log": ["true"]}
    assert urlparse(link).netloc == urlparse(runlab_app.url).netloc
    assert parse_qs(urlparse(link).query) == want
    assert parse_qs(urlparse(page.url).query) == want  # the link is the address bar's view

    other = new_page()  # somebody else: no cookies, no session
    other.goto(link)
    expect(other.get_by_role("tab", name="Progress")).to_have_attribute(
        "aria-selected", "true", timeout=UI_TIMEOUT
    )
    pills = other.get_by_role("toolbar", name="Series")
    for name in SERIES:
        pressed = "true" if name == "price" else "false"
        expect(pills.get_by_role("button", name=name)).to_have_attribute(
            "aria-pressed", pressed, timeout=UI_TIMEOUT
        )
    expect(other.get_by_role("switch", name="Log scale")).to_be_checked(timeout=UI_TIMEOUT)
    chart = other.wait_for_function(
        """() => {
            const g = document.querySelector('.js-plotly-plot');
            return g && g.layout && g.layout.yaxis
                ? {axis: g.layout.yaxis.type, titles: (g.layout.annotations || []).map(a => a.text)}
                : null;
        }""",
        timeout=UI_TIMEOUT,
    ).json_value()
    assert chart == {"axis": "log", "titles": ["price"]}
    assert parse_qs(urlparse(other.url).query) == want


def test_a_job_watched_to_its_end_turns_from_its_progress_to_its_result(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    from playwright.sync_api import expect

    public_id = intake.submit(
        runlab_app.engine, "demo_stages", {"stages": 4, "seconds_per_stage": 3.0}, name="watched"
    )
    page = new_page()
    page.goto(f"{runlab_app.url}/job?id={public_id}")
    progress = page.get_by_role("tab", name="Progress")
    expect(progress).to_have_attribute("aria-selected", "true", timeout=UI_TIMEOUT)
    assert not queries.get_job(runlab_app.engine, public_id, log_lines=0).status.terminal, (
        "the page must first see the job unfinished"
    )

    # The tabs' default changes with the status, so the rerun draws a new tab bar; the old one
    # stays, faded, until the run ends. Wait for the new one, then for the old one to go.
    chosen = page.locator('[role="tab"][aria-selected="true"]', has_text="Result")
    expect(chosen).to_have_count(1, timeout=UI_TIMEOUT)
    expect(page.get_by_role("tab", name="Result")).to_have_count(1, timeout=UI_TIMEOUT)
    expect(page.get_by_role("tab", name="Result")).to_have_attribute("aria-selected", "true")
    assert queries.get_job(runlab_app.engine, public_id, log_lines=0).status is Status.SUCCEEDED
    assert "tab" not in parse_qs(urlparse(page.url).query)
