"""The estimate's captions, drawn by `ui.eta` in a small script as the job page's live part will."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, update
from streamlit.testing.v1 import AppTest

from jobstore import reports
from jobstore.engine import db_later
from jobstore.estimates import Seen
from jobstore.models import Job
from jobstore.queries import get_job
from tests.ui import seed
from tests.ui.conftest import TIMEOUT
from ui.eta import STATE_KEY, _Kept


def _script() -> None:
    import streamlit as st

    from jobstore.queries import get_job
    from ui import eta, resources

    settings = resources.settings()
    engine = resources.engine(settings)
    eta.eta(engine, get_job(engine, st.query_params["id"]), settings)


def run(public_id: str, at: AppTest | None = None) -> AppTest:
    if at is None:  # not `or`: an AppTest that has not run yet is empty, so falsy
        at = AppTest.from_function(_script, default_timeout=TIMEOUT)
    at.query_params["id"] = public_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> list[str]:
    return [str(c.value) for c in at.caption]


def back_date(engine: Engine, public_id: str, seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Job).where(Job.public_id == public_id).values(started_at=db_later(-seconds))
        )


def test_a_running_job_shows_when_it_should_end_and_its_stage(store: Engine) -> None:
    seed.runner(store)
    public_id, _ = seed.running(store, progress=0.5)
    back_date(store, public_id, 600)

    at = run(public_id)

    [end, stage] = captions(at)
    assert end.startswith("Expected to finish about ") and ", in 10 min" in end, end
    assert end.endswith("from its progress."), end
    assert stage.startswith("Stage sample: "), stage


def test_a_queued_job_with_no_runner_says_so(store: Engine) -> None:
    public_id = seed.queued(store)

    assert captions(run(public_id)) == ["Start time unknown: no runner is alive."]


def test_the_page_notices_a_job_whose_progress_stopped(store: Engine) -> None:
    seed.runner(store)
    public_id, lease = seed.running(store, progress=0.3)
    back_date(store, public_id, 20 * 60)
    started = get_job(store, public_id).started_at
    assert started is not None
    at = AppTest.from_function(_script, default_timeout=TIMEOUT)
    # What the live part would have seen had it been open since then: 0.2, then 0.3 at 8 min.
    at.session_state[STATE_KEY] = {
        (public_id, lease.attempt): _Kept(
            trail=[
                Seen(started + timedelta(minutes=5), 0.2),
                Seen(started + timedelta(minutes=8), 0.3),
            ]
        )
    }

    assert captions(run(public_id, at)) == ["End time unknown: no progress for 12 min."]

    reports.report(store, lease, reports.Report(progress=0.4), lease_seconds=30)
    [end] = captions(run(public_id, at))[:1]
    assert end.startswith("Expected to finish about "), "moving again, it gets a time back"


def test_a_finished_job_shows_nothing(store: Engine) -> None:
    public_id = seed.succeeded(store)

    assert captions(run(public_id)) == []
