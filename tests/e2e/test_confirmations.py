"""Confirmation dialogs in a real Chromium, against `runlab up`.

A click inside a dialog reruns only the dialog, which AppTest does not do: only a browser shows
whether an answer closes the dialog, and whether anything happened before it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from compute import intake
from jobstore import queries
from jobstore.engine import db_later
from jobstore.models import Job, Status
from tests.e2e.conftest import RunlabUp
from tests.e2e.test_history import NAME_COLUMN, grid_column, history_grid, wait_for_rows
from tests.polling import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

ROW = 35  # pixels: the height of a header or a row in Streamlit's grid


def tick(page: Page, names: list[str]) -> None:
    """Tick the history rows of `names`, clicking the boxes the grid draws on its canvas."""
    shown = grid_column(page, NAME_COLUMN)
    grid = history_grid(page)
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    for name in names:
        row = shown.index(name) + 1  # below the header
        page.mouse.click(box["x"] + ROW / 2, box["y"] + row * ROW + ROW / 2)
    page.get_by_text(f"{len(names)} selected").wait_for()


def answer(page: Page, button: str) -> None:
    """Click `button` in the open dialog and wait for the dialog to close."""
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name=button).click()
    dialog.wait_for(state="detached")


def named(runlab_app: RunlabUp, word: str) -> list[str]:
    return sorted(
        j.name for j in queries.list_jobs(runlab_app.engine, limit=100).rows if word in j.name
    )


def test_bulk_rerun_and_delete_act_only_on_a_yes_and_every_answer_closes_the_dialog(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    engine = runlab_app.engine
    ids = [
        intake.submit(
            engine, "demo_stages", {"stages": 1, "seconds_per_stage": 0.0}, name=f"twin {i}"
        )
        for i in range(2)
    ]
    wait_for(
        lambda: all(queries.get_job(engine, i).status is Status.SUCCEEDED for i in ids),
        timeout=60,
        what="both jobs to succeed",
    )
    page = new_page()
    page.goto(f"{runlab_app.url}/jobs?q=twin")
    wait_for_rows(page, ["twin 1", "twin 0"])
    tick(page, ["twin 1", "twin 0"])

    page.get_by_role("button", name="Re-run", exact=True).click()
    answer(page, "Don't re-run")
    page.get_by_role("button", name="Delete", exact=True).click()
    answer(page, "Keep them")
    assert named(runlab_app, "twin") == ["twin 0", "twin 1"]

    page.get_by_role("button", name="Re-run", exact=True).click()
    answer(page, "Re-run 2 jobs")
    assert named(runlab_app, "twin") == ["twin 0", "twin 0 (re-run)", "twin 1", "twin 1 (re-run)"]


def test_cancel_of_a_long_run_on_its_page_asks_and_keeps_it_running_until_a_yes(
    runlab_app: RunlabUp, new_page: Callable[[], Page]
) -> None:
    engine = runlab_app.engine
    job = intake.submit(
        engine, "demo_stages", {"stages": 1, "seconds_per_stage": 300.0}, name="slow"
    )
    wait_for(
        lambda: queries.get_job(engine, job).status is Status.RUNNING,
        timeout=60,
        what="the job to start",
    )
    with engine.begin() as conn:  # as if it had started ten minutes ago
        conn.execute(update(Job).where(Job.public_id == job).values(started_at=db_later(-600)))
    page = new_page()
    page.goto(f"{runlab_app.url}/job?id={job}")

    page.get_by_role("button", name="Cancel job").click()
    # The dialog's title can paint a frame before its body: the text is waited for.
    expect(page.get_by_role("dialog")).to_contain_text("which has run for 10", timeout=30_000)
    answer(page, "Keep it running")
    assert not queries.get_job(engine, job).cancel_requested

    page.get_by_role("button", name="Cancel job").click()
    answer(page, "Yes, cancel")
    wait_for(
        lambda: queries.get_job(engine, job).status is Status.CANCELLED,
        timeout=30,
        what="the job to be cancelled",
    )
