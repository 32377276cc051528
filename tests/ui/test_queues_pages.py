"""Named queues as the pages show them: /runners' queue table, /jobs' queue filter and search,
the form's queue and priority, and a queued job's place in its own queue."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine

from compute import intake
from jobstore import queries
from tests.ui.conftest import open_page
from tests.ui.test_jobs_page import table
from tests.ui.test_runners_page import register

QUEUES = {"img": {"limit": 1}, "gpu": {"resources": {"GPU": 1}}}


@pytest.fixture(autouse=True)
def declared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLAB_QUEUES", json.dumps(QUEUES))


def test_runners_page_shows_each_queue_its_depth_limit_and_runners(store: Engine) -> None:
    for _ in range(3):
        intake.submit(store, "monte_carlo_pi", {"samples": 1000}, queue="img", owner="ann")
    intake.submit(store, "monte_carlo_pi", {"samples": 1000}, owner="ann")
    register(store, "r-img", host="node-1")
    at = open_page("pages/runners.py")
    [table] = [d.value for d in at.dataframe if "queue" in d.value.columns]
    rows = {r["queue"]: r for r in table.to_dict("records")}
    assert list(rows) == ["default", "img", "gpu"]
    assert rows["img"]["waiting"] == 3 and rows["img"]["limit"] == "1"
    assert rows["default"]["waiting"] == 1 and rows["default"]["limit"] == "no limit"
    assert rows["gpu"]["waiting"] == 0 and rows["gpu"]["oldest"] == "—"
    assert rows["img"]["runners"] == 1  # a runner without --queues serves every queue


def test_jobs_page_filters_by_queue_and_the_search_knows_queue(store: Engine) -> None:
    on_img = intake.submit(store, "monte_carlo_pi", {"samples": 1000}, queue="img", name="i")
    on_default = intake.submit(store, "monte_carlo_pi", {"samples": 1000}, name="d")
    behind = intake.submit(store, "monte_carlo_pi", {"samples": 1000}, queue="img", name="j")
    everything = open_page("pages/jobs.py")
    assert set(table(everything, "history")["id"]) == {on_img, on_default, behind}
    waiting = table(everything, "queued")
    # Each job's place in its own queue, in the claim's order across them.
    assert list(zip(waiting["queue"], waiting["position"], strict=True)) == [
        ("img", 1),
        ("default", 1),
        ("img", 2),
    ]
    at = open_page("pages/jobs.py", queue=["img"])
    assert [m.value for m in at.multiselect if m.label == "Queue"] == [["img"]]
    assert table(at, "history")["id"].tolist() == [behind, on_img]
    searched = open_page("pages/jobs.py", q="queue:default")
    assert table(searched, "history")["id"].tolist() == [on_default]
    assert queries.get_job(store, on_img).queue == "img"


def test_form_offers_the_queues_and_the_job_page_its_place(store: Engine) -> None:
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    [queue] = [s for s in at.selectbox if s.label == "Queue"]
    assert queue.options == ["default", "img", "gpu"]
    assert [n.label for n in at.number_input if n.label == "Priority"] == ["Priority"]
    first = intake.submit(store, "monte_carlo_pi", {"samples": 1000}, queue="img")
    second = intake.submit(store, "monte_carlo_pi", {"samples": 1000}, queue="img", priority=3)
    page = open_page("pages/job.py", id=first)
    [place] = [m for m in page.metric if m.label == "Position in queue"]
    assert place.value == "2" and "1 job ahead of this one in the img queue" in place.help
    captions = " ".join(c.value for c in open_page("pages/job.py", id=second).caption)
    assert "queue img" in captions and "priority +3" in captions


def test_jobs_page_lists_a_sweeps_children_from_its_link(store: Engine) -> None:
    sweep = intake.submit_sweep(
        store, "monte_carlo_pi", {}, {"samples": "1000,2000"}, name="σ sweep"
    )
    alone = intake.submit(store, "monte_carlo_pi", {"samples": 1000})
    at = open_page("pages/jobs.py", sweep=sweep)
    children = table(at, "history")["id"].tolist()
    assert len(children) == 2 and alone not in children
    assert any(f'sweep is "σ sweep" ({sweep})' in c.value.replace("\\", "") for c in at.caption)
    searched = open_page("pages/jobs.py", q=f"sweep:{sweep}")
    assert sorted(table(searched, "history")["id"]) == sorted(children)
