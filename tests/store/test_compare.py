"""The compare read: jobs' fields side by side and their series aligned, in few statements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import Engine

from compute import intake
from jobstore import enqueue, reports
from jobstore import transitions as T
from jobstore.compare import ABSENT, MAX_JOBS, compare, parse_ids
from jobstore.engine import is_postgres
from runlab.errors import InvalidParams
from tests.plans import explain, sqlite_full_scans, statements

RUNNER = "runner-c"
STORE_TABLES = ("jobs", "job_results", "job_metrics")
PI_RESULT = {"estimate": 3.1416, "standard_error": 0.0016, "samples": 1_000_000, "seed": 7}


def finished(
    engine: Engine,
    kind: str,
    params: dict[str, Any],
    result: dict[str, Any] | None,
    *,
    name: str = "",
    metrics: Sequence[tuple[str, float, float]] = (),
) -> str:
    """A job claimed at once, with its metrics; succeeded with `result`, or left running."""
    public_id = intake.submit(engine, kind, params, name=name)
    [lease] = T.claim(engine, RUNNER)
    assert lease.public_id == public_id
    if metrics:
        reports.report(engine, lease, reports.Report(metrics=list(metrics)), lease_seconds=30)
    if result is not None:
        T.succeed(engine, lease, result)
    return public_id


def pi(engine: Engine, samples: int, estimate: float, name: str = "") -> str:
    return finished(
        engine,
        "monte_carlo_pi",
        {"samples": samples, "seed": 7},
        {**PI_RESULT, "estimate": estimate, "samples": samples},
        name=name,
        metrics=[("estimate", samples / 2, estimate + 0.01), ("estimate", samples, estimate)],
    )


def rows_by_name(cmp: Any, section: str) -> dict[str, Any]:
    return {row.name: row for row in cmp.fields if row.section == section}


def test_jobs_of_one_kind_come_back_in_the_order_asked_with_differing_fields_marked(
    engine: Engine,
) -> None:
    a = pi(engine, 1000, 3.1, "small")
    b = pi(engine, 2000, 3.14, "large")

    cmp = compare(engine, [b, a])

    assert [j.id for j in cmp.jobs] == [b, a]
    assert [j.summary.name for j in cmp.jobs] == ["large", "small"]
    assert cmp.unknown == []
    params, results = rows_by_name(cmp, "param"), rows_by_name(cmp, "result")
    assert params["samples"].values == (2000, 1000) and params["samples"].differs
    assert params["seed"].values == (7, 7) and not params["seed"].differs
    assert results["estimate"].values == (3.14, 3.1) and results["estimate"].differs
    assert not results["standard_error"].differs
    sections = [row.section for row in cmp.fields]
    assert sections == sorted(sections, key=["param", "result"].index), "params come first"
    assert [(r.section, r.name) for r in cmp.differing] == [
        ("param", "samples"),
        ("result", "estimate"),
        ("result", "samples"),
    ]


def test_jobs_of_different_kinds_show_each_field_absent_where_a_job_lacks_it(
    engine: Engine,
) -> None:
    p = pi(engine, 1000, 3.1)
    d = finished(
        engine,
        "demo_stages",
        {"stages": 2, "seconds_per_stage": 0},
        {"stages": ["stage 1", "stage 2"]},
        metrics=[("stage_seconds", 1, 0.5), ("stage_seconds", 2, 0.25)],
    )

    cmp = compare(engine, [p, d])

    assert [j.summary.kind for j in cmp.jobs] == ["monte_carlo_pi", "demo_stages"]
    params, results = rows_by_name(cmp, "param"), rows_by_name(cmp, "result")
    # A field of one kind does not apply to the other: shown absent, and not a difference.
    assert params["samples"].values == (1000, ABSENT) and not params["samples"].differs
    assert params["seconds_per_stage"].values == (ABSENT, 0)
    assert results["estimate"].values == (3.1, ABSENT) and not results["estimate"].differs
    assert results["stages"].values == (ABSENT, ["stage 1", "stage 2"])
    assert cmp.series_names == ["estimate", "stage_seconds"]
    assert cmp.common_series == []


def test_a_job_without_a_result_yet_is_compared_on_its_parameters(engine: Engine) -> None:
    done = pi(engine, 1000, 3.1)
    running = finished(engine, "monte_carlo_pi", {"samples": 1000, "seed": 7}, None)

    cmp = compare(engine, [done, running])

    assert cmp.jobs[1].result is None
    assert not rows_by_name(cmp, "param")["samples"].differs
    estimate = rows_by_name(cmp, "result")["estimate"]
    assert estimate.values == (3.1, ABSENT) and estimate.differs


def test_nested_dicts_are_flattened_one_level_and_deeper_values_compared_whole(
    engine: Engine,
) -> None:
    def job(var99: float, edges: list[float]) -> str:
        return finished(
            engine,
            "monte_carlo_pi",
            {"samples": 1000, "seed": 7},
            {"var": {"0.95": 10.0, "0.99": var99}, "histogram": {"edges": edges}, "n": 1},
        )

    a = job(20.0, [0.0, 1.0, 2.0])
    b = job(21.0, [0.0, 1.0, 2.0])
    c = job(20.0, [0.0, 1.0, 3.0])

    rows = rows_by_name(compare(engine, [a, b, c]), "result")

    assert rows["var.0.95"].path == ("var", "0.95") and not rows["var.0.95"].differs
    assert rows["var.0.99"].values == (20.0, 21.0, 20.0) and rows["var.0.99"].differs
    assert rows["histogram.edges"].differs
    assert "var" not in rows and "histogram" not in rows


def test_equal_numbers_match_across_int_and_float_but_booleans_stay_apart(engine: Engine) -> None:
    a = finished(engine, "monte_carlo_pi", {"samples": 1000}, {"x": 1, "flag": True, "n": None})
    b = finished(engine, "monte_carlo_pi", {"samples": 1000}, {"x": 1.0, "flag": 1, "n": None})

    rows = rows_by_name(compare(engine, [a, b]), "result")

    assert not rows["x"].differs
    assert rows["flag"].differs
    assert not rows["n"].differs and rows["n"].values == (None, None)


def test_series_are_aligned_one_trace_per_job_in_job_order(engine: Engine) -> None:
    a = pi(engine, 1000, 3.1)
    d = finished(
        engine, "demo_stages", {"stages": 1}, {"stages": ["s"]}, metrics=[("stage_seconds", 1, 2)]
    )
    b = pi(engine, 4000, 3.14)

    cmp = compare(engine, [a, d, b])

    assert cmp.default_series == "estimate", "the series most jobs share, when none is common"
    traces = cmp.overlay("estimate")
    assert [t.job.id for t in traces] == [a, d, b]
    assert [(t.steps, t.values) for t in traces] == [
        ([500.0, 1000.0], [3.11, 3.1]),
        ([], []),
        ([2000.0, 4000.0], [3.15, 3.14]),
    ]


def test_the_first_common_series_is_the_default(engine: Engine) -> None:
    def job(names: list[str]) -> str:
        return finished(
            engine, "monte_carlo_pi", {"samples": 1000}, {}, metrics=[(n, 1, 1) for n in names]
        )

    cmp = compare(engine, [job(["b", "z", "a"]), job(["z", "b"]), job(["z", "b", "c"])])

    assert cmp.series_names == ["a", "b", "c", "z"]
    assert cmp.common_series == ["b", "z"]
    assert cmp.default_series == "b"


def test_each_job_shows_its_latest_attempts_series_thinned_keeping_the_last_point(
    engine: Engine,
) -> None:
    public_id = intake.submit(engine, "monte_carlo_pi", {"samples": 1000})
    [first] = T.claim(engine, RUNNER)
    reports.report(engine, first, reports.Report(metrics=[("estimate", 1, 9.0)]), lease_seconds=30)
    T.hand_back(engine, first)
    [second] = T.claim(engine, RUNNER)
    assert second.attempt == first.attempt + 1
    points = [("estimate", float(step), step / 10) for step in range(1, 101)]
    reports.report(engine, second, reports.Report(metrics=points), lease_seconds=30)
    other = pi(engine, 1000, 3.1)

    cmp = compare(engine, [public_id, other], max_points=10)

    [trace, _] = cmp.overlay("estimate")
    assert 9.0 not in trace.values, "the first attempt's points are gone"
    assert len(trace.steps) <= 11
    assert trace.steps[0] == 1.0 and trace.steps[-1] == 100.0 and trace.values[-1] == 10.0
    assert trace.steps == sorted(trace.steps)


def test_unknown_and_malformed_ids_are_reported_in_order_and_the_rest_compared(
    engine: Engine,
) -> None:
    a = pi(engine, 1000, 3.1)
    b = pi(engine, 2000, 3.14)
    gone = enqueue.new_public_id()

    cmp = compare(engine, [a, "not an id!", b, gone])

    assert [j.id for j in cmp.jobs] == [a, b]
    assert cmp.unknown == ["not an id!", gone]


def test_duplicates_collapse_to_their_first_place(engine: Engine) -> None:
    a = pi(engine, 1000, 3.1)
    b = pi(engine, 2000, 3.14)

    cmp = compare(engine, [b, a, b, a])

    assert [j.id for j in cmp.jobs] == [b, a]


@pytest.mark.parametrize("count", [0, 1, MAX_JOBS + 1])
def test_fewer_than_two_or_more_than_ten_distinct_ids_are_refused_at_the_ids_field(
    engine: Engine, count: int
) -> None:
    ids = [enqueue.new_public_id() for _ in range(count)]

    with pytest.raises(InvalidParams) as caught:
        compare(engine, ids)

    assert set(caught.value.errors) == {"ids"}
    assert str(count) in caught.value.errors["ids"]


def test_one_id_twice_is_still_one_job(engine: Engine) -> None:
    a = pi(engine, 1000, 3.1)

    with pytest.raises(InvalidParams):
        compare(engine, [a, a])


def test_ids_are_split_on_commas_and_blanks_from_one_or_several_values() -> None:
    assert parse_ids("a, b,,c ") == ["a", "b", "c"]
    assert parse_ids(["a,b", "c"]) == ["a", "b", "c"]
    assert parse_ids("") == []


def test_the_read_takes_two_statements_however_many_jobs(engine: Engine) -> None:
    ids = [pi(engine, 1000 * (i + 1), 3.1) for i in range(MAX_JOBS)]

    with statements(engine) as two:
        compare(engine, ids[:2])
    with statements(engine) as ten:
        compare(engine, ids)

    assert len(two) == len(ten) == 2


def test_every_statement_finds_its_rows_through_an_index(engine: Engine) -> None:
    """No full scan of jobs or metrics: the read's cost must not grow with the store."""
    ids = [pi(engine, 1000 * (i + 1), 3.1) for i in range(3)]
    with statements(engine) as seen:
        compare(engine, ids)
    assert seen

    with engine.connect() as conn:
        plans = explain(conn, seen)
    if is_postgres(engine):
        # An index must serve every table the read touches.
        assert not [p for p in plans if "Seq Scan" in p], plans
    else:
        # "SCAN anon_1" is the grouped subquery's own few rows.
        assert not sqlite_full_scans(plans, STORE_TABLES), plans
