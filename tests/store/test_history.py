"""The history's filters, search and keyset pages, checked against a brute-force Python filter
over the same seeded store, on both backends."""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from compute import intake
from jobstore.engine import make_engine, migrate
from jobstore.history import SORTS, BadCursor, Cursor, Sort, history
from jobstore.models import Status
from jobstore.search import FieldTest, Op, Query, parse
from tests import bulk
from tests.conftest import PG_ADMIN_URL, require_postgres, sqlite_url

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KINDS = ["option_pricing", "bootstrap", "optimize", "monte_carlo_pi"]
OWNERS = ["ann", "bob", "cy"]
TAGS = ["q3", "q4", "desk", "risk", "100%", "a_b"]
WORDS = ["risk", "desk", "Pricing", "sweep", "100%", "a_b", "night"]
PARAM_KEYS = {"sigma", "paths", "method", "antithetic", "seed"}


def _record(rng: random.Random, i: int) -> bulk.PastJob:
    status = rng.choice([Status.SUCCEEDED] * 4 + [Status.FAILED, Status.CANCELLED, Status.QUEUED])
    created = NOW - timedelta(days=rng.uniform(0, 30))
    started = finished = None
    if status is not Status.QUEUED and not (status is Status.CANCELLED and rng.random() < 0.5):
        started = created + timedelta(seconds=rng.randint(0, 600))
        finished = started + timedelta(seconds=rng.randint(1, 3600))
    elif status is Status.CANCELLED:
        finished = created + timedelta(seconds=5)
    params: dict[str, Any] = {"seed": rng.randint(0, 2**53 - 1)}
    if rng.random() < 0.8:
        params["sigma"] = rng.choice([0.1, 0.2, 0.3, 0.30000001, 0.45, 1, 2])
    if rng.random() < 0.5:
        params["paths"] = rng.choice([1000, 20000, 1e6])
    if rng.random() < 0.5:
        params["method"] = rng.choice(["BCa", "percentile", "12", 12, None])
    if rng.random() < 0.3:
        params["antithetic"] = rng.choice([True, False, 1, 0])
    result = None
    if status is Status.SUCCEEDED:
        result = {"price": rng.choice([5.5, 12, 12.0001, 30, "12", None]), "partial": False}
        if rng.random() < 0.3:
            result["partial"] = True
    name = " ".join([f"job{i}", *rng.sample(WORDS, rng.randint(0, 2))])
    times = (created, started, finished)
    return bulk.simulated(
        rng, OWNERS, TAGS, rng.choice(KINDS), name, params, status, times, result, error="boom"
    )


def _seed(engine: Engine) -> list[tuple[str, bulk.PastJob]]:
    rng = random.Random(6)
    records = [_record(rng, i) for i in range(400)]
    ids = bulk.copy_jobs(engine, records, chunk=150)
    return list(zip(ids, records, strict=True))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, list[tuple[str, bulk.PastJob]]]]:
    """One seeded store per backend, shared by the tests that only read it."""
    schema = None
    if request.param == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("history"))
    else:
        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(PG_ADMIN_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    migrate(engine)
    try:
        yield engine, _seed(engine)
    finally:
        engine.dispose()
        if schema is not None:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


@pytest.fixture
def fresh_seeded(engine: Engine) -> tuple[Engine, list[tuple[str, bulk.PastJob]]]:
    """A seeded store of the test's own, for a test that writes to it."""
    return engine, _seed(engine)


# --- the brute-force reference ----------------------------------------------------------------


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _equal(v: Any, want: Any) -> bool:
    if isinstance(want, bool):
        return isinstance(v, bool) and v == want
    if isinstance(want, str):
        return isinstance(v, str) and v == want
    return _number(v) and v == want


def _test(doc: dict[str, Any] | None, t: FieldTest) -> bool:
    if doc is None or t.key not in doc:
        return False
    v = doc[t.key]
    if t.op is Op.EQ:
        return _equal(v, t.value)
    if t.op is Op.NE:
        return not _equal(v, t.value)
    if not _number(v):
        return False
    return {
        Op.GT: v > t.value,
        Op.GE: v >= t.value,
        Op.LT: v < t.value,
        Op.LE: v <= t.value,
    }[t.op]


def _ascii_lower(s: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in s)


def matches(q: Query, job_id: str, r: bulk.PastJob) -> bool:
    return (
        (q.statuses is None or str(r.status) in q.statuses)
        and (q.kinds is None or r.kind in q.kinds)
        and (q.owners is None or r.owner in q.owners)
        and (q.ids is None or job_id in q.ids)
        and all(t in r.tags for t in q.tags)
        and all(_ascii_lower(w) in _ascii_lower(r.name) for w in q.words)
        and (q.created_from is None or r.created_at >= q.created_from)
        and (q.created_to is None or r.created_at < q.created_to)
        and all(_test(r.params if f.source == "params" else r.result, f) for f in q.fields)
    )


def _sort_value(sort: Sort, r: bulk.PastJob, q: Query) -> Any:
    if sort == "created" and (q.created_from or q.created_to):
        return r.created_at  # a created range orders by the time itself
    if sort == "duration":
        return (
            None
            if r.finished_at is None or r.started_at is None
            else (r.finished_at - r.started_at)
        )
    return {
        "created": None,
        "name": r.name,
        "kind": r.kind,
        "status": str(r.status),
        "owner": r.owner,
        "started": r.started_at,
        "finished": r.finished_at,
    }[sort]


def expected(
    rows: list[tuple[str, bulk.PastJob]], q: Query, sort: Sort, descending: bool
) -> list[str]:
    """Matching ids in sort order: by value then insertion order, missing values last."""
    hits = [(i, job_id, r) for i, (job_id, r) in enumerate(rows) if matches(q, job_id, r)]
    by_id = sort == "created" and _sort_value(sort, rows[0][1], q) is None
    present = [h for h in hits if by_id or _sort_value(sort, h[2], q) is not None]
    missing = [h for h in hits if not by_id and _sort_value(sort, h[2], q) is None]

    def key(h: tuple[int, str, bulk.PastJob]) -> tuple[Any, int]:
        return (0 if by_id else _sort_value(sort, h[2], q), h[0])

    present.sort(key=key, reverse=descending)
    missing.sort(key=lambda h: h[0], reverse=descending)
    return [h[1] for h in present + missing]


def all_pages(engine: Engine, q: Query, sort: Sort, descending: bool, limit: int) -> list[str]:
    out: list[str] = []
    after = None
    for _ in range(1000):
        page = history(engine, q, sort=sort, descending=descending, after=after, limit=limit)
        assert len(page.rows) <= limit
        out += [r.id for r in page.rows]
        if page.next is None:
            return out
        after = Cursor.decode(page.next.encode())  # through the URL, as the page does
    raise AssertionError("paging did not end")


def _parse(text: str) -> Query:
    return parse(text, kinds=KINDS, param_keys=PARAM_KEYS, me="ann", now=NOW)


SEARCHES = [
    "",
    "kind:option_pricing sigma>=0.3 price>12 status:succeeded",
    "sigma>=0.3",
    "sigma=0.3",
    "sigma!=0.3",
    "sigma<1 sigma>0.1",
    "price>12",
    "price=12",
    'price="12"',
    "price!=12",
    "result.partial=true",
    "partial=false",
    "method:BCa",
    'method="12"',
    "method=12",
    "method!=BCa",
    "antithetic=true",
    "antithetic=1",
    "paths>=20000",
    "param.paths=1000000",
    "status:failed,cancelled",
    "status:queued owner:me",
    "owner:bob,cy tag:q3",
    "tag:100%",
    "tag:a_b tag:desk",
    "risk desk",
    '"100%"',
    "a_b",
    "PRICING",
    "name:sweep kind:bootstrap,optimize",
    "created>=7d",
    "created<2026-11-01",
    "created:2026-11-10",
    "created>2026-11-10 created<=2026-11-15",
    "created>=2026-11-10T06:30:00",
    "seed>=4503599627370496",
    "kind:option_pricing status:queued",
    "nosuchfield>1",
]


@pytest.mark.parametrize("text", SEARCHES)
def test_each_search_returns_what_a_brute_force_filter_finds(
    seeded: tuple[Engine, list[tuple[str, bulk.PastJob]]], text: str
) -> None:
    engine, rows = seeded
    q = _parse(text)
    want = expected(rows, q, "created", True)
    assert all_pages(engine, q, "created", True, 25) == want
    if text == "":
        assert len(want) == 400


def test_the_seeded_store_exercises_every_search(
    seeded: tuple[Engine, list[tuple[str, bulk.PastJob]]],
) -> None:
    """Each search but the last must match some jobs and miss others, or it proves little."""
    _, rows = seeded
    for text in SEARCHES[1:-1]:
        n = len(expected(rows, _parse(text), "created", True))
        assert 0 < n < len(rows), (text, n)


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("descending", [True, False])
def test_every_sort_pages_through_every_row_once_in_order(
    seeded: tuple[Engine, list[tuple[str, bulk.PastJob]]], sort: Sort, descending: bool
) -> None:
    engine, rows = seeded
    q = _parse("status:succeeded,queued,cancelled")
    assert all_pages(engine, q, sort, descending, 17) == expected(rows, q, sort, descending)


PIECES = st.sampled_from(
    [
        "kind:option_pricing",
        "kind:bootstrap,optimize",
        "status:succeeded",
        "status:failed,queued",
        "owner:ann",
        "owner:bob,cy",
        "tag:q3",
        "tag:risk",
        "risk",
        "desk",
        "sigma>=0.3",
        "sigma<0.3",
        "sigma=1",
        "paths>1000",
        "method:BCa",
        "price>12",
        "price<=12",
        "partial=true",
        "created>=10d",
        "created<3d",
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(PIECES, min_size=1, max_size=4),
    sort=st.sampled_from(SORTS),
    descending=st.booleans(),
)
def test_random_combinations_agree_with_the_brute_force_filter(
    seeded: tuple[Engine, list[tuple[str, bulk.PastJob]]],
    pieces: list[str],
    sort: Sort,
    descending: bool,
) -> None:
    engine, rows = seeded
    q = _parse(" ".join(pieces))
    assert all_pages(engine, q, sort, descending, 9) == expected(rows, q, sort, descending)


def test_filters_from_the_page_and_the_search_box_both_hold(
    seeded: tuple[Engine, list[tuple[str, bulk.PastJob]]],
) -> None:
    engine, rows = seeded
    widgets = Query(statuses=frozenset({"succeeded", "failed"}), kinds=frozenset(KINDS[:2]))
    both = widgets & _parse("status:failed,queued tag:q3")
    assert both.statuses == frozenset({"failed"})
    want = expected(rows, both, "created", True)
    assert want and all_pages(engine, both, "created", True, 25) == want
    nothing = Query(statuses=frozenset({"queued"})) & _parse("status:failed")
    assert all_pages(engine, nothing, "created", True, 25) == []


def test_a_bad_cursor_is_refused_not_crashed_on() -> None:
    for text in ["", "x", "!!!", Cursor("a", "Ab3xK9pQ").encode()[:-3] + "###", "W10"]:
        with pytest.raises(BadCursor):
            Cursor.decode(text)
    for value in ["name", 3, 2.5, None, NOW, timedelta(seconds=90.5)]:
        c = Cursor(value, "Ab3xK9pQ_-", value is None)
        assert Cursor.decode(c.encode()) == c


def _token(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def test_a_page_link_holds_the_public_id_and_the_sort_value_only(engine: Engine) -> None:
    ids = [intake.submit(engine, "monte_carlo_pi", {"samples": 1000}, name=n) for n in "abc"]
    for sort, value in (("created", None), ("name", "b")):
        page = history(engine, sort=sort, limit=2)
        assert page.next is not None
        token = page.next.encode()
        assert json.loads(base64.urlsafe_b64decode(token + "==")) == [value, ids[1], False]
        after = history(engine, sort=sort, limit=2, after=Cursor.decode(token))
        assert [r.id for r in after.rows] == [ids[0]]


@pytest.mark.parametrize(
    "payload",
    [
        '[{"s":1e300},1,false]',  # the reported link: a duration no timedelta holds
        '[{"s":1e300},"Ab3xK9pQ",false]',
        '[{"s":NaN},"Ab3xK9pQ",false]',
        '[Infinity,"Ab3xK9pQ",false]',
        '[1e999,"Ab3xK9pQ",false]',
        "[" + "9" * 2900 + ',"Ab3xK9pQ",false]',
        '[true,"Ab3xK9pQ",false]',
        '[{"t":"0001-01-01T00:00:00+14:00"},"Ab3xK9pQ",false]',
        '[{"t":"2026-11-20T12:00:00"},"Ab3xK9pQ",false]',
        '[{"t":20261120},"Ab3xK9pQ",false]',
        '[{"t":"2026-11-20T12:00:00+00:00","s":1},"Ab3xK9pQ",false]',
        '["a\\u0000b","Ab3xK9pQ",false]',
        '["\\ud800","Ab3xK9pQ",false]',
        "[null,42,false]",
        '[null,"short",false]',
        '[null,"Ab3xK9pQ",0]',
        '[null,"Ab3xK9pQ"]',
        '{"a":null,"Ab3xK9pQ":1,"c":false}',
        "[" * 3000,
        '"just text"',
    ],
)
def test_a_crafted_page_link_is_a_bad_cursor(payload: str) -> None:
    with pytest.raises(BadCursor):
        Cursor.decode(_token(payload))


def test_the_reported_duration_link_is_refused_as_sent() -> None:
    with pytest.raises(BadCursor):
        Cursor.decode("W3sicyI6MWUzMDB9LDEsZmFsc2Vd")


def test_a_link_to_a_job_that_no_longer_exists_is_a_bad_cursor(engine: Engine) -> None:
    intake.submit(engine, "monte_carlo_pi", {"samples": 1000}, name="kept")
    for sort, value in (("created", None), ("name", "kept"), ("duration", None)):
        with pytest.raises(BadCursor):
            history(engine, sort=sort, after=Cursor(value, "Gone0000Gone", value is None))


def test_links_at_either_end_of_the_calendar_and_of_durations_still_read(engine: Engine) -> None:
    """The largest values a link may hold bind on both backends: a page, not a DataError."""
    job = intake.submit(engine, "monte_carlo_pi", {"samples": 1000}, name="x")
    postgres = engine.dialect.name == "postgresql"
    longest = timedelta(days=999_999_999) if postgres else 999_999_999.0
    for sort, value in (
        ("finished", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("started", datetime(1, 1, 1, tzinfo=UTC)),
        ("duration", longest),
        ("duration", -longest),
        ("name", "\U0001f600" * 200),
    ):
        after = Cursor.decode(Cursor(value, job).encode())
        page = history(engine, sort=sort, after=after)  # type: ignore[arg-type]
        assert len(page.rows) <= 1


def test_keyset_pages_never_skip_or_repeat_while_new_jobs_arrive(
    fresh_seeded: tuple[Engine, list[tuple[str, bulk.PastJob]]],
) -> None:
    """A writer submits jobs the whole time a reader pages through the history, in every
    sort. Each page read holds exactly the rows before it in the order of the sort, so the
    rows that existed when paging started are all seen, once each."""
    engine, rows = fresh_seeded
    stop = threading.Event()
    submitted: list[str] = []

    def writer() -> None:
        while not stop.is_set():
            submitted.append(
                intake.submit(engine, "monte_carlo_pi", {"samples": 1000}, owner="ann")
            )

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for sort in ("created", "name", "duration"):
            before = set(expected(rows, Query(), "created", True))
            seen = all_pages(engine, Query(), sort, True, 13)
            assert len(seen) == len(set(seen)), f"{sort}: a row came twice"
            assert before <= set(seen), f"{sort}: rows were skipped"
    finally:
        stop.set()
        thread.join()
    assert submitted, "the writer never ran, so the test proved nothing"


def test_copy_jobs_refuses_records_the_state_machine_never_makes(engine: Engine) -> None:
    base = dict(kind="bootstrap", name="x", owner="a", params={}, created_at=NOW)
    bad: list[Callable[[], bulk.PastJob]] = [
        lambda: bulk.PastJob(**base, status=Status.RUNNING),
        lambda: bulk.PastJob(**base, status=Status.FAILED, finished_at=NOW, result={"x": 1}),
        lambda: bulk.PastJob(**base, status=Status.SUCCEEDED, started_at=NOW, finished_at=NOW),
        lambda: bulk.PastJob(
            **base, status=Status.SUCCEEDED, started_at=NOW, finished_at=NOW - timedelta(1)
        ),
    ]
    for make in bad:
        with pytest.raises(ValueError):
            bulk.copy_jobs(engine, [make()])
    assert history(engine).rows == []


def test_copied_history_satisfies_every_invariant(
    seeded: tuple[Engine, list[tuple[str, bulk.PastJob]]],
) -> None:
    from jobstore import doctor, queries

    engine, rows = seeded
    assert doctor.check(engine) == []
    job_id, record = next((i, r) for i, r in rows if r.status is Status.SUCCEEDED)
    job = queries.get_job(engine, job_id)
    assert job.result == record.result
    assert job.series == {"estimate": ([1.0, 2.0], [0.5, 0.25])}
    assert job.attempts[0].outcome == "succeeded"


def test_concurrent_copies_get_disjoint_ids_and_all_land(engine: Engine) -> None:
    rng = random.Random(9)
    batches = [[_record(rng, 100 * b + i) for i in range(100)] for b in range(4)]
    out: list[list[str]] = [[] for _ in batches]

    def copy(b: int) -> None:
        out[b] = bulk.copy_jobs(engine, batches[b], chunk=30)

    threads = [threading.Thread(target=copy, args=(b,)) for b in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in out for i in batch]
    assert len(ids) == len(set(ids)) == 400
    assert set(all_pages(engine, Query(), "created", True, 500)) == set(ids)
    from jobstore import doctor

    assert doctor.check(engine) == []
