"""A job purged while its page is open: the page says it is gone, with no traceback."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from jobstore.models import Status
from jobstore.retention import Policy, purge
from tests.store.aged import aged_job
from tests.ui.conftest import open_page


def test_a_job_purged_while_its_page_is_open_shows_no_such_job(store: Engine) -> None:
    public_id = aged_job(store, Status.SUCCEEDED, timedelta(days=40))
    at = open_page("pages/job.py", id=public_id)
    assert [t.value for t in at.title] != ["No such job"]

    assert purge(store, None, Policy(timedelta(days=30))).jobs == 1
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["No such job"]
