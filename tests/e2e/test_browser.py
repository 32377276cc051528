"""Runlab as a user meets it: `runlab up`, a π job submitted on /new, watched live on /job,
and the shared link opened in a fresh browser context."""

from __future__ import annotations

import math
import re
import signal
import time
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import psutil
import pytest

from compute import registry
from jobstore import queries
from jobstore.models import Status
from runlab import format as fmt
from tests.e2e.conftest import START_TIMEOUT, RunlabUp, alive
from tests.polling import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e

KIND = "monte_carlo_pi"
KIND_TITLE = "Monte Carlo π"
# The test sets the job's size, not the machine: CHUNKS tasks of 1e8 samples (about 0.6 s each
# on one core), run two at a time by the app's cluster (conftest's WORKERS), so the bar takes
# CHUNKS steps over several seconds however many cores there are, and the job ends well within
# a minute.
CHUNKS = 15
SAMPLES = CHUNKS * 100_000_000
JOB_NAME = "e2e pi"
JOB_TIMEOUT = 90.0
POLL = 0.1  # between two readings of the page, while a deadline is running


def command_line(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def overall_bar(page: Page) -> Locator:
    """The job's overall progress bar (the stage bars come after it)."""
    return (
        page.get_by_test_id("stProgress")
        .filter(has_text="Overall")
        .get_by_role("progressbar")
        .first
    )


def status_badge(page: Page, status: str) -> Locator:
    """The job's status badge (`st.badge`: an icon, then the status)."""
    return page.locator(".stMarkdownBadge", has_text=re.compile(rf"\b{status}\s*$")).first


def estimate_metric(page: Page, label_text: str = "Estimate") -> Locator:
    label = page.get_by_test_id("stMetricLabel").get_by_text(label_text, exact=True)
    return page.get_by_test_id("stMetric").filter(has=label).get_by_test_id("stMetricValue")


def submit_pi_job(page: Page, base_url: str) -> str:
    """Fill the π form on /new and submit it; the public id of the job it opens."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/new?kind={KIND}")
    # The URL picks the kind: the selectbox shows its title, and the form its fields.
    # A fresh server's first page imports every kind: give it longer than later pages.
    expect(page.get_by_role("combobox", name="Kind")).to_have_value(KIND_TITLE, timeout=30_000)
    form = page.get_by_test_id("stForm")
    samples = form.get_by_label("Samples", exact=True)
    samples.wait_for(state="visible")

    form.get_by_label("Name", exact=True).fill(JOB_NAME)
    samples.fill(str(SAMPLES))
    samples.press("Tab")  # a field commits its value when it loses focus
    chunks = form.get_by_label("Chunks", exact=True)
    chunks.fill(str(CHUNKS))
    chunks.press("Tab")
    form.get_by_role("button", name=re.compile(r"Submit")).click()

    page.wait_for_url(re.compile(r"/job\?(.*&)?id="), timeout=30_000)
    ids = parse_qs(urlparse(page.url).query).get("id")
    assert ids, f"no id in the job page's URL {page.url}"
    return ids[0]


def watch_progress(page: Page, app: RunlabUp, public_id: str) -> list[float]:
    """The values the overall bar shows until the page says `succeeded`, in order of sight."""
    bar = overall_bar(page)
    done = status_badge(page, "succeeded")
    seen: list[float] = []
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        try:
            raw = bar.get_attribute("aria-valuenow", timeout=1_000)
        except Exception:  # the fragment redraws it, or the page reruns as the job ends
            raw = None
        if raw is not None and (not seen or float(raw) != seen[-1]):
            seen.append(float(raw))
        if done.is_visible():
            return seen
        if time.monotonic() > deadline:
            job = queries.get_job(app.engine, public_id, log_lines=20)
            raise AssertionError(
                f"the page did not show `succeeded` within {JOB_TIMEOUT:.0f}s; "
                f"the store says {job.status} at {job.progress:.0%}; bar values seen: {seen}"
            )
        time.sleep(POLL)


def assert_result_page(page: Page) -> str:
    """`succeeded`, a Plotly chart and an estimate of π; the estimate's text."""
    status_badge(page, "succeeded").wait_for(state="visible", timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=30_000)
    metric = estimate_metric(page, "Estimate of π")
    metric.wait_for(state="visible", timeout=15_000)
    return metric.inner_text().strip()


# Its deadlines add up to 450 s: the app's start (90 s), as the module's first test, the form
# (30 + 30 + 30 s), the job (90 s), then its result on two pages (75 s each, and 30 s for the
# second's load).
@pytest.mark.timeout(START_TIMEOUT + 90 + JOB_TIMEOUT + 2 * 75 + 30 + 60)
def test_submit_watch_progress_and_share_the_link(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    public_id = submit_pi_job(page, runlab_app.url)
    job_url = page.url

    # What the form sent is what the store holds.
    submitted = queries.get_job(runlab_app.engine, public_id, log_lines=0)
    assert submitted.kind == KIND
    assert submitted.name == JOB_NAME
    assert submitted.params["samples"] == SAMPLES, submitted.params
    assert submitted.params["chunks"] == CHUNKS, submitted.params

    values = watch_progress(page, runlab_app, public_id)
    print(f"overall progress seen: {values}")
    assert len(set(values)) >= 3, f"the progress bar took fewer than 3 values: {values}"
    assert values == sorted(values), f"the progress bar went backwards: {values}"

    shown = assert_result_page(page)
    job = queries.get_job(runlab_app.engine, public_id, log_lines=0)
    assert job.status is Status.SUCCEEDED
    assert job.result is not None
    estimate = job.result["estimate"]
    assert abs(estimate - math.pi) < 1e-3, job.result
    # The headline: the estimate ± its standard error, to the digits that the error supports.
    kind = registry.get("monte_carlo_pi")
    assert shown == kind.summary(job.result, job.params).figures[0].text
    value, error = (float(x) for x in shown.replace(",", "").split(" ± "))
    assert abs(value - estimate) <= 10 ** -fmt.decimals_for(job.result["standard_error"]), shown
    assert error == pytest.approx(job.result["standard_error"], rel=0.1)

    # The shared link, opened by somebody else: no cookies, no session, same result.
    other = new_page()
    other.goto(job_url)
    assert assert_result_page(other) == shown
    assert other.get_by_text(JOB_NAME, exact=True).first.is_visible()


def test_the_runner_serves_its_dask_dashboard(runlab_app: RunlabUp) -> None:
    """The runner's LocalCluster serves the Dask dashboard, and the store holds its address
    for /runners and the Timeline to link to."""
    (runner,) = [r for r in queries.runners(runlab_app.engine, alive_within=30) if r.alive]
    assert runner.dashboard_link, "the runner recorded no dashboard"
    with urllib.request.urlopen(runner.dashboard_link, timeout=10) as answer:
        assert answer.status == 200
        assert "Dask" in answer.read().decode("utf-8", "replace")


def test_ctrl_c_stops_the_app_and_the_runner(runlab_app: RunlabUp) -> None:
    """Ctrl-C (SIGINT to the process group) stops everything, and `runlab up` exits 0."""
    below = runlab_app.descendants()
    commands = [command_line(p) for p in below]
    assert any("streamlit" in c for c in commands), commands
    assert any("runner" in c for c in commands), commands

    code = runlab_app.stop(signal.SIGINT)
    assert code == 0, f"`runlab up` stopped with {code}:\n{runlab_app.log_tail()}"
    try:
        wait_for(lambda: not alive(below), timeout=10, what="every child process to exit")
    except AssertionError:
        left = [(p.pid, command_line(p)) for p in alive(below)]
        raise AssertionError(f"processes left behind: {left}") from None
