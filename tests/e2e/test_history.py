"""The history, shared links and hostile text in a real Chromium, against `runlab up`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest

from compute import intake
from jobstore import queries
from jobstore.models import Status
from tests.e2e.conftest import RunlabUp
from tests.e2e.test_report import download, open_job
from tests.polling import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_TAG = "javascript:alert(1)"
NAME_COLUMN = 1  # the job, by its name; status, kind, owner, created, duration, id


def history_grid(page: Page) -> Locator:
    """The history's table: above it, the running and queued jobs have tables of their own."""
    return page.locator(".st-key-history").get_by_test_id("stDataFrame")


def grid_column(page: Page, column: int) -> list[str]:
    """The text of one column of the history's table, top to bottom.

    The grid draws on a canvas; its cells are mirrored in an accessible table, read here.
    A link cell is mirrored as its address; the canvas shows the text the column's
    `display_text` takes from it, the job's name in the fragment, decoded as here.
    """
    table = history_grid(page)
    table.wait_for(state="visible")
    cells = table.locator(f"td[role='gridcell'][aria-colindex='{column}']")
    return [as_shown(c.strip()) for c in cells.all_text_contents()]


def as_shown(cell: str) -> str:
    link = re.fullmatch(r"job\?id=[^#]*#(.*)", cell, re.S)
    return unquote(link.group(1).replace("+", "%20")) if link else cell


def wait_for_rows(page: Page, want: list[str]) -> None:
    def shown() -> bool:
        return grid_column(page, NAME_COLUMN) == want

    wait_for(shown, timeout=30, what=f"the history to show {want}")


def test_a_history_link_opens_the_same_view_in_a_fresh_browser(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    engine = runlab_app.engine
    for i, tag in enumerate(["shared", "shared", "other", "shared"]):
        intake.submit(
            engine, "monte_carlo_pi", {"samples": 1000 * (i + 1)}, name=f"view {i}", tags=[tag]
        )
    page = new_page()
    page.goto(f"{runlab_app.url}/jobs?sort=name&order=oldest+first")
    search = page.get_by_role("textbox", name="Search")
    search.fill("samples>=2000 tag:shared")
    search.press("Enter")
    wait_for_rows(page, ["view 1", "view 3"])
    assert "q=" in page.url and "sort=name" in page.url

    colleague = new_page()  # no cookies, no session: only the link
    colleague.goto(page.url)
    wait_for_rows(colleague, ["view 1", "view 3"])
    assert (
        colleague.get_by_role("textbox", name="Search").input_value() == "samples>=2000 tag:shared"
    )


def test_a_bad_search_in_the_browser_points_at_the_token(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    page.goto(f"{runlab_app.url}/jobs?q=status:succeded")
    page.get_by_text("did you mean 'succeeded'").wait_for()
    assert "^^^^" in page.get_by_test_id("stCode").first.inner_text()


# Its deadlines add up to 780 s: the form (30 + 30 s), the job's page (30 s), both jobs (90 s),
# five pages (30 + 30 s each), the job page (30 + 60 s), the download (3 × 60 s) and the report
# (30 s).
@pytest.mark.timeout(840)
def test_hostile_names_and_tags_stay_text_on_every_page(
    runlab_app: RunlabUp, new_page: Callable[[], Page], tmp_path: Path
) -> None:
    """A job named like an HTML tag with a javascript: tag, submitted through the form, is
    shown on every page as the characters typed: no dialog, no element made from it."""
    from playwright.sync_api import expect

    engine = runlab_app.engine
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(f"{runlab_app.url}/new?kind=monte_carlo_pi")
    form = page.get_by_test_id("stForm")
    form.get_by_label("Samples", exact=True).wait_for(timeout=30_000)
    form.get_by_label("Name", exact=True).fill(XSS_NAME)
    form.get_by_label("Tags", exact=True).fill(XSS_TAG)
    samples = form.get_by_label("Samples", exact=True)
    samples.fill("100000")
    samples.press("Tab")
    form.get_by_role("button", name=re.compile("Submit")).click()
    page.wait_for_url(re.compile(r"/job\?(.*&)?id="), timeout=30_000)
    first = page.url.split("id=")[1].split("&")[0]
    job = queries.get_job(engine, first)
    assert (job.name, job.tags) == (XSS_NAME, [XSS_TAG])
    second = intake.rerun(engine, first)

    def both_done() -> bool:
        return all(queries.get_job(engine, i).status is Status.SUCCEEDED for i in (first, second))

    wait_for(both_done, timeout=90, what="both hostile jobs to succeed")

    pages = [
        f"/job?id={first}",
        "/jobs",
        f"/jobs?tag={XSS_TAG}",
        f"/compare?ids={first},{second}",
        "/",
    ]
    for path in pages:
        page.goto(f"{runlab_app.url}{path}")
        if path.startswith("/jobs"):
            wait_for(
                lambda: XSS_NAME in grid_column(page, NAME_COLUMN),
                timeout=30,
                what=f"the name in the table of {path}",
            )
        elif path == "/":
            page.get_by_test_id("stDataFrame").first.wait_for()
        else:
            expect(page.get_by_text(XSS_NAME).first).to_be_visible(timeout=30_000)
        assert page.locator("img[src='x']").count() == 0, path
        assert page.locator("a[href^='javascript']").count() == 0, path
        assert page.locator("[onerror]").count() == 0, path

    open_job(page, runlab_app, first)
    report = download(page, "Report · HTML", tmp_path)
    page.goto(report.as_uri())
    page.locator(".js-plotly-plot").first.wait_for(state="visible")
    assert page.locator("h1").inner_text() == XSS_NAME
    assert page.get_by_text(XSS_TAG).count() > 0
    assert page.locator("img").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    assert page.locator("[onerror]").count() == 0
    assert dialogs == []


@pytest.mark.parametrize(("scheme", "dark"), [("dark", True), ("light", False)])
def test_the_theme_follows_the_browser(
    runlab_app: RunlabUp, new_page: Callable[[], Page], scheme: str, dark: bool
) -> None:
    page = new_page()
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.goto(f"{runlab_app.url}/jobs")
    page.get_by_text("History").first.wait_for(timeout=30_000)
    rgb = page.evaluate("getComputedStyle(document.querySelector('.stApp')).backgroundColor")
    brightness = sum(int(v) for v in re.findall(r"\d+", rgb)[:3]) / 3
    assert (brightness < 60) is dark, rgb
