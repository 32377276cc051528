"""/job?id=…: every status drawn from a seeded store, cancelling, the tabs and chart settings
kept in the URL, the link to share, the downloads, and links that lead nowhere."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from jobstore import queries
from jobstore import transitions as T
from jobstore.models import Status
from tests.polling import wait_for
from tests.ui import seed
from tests.ui.conftest import markdown_texts, open_page
from ui import badges, job_view
from ui.text import md_escape


def job_page(public_id: str, **query: str | list[str]) -> AppTest:
    return open_page("pages/job.py", id=public_id, **query)


def open_tab(at: AppTest) -> str:
    """The tab whose content was drawn: only the open one is."""
    [label] = [t.label for t in at.tabs if t.children]
    return label


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def badge(status: Status) -> str:
    """How st.badge reaches the page for `status`, in its colour and with its icon."""
    look = badges.LOOKS[status]
    return f":{look.colour}-badge[{look.icon} {status}]"


def has_button(at: AppTest, label: str) -> bool:
    return any(b.label == label for b in at.button)


def charts(at: AppTest) -> list[dict[str, Any]]:
    """The Plotly figures on the page."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def ys(figure: dict[str, Any]) -> list[float]:
    return [y for trace in figure["data"] for y in trace.get("y", [])]


def test_queued_job_shows_its_place_in_the_queue(store: Engine) -> None:
    seed.queued(store, "first")
    second = seed.queued(store, "second")

    at = job_page(second)

    assert [t.value for t in at.title] == ["second"]
    assert badge(Status.QUEUED) in [m.value for m in at.markdown]
    assert metric(at, "Position in queue") == "2"
    assert next(m for m in at.metric if m.label == "Position in queue").help.startswith(
        "1 job ahead"
    )
    assert has_button(at, "Cancel job")
    assert any("runlab runner" in w.value for w in at.warning), "no runner is alive"


def test_parameters_show_a_63_bit_seed_to_its_last_digit(store: Engine) -> None:
    big = 2**62 + 11
    public_id = seed.queued(store, seed=big)

    at = job_page(public_id, tab="Parameters")

    params = json.loads(at.json[-1].value)
    assert params["seed"] == str(big)


def test_queued_job_with_a_live_runner_does_not_ask_to_start_one(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.queued(store)

    at = job_page(public_id)

    assert not any("runlab runner" in w.value for w in at.warning)


def test_running_job_shows_progress_stage_bars_and_its_live_chart(store: Engine) -> None:
    seed.runner(store)
    public_id, _ = seed.running(store, "halfway", progress=0.5, log="chunk 3 of 6 done")

    at = job_page(public_id)

    assert open_tab(at) == "Progress"  # until there is a result, how far it has got
    assert badge(Status.RUNNING) in [m.value for m in at.markdown]
    bars = at.get("progress")
    assert [b.value for b in bars] == [50, 100, 50, 0]  # overall, then plan, sample, reduce
    assert [b.text.split(" · ")[0] for b in bars[1:]] == ["● plan", "◐ sample", "○ reduce"]
    assert metric(at, "Progress") == "50 %"
    assert metric(at, "Elapsed") != "—"
    [chart] = charts(at)
    assert ys(chart) == [3.1372, 3.1391]
    assert has_button(at, "Cancel job")
    log = job_page(public_id, tab="Log")
    assert any("chunk 3 of 6 done" in c.value for c in log.code)


def test_succeeded_job_shows_key_numbers_result_and_its_chart(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.succeeded(store, "done")

    at = job_page(public_id)

    assert open_tab(at) == "Result"
    assert badge(Status.SUCCEEDED) in [m.value for m in at.markdown]
    assert metric(at, "Estimate") == "3.1416"
    assert metric(at, "Samples") == "1,000,000"
    assert seed.PI_RESULT in [json.loads(j.value) for j in at.json]
    [chart] = charts(at)  # the kind's own figure: the series against π
    assert ys(chart) == [3.1372, 3.1391]
    assert chart["layout"]["yaxis"]["title"]["text"] == "estimate of π"
    assert not has_button(at, "Cancel job")
    assert has_button(at, "Re-run")
    assert [b.value for b in at.get("progress")] == [100]
    stages = job_page(public_id, tab="Progress")
    assert [b.value for b in stages.get("progress")] == [100, 100, 100, 100]
    # The versions it ran with, for an exact re-run to match.
    params = job_page(public_id, tab="Parameters")
    assert any(c.value.startswith("Ran with numpy 2.4.6") for c in params.caption)


def test_failed_job_shows_error_type_message_and_traceback(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.failed(store, message="the disk is full")

    at = job_page(public_id)

    assert badge(Status.FAILED) in [m.value for m in at.markdown]
    assert [e.value for e in at.error] == [md_escape("ValueError: the disk is full")]
    assert any("Traceback (most recent call last)" in c.value for c in at.code)
    assert not has_button(at, "Cancel job")


def test_cancelled_job_says_so_and_offers_no_cancel(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.cancelled(store)

    at = job_page(public_id)

    assert any(w.value.startswith("Cancelled at") for w in at.warning)
    assert badge(Status.CANCELLED) in [m.value for m in at.markdown]
    assert not has_button(at, "Cancel job")


def test_cancel_of_a_queued_job_cancels_it_and_the_page_shows_it(store: Engine) -> None:
    public_id = seed.queued(store)
    at = job_page(public_id)

    next(b for b in at.button if b.label == "Cancel job").click()
    at.run()

    assert queries.get_job(store, public_id).status is Status.CANCELLED
    assert [t.value for t in at.toast] == ["Cancelled before it started."]
    assert any(w.value.startswith("Cancelled at") for w in at.warning)
    assert not has_button(at, "Cancel job")


def test_cancel_of_a_running_job_asks_it_to_stop(store: Engine) -> None:
    seed.runner(store)
    public_id, _ = seed.running(store)
    at = job_page(public_id)

    next(b for b in at.button if b.label == "Cancel job").click()
    at.run()

    job = queries.get_job(store, public_id)
    assert (job.status, job.cancel_requested) == (Status.RUNNING, True)
    assert [t.value for t in at.toast] == ["Cancel requested: the job stops at its next check."]
    button = next(b for b in at.button if b.label == "Cancel job")
    assert button.disabled


@pytest.mark.parametrize(
    "bad_id",
    ["", "nosuchjob123", "../../etc", "<script>alert(1)</script>", "x" * 500, "a b c d e f g h"],
)
def test_unknown_or_malformed_id_says_no_such_job(store: Engine, bad_id: str) -> None:
    seed.queued(store)

    at = job_page(bad_id)

    assert [t.value for t in at.title] == ["No such job"]
    assert [(p.proto.label, p.proto.page) for p in at.main.get("page_link")] == [
        ("See all jobs", "jobs")
    ]
    assert not at.exception


def test_missing_id_says_no_such_job(store: Engine) -> None:
    at = open_page("pages/job.py")
    assert [t.value for t in at.title] == ["No such job"]


def test_user_text_is_shown_literally_never_as_markdown_or_html(store: Engine) -> None:
    name = "<img src=x onerror=alert(1)>"
    log = "**bold** <b>x</b> [click](javascript:alert(1))"
    message = "**boom** :red[alarm] <script>alert(1)</script>"
    seed.runner(store)
    public_id, lease = seed.running(store, name, log=log)
    T.fail(store, lease, "ValueError", message, "Traceback")

    at = job_page(public_id)

    # Wherever user text reached a Markdown element, each character that could open
    # Markdown, HTML or a Streamlit directive is backslash-escaped.
    user_parts = [t for t in markdown_texts(at) if re.search("onerror|bold|boom|alarm", t)]
    assert user_parts, "the name and error are shown"
    for text in user_parts:
        assert not re.search(r"(?<!\\)[<>*\[\]:]", text), text
    assert [t.value for t in at.title] == [md_escape(name)]
    assert [e.value for e in at.error] == [md_escape(f"ValueError: {message}")]
    assert any(log in c.value for c in job_page(public_id, tab="Log").code)
    history = open_page("pages/jobs.py").container("history").dataframe[0].value
    assert name in list(history["name"])


@pytest.mark.parametrize(
    ("status", "live"),
    [(s, not s.terminal) for s in Status],
)
def test_page_refreshes_only_while_the_job_can_change(status: Status, live: bool) -> None:
    every = job_view.refresh_every(status)
    assert (every is not None) == live
    if live:
        assert every is not None and 0.25 <= every <= 1.0


def test_a_retried_running_job_lists_its_attempts_and_heartbeat_age(store: Engine) -> None:
    public_id = T.submit(store, "demo_stages", {"stages": 2})
    T.claim(store, "runner-gone", lease_seconds=0.05)
    wait_for(lambda: T.reap(store, backoff_base=0), timeout=10, what="the reaper")
    T.claim(store, "runner-new", lease_seconds=30)

    at = job_page(public_id, tab="Timeline")

    assert metric(at, "Attempt") == "2 of 3"
    [table] = [d.value for d in at.dataframe if "Outcome" in d.value.columns]
    assert list(table["Outcome"]) == ["requeued", "running"]
    assert list(table["Runner"]) == ["runner-gone", "runner-new"]
    assert any(c.value.startswith("last heartbeat") for c in at.caption)
    # The Gantt chart: a wait in the queue before each attempt, and each attempt on its runner.
    [gantt] = charts(at)
    rows = {(t["name"], y) for t in gantt["data"] for y in t["y"]}
    assert rows == {
        ("queued", "queue"),
        ("requeued", "attempt 1 · runner-gone"),
        ("running", "attempt 2 · runner-new"),
    }


def test_rerun_button_queues_the_same_params_and_opens_the_new_job(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.succeeded(store, "done")
    at = job_page(public_id)
    next(b for b in at.button if b.label == "Re-run").click().run()

    jobs = queries.list_jobs(store).rows
    assert len(jobs) == 2
    new = next(j for j in jobs if j.id != public_id)
    assert queries.get_job(store, new.id).params == queries.get_job(store, public_id).params
    assert at.query_params.get("id") == new.id  # the page now shows the new job
