"""The form's tools in a real browser: an uploaded CSV bootstrapped to a shared result, a preset
saved and loaded back, and a finished job cloned from its page."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import pytest

from compute import intake
from jobstore import presets, queries, transitions
from jobstore.models import Status
from runlab import format as fmt
from tests.e2e.conftest import RunlabUp
from tests.e2e.test_browser import estimate_metric, status_badge
from tests.polling import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e

JOB_TIMEOUT = 60.0
FIRST_PAGE_MS = 30_000  # a fresh server's first page imports every kind
PRICES = [round(100 + 3 * math.sin(i) + i / 20, 4) for i in range(60)]
CSV = ("day,price,ticker\n" + "".join(f"{i},{p},T{i % 4}\n" for i, p in enumerate(PRICES))).encode()


@pytest.fixture(scope="module", autouse=True)
def finished_job(runlab_app: RunlabUp) -> str:
    """An option pricing job, queued as the module starts so that it has run by the time the
    clone test wants it."""
    params = {"S": 104.5, "K": 95.0, "sigma": 0.3, "paths": 4000, "seed": 12345}
    return intake.submit(runlab_app.engine, "option_pricing", params, name="to clone")


def open_form(page: Page, base_url: str, kind: str, title: str) -> Locator:
    """/new?kind=<kind>, once the kind's form is drawn; the form."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/new?kind={kind}")
    expect(page.get_by_role("combobox", name="Kind")).to_have_value(title, timeout=FIRST_PAGE_MS)
    form = page.get_by_test_id("stForm")
    form.get_by_role("button", name=re.compile("Submit")).wait_for(state="visible")
    return form


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`.

    The box is scrolled into view first: a list opened by a click that had to scroll the page
    (a box pushed below the fold by an upload's summary) closes as the page scrolls. A click
    that is lost all the same is tried again on a list opened anew. Not by the keyboard: Enter
    in a form submits it.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    box = page.get_by_role("combobox", name=label)
    choice = page.get_by_role("option", name=option, exact=True)

    def picked() -> bool:
        if not choice.is_visible():
            box.scroll_into_view_if_needed()
            box.click()
        try:
            choice.click(timeout=3_000)
            expect(box).to_have_value(option, timeout=3_000)
        except (PlaywrightTimeout, AssertionError):
            page.keyboard.press("Escape")  # closes the list, if it is still open
            return False
        return True

    wait_for(picked, timeout=45, what=f"{option!r} picked in {label!r}")


def type_number(form: Locator, label: str, value: str) -> None:
    field = form.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Tab")  # a field commits its value when it loses focus


def job_id(page: Page) -> str:
    page.wait_for_url(re.compile(r"/job\?(.*&)?id="), timeout=30_000)
    ids = parse_qs(urlparse(page.url).query).get("id")
    assert ids, f"no id in the job page's URL {page.url}"
    return ids[0]


def wait_succeeded(app: RunlabUp, public_id: str) -> None:
    def done() -> bool:
        job = queries.get_job(app.engine, public_id, log_lines=5)
        assert job.status not in (Status.FAILED, Status.CANCELLED), (job.status, job.error)
        return job.status is Status.SUCCEEDED

    wait_for(done, timeout=JOB_TIMEOUT, what=f"job {public_id} to succeed", interval=0.2)


def shown_estimate(page: Page) -> str:
    """`succeeded`, a histogram of bars, and the estimate's text.

    Generous deadlines: on a loaded machine the page's rerun at the job's end, then Plotly's
    first drawing, each took over 30 s.
    """
    status_badge(page, "succeeded").wait_for(state="visible", timeout=60_000)
    bars = page.locator(".js-plotly-plot .barlayer .point")
    bars.first.wait_for(state="attached", timeout=60_000)
    assert bars.count() > 5, f"{bars.count()} bars in the histogram"
    metric = estimate_metric(page)
    metric.wait_for(state="visible", timeout=30_000)
    return metric.inner_text().strip()


# Its deadlines add up to 585 s: the app's start (90 s), as the module's first test, the form
# (30 + 30 + 15 s), the job's page (30 s) and end (60 s), then the result on two pages
# (150 s each, and 30 s for the second's load).
@pytest.mark.timeout(660)
def test_upload_a_csv_bootstrap_it_and_share_the_result(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    form = open_form(page, runlab_app.url, "bootstrap", "Bootstrap interval")
    page.locator("input[type=file]").set_input_files(
        {"name": "prices.csv", "mimeType": "text/csv", "buffer": CSV}
    )
    # Once the file is read: its summary under the uploader, and the column picker offers its
    # numeric columns. The picker is used after the summary has pushed it down the page.
    expect(page.get_by_text("prices.csv: 60 rows × 3 columns")).to_be_visible(timeout=15_000)
    expect(page.get_by_role("combobox", name="Column")).to_have_value("day", timeout=15_000)
    choose(page, "Column", "price")
    type_number(form, "Resamples", "2000")
    type_number(form, "Seed", "7")
    form.get_by_role("button", name=re.compile("Submit")).click()

    public_id = job_id(page)
    job = queries.get_job(runlab_app.engine, public_id, log_lines=0)
    assert (job.params["column"], job.params["resamples"], job.params["seed"]) == ("price", 2000, 7)
    assert job.params["data"]["name"] == "prices.csv"
    assert job.params["data"]["size"] == len(CSV)

    wait_succeeded(runlab_app, public_id)
    shown = shown_estimate(page)
    # Rounded to the digits that the bootstrap's standard error supports.
    done = queries.get_job(runlab_app.engine, public_id)
    places = fmt.decimals_for(done.result["standard_error"])
    assert shown == f"{statistics.fmean(PRICES):,.{places}f}"

    other = new_page()  # the shared link: no cookies, no session
    other.goto(page.url)
    assert shown_estimate(other) == shown


def test_save_a_preset_and_load_it_in_a_fresh_page(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    form = open_form(page, runlab_app.url, "option_pricing", "Option pricing")
    choose(page, "Option type", "Asian call (arithmetic average)")
    form.get_by_label("Time steps", exact=True).wait_for(state="visible")
    type_number(form, "Paths", "40000")
    type_number(form, "Volatility σ (per year)", "0.35")
    type_number(form, "Time steps", "12")
    form.get_by_text("Save these values as a preset").click()
    form.get_by_label("Preset name", exact=True).fill("desk")
    form.get_by_role("button", name=re.compile("Save preset")).click()

    expect(page.get_by_text("Saved preset desk.")).to_be_visible(timeout=15_000)
    (saved,) = presets.list_presets(runlab_app.engine, "option_pricing")
    assert saved.name == "desk"
    assert (saved.params["paths"], saved.params["sigma"], saved.params["steps"]) == (
        40_000,
        0.35,
        12,
    )
    assert [r.name for r in queries.list_jobs(runlab_app.engine, kind=["option_pricing"]).rows] == [
        "to clone"
    ]  # saving a preset submits nothing

    fresh = new_page()
    form = open_form(fresh, runlab_app.url, "option_pricing", "Option pricing")
    expect(form.get_by_label("Paths", exact=True)).to_have_value("1,000,000")
    choose(fresh, "Preset", "desk")
    fresh.get_by_role("button", name=re.compile("Load")).click()
    expect(fresh.get_by_text("Loaded preset desk.")).to_be_visible(timeout=15_000)
    expect(fresh.get_by_role("combobox", name="Option type")).to_have_value(
        "Asian call (arithmetic average)"
    )
    expect(form.get_by_label("Paths", exact=True)).to_have_value("40,000")
    expect(form.get_by_label("Volatility σ (per year)", exact=True)).to_have_value("0.35")
    expect(form.get_by_label("Time steps", exact=True)).to_have_value("12")


def test_clone_a_finished_job_from_its_page(
    runlab_app: RunlabUp, new_page: Callable[[], Page], finished_job: str
) -> None:
    from playwright.sync_api import expect

    source = finished_job
    wait_succeeded(runlab_app, source)

    page = new_page()
    page.goto(f"{runlab_app.url}/job?id={source}")
    status_badge(page, "succeeded").wait_for(state="visible", timeout=FIRST_PAGE_MS)
    page.get_by_role("button", name=re.compile("Clone")).click()

    page.wait_for_url(re.compile(r"/new\?(.*&)?clone="), timeout=30_000)
    expect(page.get_by_role("combobox", name="Kind")).to_have_value("Option pricing")
    expect(page.get_by_text(f"Cloned from to clone ({source}).", exact=False)).to_be_visible()
    form = page.get_by_test_id("stForm")
    for label, value in (
        ("Spot S", "104.5"),
        ("Strike K", "95"),
        ("Volatility σ (per year)", "0.3"),
        ("Paths", "4,000"),
    ):
        expect(form.get_by_label(label, exact=True)).to_have_value(value)
    expect(form.get_by_label("Seed", exact=True)).to_have_value("12,345")


def test_numbers_read_as_typed_and_a_bad_one_is_named_under_its_field(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    """A browser's number field turned `1e9` into 1 and `2.5` into 2: the form's fields are
    text, read as the CLI reads them, and what is not a valid number is refused in words."""
    from playwright.sync_api import expect

    engine = runlab_app.engine
    before = queries.list_jobs(engine).total
    page = new_page()
    form = open_form(page, runlab_app.url, "monte_carlo_pi", "Monte Carlo π")
    type_number(form, "Samples", "-5")
    type_number(form, "Chunks", "2.5")
    form.get_by_role("button", name=re.compile("Submit")).click()
    for message in (
        "must be an integer between 1 and 100,000,000,000",
        "must be an integer between 1 and 100,000",
    ):
        expect(form.get_by_text(message, exact=True)).to_be_visible(timeout=15_000)
    expect(form.get_by_label("Chunks", exact=True)).to_have_value("2.5")
    assert queries.list_jobs(engine).total == before  # nothing stored

    type_number(form, "Samples", "1e9")
    type_number(form, "Chunks", "")
    form.get_by_role("button", name=re.compile("Submit")).click()
    public_id = job_id(page)
    job = queries.get_job(engine, public_id)
    assert job.params["samples"] == 1_000_000_000
    assert job.params["chunks"] == 10  # picked for ~0.6 s of work per task
    transitions.request_cancel(engine, public_id)  # its numbers are not what this test is for
    wait_for(
        lambda: queries.get_job(engine, public_id).status.terminal,
        timeout=60,
        what="the job to end",
    )
