"""Home: runner liveness, queue depth, what runs now and recent jobs, or what to do first."""

from __future__ import annotations

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from tests.ui import seed
from tests.ui.conftest import open_page


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_empty_store_says_how_to_start_a_runner_and_submit_a_job(store: Engine) -> None:
    at = open_page()

    assert metrics(at) == {"Runners alive": "0", "Queued": "0", "Running": "0"}
    assert any("runlab runner" in w.value for w in at.warning)
    assert any("No jobs yet" in i.value for i in at.info)
    assert [p.proto.page for p in at.main.get("page_link")] == ["new"]


def test_store_with_jobs_shows_counts_running_progress_and_recent_links(store: Engine) -> None:
    seed.runner(store)
    busy, _ = seed.running(store, "busy", progress=0.75)
    done = seed.succeeded(store, "done")
    waiting = seed.queued(store, "waiting")

    at = open_page()

    assert metrics(at) == {"Runners alive": "1", "Queued": "1", "Running": "1"}
    assert not any("runlab runner" in w.value for w in at.warning)
    running = at.container("running").dataframe[0].value
    assert list(zip(running["name"], running["progress"], strict=True)) == [("busy", 0.75)]
    recent = at.container("recent").dataframe[0].value
    assert list(recent["job"]) == [
        f"job?id={i}#{name}" for i, name in ((waiting, "waiting"), (done, "done"), (busy, "busy"))
    ]
    assert not at.info
