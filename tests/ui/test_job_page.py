"""/job?id=…: every status drawn from a seeded store, cancelling, the tabs and chart settings
kept in the URL, the link to share, the downloads, and links that lead nowhere."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update
from streamlit.testing.v1 import AppTest

from compute import intake
from jobstore import queries, reports
from jobstore import transitions as T
from jobstore.engine import db_later
from jobstore.models import Job, JobEvent, JobMetric, JobResult, JobStage, Status
from tests.polling import wait_for
from tests.ui import seed
from tests.ui.conftest import APP, ROOT, TIMEOUT, markdown_texts, open_page
from ui import badges, job_view, report
from ui import charts as charts_module
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
    # The kind's headline: the estimate to the digits its standard error supports.
    assert metric(at, "Estimate of π") == "3.1416 ± 0.0016"
    assert metric(at, "Distance from π") == "0.0 standard errors"
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


def test_a_job_stopped_early_says_partial_and_shows_the_share_it_covers(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.stopped(store, "kept part", covered=0.27)

    at = job_page(public_id)

    assert open_tab(at) == "Result"
    look = badges.PARTIAL_LOOK
    marks = [m.value for m in at.markdown]
    assert badge(Status.SUCCEEDED) in marks
    assert f":{look.colour}-badge[{look.icon} partial]" in marks
    assert [w.value for w in at.warning] == [
        "Stopped early: a partial result from 27 % of the planned work."
    ]
    assert metric(at, "Progress") == "27 %"
    assert [b.value for b in at.get("progress")] == [27]

    job = queries.get_job(store, public_id)
    page = report.html_report(job, job_view.kind_of(job), made_at=datetime.now(UTC))
    assert "<th>Status</th><td>partial</td>" in page
    # The kind's headline heads the result, rounded as on the page.
    assert "<tr><th>Estimate of π</th><td>3.1416 ± 0.0016</td></tr>" in page.replace("\n", "")
    assert (
        '<p class="partial">Stopped early: a partial result from 27 % of the planned work.</p>'
        in page
    )


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


def test_the_attempts_link_the_dask_dashboard_of_a_runner_that_serves_one(
    store: Engine,
) -> None:
    seed.runner(store, "runner-with-board", dashboard_link="http://10.0.0.9:8787/status")
    public_id = intake.submit(store, "demo_stages", {"stages": 2})
    T.claim(store, "runner-with-board", lease_seconds=30)

    at = job_page(public_id, tab="Timeline")

    [table] = [d.value for d in at.dataframe if "Outcome" in d.value.columns]
    assert list(table["Dashboard"]) == ["http://10.0.0.9:8787/status"]


def test_a_retried_running_job_lists_its_attempts_and_heartbeat_age(store: Engine) -> None:
    public_id = intake.submit(store, "demo_stages", {"stages": 2})
    T.claim(store, "runner-gone", lease_seconds=0.05)
    wait_for(lambda: T.reap(store, backoff_base=0), timeout=10, what="the reaper")
    T.claim(store, "runner-new", lease_seconds=30)

    at = job_page(public_id, tab="Timeline")

    assert metric(at, "Attempt") == "2 of 3"
    [table] = [d.value for d in at.dataframe if "Outcome" in d.value.columns]
    assert list(table["Outcome"]) == ["requeued", "running"]
    assert list(table["Runner"]) == ["runner-gone", "runner-new"]
    assert "Dashboard" not in table.columns  # neither runner registered a dashboard
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


# --- Tabs, chart settings and the link to this view, all in the URL ----------------------

SITE = "http://runlab.test:8501"


def view(public_id: str, **query: str | list[str]) -> AppTest:
    """The page as a browser at SITE opens it, so the link shown has a server address."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.context["url"] = f"{SITE}/job"
    at.run()
    at.switch_page("pages/job.py")
    at.query_params["id"] = public_id
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_link(at: AppTest) -> str:
    [link] = [t.value for t in at.text if t.value.startswith(SITE)]
    return link


def two_series_job(store: Engine) -> str:
    """A running π job whose live chart has two series: `estimate` and `standard_error`."""
    seed.runner(store)
    public_id, lease = seed.running(store)
    reports.report(
        store,
        lease,
        reports.Report(
            metrics=[("standard_error", 500_000, 0.0023), ("standard_error", 1e6, 0.0016)]
        ),
        lease_seconds=30,
    )
    return public_id


TAB_PROBES: dict[str, Any] = {
    "Result": lambda at: metric(at, "Estimate of π") == "3.1416 ± 0.0016",
    "Progress": lambda at: len(at.get("progress")) == 4 and len(charts(at)) == 1,
    "Timeline": lambda at: {t["type"] for t in charts(at)[0]["data"]} == {"bar"},
    "Parameters": lambda at: json.loads(at.json[0].value)["samples"] == 1_000_000,
    "Log": lambda at: any("sampling" in c.value for c in at.code),
}


@pytest.mark.parametrize("query", [{}, {"tab": "Progress"}])
def test_a_job_watched_to_its_end_turns_to_its_result(store: Engine, query: dict[str, str]) -> None:
    seed.runner(store)
    public_id, lease = seed.running(store, "watched", progress=0.5)
    at = job_page(public_id, **query)
    assert open_tab(at) == "Progress"

    T.succeed(store, lease, {"estimate": 3.14}, None)
    at.run()

    assert open_tab(at) == "Result"
    assert "tab" not in at.query_params  # the default: a link to it names no tab


@pytest.mark.parametrize("how", ["picked", "linked"])
def test_a_tab_picked_or_linked_stays_open_when_the_job_ends(store: Engine, how: str) -> None:
    seed.runner(store)
    public_id, lease = seed.running(store, "watched", progress=0.5)
    if how == "picked":
        at = job_page(public_id)
        at.session_state[job_view.PICKED] = {public_id: "Progress"}  # what a click records
        at.run()
        want = "Progress"
    else:
        at = job_page(public_id, tab="Log")
        want = "Log"
    assert open_tab(at) == want

    T.succeed(store, lease, {"estimate": 3.14}, None)
    at.run()

    assert open_tab(at) == want


@pytest.mark.parametrize("tab", job_view.TABS)
def test_the_tab_named_in_the_url_is_the_one_open(store: Engine, tab: str) -> None:
    seed.runner(store)
    public_id = seed.succeeded(store, "done")

    at = job_page(public_id, tab=tab)

    assert [t.label for t in at.tabs] == list(job_view.TABS)
    assert open_tab(at) == tab
    assert TAB_PROBES[tab](at), f"the {tab} tab did not draw its content"


@pytest.mark.parametrize("bad", ["timeline", "<script>alert(1)</script>", ""])
def test_an_unknown_tab_in_the_url_opens_the_default_one(store: Engine, bad: str) -> None:
    seed.runner(store)
    public_id = seed.succeeded(store)

    at = job_page(public_id, tab=bad)

    assert open_tab(at) == "Result"
    assert "tab" not in at.query_params  # dropped from the URL, not kept as junk


def test_chart_settings_come_from_the_url(store: Engine) -> None:
    public_id = two_series_job(store)

    everything = job_page(public_id)
    [chart] = charts(everything)
    assert {a["text"] for a in chart["layout"]["annotations"]} == {"estimate", "standard_error"}
    assert chart["layout"]["yaxis"].get("type") != "log"

    at = job_page(public_id, series="standard_error", log="true")

    [chart] = charts(at)
    assert [a["text"] for a in chart["layout"]["annotations"]] == ["standard_error"]
    assert ys(chart) == [0.0023, 0.0016]
    assert chart["layout"]["yaxis"]["type"] == "log"
    assert at.session_state[job_view.SERIES_KEY] == ["standard_error"]
    assert at.toggle(key=job_view.LOG_KEY).value is True


def test_the_link_shown_is_the_full_address_of_this_view(store: Engine) -> None:
    public_id = two_series_job(store)

    at = view(public_id, series="estimate", log="true", junk="x")

    # Progress is the open tab while a job runs, so the URL needs no ?tab= for it.
    assert open_tab(at) == "Progress"
    assert shown_link(at) == f"{SITE}/job?id={public_id}&series=estimate&log=true"
    at.session_state["tab"] = "Timeline"  # as a click on the tab does
    at.run()
    assert open_tab(at) == "Timeline"
    assert shown_link(at) == f"{SITE}/job?id={public_id}&tab=Timeline"


def test_the_default_tab_leaves_the_link_short(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.succeeded(store)

    at = view(public_id)

    assert open_tab(at) == "Result"
    assert shown_link(at) == f"{SITE}/job?id={public_id}"


# --- Downloads ------------------------------------------------------------------------------


def download_buttons(at: AppTest) -> dict[str, bool]:
    """Label -> enabled, for each download the page offers."""
    return {b.label: not b.proto.disabled for b in at.get("download_button")}


def test_downloads_are_offered_and_the_result_only_once_there_is_one(store: Engine) -> None:
    seed.runner(store)
    running, _ = seed.running(store)
    done = seed.succeeded(store)

    assert download_buttons(job_page(running)) == {
        "Result · JSON": False,
        "Metric series · CSV": True,
        "Report · HTML": True,
    }
    assert download_buttons(job_page(done)) == dict.fromkeys(
        ["Result · JSON", "Metric series · CSV", "Report · HTML"], True
    )


def test_result_download_is_the_result_as_json(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.succeeded(store)

    text = report.result_json(queries.get_job(store, public_id))

    assert json.loads(text) == seed.PI_RESULT


def test_series_download_has_a_row_per_point(store: Engine) -> None:
    public_id = two_series_job(store)
    job = queries.get_job(store, public_id)

    rows = list(csv.DictReader(io.StringIO(report.series_csv(job), newline="")))

    assert [(r["series"], float(r["step"]), float(r["value"])) for r in rows] == [
        ("estimate", 500_000, 3.1372),
        ("estimate", 1_000_000, 3.1391),
        ("standard_error", 500_000, 0.0023),
        ("standard_error", 1_000_000, 0.0016),
    ]
    assert rows[0]["step"] == "500000"  # a whole step reads as one, not 500000.0


def test_series_download_defuses_formulas_but_keeps_negative_numbers(store: Engine) -> None:
    seed.runner(store)
    public_id, lease = seed.running(store)
    names = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "plain"]
    reports.report(
        store, lease, reports.Report(metrics=[(n, 1, -1.5) for n in names]), lease_seconds=30
    )
    job = queries.get_job(store, public_id)

    rows = list(csv.reader(io.StringIO(report.series_csv(job), newline="")))[1:]

    by_name = {r[0]: r for r in rows if r[0] != "estimate"}
    assert set(by_name) == {"'" + n for n in names[:-1]} | {"plain"}
    assert {r[2] for r in by_name.values()} == {"-1.5"}  # a number, not text: left alone
    assert report.csv_cell(-3) == -3
    assert report.csv_cell("-3") == "'-3"


# --- The standalone report ------------------------------------------------------------------


class Tags(HTMLParser):
    """The start tags of a page; a script's text is not parsed as tags."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


NASTY = "<img src=x onerror=alert(1)>"


def test_report_holds_the_whole_job_in_one_page(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.succeeded(store, NASTY)
    job = queries.get_job(store, public_id)
    made = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    page = report.html_report(
        job, job_view.kind_of(job), made_at=made, link=f"{SITE}/job?id={public_id}"
    )

    tags = Tags(page).tags
    assert "img" not in [t for t, _ in tags]
    assert html.escape(NASTY) in page
    assert f"<title>Runlab report · {html.escape(NASTY)}</title>" in page
    # Self-contained: Plotly's code inline, nothing fetched, a chart div per figure.
    assert not [a for t, a in tags if t == "script" and a.get("src")]
    assert not [a for t, a in tags if t == "link"]
    assert page.count("plotly.js v") == 1
    charts_in = [a for t, a in tags if t == "div" and "plotly-graph-div" in (a.get("class") or "")]
    assert len(charts_in) == 3  # the result, the timeline, the series
    text = html.unescape(page)
    for fact in [
        public_id,
        "Monte Carlo π (monte_carlo_pi)",
        "succeeded",
        '"samples": 1000000',
        "2.4.6",
        "Report made at 2030-01-02 03:04:05 UTC: an immutable snapshot",
        "r1",
        "plan",
        "sample",
        "sampling",
    ]:
        assert fact in text, fact
    # The result as stored: PostgreSQL's JSONB keeps its own order of keys.
    assert job.result == seed.PI_RESULT
    assert json.dumps(job.result, indent=2) in text
    assert (
        "a",
        {"href": f"{SITE}/job?id={public_id}"},
    ) in tags


def test_report_escapes_errors_tags_and_log_lines(store: Engine) -> None:
    script = "<script>alert(1)</script>"
    public_id = intake.submit(
        store, "monte_carlo_pi", {"samples": 1000}, name="<b>bold</b>", tags=[NASTY]
    )
    seed.runner(store)
    [lease] = T.claim(store, seed.RUNNER, limit=1)
    reports.report(
        store, lease, reports.Report(logs=[("info", f"<i>log</i> {script}")]), lease_seconds=30
    )
    T.fail(store, lease, "ValueError", script, f"Traceback\n{script}")
    job = queries.get_job(store, public_id)

    page = report.html_report(job, job_view.kind_of(job), made_at=datetime.now(UTC))

    tags = [t for t, _ in Tags(page).tags]
    assert not {"b", "i", "img"} & set(tags)
    assert "<script>alert" not in page
    assert page.count(html.escape(script)) >= 3  # the error, its traceback, the log line
    assert "href" not in page.split("<h2>")[0]  # no link: none was given


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,x", "/job?id=x"])
def test_report_links_only_to_a_web_address(store: Engine, link: str) -> None:
    public_id = seed.queued(store)
    job = queries.get_job(store, public_id)

    page = report.html_report(job, None, made_at=datetime.now(UTC), link=link)

    assert not [a for t, a in Tags(page).tags if t == "a"]
    assert "No result yet: the job was queued" in page


def test_report_builder_needs_no_streamlit() -> None:
    """So that the same files can be made outside the app, by a script or the command line."""
    probe = "import sys, ui.report; assert 'streamlit' not in sys.modules, 'streamlit imported'"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


# --- Links that lead nowhere ----------------------------------------------------------------


def no_such_job(at: AppTest) -> bool:
    return (
        [t.value for t in at.title] == ["No such job"]
        and [(p.proto.label, p.proto.page) for p in at.main.get("page_link")]
        == [("See all jobs", "jobs")]
        and not at.tabs
        and not at.exception
    )


def test_a_bad_id_with_view_settings_still_says_no_such_job(store: Engine) -> None:
    at = job_page("<script>alert(1)</script>", tab="Timeline", series="x", log="true")
    assert no_such_job(at)


def test_a_purged_job_says_no_such_job(store: Engine) -> None:
    seed.runner(store)
    public_id = seed.succeeded(store)
    at = job_page(public_id)
    assert open_tab(at) == "Result"

    with store.begin() as conn:  # what a purge leaves: no rows for the job at all
        job_id = conn.execute(select(Job.id).where(Job.public_id == public_id)).scalar_one()
        for child in (JobStage, JobEvent, JobMetric, JobResult):
            conn.execute(delete(child).where(child.job_id == job_id))
        conn.execute(delete(Job).where(Job.id == job_id))
    at.run()

    assert no_such_job(at)


def test_timeline_runs_what_has_not_ended_to_now(store: Engine) -> None:
    seed.runner(store)
    public_id, _ = seed.running(store)
    job = queries.get_job(store, public_id)
    now = datetime.now(UTC) + timedelta(minutes=5)

    spans = {s.row: s for s in charts_module.timeline_spans(job, now)}

    assert list(spans) == ["queue", "attempt 1 · r1", "stage · plan", "stage · sample"]
    assert (spans["attempt 1 · r1"].state, spans["attempt 1 · r1"].end) == ("running", now)
    assert spans["stage · sample"].end == now  # still running
    assert spans["stage · plan"].end < now  # done: it ends when it did
    assert spans["queue"].end == spans["attempt 1 · r1"].start


def test_the_timeline_tab_says_what_the_job_cost(store: Engine) -> None:
    public_id = seed.succeeded(store, "costed")
    at = open_page("pages/job.py", id=public_id, tab="Timeline")
    assert "What it cost" in [h.value for h in at.subheader]
    # The seed's job ran no Dask task through a metered client: the page says so.
    assert any("Nothing was measured" in c.value for c in at.caption)


def _started_ago(engine: Engine, public_id: str, seconds: float) -> None:
    """Back-date a running job's start, as if it had been running `seconds` already."""
    with engine.begin() as conn:
        conn.execute(
            update(Job).where(Job.public_id == public_id).values(started_at=db_later(-seconds))
        )


def _cancel_job(at: AppTest) -> AppTest:
    return next(b for b in at.button if b.label == "Cancel job").click().run()


def test_cancel_of_a_job_running_over_a_minute_asks_first(store: Engine) -> None:
    seed.runner(store)
    public_id, _ = seed.running(store, "*slow* run")
    _started_ago(store, public_id, 12 * 60 + 5)
    at = job_page(public_id)

    _cancel_job(at)
    question = " ".join(m.value for m in at.markdown).replace("\u00a0", " ")
    assert f"Cancel job **{md_escape('*slow* run')}**, which has run for 12 min 0" in question
    assert not queries.get_job(store, public_id).cancel_requested

    at.button(key="job.cancel_no").click().run()  # Keep it running
    assert not queries.get_job(store, public_id).cancel_requested
    assert "job.cancel_yes" not in [b.key for b in at.button]

    _cancel_job(at)
    at.button(key="job.cancel_yes").click().run()
    assert queries.get_job(store, public_id).cancel_requested
    assert [t.value for t in at.toast] == ["Cancel requested: the job stops at its next check."]


def test_cancel_asks_about_a_job_that_started_long_after_the_page_was_drawn(
    store: Engine,
) -> None:
    seed.runner(store)
    public_id = seed.queued(store)
    at = job_page(public_id)  # drawn while the job waits in the queue
    T.claim(store, seed.RUNNER, limit=1)
    _started_ago(store, public_id, 5 * 60)

    _cancel_job(at)

    assert at.button(key="job.cancel_yes")
    assert not queries.get_job(store, public_id).cancel_requested
