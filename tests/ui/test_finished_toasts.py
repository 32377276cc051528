"""A toast on whatever page you are on when one of your jobs ends; none for others' jobs,
none for jobs that ended before you came, and none on the page of the job itself."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from compute import intake
from jobstore import transitions as T
from tests.ui import seed
from tests.ui.conftest import open_page


def _finish(engine: Engine, owner: str, name: str) -> str:
    public_id = intake.submit(engine, "monte_carlo_pi", {"samples": 1000}, name=name, owner=owner)
    (lease,) = T.claim(engine, seed.RUNNER, limit=1, versions={})
    assert lease.public_id == public_id
    T.succeed(engine, lease, dict(seed.PI_RESULT), None)
    return public_id


@pytest.fixture
def ann(store: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("RUNLAB_USER", "ann")
    seed.runner(store)
    return store


def test_a_job_of_yours_that_ends_while_you_browse_gets_a_toast(ann: Engine) -> None:
    _finish(ann, "ann", "before you came")
    at = open_page("pages/jobs.py")
    assert not at.toast

    mine = _finish(ann, "ann", "<b>mine</b>")
    _finish(ann, "bob", "not mine")
    at.run()

    texts = [t.value for t in at.toast]
    assert len(texts) == 1
    assert "succeeded" in texts[0] and f"job?id={mine}" in texts[0]
    assert "<b>" not in texts[0] and "\\<b\\>mine" in texts[0]  # the name is text, not markup
    at.run()
    assert not at.toast  # each ending is told once


def test_no_toast_on_the_page_of_the_job_that_ended(ann: Engine) -> None:
    public_id = intake.submit(ann, "monte_carlo_pi", {"samples": 1000}, name="watched", owner="ann")
    at = open_page("pages/job.py", id=public_id)
    (lease,) = T.claim(ann, seed.RUNNER, limit=1, versions={})
    T.succeed(ann, lease, dict(seed.PI_RESULT), None)
    other = _finish(ann, "ann", "elsewhere")
    at.run()
    told = [t.value for t in at.toast if "Your job" in t.value]
    assert len(told) == 1 and f"job?id={other}" in told[0]
