"""/jobs: live and queued jobs, and a history whose filters and page live in the URL."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from jobstore import transitions as T
from tests.ui import seed
from tests.ui.conftest import open_page


def table(at: AppTest, key: str) -> pd.DataFrame:
    return at.container(key).dataframe[0].value


def test_filters_in_the_url_show_only_matching_jobs(store: Engine) -> None:
    seed.runner(store)
    seed.succeeded(store, "pi done")
    T.submit(store, "demo_stages", {"stages": 1}, name="demo waiting")
    seed.queued(store, "pi waiting")

    at = open_page("pages/jobs.py", status="queued", kind="demo_stages")

    assert at.multiselect(key="status").value == ["queued"]
    assert at.multiselect(key="kind").value == ["demo_stages"]
    assert list(table(at, "history")["name"]) == ["demo waiting"]


def test_several_values_of_one_filter_are_all_kept(store: Engine) -> None:
    seed.runner(store)
    seed.succeeded(store, "ok")
    seed.failed(store, "broken")
    seed.queued(store, "waiting")

    at = open_page("pages/jobs.py", status=["succeeded", "failed"])

    assert list(table(at, "history")["name"]) == ["broken", "ok"]


def test_history_is_newest_first_with_a_link_to_each_job(store: Engine) -> None:
    ids = [seed.queued(store, f"job {i}") for i in range(3)]

    at = open_page("pages/jobs.py")

    history = table(at, "history")
    assert list(history["name"]) == ["job 2", "job 1", "job 0"]
    assert list(history["job"]) == [f"job?id={i}" for i in reversed(ids)]
    assert {"status", "kind", "created", "duration"} <= set(history.columns)


def test_page_number_in_the_url_opens_that_page(store: Engine) -> None:
    for i in range(30):
        seed.queued(store, f"job {i:02d}", samples=10)

    at = open_page("pages/jobs.py", page="2")

    assert list(table(at, "history")["name"]) == [f"job {i:02d}" for i in range(4, -1, -1)]
    assert "Jobs 26–30 of 30" in [c.value for c in at.caption][-1]


def test_changing_a_filter_goes_back_to_the_first_page(store: Engine) -> None:
    for i in range(30):
        seed.queued(store, f"job {i:02d}", samples=10)
    at = open_page("pages/jobs.py", page="2")

    at.multiselect(key="status").set_value(["queued"]).run()

    names = list(table(at, "history")["name"])
    assert (len(names), names[0]) == (25, "job 29")


def test_no_match_says_so_and_an_empty_store_invites_a_first_job(store: Engine) -> None:
    seed.queued(store)
    filtered = open_page("pages/jobs.py", status="failed")
    assert [i.value for i in filtered.info] == ["No jobs match these filters."]

    store_empty = open_page("pages/jobs.py", kind="demo_stages")
    assert "No jobs" in store_empty.info[0].value


def test_running_and_queued_sections_show_progress_and_positions(store: Engine) -> None:
    seed.runner(store)
    seed.running(store, "busy", progress=0.25)
    seed.queued(store, "next")
    seed.queued(store, "after")

    at = open_page("pages/jobs.py")

    running = table(at, "running")
    assert list(running["name"]) == ["busy"]
    assert list(running["progress"]) == [0.25]
    queued = table(at, "queued")
    assert list(zip(queued["position"], queued["name"], strict=True)) == [(1, "next"), (2, "after")]
