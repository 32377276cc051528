"""Sign-in in Chromium, through a real OIDC code flow against a provider of the tests' own
(tests/oidc.py): every page asks for it, a shared link leads back after it, and who may do what
holds on every path a browser can reach, with the store unchanged by a refusal."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect
from sqlalchemy import Engine

from compute import intake
from jobstore import queries
from jobstore.engine import make_engine, migrate
from jobstore.models import Status
from tests.e2e.conftest import CHROMIUM_ARGS, require_browser
from tests.e2e.test_confirmations import tick
from tests.e2e.test_history import wait_for_rows
from tests.oidc import Provider, provider
from tests.polling import wait_for
from tests.processes import free_port, served

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

ALICE = "alice@example.com"
BOB = "bob@example.com"
ADMIN = "root@example.com"
SIGN_IN = "Sign in to Runlab"


class Site:
    def __init__(self, base: str, engine: Engine, idp: Provider, folder: Path) -> None:
        self.base = base
        self.engine = engine
        self.idp = idp
        self.folder = folder


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_browser()
    folder = tmp_path_factory.mktemp("signed-in")
    url = f"sqlite:///{folder / 'runlab.db'}"
    engine = make_engine(url)
    migrate(engine)
    port = free_port()
    with provider() as idp:
        (folder / ".streamlit").mkdir()
        (folder / ".streamlit" / "secrets.toml").write_text(
            idp.secrets_toml(f"http://127.0.0.1:{port}", secrets.token_hex(32))
            + f'\n[runlab]\nadmins = "{ADMIN}"\n'
        )
        with served(url, folder, port=port) as base:
            yield Site(base, engine, idp, folder)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def fresh(browser: Browser, site: Site, tmp_path: Path) -> Iterator[Callable[[], Page]]:
    """Pages in browser contexts of their own: no cookie is shared between people."""
    contexts = []
    pages: list[Page] = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield make
    for i, page in enumerate(pages):
        page.screenshot(path=str(tmp_path / f"page-{i}.png"), full_page=True)
    for context in contexts:
        context.close()


def sign_in(page: Page, email: str) -> None:
    """From the sign-in page: the button, the provider's page, back to the app."""
    expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#email").fill(email)
    page.locator("#approve").click()
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible(timeout=30_000)


def job_id_of(page: Page) -> str:
    page.wait_for_url(re.compile(r"/job\?(.*&)?id="), timeout=30_000)
    return page.url.split("id=")[1].split("&")[0]


def test_who_may_do_what_through_sign_in(site: Site, fresh: Callable[[], Page]) -> None:
    # Every page asks for sign-in first.
    anyone = fresh()
    for path in ("/", "/new", "/jobs", "/runners", "/compare"):
        anyone.goto(f"{site.base}{path}")
        expect(anyone.get_by_role("heading", name=SIGN_IN)).to_be_visible(timeout=30_000)
        expect(anyone.get_by_role("heading", name="Jobs", exact=True)).to_have_count(0)

    # Alice opens the form, signs in, comes back to it, and submits: the job is hers.
    alice = fresh()
    alice.goto(f"{site.base}/new?kind=monte_carlo_pi")
    sign_in(alice, ALICE)
    alice.wait_for_url(re.compile(r"/new"), timeout=30_000)
    form = alice.get_by_test_id("stForm")
    form.get_by_label("Name", exact=True).fill("alice-job")
    form.get_by_label("Samples", exact=True).fill("1000000")
    form.get_by_label("Samples", exact=True).press("Tab")
    form.get_by_role("button", name=re.compile(r"Submit")).click()
    job = job_id_of(alice)
    assert queries.get_job(site.engine, job).owner == ALICE
    expect(alice.get_by_role("button", name="Cancel job")).to_be_visible()

    # Bob follows her link: after sign-in it leads back to her job, which he may see but not
    # cancel, and the page offers him no way to.
    bob = fresh()
    bob.goto(f"{site.base}/job?id={job}")
    sign_in(bob, BOB)
    bob.wait_for_url(re.compile(rf"/job\?(.*&)?id={job}"), timeout=30_000)
    expect(bob.get_by_role("heading", name="alice-job")).to_be_visible()
    expect(bob.get_by_role("button", name="Cancel job")).to_have_count(0)
    expect(bob.get_by_role("button", name="Re-run")).to_have_count(0)  # not ended yet

    # Through the history's bulk cancel, which a client can always reach, he is refused.
    intake.submit(site.engine, "monte_carlo_pi", {"samples": 1000}, owner=BOB, name="bob-job")
    bob.goto(f"{site.base}/jobs")
    wait_for_rows(bob, ["bob-job", "alice-job"])
    tick(bob, ["alice-job", "bob-job"])
    bob.get_by_role("button", name="Cancel", exact=True).click()
    expect(
        bob.get_by_text(re.compile(rf"refused 1: only a job's owner \({ALICE}\) or an admin"))
    ).to_be_visible()
    hers = queries.get_job(site.engine, job)
    assert hers.status is Status.QUEUED and not hers.cancel_requested
    assert [(a.actor, a.what) for a in hers.actions] == [(ALICE, "submitted")]

    # An admin may; the job's Timeline says who did it.
    admin = fresh()
    admin.goto(f"{site.base}/job?id={job}&tab=Timeline")
    sign_in(admin, ADMIN)
    admin.wait_for_url(re.compile(rf"id={job}"), timeout=30_000)
    expect(admin.get_by_text(f"Signed in as {ADMIN} · admin")).to_be_visible()
    admin.get_by_role("button", name="Cancel job").click()
    wait_for(
        lambda: queries.get_job(site.engine, job).status is Status.CANCELLED,
        timeout=30,
        what="the admin's cancel to reach the store",
    )
    expect(admin.get_by_role("button", name="Re-run")).to_be_visible(timeout=30_000)
    cancelled = queries.get_job(site.engine, job)
    assert [(a.actor, a.what) for a in cancelled.actions][-1] == (ADMIN, "cancelled while queued")
    for tab in ("Timeline", "Log"):  # both say who did what
        admin.goto(f"{site.base}/job?id={job}&tab={tab}")
        expect(admin.get_by_text("Who did what")).to_be_visible(timeout=30_000)
        cells = admin.locator("td[role='gridcell']")
        expect(cells.filter(has_text=ADMIN)).to_have_count(1)
        expect(cells.filter(has_text="cancelled while queued")).to_have_count(1)

    # Signed out, every page asks again.
    alice.get_by_role("button", name="Sign out").click()
    expect(alice.get_by_role("heading", name=SIGN_IN)).to_be_visible(timeout=30_000)
    alice.goto(f"{site.base}/jobs")
    expect(alice.get_by_role("heading", name=SIGN_IN)).to_be_visible(timeout=30_000)


def test_an_ended_session_and_a_provider_that_is_down_each_get_a_page(
    site: Site, fresh: Callable[[], Page]
) -> None:
    site.idp.token_seconds = 3
    carol = fresh()
    carol.goto(f"{site.base}/runners")
    sign_in(carol, "carol@example.com")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the session ends with its token, 3 s after sign-in
        carol.goto(f"{site.base}/runners")
        shown = carol.get_by_text("Your session has ended")
        try:
            expect(shown).to_be_visible(timeout=2_000)
            break
        except AssertionError:
            continue
    expect(carol.get_by_text("Your session has ended")).to_be_visible()
    site.idp.token_seconds = 3600

    site.idp.stop()
    try:
        late = fresh()
        late.goto(f"{site.base}/jobs")
        expect(
            late.get_by_text(re.compile(r"The sign-in service at .* does not answer"))
        ).to_be_visible(timeout=30_000)
        expect(late.get_by_role("button", name="Sign in")).to_have_count(0)
        expect(late.get_by_text("Traceback")).to_have_count(0)
        expect(late.get_by_test_id("stException")).to_have_count(0)
    finally:
        site.idp.start()
