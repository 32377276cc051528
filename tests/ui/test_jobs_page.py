"""/jobs: live and queued jobs, and a history whose filters and page live in the URL."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, update
from streamlit.testing.v1 import AppTest

from compute import intake
from jobstore import transitions as T
from jobstore.engine import db_later
from jobstore.models import Job, Status
from jobstore.queries import get_job, list_jobs
from tests.ui import seed
from tests.ui.conftest import open_page
from ui import history as history_ui
from ui.text import md_escape


def table(at: AppTest, key: str) -> pd.DataFrame:
    return at.container(key).dataframe[0].value


def test_filters_in_the_url_show_only_matching_jobs(store: Engine) -> None:
    seed.runner(store)
    seed.succeeded(store, "pi done")
    intake.submit(store, "demo_stages", {"stages": 1}, name="demo waiting")
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
    # The name is the link's text (its fragment, which the table shows decoded).
    assert list(history["job"]) == [
        f"job?id={i}#job%20{n}" for n, i in reversed(list(enumerate(ids)))
    ]
    assert list(history["id"]) == list(reversed(ids))
    assert set(history["kind"]) == {"Monte Carlo π"}  # the kind's title, not its name
    assert {"status", "kind", "created", "duration"} <= set(history.columns)


def names(at: AppTest) -> list[str]:
    return list(table(at, "history")["name"])


def select(at: AppTest, rows: list[int]) -> AppTest:
    """Tick rows of the history table, as a click on their boxes does."""
    key = at.container("history").dataframe[0].key
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return at.run()


def test_next_and_previous_walk_the_history_by_keyset_and_the_link_keeps_the_page(
    store: Engine,
) -> None:
    for i in range(30):
        seed.queued(store, f"job {i:02d}", samples=10)
    at = open_page("pages/jobs.py")
    assert names(at) == [f"job {i:02d}" for i in range(29, 4, -1)]
    assert at.button(key="history.previous_page").disabled

    at.button(key="history.next").click().run()
    assert names(at) == [f"job {i:02d}" for i in range(4, -1, -1)]
    assert at.button(key="history.next").disabled
    cursor = at.query_params["after"]

    shared = open_page("pages/jobs.py", after=cursor)  # a colleague opens the link
    assert names(shared) == [f"job {i:02d}" for i in range(4, -1, -1)]

    at.button(key="history.previous_page").click().run()
    assert names(at)[0] == "job 29"
    assert "after" not in at.query_params


def test_changing_a_filter_goes_back_to_the_first_page(store: Engine) -> None:
    for i in range(30):
        seed.queued(store, f"job {i:02d}", samples=10)
    at = open_page("pages/jobs.py")
    at.button(key="history.next").click().run()
    assert len(names(at)) == 5

    at.multiselect(key="status").set_value(["queued"]).run()

    assert (len(names(at)), names(at)[0]) == (25, "job 29")
    assert "after" not in at.query_params


def test_a_stale_or_edited_page_link_falls_back_to_the_first_page(store: Engine) -> None:
    seed.queued(store, "only")
    for bad in ["garbage", "WyJ4IiwxLGZhbHNlXQ"]:  # the second is a name cursor, sorted by id
        at = open_page("pages/jobs.py", after=bad)
        assert names(at) == ["only"]
        assert "out of date" in at.warning[0].value


@pytest.fixture
def either_store(store: Engine) -> Engine:
    """The pages' store, which runs on each backend: PostgreSQL refuses a NUL in text that
    SQLite takes."""
    return store


def _token(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "after"),
    [
        ("duration", "W3sicyI6MWUzMDB9LDEsZmFsc2Vd"),  # as reported: a huge float duration
        ("duration", _token('[{"s":NaN},"Ab3xK9pQ",false]')),
        ("name", _token('["a\\u0000","Ab3xK9pQ",false]')),
        ("created", _token("[" * 3000)),
        ("created", _token('[null,"Gone0000Gone",false]')),  # a job that no longer exists
        ("created", "not*base64"),
    ],
)
def test_a_crafted_page_link_says_it_is_not_valid_and_shows_the_first_page(
    either_store: Engine, sort: str, after: str
) -> None:
    seed.queued(either_store, "only")

    at = open_page("pages/jobs.py", sort=sort, after=after)

    assert names(at) == ["only"]
    assert [w.value for w in at.warning] == [
        "That page link is not valid (out of date or edited); here is the first page."
    ]
    assert "after" not in at.query_params


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"q": "\x00"}, "a search must not contain a NUL byte"),
        ({"q": "tag:a\x00"}, "a search must not contain a NUL byte"),
        ({"q": "owner:\x00"}, "a search must not contain a NUL byte"),
        ({"owner": "\x00"}, "the Owner filter must not contain a NUL byte"),
        ({"tag": "a\x00"}, "the Tag filter must not contain a NUL byte"),
        ({"name": "x\x1by"}, "the Name contains filter must not contain the control character"),
        ({"q": "created:9999-12-31"}, "date out of range"),
        ({"q": "created>=0001-01-01T00:00:00+14:00"}, "date out of range"),
        ({"q": "created>=99999999999999d"}, "too long ago"),
    ],
)
def test_a_url_the_store_cannot_search_is_answered_with_a_message(
    either_store: Engine, query: dict[str, str], says: str
) -> None:
    seed.queued(either_store, "only")

    at = open_page("pages/jobs.py", **query)  # fails on any exception the page raised

    assert says in at.error[0].value
    assert "history" not in [c.key for c in at.get("flex_container")]


@pytest.mark.parametrize(
    "query",
    [
        {"status": "nope\x00"},
        {"kind": "\x00"},
        {"created": "9999-12-31"},
        {"created": ["0001-01-01", "9999-12-31"]},
        {"created": "not a date"},
        {"sort": "\x00"},
        {"order": "sideways"},
        {"mine": "\x00"},
    ],
)
def test_choices_the_page_does_not_offer_are_dropped_from_the_url(
    either_store: Engine, query: dict[str, str | list[str]]
) -> None:
    seed.queued(either_store, "only")

    at = open_page("pages/jobs.py", **query)

    assert names(at) == ["only"]
    assert not at.error
    assert not set(query) & set(at.query_params)


def test_the_search_box_in_the_url_filters_on_params_results_and_tags(store: Engine) -> None:
    a = intake.submit(store, "monte_carlo_pi", {"samples": 5000}, name="small", tags=["q3"])
    intake.submit(store, "monte_carlo_pi", {"samples": 50_000}, name="big", tags=["q3"])
    intake.submit(store, "monte_carlo_pi", {"samples": 6000}, name="untagged")

    at = open_page("pages/jobs.py", q="samples<10000 tag:q3")

    assert names(at) == ["small"]
    assert table(at, "history")["id"].tolist() == [a]
    assert r"params.samples \< 10000" in at.caption[1].value  # escaped for Markdown


def test_a_bad_search_points_at_the_token_and_shows_no_table(store: Engine) -> None:
    seed.queued(store, "x")
    at = open_page("pages/jobs.py", q="kind:monte_carlo_pi status:succeded")

    assert "did you mean 'succeeded'" in at.error[0].value
    assert at.code[0].value == (
        "kind:monte_carlo_pi status:succeded\n" + " " * 20 + "^" * len("status:succeded")
    )
    assert "history" not in [c.key for c in at.get("flex_container")]


def test_owner_tag_name_created_and_my_jobs_filters_come_from_the_url(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNLAB_USER", "ann")
    intake.submit(store, "monte_carlo_pi", {"samples": 1000}, name="alpha one", owner="ann")
    intake.submit(
        store, "monte_carlo_pi", {"samples": 1000}, name="alpha two", owner="bob", tags=["x"]
    )
    intake.submit(store, "monte_carlo_pi", {"samples": 1000}, name="beta", owner="bob")

    assert names(open_page("pages/jobs.py", owner="bob")) == ["beta", "alpha two"]
    assert names(open_page("pages/jobs.py", tag="x")) == ["alpha two"]
    assert names(open_page("pages/jobs.py", name="ALPHA")) == ["alpha two", "alpha one"]
    assert names(open_page("pages/jobs.py", mine="true")) == ["alpha one"]
    today = datetime.now(UTC).date()
    assert len(names(open_page("pages/jobs.py", created=[str(today), str(today)]))) == 3
    yesterday = today - timedelta(days=2)
    at = open_page("pages/jobs.py", created=[str(yesterday), str(yesterday)])
    assert [i.value for i in at.info] == ["No jobs match these filters."]


def test_sort_and_order_come_from_the_url(store: Engine) -> None:
    for name in ["b", "c", "a"]:
        seed.queued(store, name)
    assert names(open_page("pages/jobs.py", sort="name", order="oldest first")) == ["a", "b", "c"]
    assert names(open_page("pages/jobs.py", sort="name")) == ["c", "b", "a"]


def test_compare_opens_with_the_selected_jobs(store: Engine) -> None:
    ids = [seed.succeeded(store, f"run {i}") for i in range(3)]
    at = select(open_page("pages/jobs.py"), [0, 2])
    assert "2 selected" in [c.value for c in at.caption]

    at.button(key="history.compare").click().run()

    assert at.query_params["ids"] == f"{ids[2]},{ids[0]}"
    assert at.title[0].value.startswith("Compare")


def test_cancel_rerun_and_tag_act_on_the_selected_rows_only(store: Engine) -> None:
    done = seed.succeeded(store, "done")
    keep = seed.queued(store, "keep")
    waiting = seed.queued(store, "waiting")
    at = select(open_page("pages/jobs.py"), [0, 2])  # newest first: waiting, keep, done

    at.button(key="history.cancel").click().run()
    assert "1 cancelled" in at.toast[0].value and "1 had already finished" in at.toast[0].value
    assert get_job(store, waiting).status is Status.CANCELLED
    assert get_job(store, keep).status is Status.QUEUED

    at = select(open_page("pages/jobs.py"), [0, 2])
    at.text_input(key="history.tag_text").set_value("q4")
    at.button(key="history.tag_add").click().run()
    assert get_job(store, waiting).tags == ["q4"] and get_job(store, done).tags == ["q4"]
    assert get_job(store, keep).tags == []
    at = select(open_page("pages/jobs.py"), [0])
    at.text_input(key="history.tag_text").set_value("q4")
    at.button(key="history.tag_remove").click().run()
    assert "Removed the tag from 1 job(s)." in at.toast[0].value
    assert get_job(store, waiting).tags == [] and get_job(store, done).tags == ["q4"]

    at = select(open_page("pages/jobs.py"), [2])
    at.button(key="history.rerun").click().run()
    assert "Queued 1 new job" in at.toast[0].value
    newest = list_jobs(store, limit=1).rows[0]
    assert (newest.name, newest.status) == ("done (re-run)", Status.QUEUED)


def test_delete_asks_first_and_keeps_unfinished_jobs(store: Engine) -> None:
    done = seed.succeeded(store, "done")
    queued = seed.queued(store, "queued")
    at = select(open_page("pages/jobs.py"), [0, 1])

    at.button(key="history.delete").click().run()
    assert at.button(key="history.delete_yes")  # the dialog asks first
    assert {r.id for r in list_jobs(store).rows} == {queued, done}

    at.button(key="history.delete_yes").click().run()
    assert "Deleted 1 job(s); kept 1 that had not finished" in at.toast[0].value
    assert [r.id for r in list_jobs(store).rows] == [queued]


def test_export_has_flat_numeric_params_and_results_and_quotes_would_be_formulas(
    store: Engine,
) -> None:
    done = seed.succeeded(store, "fine")
    bad = intake.submit(
        store, "monte_carlo_pi", {"samples": 1000}, name="=HYPERLINK(1)", tags=["+x"]
    )
    text = history_ui.export_csv(store, [bad, done])
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame["id"]) == [bad, done]
    assert list(frame.columns[:9]) == history_ui.CSV_COLUMNS
    assert frame.loc[0, "name"] == "'=HYPERLINK(1)" and frame.loc[0, "tags"] == "'+x"
    # One column per field, read back as numbers: a spreadsheet can sum them.
    assert frame["param.samples"].dtype.kind == "i" and frame.loc[0, "param.samples"] == 1000
    assert frame.loc[1, "result.estimate"] == seed.PI_RESULT["estimate"]
    assert frame["result.estimate"].dtype.kind == "f"
    assert pd.isna(frame.loc[0, "result.estimate"])  # no result yet: an empty cell


def test_the_fields_a_search_names_and_the_kinds_headline_are_columns(store: Engine) -> None:
    seed.runner(store)
    for sigma, price in ((0.2, 8.9), (0.35, 14.2)):
        _, lease = seed.running_kind(store, "option_pricing", {"sigma": sigma})
        T.succeed(store, lease, {"price": price, "standard_error": 0.01, "delta": 0.6})
    seed.succeeded(store, "pi")

    at = open_page("pages/jobs.py", q="kind:option_pricing sigma >= 0.3")

    shown = table(at, "history")
    assert list(shown["params.sigma"]) == [0.35]
    assert list(shown["result.price"]) == [14.2]
    assert list(shown["result.delta"]) == [0.6]
    config = json.loads(at.container("history").dataframe[0].proto.columns)
    assert config["params.sigma"]["label"] == "Volatility σ (per year)"
    assert config["result.price"]["label"] == "Price"


def test_a_failed_row_shows_its_errors_first_line(
    store: Engine,
) -> None:
    seed.runner(store)
    seed.failed(store, "broken", message="the matrix is not positive definite\nat row 3")
    seed.succeeded(store, "fine")

    at = open_page("pages/jobs.py")

    shown = table(at, "history")
    assert dict(zip(shown["name"], shown["error"], strict=True)) == {
        "fine": "",
        "broken": "the matrix is not positive definite",
    }


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


def test_a_running_job_shows_when_its_progress_last_moved(store: Engine) -> None:
    seed.runner(store)
    seed.running(store, "moving", progress=0.25)
    _, stuck = seed.running(store, "stuck", progress=0.5)
    with store.begin() as conn:
        conn.execute(
            update(Job).where(Job.id == stuck.job_id).values(progress_at=db_later(-25 * 60))
        )

    at = open_page("pages/jobs.py")

    running = table(at, "running")
    moved = dict(zip(running["name"], running["moved"], strict=True))
    assert moved == {"moving": "just now", "stuck": "25 min ago"}


def test_clearing_the_filters_brings_every_job_back(store: Engine) -> None:
    seed.queued(store, "only")
    at = open_page("pages/jobs.py", q="status:failed", kind="monte_carlo_pi")
    assert [i.value for i in at.info] == ["No jobs match these filters."]

    at.button(key="history.clear").click().run()

    assert names(at) == ["only"]
    assert "q" not in at.query_params and "kind" not in at.query_params


def test_ticks_survive_the_rerun_they_cause_under_a_search_by_age(store: Engine) -> None:
    """`created>=1d` is resolved against the clock on every run; the ticks must not be."""
    ids = [seed.queued(store, f"recent {i}") for i in range(2)]
    at = select(open_page("pages/jobs.py", q="created>=1d"), [0, 1])
    at.run()  # any later rerun, as a click elsewhere makes
    assert "2 selected" in [c.value for c in at.caption]
    at.button(key="history.cancel").click().run()
    assert all(get_job(store, i).status is Status.CANCELLED for i in ids)


def _running_for(engine: Engine, public_id: str, seconds: float) -> None:
    """Back-date a running job's start, as if it had been running `seconds` already."""
    with engine.begin() as conn:
        conn.execute(
            update(Job).where(Job.public_id == public_id).values(started_at=db_later(-seconds))
        )


def test_rerun_of_several_jobs_asks_first_and_queues_them_only_once_confirmed(
    store: Engine,
) -> None:
    first = seed.succeeded(store, "first")
    second = seed.failed(store, "second")
    at = select(open_page("pages/jobs.py"), [0, 1])

    at.button(key="history.rerun").click().run()
    assert "Re-run 2 jobs?" in " ".join(m.value for m in at.markdown)
    assert {r.id for r in list_jobs(store).rows} == {first, second}  # nothing queued yet

    at.button(key="history.rerun_no").click().run()
    assert {r.id for r in list_jobs(store).rows} == {first, second}
    assert "history.rerun_yes" not in [b.key for b in at.button]  # the dialog closed

    at = select(open_page("pages/jobs.py"), [0, 1])
    at.button(key="history.rerun").click().run()
    at.button(key="history.rerun_yes").click().run()
    assert "Queued 2 new job(s)" in at.toast[0].value
    made = [r for r in list_jobs(store).rows if r.id not in {first, second}]
    assert sorted((r.name, r.status) for r in made) == [
        ("first (re-run)", Status.QUEUED),
        ("second (re-run)", Status.QUEUED),
    ]


def test_cancel_of_a_job_running_over_a_minute_asks_first_and_names_it(store: Engine) -> None:
    seed.runner(store)
    long, _ = seed.running(store, "**long** run")
    waiting = seed.queued(store, "waiting")
    _running_for(store, long, 12 * 60 + 5)
    at = select(open_page("pages/jobs.py"), [0, 1])  # newest first: waiting, long

    at.button(key="history.cancel").click().run()
    question = " ".join(m.value for m in at.markdown).replace("\u00a0", " ")
    assert "Cancel 2 jobs? 1 of them has been running for over a minute" in question
    assert f"{md_escape('**long** run')}** ({md_escape(long)}), running for 12 min 0" in question
    assert not get_job(store, long).cancel_requested  # nothing happens before the yes
    assert get_job(store, waiting).status is Status.QUEUED

    at.button(key="history.cancel_yes").click().run()
    assert get_job(store, long).cancel_requested
    assert get_job(store, waiting).status is Status.CANCELLED
    assert "1 cancelled" in at.toast[0].value and "1 asked to stop" in at.toast[0].value


def test_cancel_of_jobs_that_started_under_a_minute_ago_needs_one_click(store: Engine) -> None:
    seed.runner(store)
    fresh, _ = seed.running(store, "fresh")
    _running_for(store, fresh, 30)
    at = select(open_page("pages/jobs.py"), [0])

    at.button(key="history.cancel").click().run()

    assert get_job(store, fresh).cancel_requested
    assert "1 asked to stop" in at.toast[0].value


def test_a_job_stopped_early_is_its_own_outcome_in_the_history_and_its_filter(
    store: Engine,
) -> None:
    seed.runner(store)
    seed.stopped(store, "kept part")
    seed.succeeded(store, "whole")

    at = open_page("pages/jobs.py")
    shown = table(at, "history")
    assert dict(zip(shown["name"], shown["status"], strict=True)) == {
        "whole": "succeeded",
        "kept part": "partial",
    }
    assert "partial" in at.multiselect(key="status").options

    assert list(table(open_page("pages/jobs.py", status="partial"), "history")["name"]) == [
        "kept part"
    ]
    assert list(table(open_page("pages/jobs.py", status="succeeded"), "history")["name"]) == [
        "whole"
    ]
