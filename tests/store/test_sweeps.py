"""A sweep in the store, on both backends: its row and its children in one transaction, one
sweep per idempotency key, children that are ordinary jobs, and bad input refused with
nothing stored."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, insert, select, update

from compute import intake, registry
from jobstore import enqueue, history, queries, retention, search, sweeps, transitions
from jobstore.doctor import check
from jobstore.models import Job, JobEvent, JobStage, Sweep
from runlab.errors import Forbidden, InvalidParams, SweepNotFound
from runlab.identity import Actor

KIND = "option_pricing"
BASE = {"paths": 2000}
GRID = {"sigma": "0.1:0.35:0.05", "T": "0.25,0.5,1,2,3,5,7,10"}


@pytest.fixture(autouse=True)
def _kinds() -> None:
    registry.load()


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(Sweep)).scalar_one(),
            conn.execute(select(func.count()).select_from(Job)).scalar_one(),
        )


def test_a_grid_sweep_is_stored_as_one_row_and_its_children(engine: Engine) -> None:
    sweep_id = intake.submit_sweep(
        engine, KIND, BASE, GRID, name="Vol × maturity", owner="ana", priority=3
    )
    view = sweeps.get(engine, sweep_id)
    assert (view.kind, view.name, view.owner, view.priority) == (KIND, "Vol × maturity", "ana", 3)
    assert view.children == 48 and view.statuses == {"queued": 48}
    assert list(view.axes.items()) == list(GRID.items()) and view.params["paths"] == 2000
    assert "seed" not in view.params and "sigma" not in view.params
    kids = sweeps.children(engine, sweep_id)
    assert len(kids) == 48
    first = queries.get_job(engine, kids[0])
    assert first.name == "Vol × maturity · sigma=0.1, T=0.25"
    unnamed = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1,0.2"})
    label = sweeps.get(engine, unnamed).name
    assert label == f"{KIND} sweep {unnamed[:6]}"
    assert (
        queries.get_job(engine, sweeps.children(engine, unnamed)[1]).name == f"{label} · sigma=0.2"
    )
    assert (first.owner, first.params["sigma"], first.params["T"]) == ("ana", 0.1, 0.25)
    seeds = {queries.get_job(engine, k).params["seed"] for k in kids[:5]}
    assert len(seeds) == 5  # each child its own seed, none given


def test_children_are_ordinary_jobs_that_the_claim_takes(engine: Engine) -> None:
    sweep_id = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1,0.2,0.3"})
    leases = transitions.claim(engine, "r1", limit=10)
    assert sorted(le.public_id for le in leases) == sorted(sweeps.children(engine, sweep_id))
    transitions.succeed(engine, leases[0], {"price": 1.0})
    assert sweeps.get(engine, sweep_id).statuses == {"running": 2, "succeeded": 1}


def test_one_key_makes_one_sweep_and_another_request_under_it_is_refused(engine: Engine) -> None:
    plan = {"sigma": "0.1:0.5"}
    options = {"method": "lhs", "count": 20, "idempotency_key": "vol-lhs"}
    first = intake.submit_sweep(engine, KIND, BASE, plan, **options)  # type: ignore[arg-type]
    again = intake.submit_sweep(engine, KIND, BASE, plan, **options)  # type: ignore[arg-type]
    assert again == first  # the seed was drawn each time: not a different request
    assert _counts(engine) == (1, 20)
    with pytest.raises(InvalidParams) as other:
        intake.submit_sweep(
            engine,
            KIND,
            BASE,
            {"sigma": "0.1:0.6"},
            method="lhs",
            count=20,
            idempotency_key="vol-lhs",
        )
    assert f"already used by sweep {first}" in other.value.errors["idempotency_key"]
    assert _counts(engine) == (1, 20)


def test_a_failure_part_way_stores_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    real = enqueue.insert_jobs
    calls = []

    def failing(conn, new, sweep_id=None, points=None):  # type: ignore[no-untyped-def]
        calls.append(len(new))
        if len(calls) == 3:
            raise RuntimeError("the process died here")
        return real(conn, new, sweep_id, points)

    monkeypatch.setattr(sweeps, "insert_jobs", failing)
    with pytest.raises(RuntimeError):
        intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.01:2.5:0.001"})
    assert calls == [1000, 1000, 491]
    assert _counts(engine) == (0, 0)


@pytest.mark.parametrize(
    ("axes", "options", "field", "words"),
    [
        ({"sigma": "0.0001:5:0.0000001"}, {}, "sigma", "more than the 10,000"),
        ({"sigma": "0.1:5:0.001", "T": "1,2,3"}, {}, "sweep", "14,703 jobs: 4,901 sigma × 3 T"),
        ({"sigma": "0.1,high"}, {}, "sigma", "'high' is not a number"),
        ({"sigma": "4:6:1"}, {}, "sigma", "(where sigma = 6)"),
        ({"sigma": "0.1,0.2"}, {"queue": "nowhere", "queues": ["default"]}, "queue", "no queue"),
        ({"sigma": "0.1,0.2"}, {"name": "x" * 201}, "name", "at most 200"),
    ],
)
def test_bad_input_is_named_at_its_field_and_nothing_is_stored(
    engine: Engine, axes: dict[str, str], options: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(InvalidParams) as bad:
        intake.submit_sweep(engine, KIND, BASE, axes, **options)  # type: ignore[arg-type]
    assert words in bad.value.errors[field]
    assert _counts(engine) == (0, 0)


def test_an_unknown_sweep_is_named(engine: Engine) -> None:
    with pytest.raises(SweepNotFound, match="no such sweep: nope"):
        sweeps.get(engine, "nope")


def test_a_sweep_cancel_ends_every_waiting_child_and_asks_the_running_to_stop(
    engine: Engine,
) -> None:
    sweep_id = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1:0.5:0.1"}, owner="ana")
    running = transitions.claim(engine, "r1", limit=2)
    transitions.succeed(engine, running[0], {"price": 1.0})
    with pytest.raises(Forbidden, match="only the owner of sweep"):
        transitions.cancel_sweep(engine, sweep_id, actor=Actor("bob"))
    assert sweeps.get(engine, sweep_id).statuses == {"queued": 3, "running": 1, "succeeded": 1}
    done = transitions.cancel_sweep(engine, sweep_id, actor=Actor("ana"))
    assert (done.cancelled, done.asked) == (3, 1)
    assert sweeps.get(engine, sweep_id).statuses == {"running": 1, "succeeded": 1, "cancelled": 3}
    job = queries.get_job(engine, running[1].public_id)
    assert job.cancel_requested
    assert ("ana", "cancel requested") in [(a.actor, a.what) for a in job.actions]
    again = transitions.cancel_sweep(engine, sweep_id, actor=Actor("ops", admin=True))
    assert (again.cancelled, again.asked) == (0, 0)


def test_rerun_of_failed_points_runs_only_those_and_counts_each_point_once(engine: Engine) -> None:
    sweep_id = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1:0.4:0.1"}, owner="ana")
    leases = transitions.claim(engine, "r1", limit=4)
    for lease in leases[:2]:
        transitions.succeed(engine, lease, {"price": 1.0})
    transitions.fail(engine, leases[2], "ValueError", "a forced failure")
    transitions.request_cancel(engine, leases[3].public_id)
    transitions.cancelled(engine, leases[3])
    assert sweeps.get(engine, sweep_id).statuses == {"succeeded": 2, "failed": 1, "cancelled": 1}

    again = intake.rerun_failed(engine, sweep_id, owner="bob")
    assert len(again) == 2
    view = sweeps.get(engine, sweep_id)
    assert (view.children, view.statuses) == (4, {"queued": 2, "succeeded": 2})
    redo = queries.get_job(engine, again[0])
    before = queries.get_job(engine, leases[2].public_id)
    assert (redo.params, redo.owner) == (before.params, "bob")  # the same seed: the same numbers
    assert len(sweeps.children(engine, sweep_id)) == 6
    assert intake.rerun_failed(engine, sweep_id) == []


def test_extending_a_sweep_runs_only_the_points_not_yet_computed(engine: Engine) -> None:
    sweep_id = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1,0.2", "T": "1,2"})
    first_plan = sweeps.get(engine, sweep_id).plan
    added = intake.extend_sweep(engine, sweep_id, {"sigma": "0.1,0.2,0.3"})
    with pytest.raises(InvalidParams, match="was changed meanwhile"):  # a page open on the old plan
        sweeps.add(engine, sweep_id, [], [], plan={**first_plan, "axes": []}, was=first_plan)
    assert len(added) == 2
    params = [queries.get_job(engine, a).params for a in added]
    assert sorted((p["sigma"], p["T"]) for p in params) == [(0.3, 1.0), (0.3, 2.0)]
    view = sweeps.get(engine, sweep_id)
    assert view.children == 6 and view.axes["sigma"] == "0.1,0.2,0.3"
    assert intake.extend_sweep(engine, sweep_id, {"sigma": "0.1:0.3:0.1"}) == []
    more = intake.extend_sweep(engine, sweep_id, {"K": "100,110"})  # a new axis
    assert len(more) == 6  # K=100 is every earlier job's K: only K=110 is new
    assert sweeps.get(engine, sweep_id).children == 12
    drawn = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1:0.2"}, method="lhs", count=3)
    with pytest.raises(InvalidParams, match="drawn points cannot be extended"):
        intake.extend_sweep(engine, drawn, {"sigma": "0.1:0.3"})


def test_the_search_term_sweep_lists_a_sweeps_children_and_nothing_else(engine: Engine) -> None:
    mine = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1,0.2,0.3"})
    other = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1,0.2"})
    intake.submit(engine, KIND, BASE)
    query = search.parse(f"sweep:{mine} sigma>=0.2", kinds=[KIND], param_keys=["sigma"], me="")
    page = history.history(engine, query, limit=50)
    want = {c.public_id for c in sweeps.latest(engine, mine) if c.params["sigma"] >= 0.2}
    assert {r.id for r in page.rows} == want and len(want) == 2
    both = search.parse(f"sweep:{mine},{other}", kinds=[KIND], param_keys=[], me="")
    assert len(history.history(engine, both, limit=50).rows) == 5
    with pytest.raises(search.InvalidQuery, match="not a sweep id"):
        search.parse("sweep:x!", kinds=[KIND], param_keys=[], me="")


def test_doctor_knows_a_sweep_is_its_jobs(engine: Engine) -> None:
    sweep_id = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1,0.2"})
    assert check(engine) == []
    kid = sweeps.children(engine, sweep_id)[0]
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.public_id == kid).values(sweep_point=None))
        conn.execute(
            insert(Sweep).values(
                public_id="emptysweep01", kind=KIND, name="e", owner="", plan={}, params={},
                queue="default", priority=0, created_at=func.now(),
            )
        )  # fmt: skip
    found = {(v.job, v.detail) for v in check(engine)}
    assert found == {
        (kid, "a sweep's job without its point, or a point without a sweep"),
        ("emptysweep01", "a sweep without any job"),
    }


def test_deleting_a_sweeps_jobs_removes_the_sweep_with_the_last_of_them(engine: Engine) -> None:
    sweep_id = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1,0.2"})
    transitions.cancel_sweep(engine, sweep_id)
    first, second = sweeps.children(engine, sweep_id)
    retention.delete_jobs(engine, None, [first])
    assert sweeps.get(engine, sweep_id).children == 1
    retention.delete_jobs(engine, None, [second])
    with pytest.raises(SweepNotFound):
        sweeps.get(engine, sweep_id)
    assert check(engine) == []


def test_the_grouped_history_lists_a_sweep_once_on_its_first_job(engine: Engine) -> None:
    before = intake.submit(engine, KIND, BASE, name="alone before")
    sweep_id = intake.submit_sweep(engine, KIND, BASE, {"sigma": "0.1,0.2,0.3"}, name="grid")
    after = intake.submit(engine, KIND, BASE, name="alone after")
    first, *rest = sweeps.children(engine, sweep_id)
    # Its first point failed and was re-run: still one row, on the first job.
    leases = transitions.claim(engine, "r", limit=2)
    [lease] = [x for x in leases if x.public_id == first]
    transitions.fail(engine, lease, "ValueError", "boom", "Traceback")
    [again] = intake.rerun_failed(engine, sweep_id)
    rest.append(again)
    grouped = search.Query(grouped=True)
    listed = [r.id for r in history.history(engine, grouped, limit=50).rows]
    assert listed == [after, first, before]
    every = [r.id for r in history.history(engine, search.Query(), limit=50).rows]
    assert sorted(every) == sorted([before, after, first, *rest])
    rows = sweeps.rows_of(engine, listed)
    assert list(rows) == [first]
    assert (rows[first].public_id, rows[first].name, rows[first].children) == (sweep_id, "grid", 3)
    assert rows[first].ended == 0  # the failed point counts as its re-run, queued
    # A search that asks of each job's outcome or fields lists the jobs themselves.
    assert not search.Query(statuses=frozenset({"queued"})).groups_sweeps
    assert search.Query(kinds=frozenset({KIND})).groups_sweeps
    assert search.Query(grouped=True).empty


def test_a_large_sweep_stores_every_child_with_its_stages_and_event(engine: Engine) -> None:
    """Past `enqueue.RESERVE_FROM` jobs, PostgreSQL takes their ids from the sequence first."""
    n = enqueue.RESERVE_FROM + 50
    sweep_id = intake.submit_sweep(engine, KIND, BASE, {"paths": f"1000:{999 + n}:1"})
    ids = sweeps.children(engine, sweep_id)
    assert len(ids) == n
    for public_id in (ids[0], ids[-1]):
        job = queries.get_job(engine, public_id, log_lines=0)
        assert [s.name for s in job.stages] == ["plan", "simulate", "summarise"]
    with engine.connect() as conn:
        of = select(Job.id).where(Job.public_id.in_(ids))
        stages = conn.execute(
            select(func.count()).select_from(JobStage).where(JobStage.job_id.in_(of))
        ).scalar_one()
        events = conn.execute(
            select(func.count()).select_from(JobEvent).where(JobEvent.job_id.in_(of))
        ).scalar_one()
    assert (stages, events) == (3 * n, n)
    # The sequence moved past them: the next job gets a fresh id.
    alone = intake.submit(engine, KIND, BASE)
    assert queries.get_job(engine, alone, log_lines=0).status.value == "queued"
