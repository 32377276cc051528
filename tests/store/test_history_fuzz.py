"""Hostile searches and page links, parsed and then run against a real store on both backends:
whatever passes the parsers must bind and run, as PostgreSQL is stricter than SQLite."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from jobstore.history import SORTS, BadCursor, Cursor, Sort, history
from jobstore.models import Status
from jobstore.search import InvalidQuery, parse
from tests import bulk
from tests.hostile import PUBLIC_IDS, SEARCHES, cursor_payloads

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def store(engine: Engine) -> tuple[Engine, list[str]]:
    """A few finished and queued jobs with tags, parameters and results, and their ids."""
    records = []
    for i in range(12):
        status = [Status.SUCCEEDED, Status.FAILED, Status.QUEUED][i % 3]
        created = NOW - timedelta(days=i)
        ran = status is not Status.QUEUED
        records.append(
            bulk.PastJob(
                kind="monte_carlo_pi",
                name=f"job {i} risk",
                owner=["ann", "bob"][i % 2],
                params={"samples": 1000 * i, "sigma": i / 10},
                status=status,
                created_at=created,
                started_at=created if ran else None,
                finished_at=created + timedelta(seconds=i) if ran else None,
                tags=["q3"] if i % 2 else [],
                result={"price": i * 1.5} if status is Status.SUCCEEDED else None,
                error_type="ValueError" if status is Status.FAILED else None,
                error_message="boom" if status is Status.FAILED else None,
            )
        )
    return engine, bulk.copy_jobs(engine, records)


def _walk(engine: Engine, **kwargs: object) -> None:
    """Two pages, the second through its link, as a person clicking Next."""
    page = history(engine, limit=5, **kwargs)  # type: ignore[arg-type]
    if page.next is not None:
        history(engine, limit=5, after=Cursor.decode(page.next.encode()), **kwargs)  # type: ignore[arg-type]


@FUZZ
@given(text=SEARCHES, sort=st.sampled_from(SORTS), descending=st.booleans())
@example(text="created:9999-12-31", sort="created", descending=True)
@example(text="tag:a\x00 owner:\x00 \x00", sort="name", descending=True)
@example(text="created>=0001-01-01 tag:q3 sigma>0.2", sort="created", descending=False)
@example(text="created<9999-12-31 owner:ann risk price>1e308", sort="duration", descending=True)
def test_any_search_is_refused_or_runs_on_the_store(
    store: tuple[Engine, list[str]], text: str, sort: Sort, descending: bool
) -> None:
    engine, _ = store
    try:
        q = parse(text, kinds=["monte_carlo_pi"], param_keys={"samples", "sigma"}, me="ann")
    except InvalidQuery:
        return
    _walk(engine, query=q, sort=sort, descending=descending)


@FUZZ
@given(data=st.data(), sort=st.sampled_from(SORTS), descending=st.booleans())
def test_any_page_link_is_refused_or_pages_on_the_store(
    store: tuple[Engine, list[str]], data: st.DataObject, sort: Sort, descending: bool
) -> None:
    engine, ids = store
    # Links naming real jobs too, so that the lookup and the keyset comparison both run.
    token = data.draw(cursor_payloads(st.sampled_from(ids) | PUBLIC_IDS), label="token")
    try:
        after = Cursor.decode(token)
    except BadCursor:
        return
    with contextlib.suppress(BadCursor):  # a link that does not fit this sort, or a gone job
        history(engine, sort=sort, descending=descending, after=after, limit=5)
