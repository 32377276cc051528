"""Every verb of `jobstore.transitions`, and the fence that keeps a stale attempt from writing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, update

from compute import registry
from compute.intake import submit
from jobstore.engine import database_time, db_later, reading
from jobstore.enqueue import new_public_id
from jobstore.models import Job, JobEvent, JobMetric, JobResult, JobStage, StageStatus, Status
from jobstore.queries import get_job, queued_jobs
from jobstore.reports import Asked, Lease, Report, StageUpdate, heartbeat, report
from jobstore.transitions import (
    CancelOutcome,
    Success,
    cancelled,
    claim,
    fail,
    hand_back,
    reap,
    request_cancel,
    retry,
    succeed,
    succeed_many,
)
from jobstore.views import as_utc
from runlab.errors import JobNotFound, LostJob

RUNNER = "runner-a"
LEASE = 30.0
PI = {"samples": 1000, "chunks": 2, "seed": 7}


def job_row(engine: Engine, job_id: int) -> dict[str, Any]:
    with reading(engine) as conn:
        return dict(conn.execute(select(Job).where(Job.id == job_id)).mappings().one())


def job_id_of(engine: Engine, public_id: str) -> int:
    with reading(engine) as conn:
        return conn.execute(select(Job.id).where(Job.public_id == public_id)).scalar_one()


def written(engine: Engine, job_id: int) -> dict[str, Any]:
    """Everything a write for `job_id` could have touched, to compare before and after."""
    with reading(engine) as conn:

        def count(model: Any, *where: Any) -> int:
            return conn.execute(
                select(func.count()).select_from(model).where(model.job_id == job_id, *where)
            ).scalar_one()

        stages = conn.execute(
            select(JobStage).where(JobStage.job_id == job_id).order_by(JobStage.idx)
        ).all()
        return {
            "metrics": count(JobMetric),
            "logs": count(JobEvent, JobEvent.kind == "log"),
            "events": count(JobEvent),
            "results": count(JobResult),
            "stages": [tuple(s) for s in stages],
        }


def snapshot(engine: Engine, job_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return job_row(engine, job_id), written(engine, job_id)


def claim_one(engine: Engine, **kwargs: Any) -> Lease:
    submit(engine, "monte_carlo_pi", PI)
    (lease,) = claim(engine, RUNNER, lease_seconds=LEASE, **kwargs)
    return lease


def stale(lease: Lease) -> Lease:
    return dataclasses.replace(lease, attempt=lease.attempt - 1)


def busy_batch() -> Report:
    """A batch that writes to every table a report can touch."""
    return Report(
        progress=0.9,
        stage="sample",
        stage_updates=[StageUpdate(1, "sample", StageStatus.RUNNING, 0.9, started=True)],
        metrics=[("estimate", 1.0, 3.0)],
        logs=[("info", "stale hello")],
    )


# --- claim --------------------------------------------------------------------------------------


def test_claim_starts_first_attempt_with_lease_in_the_future_by_db_clock(engine: Engine) -> None:
    public_id = submit(engine, "monte_carlo_pi", PI)

    (lease,) = claim(engine, RUNNER, lease_seconds=LEASE)

    assert lease.public_id == public_id
    assert lease.attempt == 1
    assert lease.runner_id == RUNNER
    assert lease.kind == "monte_carlo_pi"
    assert lease.params == get_job(engine, public_id).params
    row = job_row(engine, lease.job_id)
    with reading(engine) as conn:
        now = as_utc(database_time(conn))
    assert row["status"] == Status.RUNNING
    assert row["attempt"] == 1
    assert row["runner_id"] == RUNNER
    assert row["cancel_requested"] is False
    ahead = as_utc(row["lease_until"]) - now
    assert timedelta(seconds=LEASE - 10) < ahead <= timedelta(seconds=LEASE)
    assert as_utc(row["started_at"]) <= now


def test_claim_records_a_transition_event(engine: Engine) -> None:
    lease = claim_one(engine)

    with reading(engine) as conn:
        events = conn.execute(
            select(JobEvent).where(JobEvent.job_id == lease.job_id).order_by(JobEvent.id)
        ).all()
    assert [(e.kind, e.from_status, e.to_status, e.attempt) for e in events] == [
        ("transition", None, "queued", 0),
        ("transition", "queued", "running", 1),
    ]
    assert events[1].runner_id == RUNNER
    assert events[1].at is not None


def test_claimed_params_parse_back_under_the_strict_model(engine: Engine) -> None:
    submit(engine, "demo_stages", {"stages": 2, "seconds_per_stage": 1})
    submit(engine, "monte_carlo_pi", {"samples": 10, "seed": 2**63 - 1})

    for lease in claim(engine, RUNNER, limit=2):
        model = registry.get(lease.kind).parse(lease.params)
        assert model.model_dump(mode="json") == lease.params


def test_claim_of_an_empty_queue_or_zero_limit_takes_nothing(engine: Engine) -> None:
    assert claim(engine, RUNNER) == []
    public_id = submit(engine, "demo_stages", {})

    assert claim(engine, RUNNER, limit=0) == []
    assert get_job(engine, public_id).status is Status.QUEUED


def test_claim_takes_at_most_limit_jobs_from_the_head_of_the_queue(engine: Engine) -> None:
    low = [submit(engine, "demo_stages", {}) for _ in range(3)]
    high = [submit(engine, "demo_stages", {}, priority=5) for _ in range(2)]

    first = claim(engine, RUNNER, limit=1)
    second = claim(engine, RUNNER, limit=3)

    assert [lease.public_id for lease in first] == high[:1]
    assert sorted(lease.public_id for lease in second) == sorted([high[1], *low[:2]])
    assert [s.id for _, s in queued_jobs(engine)] == low[2:]


def test_job_cancelled_while_queued_cannot_be_claimed(engine: Engine) -> None:
    public_id = submit(engine, "demo_stages", {})

    assert request_cancel(engine, public_id) is CancelOutcome.CANCELLED

    assert claim(engine, RUNNER) == []
    job = get_job(engine, public_id)
    assert job.status is Status.CANCELLED
    assert job.attempt == 0
    assert job.finished_at is not None


# --- leases and reports -------------------------------------------------------------------------


def test_heartbeat_renews_lease_by_db_clock(engine: Engine) -> None:
    lease = claim_one(engine)
    before = as_utc(job_row(engine, lease.job_id)["lease_until"])

    assert heartbeat(engine, RUNNER, [lease], lease_seconds=600) == {lease.job_id: Asked()}

    after = as_utc(job_row(engine, lease.job_id)["lease_until"])
    assert after - before > timedelta(seconds=500)


def test_report_writes_progress_stage_metrics_and_logs(engine: Engine) -> None:
    lease = claim_one(engine)
    batch = Report(
        progress=0.5,
        stage="sample",
        stage_updates=[
            StageUpdate(0, "plan", StageStatus.DONE, 1.0, finished=True),
            StageUpdate(1, "sample", StageStatus.RUNNING, 0.5, started=True),
        ],
        metrics=[("estimate", 500.0, 3.2), ("estimate", 1000.0, 3.14)],
        logs=[("info", "half way"), ("warning", "a <b>tag</b> stays text")],
    )

    assert report(engine, lease, batch, lease_seconds=LEASE) == Asked()

    job = get_job(engine, lease.public_id)
    assert job.status is Status.RUNNING
    assert job.progress == 0.5
    assert job.stage == "sample"
    assert [(s.name, s.status, s.progress) for s in job.stages] == [
        ("plan", "done", 1.0),
        ("sample", "running", 0.5),
        ("reduce", "pending", 0.0),
    ]
    assert job.stages[0].finished_at is not None
    assert job.stages[1].started_at is not None
    assert job.series == {"estimate": ([500.0, 1000.0], [3.2, 3.14])}
    assert [(x.level, x.message, x.attempt) for x in job.logs] == [
        ("info", "half way", 1),
        ("warning", "a <b>tag</b> stays text", 1),
    ]


def test_progress_at_dates_each_change_of_progress_and_a_requeue_clears_it(
    engine: Engine,
) -> None:
    lease = claim_one(engine)
    claimed = job_row(engine, lease.job_id)["progress_at"]
    assert claimed is not None, "an attempt's progress of 0 is dated by its claim"

    def dated() -> Any:
        return job_row(engine, lease.job_id)["progress_at"]

    def age() -> float:
        """Seconds since the progress was dated, by the database's clock."""
        with engine.connect() as conn:
            return (as_utc(database_time(conn)) - as_utc(dated())).total_seconds()

    def backdate() -> None:
        with engine.begin() as conn:
            conn.execute(
                update(Job).where(Job.id == lease.job_id).values(progress_at=db_later(-600))
            )

    backdate()
    report(engine, lease, Report(progress=0.0, logs=[("info", "still at 0")]), lease_seconds=LEASE)
    assert age() > 590, "the same progress again is no change: its date stays"

    report(engine, lease, Report(progress=0.4), lease_seconds=LEASE)
    assert age() < 60

    backdate()
    report(engine, lease, Report(progress=0.4, stage="sample"), lease_seconds=LEASE)
    assert age() > 590

    hand_back(engine, lease)
    assert dated() is None and job_row(engine, lease.job_id)["progress"] == 0.0


def test_report_clamps_progress_into_unit_interval(engine: Engine) -> None:
    lease = claim_one(engine)

    report(engine, lease, Report(progress=1.7), lease_seconds=LEASE)
    assert get_job(engine, lease.public_id).progress == 1.0
    report(engine, lease, Report(progress=-0.2), lease_seconds=LEASE)
    assert get_job(engine, lease.public_id).progress == 0.0


# --- ends of an attempt -------------------------------------------------------------------------


def test_succeed_stores_one_result_and_finishes_the_job(engine: Engine) -> None:
    lease = claim_one(engine)
    report(engine, lease, Report(progress=0.3, stage="sample"), lease_seconds=LEASE)

    succeed(
        engine,
        lease,
        {"estimate": 3.14},
        {"x": [1, 2]},
        batch=Report(metrics=[("estimate", 1000.0, 3.14)]),
    )

    job = get_job(engine, lease.public_id)
    assert job.status is Status.SUCCEEDED
    assert job.progress == 1.0
    assert job.stage is None
    assert job.result == {"estimate": 3.14}
    assert job.chart == {"x": [1, 2]}
    assert job.series == {"estimate": ([1000.0], [3.14])}
    assert job.finished_at is not None and job.started_at is not None
    assert job.finished_at >= job.started_at
    assert {s.status for s in job.stages} == {"done"}
    assert job_row(engine, lease.job_id)["lease_until"] is None
    assert written(engine, lease.job_id)["results"] == 1


def test_a_results_numbers_come_back_bit_for_bit(engine: Engine) -> None:
    """The runner's determinism tests compare results read back from the store: on PostgreSQL
    they pass through JSONB, which keeps numbers as decimals, so every float and integer must
    survive the trip exactly."""
    numbers = {
        "third": 1 / 3,
        "sum": 0.1 + 0.2,
        "tiny": 5e-324,
        "huge": 1.7976931348623157e308,
        "negative": -2.5e-17,
        "seed": 2**63 - 1,
        "series": [0.1 * i for i in range(50)],
    }
    lease = claim_one(engine)
    succeed(engine, lease, numbers, {"y": numbers["series"]})

    job = get_job(engine, lease.public_id)
    assert job.result == numbers
    assert all(
        type(job.result[k]) is type(v) and repr(job.result[k]) == repr(v)
        for k, v in numbers.items()
    )
    assert job.chart == {"y": numbers["series"]}


def test_succeed_many_stores_a_group_in_one_go_and_skips_a_stale_attempt(engine: Engine) -> None:
    for _ in range(4):
        submit(engine, "monte_carlo_pi", PI)
    leases = claim(engine, RUNNER, limit=4, lease_seconds=LEASE)
    gone = leases[1]
    before = snapshot(engine, gone.job_id)
    started = StageUpdate(0, "plan", StageStatus.RUNNING, 0.0, started=True)
    finished = StageUpdate(0, "plan", StageStatus.DONE, 1.0, finished=True)
    group = [
        Success(lease, {"n": i}, batch=Report(stage_updates=[started, finished]))
        for i, lease in enumerate(leases)
    ]
    group[1] = dataclasses.replace(group[1], lease=stale(gone))

    stored = succeed_many(engine, group)

    assert stored == {lease.job_id for lease in leases} - {gone.job_id}
    for i, lease in enumerate(leases):
        job = get_job(engine, lease.public_id)
        if lease is gone:
            assert job.status is Status.RUNNING and job.result is None
            assert snapshot(engine, gone.job_id) == before  # the stale attempt wrote nothing
            continue
        assert job.status is Status.SUCCEEDED and job.result == {"n": i}
        assert [a.outcome for a in job.attempts] == ["succeeded"]
        plan = job.stages[0]
        # The stage's start and end, coalesced into one write, both keep their time.
        assert plan.status == "done" and plan.started_at is not None
        assert plan.finished_at is not None and plan.started_at <= plan.finished_at
        assert {s.status for s in job.stages} == {"done"}


def test_succeed_of_a_fenced_out_attempt_raises_lost_job(engine: Engine) -> None:
    lease = claim_one(engine)
    with pytest.raises(LostJob):
        succeed(engine, stale(lease), {"x": 1})
    assert written(engine, lease.job_id)["results"] == 0


def test_fail_stores_error_and_keeps_traceback_in_the_ledger(engine: Engine) -> None:
    lease = claim_one(engine)
    report(
        engine,
        lease,
        Report(stage_updates=[StageUpdate(1, "sample", StageStatus.RUNNING, started=True)]),
        lease_seconds=LEASE,
    )

    fail(engine, lease, "ValueError", "bad chunk 3", "Traceback (most recent call last): ...")

    job = get_job(engine, lease.public_id)
    assert job.status is Status.FAILED
    assert (job.error.type, job.error.message) == ("ValueError", "bad chunk 3")  # type: ignore[union-attr]
    assert job.traceback == "Traceback (most recent call last): ..."
    assert job.finished_at is not None
    assert [s.status for s in job.stages] == ["pending", "failed", "pending"]
    assert job.result is None
    with reading(engine) as conn:
        detail = conn.execute(
            select(JobEvent.detail).where(
                JobEvent.job_id == lease.job_id, JobEvent.to_status == Status.FAILED
            )
        ).scalar_one()
    assert detail == "Traceback (most recent call last): ..."


def test_cancel_of_running_job_is_requested_then_acknowledged(engine: Engine) -> None:
    lease = claim_one(engine)

    assert request_cancel(engine, lease.public_id) is CancelOutcome.REQUESTED

    job = get_job(engine, lease.public_id)
    assert job.status is Status.RUNNING
    assert job.cancel_requested is True
    assert heartbeat(engine, RUNNER, [lease], lease_seconds=LEASE) == {
        lease.job_id: Asked(cancel=True)
    }
    assert report(engine, lease, Report(progress=0.5), lease_seconds=LEASE) == Asked(cancel=True)
    # Asking twice is harmless while the driver has not stopped yet.
    assert request_cancel(engine, lease.public_id) is CancelOutcome.REQUESTED

    cancelled(engine, lease, batch=Report(logs=[("info", "stopped at chunk 2")]))

    job = get_job(engine, lease.public_id)
    assert job.status is Status.CANCELLED
    assert job.finished_at is not None
    assert job.result is None
    assert [x.message for x in job.logs] == ["stopped at chunk 2"]


@pytest.mark.parametrize("requeue", ["hand_back", "retry", "reap"])
def test_a_cancel_asked_while_running_survives_the_requeue_and_ends_the_job_cancelled(
    engine: Engine, requeue: str
) -> None:
    lease = claim_one(engine)
    assert request_cancel(engine, lease.public_id) is CancelOutcome.REQUESTED
    batch = Report(logs=[("info", "last words")])

    if requeue == "hand_back":
        assert hand_back(engine, lease, batch) is Status.CANCELLED
    elif requeue == "retry":
        assert retry(engine, lease, "Retryable", "flaky", None, batch) is Status.CANCELLED
    else:
        with engine.begin() as conn:  # the runner died: its lease lapsed
            conn.execute(
                update(Job).where(Job.id == lease.job_id).values(lease_until=db_later(-60))
            )
        assert [r.status for r in reap(engine)] == [Status.CANCELLED]

    job = get_job(engine, lease.public_id)
    assert job.status is Status.CANCELLED and job.attempt == 1
    assert job.finished_at is not None and job.lease_until is None
    assert claim(engine, RUNNER, lease_seconds=LEASE) == []  # nothing runs it again
    if requeue != "reap":
        assert [x.message for x in job.logs] == ["last words"]


def test_a_claim_never_clears_a_cancel_request(engine: Engine) -> None:
    """A queued job carrying a request (as one requeued before this rule did) is claimed with
    it, and its driver stops at its first check."""
    public_id = submit(engine, "monte_carlo_pi", PI)
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.public_id == public_id).values(cancel_requested=True))

    (lease,) = claim(engine, RUNNER, lease_seconds=LEASE)

    assert get_job(engine, public_id).cancel_requested is True
    assert heartbeat(engine, RUNNER, [lease], lease_seconds=LEASE) == {
        lease.job_id: Asked(cancel=True)
    }


def test_a_requeue_without_a_cancel_request_still_queues_the_job(engine: Engine) -> None:
    lease = claim_one(engine)

    assert hand_back(engine, lease) is Status.QUEUED

    job = get_job(engine, lease.public_id)
    assert job.status is Status.QUEUED and job.max_attempts == 4


@pytest.mark.parametrize("end", ["succeed", "fail", "cancel_queued"])
def test_cancel_of_finished_job_changes_nothing(engine: Engine, end: str) -> None:
    if end == "cancel_queued":
        public_id = submit(engine, "demo_stages", {})
        request_cancel(engine, public_id)
    else:
        lease = claim_one(engine)
        public_id = lease.public_id
        if end == "succeed":
            succeed(engine, lease, {"ok": True})
        else:
            fail(engine, lease, "E", "m")
    before = get_job(engine, public_id)

    assert request_cancel(engine, public_id) is CancelOutcome.ALREADY_FINISHED

    assert get_job(engine, public_id) == before


def test_cancel_of_unknown_job_raises_job_not_found(engine: Engine) -> None:
    with pytest.raises(JobNotFound):
        request_cancel(engine, new_public_id())


# --- the fence ----------------------------------------------------------------------------------

ATTEMPT_WRITES: dict[str, Callable[[Engine, Lease], object]] = {
    "report": lambda e, lease: report(e, lease, busy_batch(), lease_seconds=LEASE),
    "succeed": lambda e, lease: succeed(e, lease, {"stale": True}, batch=busy_batch()),
    "fail": lambda e, lease: fail(e, lease, "Stale", "stale", "tb", batch=busy_batch()),
    "cancelled": lambda e, lease: cancelled(e, lease, batch=busy_batch()),
}


@pytest.mark.parametrize("verb", sorted(ATTEMPT_WRITES))
def test_stale_attempt_is_refused_and_writes_nothing(engine: Engine, verb: str) -> None:
    lease = claim_one(engine)
    before = snapshot(engine, lease.job_id)

    with pytest.raises(LostJob) as caught:
        ATTEMPT_WRITES[verb](engine, stale(lease))

    assert (caught.value.job_id, caught.value.attempt) == (lease.job_id, lease.attempt - 1)
    assert snapshot(engine, lease.job_id) == before
    # The current attempt still owns the job.
    assert report(engine, lease, Report(progress=0.5), lease_seconds=LEASE) == Asked()


def test_stale_attempt_cannot_report_progress(engine: Engine) -> None:
    lease = claim_one(engine)
    report(engine, lease, Report(progress=0.25), lease_seconds=LEASE)

    with pytest.raises(LostJob):
        report(engine, stale(lease), Report(progress=0.75), lease_seconds=LEASE)

    assert get_job(engine, lease.public_id).progress == 0.25


def test_stale_heartbeat_reports_lost_job_and_keeps_the_lease(engine: Engine) -> None:
    lease = claim_one(engine)
    before = job_row(engine, lease.job_id)

    assert heartbeat(engine, RUNNER, [stale(lease)], lease_seconds=600) == {lease.job_id: None}

    assert job_row(engine, lease.job_id) == before


@pytest.mark.parametrize("verb", sorted(ATTEMPT_WRITES))
def test_finished_job_refuses_every_further_write(engine: Engine, verb: str) -> None:
    lease = claim_one(engine)
    succeed(engine, lease, {"first": True})
    before = snapshot(engine, lease.job_id)

    with pytest.raises(LostJob):
        ATTEMPT_WRITES[verb](engine, lease)

    assert snapshot(engine, lease.job_id) == before
    assert heartbeat(engine, RUNNER, [lease], lease_seconds=LEASE) == {lease.job_id: None}
    assert get_job(engine, lease.public_id).result == {"first": True}


# --- any sequence of verbs ----------------------------------------------------------------------

VERBS = (
    "claim",
    "request_cancel",
    "heartbeat",
    "report",
    "succeed",
    "fail",
    "cancelled",
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    # Most lives start with a claim: the fence only has something to guard once a job runs.
    first=st.sampled_from(["claim", "claim", "claim", "request_cancel"]),
    rest=st.lists(st.sampled_from(VERBS), max_size=7),
)
def test_any_sequence_of_verbs_keeps_the_job_in_exactly_one_state(
    engine: Engine, first: str, rest: list[str]
) -> None:
    """A model of one job's life, checked against the store after every verb.

    The store outlives the examples, so each example starts a job of its own and cancels it
    at the end: a job left queued would be claimed by the next example.
    """
    verbs = [first, *rest]
    public_id = submit(engine, "demo_stages", {})
    job_id = job_id_of(engine, public_id)
    status, attempt, cancel_asked = Status.QUEUED, 0, False
    lease = Lease(job_id, public_id, "demo_stages", {}, 0, RUNNER)
    try:
        for verb in verbs:
            owns = status is Status.RUNNING and lease.attempt == attempt
            if verb == "claim":
                got = claim(engine, RUNNER, lease_seconds=LEASE)
                if status is Status.QUEUED:
                    (lease,) = got
                    status, attempt, cancel_asked = Status.RUNNING, attempt + 1, False
                else:
                    assert got == []
            elif verb == "request_cancel":
                outcome = request_cancel(engine, public_id)
                if status is Status.QUEUED:
                    assert outcome is CancelOutcome.CANCELLED
                    status = Status.CANCELLED
                elif status is Status.RUNNING:
                    assert outcome is CancelOutcome.REQUESTED
                    cancel_asked = True
                else:
                    assert outcome is CancelOutcome.ALREADY_FINISHED
            elif verb == "heartbeat":
                beat = heartbeat(engine, RUNNER, [lease], lease_seconds=LEASE)
                assert beat == {job_id: Asked(cancel=cancel_asked) if owns else None}
            else:
                end = {
                    "report": None,
                    "succeed": Status.SUCCEEDED,
                    "fail": Status.FAILED,
                    "cancelled": Status.CANCELLED,
                }[verb]
                write = ATTEMPT_WRITES[verb]
                if not owns:
                    with pytest.raises(LostJob):
                        write(engine, lease)
                else:
                    write(engine, lease)
                    status = end or status

            with pytest.raises(LostJob):  # only the current attempt can write, whatever happened
                report(engine, stale(lease), busy_batch(), lease_seconds=LEASE)
            row = job_row(engine, job_id)
            assert (row["status"], row["attempt"]) == (status, attempt), verbs
            assert Status(row["status"]).terminal == (row["finished_at"] is not None), verbs
            if status is Status.RUNNING:
                assert row["cancel_requested"] is cancel_asked, verbs
            results = written(engine, job_id)["results"]
            assert results == (1 if status is Status.SUCCEEDED else 0), verbs
    finally:
        request_cancel(engine, public_id)


def test_public_ids_never_start_with_a_dash_that_a_command_line_reads_as_an_option() -> None:
    ids = {new_public_id() for _ in range(5_000)}
    assert len(ids) == 5_000  # 96 random bits each
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 16 and i.replace("-", "").replace("_", "").isalnum() for i in ids)
