"""The CLI and queues and people: `--queue` and `--priority` at submit, the queues a runner may
serve, and `--as`, the operator's name in the events of what it does."""

from __future__ import annotations

import json

import pytest

from jobstore import queries
from jobstore.engine import make_engine
from tests.cli.conftest import job_count, run


@pytest.fixture(autouse=True)
def declared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLAB_QUEUES", json.dumps({"img": {"limit": 1}}))


def test_submit_names_a_queue_and_a_priority_and_show_says_who_did_what(db: str) -> None:
    code, out, err = run(
        "--as", "ann", "submit", "monte_carlo_pi", "-p", "samples=1000", "--queue", "img",
        "--priority", "7",
    )  # fmt: skip
    assert code == 0, err
    public_id = out.strip().splitlines()[-1]
    code, _, err = run("--as", "ops", "cancel", public_id)
    assert code == 0, err
    engine = make_engine(db)
    job = queries.get_job(engine, public_id)
    assert (job.owner, job.queue, job.priority) == ("ann", "img", 7)
    assert [(a.actor, a.what) for a in job.actions] == [
        ("ann", "submitted"),
        ("ops", "cancelled while queued"),
    ]
    _, shown, _ = run("show", public_id)
    assert "queue     img  priority 7" in shown
    assert "by        ops: cancelled while queued" in shown
    engine.dispose()


def test_a_queue_no_setting_declares_is_refused_at_its_field(db: str) -> None:
    code, _, err = run("submit", "monte_carlo_pi", "-p", "samples=1000", "--queue", "imgg")
    assert code == 2
    assert "queue: no queue named 'imgg'; the queues are: default, img" in err
    assert job_count(db) == 0


def test_a_runner_refuses_to_serve_an_undeclared_queue(db: str) -> None:
    code, _, err = run("runner", "--queues", "default,gpu")
    assert code == 2
    assert "no queue named 'gpu'; the queues are: default, img" in err


def test_as_refuses_a_name_the_store_could_not_keep(db: str) -> None:
    code, _, err = run("--as", "a" * 101, "ls")
    assert code == 2 and "--as" in err and "at most 100 characters" in err
