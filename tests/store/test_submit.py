"""Submitting: validation before anything is stored, public ids, idempotency, commit on return."""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, func, select

from compute.intake import rerun, submit, submit_many
from jobstore.engine import make_engine, reading
from jobstore.models import JobEvent, JobStage, Status
from jobstore.queries import get_job, list_jobs, queue_position
from jobstore.transitions import claim
from runlab.errors import InvalidParams, JobNotFound, UnknownKind

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
SMALL_PI = {"samples": 1000, "chunks": 2, "seed": 7}
UPLOAD = {"name": "prices.csv", "size": 10, "sha256": "0" * 64}


def stored_rows(engine: Engine) -> tuple[int, int, int]:
    """Jobs, stages and events in the store: what a rejected submit must leave at zero."""
    with reading(engine) as conn:
        stages = conn.execute(select(func.count()).select_from(JobStage)).scalar_one()
        events = conn.execute(select(func.count()).select_from(JobEvent)).scalar_one()
    return list_jobs(engine).total, stages, events


def test_submit_queues_job_with_validated_params_and_declared_stages(engine: Engine) -> None:
    public_id = submit(
        engine, "monte_carlo_pi", {"samples": 1000}, owner="ana", tags=["a", "b"], priority=2
    )

    job = get_job(engine, public_id)
    assert job.status is Status.QUEUED
    assert job.attempt == 0
    assert job.owner == "ana"
    assert job.tags == ["a", "b"]
    assert job.name == f"monte_carlo_pi {public_id[:6]}"
    # The model fills chunks and seed, and the store keeps them: a rerun is reproducible.
    assert job.params["samples"] == 1000
    assert job.params["chunks"] == 1
    assert isinstance(job.params["seed"], int)
    assert [(s.name, s.status) for s in job.stages] == [
        ("plan", "pending"),
        ("sample", "pending"),
        ("reduce", "pending"),
    ]
    assert job.created_at is not None and job.started_at is None


def test_submit_without_idempotency_key_makes_a_new_job_each_time(engine: Engine) -> None:
    first = submit(engine, "monte_carlo_pi", SMALL_PI)
    second = submit(engine, "monte_carlo_pi", SMALL_PI)

    assert first != second
    assert list_jobs(engine).total == 2


def test_same_idempotency_key_returns_the_same_job_and_stores_one_row(engine: Engine) -> None:
    unseeded = {"samples": 1000, "chunks": 2}
    first = submit(engine, "monte_carlo_pi", unseeded, idempotency_key="nightly-2024-01-01")
    # The seed is drawn afresh on each submit that leaves it out: not a difference.
    again = submit(engine, "monte_carlo_pi", unseeded, idempotency_key="nightly-2024-01-01")

    assert first == again
    assert list_jobs(engine).total == 1
    assert get_job(engine, first).kind == "monte_carlo_pi"


@pytest.mark.parametrize(
    ("kind", "params", "what"),
    [
        ("demo_stages", {}, "a job of another kind"),
        ("monte_carlo_pi", {**SMALL_PI, "samples": 2 * SMALL_PI["samples"]}, "other parameters"),
        ("monte_carlo_pi", {**SMALL_PI, "seed": 7}, "other parameters"),
    ],
)
def test_an_idempotency_key_reused_for_another_job_is_refused_naming_the_first(
    engine: Engine, kind: str, params: dict[str, Any], what: str
) -> None:
    first = submit(engine, "monte_carlo_pi", {**SMALL_PI, "seed": 1}, idempotency_key="k")

    with pytest.raises(InvalidParams) as err:
        submit(engine, kind, params, idempotency_key="k")

    assert err.value.errors["idempotency_key"].startswith(f"already used by job {first}, with")
    assert what in err.value.errors["idempotency_key"]
    assert list_jobs(engine).total == 1


def test_concurrent_submits_with_one_idempotency_key_make_one_job(engine: Engine) -> None:
    threads = 6
    barrier = threading.Barrier(threads)
    ids: list[str] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            barrier.wait(timeout=30)
            ids.append(submit(engine, "monte_carlo_pi", SMALL_PI, idempotency_key="once"))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=go) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)

    assert not errors
    assert len(ids) == threads
    assert len(set(ids)) == 1
    assert list_jobs(engine).total == 1


def test_public_ids_are_distinct_url_safe_and_at_least_64_bits(engine: Engine) -> None:
    ids = [submit(engine, "demo_stages", {}) for _ in range(40)]

    assert len(set(ids)) == len(ids)
    for public_id in ids:
        assert URL_SAFE.match(public_id), public_id
        assert quote(public_id, safe="") == public_id
        # token_urlsafe(8), 64 bits, is 11 characters: anything shorter carries fewer bits.
        assert len(public_id) >= 11


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"samples": 0}, "samples"),
        ({"samples": "5"}, "samples"),
        ({"samples": 10, "chunks": 11}, "chunks"),
        ({"seed": -1}, "seed"),
        ({"wat": 1}, "wat"),
    ],
)
def test_submit_with_bad_params_names_the_field_and_stores_nothing(
    engine: Engine, params: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidParams) as caught:
        submit(engine, "monte_carlo_pi", params, idempotency_key="k1")

    assert set(caught.value.errors) == {field}
    assert str(caught.value).startswith(f"{field}: ")
    assert stored_rows(engine) == (0, 0, 0)
    # The rejected key was not spent: a good submit may use it.
    assert submit(engine, "monte_carlo_pi", SMALL_PI, idempotency_key="k1")


def test_submit_of_unknown_kind_raises_and_stores_nothing(engine: Engine) -> None:
    with pytest.raises(UnknownKind) as caught:
        submit(engine, "no_such_kind", {})

    assert isinstance(caught.value, InvalidParams)
    assert set(caught.value.errors) == {"kind"}
    assert "monte_carlo_pi" in caught.value.errors["kind"]
    assert stored_rows(engine) == (0, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"name": "x" * 201}, "name"), ({"idempotency_key": ""}, "idempotency_key")],
)
def test_submit_rejects_oversized_name_and_empty_key(
    engine: Engine, kwargs: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidParams) as caught:
        submit(engine, "demo_stages", {}, **kwargs)  # type: ignore[arg-type]

    assert set(caught.value.errors) == {field}
    assert stored_rows(engine) == (0, 0, 0)


def test_submit_returns_only_after_commit(engine: Engine, db_url: str) -> None:
    public_id = submit(engine, "demo_stages", {"stages": 2, "seconds_per_stage": 0.5})

    fresh = make_engine(db_url)
    try:
        job = get_job(fresh, public_id)
        assert job.status is Status.QUEUED
        assert queue_position(fresh, public_id) == 1
        assert [s.name for s in job.stages] == ["stage 1", "stage 2"]
    finally:
        fresh.dispose()


def test_too_many_or_too_long_tags_are_refused_before_storing(engine: Engine) -> None:
    for tags in (["t"] * 21, ["x" * 51]):
        with pytest.raises(InvalidParams) as caught:
            submit(engine, "demo_stages", {}, tags=tags)
        assert list(caught.value.errors) == ["tags"]
    assert list_jobs(engine).total == 0


def test_listing_by_an_unknown_status_names_it(engine: Engine) -> None:
    with pytest.raises(InvalidParams, match="unknown status 'bogus'"):
        list_jobs(engine, status=["bogus"])


def test_timeout_and_max_attempts_are_checked_and_reach_the_lease(engine: Engine) -> None:
    for bad in ({"timeout_seconds": 0.5}, {"max_attempts": 0}):
        with pytest.raises(InvalidParams) as caught:
            submit(engine, "demo_stages", {}, **bad)
        assert list(caught.value.errors) == list(bad)
    public_id = submit(engine, "demo_stages", {}, timeout_seconds=90, max_attempts=5)
    job = get_job(engine, public_id)
    assert (job.timeout_seconds, job.max_attempts) == (90, 5)
    [lease] = claim(engine, "r1")
    assert lease.timeout_seconds == 90


def test_submit_many_queues_every_job_like_submit_in_one_go(engine: Engine) -> None:
    ids = submit_many(engine, "monte_carlo_pi", [{"samples": 1000 + i} for i in range(1200)])

    assert len(set(ids)) == 1200 and all(URL_SAFE.match(i) for i in ids)
    assert stored_rows(engine) == (1200, 1200 * 3, 1200)
    one, last = get_job(engine, ids[0]), get_job(engine, ids[-1])
    assert one.params["samples"] == 1000 and last.params["samples"] == 2199  # order kept
    single = get_job(engine, submit(engine, "monte_carlo_pi", {"samples": 1000}))
    for field in ("status", "attempt", "max_attempts", "owner", "tags", "progress"):
        assert getattr(one, field) == getattr(single, field), field
    assert [s.status for s in one.stages] == ["pending"] * 3
    assert [(a.attempt, a.outcome) for a in one.attempts] == []
    assert queue_position(engine, ids[-1]) == 1200


def test_submit_many_with_one_bad_job_names_it_and_stores_none(engine: Engine) -> None:
    with pytest.raises(InvalidParams) as caught:
        submit_many(engine, "monte_carlo_pi", [{"samples": 10}, {"samples": "ten"}])
    assert list(caught.value.errors) == ["1.samples"]
    with pytest.raises(UnknownKind):
        submit_many(engine, "no_such_kind", [{}, {}])
    assert stored_rows(engine) == (0, 0, 0)


def test_rerun_queues_the_same_kind_params_and_seed_under_a_new_id(engine: Engine) -> None:
    first = submit(engine, "monte_carlo_pi", {"samples": 1000}, name="base", tags=["q3"])
    again = rerun(engine, first, owner="bo")

    a, b = get_job(engine, first), get_job(engine, again)
    assert again != first
    assert b.params == a.params and isinstance(b.params["seed"], int)  # the seed drawn at first
    assert (b.kind, b.name, b.tags, b.owner) == ("monte_carlo_pi", "base (re-run)", ["q3"], "bo")
    assert b.status is Status.QUEUED
    with pytest.raises(JobNotFound):
        rerun(engine, "no-such-job")


def test_claim_records_the_claiming_software_versions(engine: Engine) -> None:
    job = submit(engine, "monte_carlo_pi", SMALL_PI)
    assert get_job(engine, job).versions == {}
    claim(engine, "r", versions={"numpy": "2.4.6", "runlab": "0.1.0"})
    got = get_job(engine, job)
    assert got.versions == {"numpy": "2.4.6", "runlab": "0.1.0"}
    assert got.to_json()["versions"] == got.versions


@pytest.mark.parametrize(
    ("field", "options"),
    [
        ("name", {"name": "nightly\x00run"}),
        ("name", {"name": "x" * 201}),
        ("tags", {"tags": ["ok", "bad\x00"]}),
        ("tags", {"tags": ["a\x1b[31m"]}),
        ("owner", {"owner": "\x00"}),
        ("owner", {"owner": "o" * 101}),
        ("idempotency_key", {"idempotency_key": "key\x00"}),
        ("idempotency_key", {"idempotency_key": "k" * 201}),
        ("priority", {"priority": 2**31}),
        ("priority", {"priority": -(2**31) - 1}),
    ],
)
def test_text_and_numbers_the_store_cannot_hold_are_refused_alike_on_both_backends(
    engine: Engine, field: str, options: dict[str, Any]
) -> None:
    with pytest.raises(InvalidParams) as err:
        submit(engine, "monte_carlo_pi", SMALL_PI, **options)

    assert field in err.value.errors
    assert stored_rows(engine) == (0, 0, 0)


@pytest.mark.parametrize(
    ("field", "params"),
    [
        ("column", {"column": "a\x00b"}),
        ("data", {"data": {**UPLOAD, "name": "prices\x00.csv"}}),
    ],
)
def test_a_nul_in_a_text_parameter_is_refused_at_validation_on_both_backends(
    engine: Engine, field: str, params: dict[str, Any]
) -> None:
    with pytest.raises(InvalidParams) as err:
        submit(engine, "bootstrap", {"data": UPLOAD, "column": "x", **params})

    assert err.value.errors[field].startswith("must not contain a NUL byte")
    assert stored_rows(engine) == (0, 0, 0)
