"""Estimates of a job's start and end, from hand-made histories, on both backends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update

from compute import intake
from jobstore import registration, reports
from jobstore import transitions as T
from jobstore.engine import db_later, is_postgres, reading
from jobstore.estimates import Estimate, Seen, Unknown, estimate, past_runs
from jobstore.models import Job, JobStage, Runner, Status
from jobstore.queries import get_job
from jobstore.views import JobDetail
from tests.bulk import PastJob, copy_jobs
from tests.pi_report import sampling
from tests.plans import explain, sqlite_full_scans, statements

RUNNER = "runner-eta"
ALIVE_WITHIN = 15.0
KIND = "monte_carlo_pi"
SAMPLES = 1_000_000
# Ten runs of 100 to 190 s: median 145 s, 10 % 109 s, 90 % 181 s.
TEN_RUNS = [100.0 + 10 * i for i in range(10)]


def pi(samples: int = SAMPLES) -> dict[str, Any]:
    return {"samples": samples, "seed": 1}


def history(
    engine: Engine,
    seconds: Sequence[float],
    *,
    samples: int = SAMPLES,
    status: Status = Status.SUCCEEDED,
    kind: str = KIND,
) -> None:
    """Finished jobs that ran for `seconds` each, an hour ago."""
    base = datetime.now(UTC) - timedelta(hours=1)
    copy_jobs(
        engine,
        [
            PastJob(
                kind=kind,
                name="past",
                owner="t",
                params=pi(samples),
                status=status,
                created_at=base,
                started_at=base,
                finished_at=base + timedelta(seconds=s),
                result={"estimate": 3.14} if status is Status.SUCCEEDED else None,
                stages=["plan", "sample", "reduce"],
            )
            for s in seconds
        ],
    )


def runner(engine: Engine, concurrency: int = 2, *, silent_for: float = 0.0) -> None:
    registration.register(
        engine,
        RUNNER,
        host="h",
        pid=1,
        concurrency=concurrency,
        scheduler_address=None,
        dashboard_link=None,
    )
    if silent_for:
        with engine.begin() as conn:
            conn.execute(
                update(Runner).where(Runner.id == RUNNER).values(heartbeat_at=db_later(-silent_for))
            )


def running(
    engine: Engine,
    *,
    ran: float,
    progress: float,
    samples: int = SAMPLES,
    stage_ran: float | None = None,
    stage_progress: float = 0.0,
    moved: float | None = None,
) -> JobDetail:
    """A job claimed `ran` seconds ago that reported `progress`, in stage `sample` if asked;
    the store dates that progress `moved` seconds ago if given, else just now."""
    public_id = intake.submit(engine, KIND, pi(samples))
    [lease] = T.claim(engine, RUNNER)
    assert lease.public_id == public_id, "claim running jobs before queueing others"
    batch = reports.Report(progress=progress)
    if stage_ran is not None:
        batch = sampling(progress, stage_progress=stage_progress)
    reports.report(engine, lease, batch, lease_seconds=60)
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == lease.job_id).values(started_at=db_later(-ran)))
        if moved is not None:
            conn.execute(
                update(Job).where(Job.id == lease.job_id).values(progress_at=db_later(-moved))
            )
        if stage_ran is not None:
            conn.execute(
                update(JobStage)
                .where(JobStage.job_id == lease.job_id, JobStage.idx == 1)
                .values(started_at=db_later(-stage_ran))
            )
    return get_job(engine, public_id)


def seconds_after(t: datetime | None, base: datetime | None) -> float:
    assert t is not None and base is not None
    return (t - base).total_seconds()


def sightings(job: JobDetail, *seen: tuple[float, float]) -> list[Seen]:
    """A page's sightings of the job's progress, each (seconds after it started, progress)."""
    assert job.started_at is not None
    return [Seen(job.started_at + timedelta(seconds=at), progress) for at, progress in seen]


def est(engine: Engine, job: JobDetail, trail: Sequence[Seen] = ()) -> Estimate:
    return estimate(engine, get_job(engine, job.id), alive_within=ALIVE_WITHIN, trail=trail)


def test_with_no_history_a_running_job_ends_at_its_progress_rate(engine: Engine) -> None:
    runner(engine)
    job = running(engine, ran=60, progress=0.5)

    e = est(engine, job)

    assert e.unknown is None and e.finish is not None
    ran = seconds_after(job.progress_at, job.started_at)  # until 0.5 was reached
    assert seconds_after(e.finish.at, job.started_at) == pytest.approx(2 * ran)
    assert e.finish.low is None and e.finish.high is None, "one reading gives no spread"
    assert e.from_progress and e.past_runs == 0


def test_a_just_claimed_job_gets_the_range_of_its_past_runs(engine: Engine) -> None:
    runner(engine)
    history(engine, TEN_RUNS)
    history(engine, [1000.0] * 5, samples=4 * SAMPLES)  # over ×2 larger: not like it
    history(engine, [5.0] * 5, status=Status.FAILED)  # failures say nothing of its length
    history(engine, [9.0] * 5, kind="demo_stages")
    job = running(engine, ran=1, progress=0.0)

    e = est(engine, job)

    assert e.unknown is None and e.finish is not None
    assert seconds_after(e.finish.at, job.started_at) == pytest.approx(145)
    assert seconds_after(e.finish.low, job.started_at) == pytest.approx(109)
    assert seconds_after(e.finish.high, job.started_at) == pytest.approx(181)
    assert e.past_runs == 10 and not e.from_progress


def test_past_runs_of_another_size_are_scaled_linearly(engine: Engine) -> None:
    runner(engine)
    history(engine, [2 * s for s in TEN_RUNS], samples=2 * SAMPLES)
    job = running(engine, ran=1, progress=0.0)

    e = est(engine, job)

    assert e.finish is not None
    assert seconds_after(e.finish.at, job.started_at) == pytest.approx(145)
    assert seconds_after(e.finish.high, job.started_at) == pytest.approx(181)


def test_a_few_past_runs_give_a_time_but_no_range(engine: Engine) -> None:
    runner(engine)
    history(engine, [100.0, 120.0, 140.0])
    job = running(engine, ran=1, progress=0.0)

    e = est(engine, job)

    assert e.finish is not None and e.finish.low is None
    assert seconds_after(e.finish.at, job.started_at) == pytest.approx(120)


def test_progress_and_past_runs_blend_with_progress_as_weight(engine: Engine) -> None:
    runner(engine)
    history(engine, [90.0, 95.0, 100.0, 105.0, 110.0])  # median 100, 10 % 92, 90 % 108
    job = running(engine, ran=60, progress=0.3)

    e = est(engine, job)

    assert e.finish is not None and e.from_progress and e.past_runs == 5
    pace = seconds_after(job.progress_at, job.started_at) / 0.3  # the store dates the 0.3
    at = seconds_after(e.finish.at, job.started_at)
    assert at == pytest.approx(0.3 * pace + 0.7 * 100)
    assert seconds_after(e.finish.low, job.started_at) == pytest.approx(0.3 * pace + 0.7 * 92)
    assert seconds_after(e.finish.high, job.started_at) == pytest.approx(0.3 * pace + 0.7 * 108)


def test_past_runs_shorter_than_the_time_already_run_no_longer_count(engine: Engine) -> None:
    runner(engine)
    history(engine, TEN_RUNS)
    job = running(engine, ran=135, progress=0.0)

    e = est(engine, job)

    assert e.finish is not None
    # Left: 140 to 190 s, median 165.
    assert seconds_after(e.finish.at, job.started_at) == pytest.approx(165)


def test_a_job_longer_than_all_its_past_runs_and_without_progress_has_no_time(
    engine: Engine,
) -> None:
    runner(engine)
    history(engine, TEN_RUNS)
    job = running(engine, ran=600, progress=0.0)

    e = est(engine, job)

    assert e.finish is None
    assert (e.unknown, e.past_runs) == (Unknown.OUTRAN_PAST_RUNS, 10)


def test_steps_seen_by_the_page_give_the_pace_a_range(engine: Engine) -> None:
    runner(engine)
    job = running(engine, ran=100, progress=0.5)
    started = job.started_at
    # The first sighting may be late; the steps after it are dated 20, 45 and 80 s in, for
    # totals of 200, 225 and 200 s.
    trail = sightings(job, (5, 0.05), (20, 0.1), (45, 0.2), (80, 0.4))

    e = est(engine, job, trail)

    assert e.finish is not None and e.finish.low is not None
    total = seconds_after(job.progress_at, started) / 0.5  # the store dates the last step
    assert seconds_after(e.finish.at, started) == pytest.approx(total)
    assert seconds_after(e.finish.low, started) == pytest.approx(min(200, total))
    assert seconds_after(e.finish.high, started) == pytest.approx(max(225, total))


def test_a_stalled_job_has_no_time(engine: Engine) -> None:
    runner(engine)
    history(engine, [3000.0] * 10)  # past runs would still give a time: the stall wins
    job = running(engine, ran=20 * 60, progress=0.3)
    # 0.2 seen 5 min in, 0.3 at 8 min: about 3 min a step; nothing since, for 12 min.
    trail = sightings(job, (5 * 60, 0.2), (8 * 60, 0.3))

    e = est(engine, job, trail)

    assert e.finish is None
    assert e.unknown is Unknown.STALLED and e.stalled_for is not None
    assert round(e.stalled_for / 60) == 12


def test_a_page_that_opens_on_a_stalled_job_sees_the_stall_at_once(engine: Engine) -> None:
    runner(engine)
    # 0.3 was reached 2 min in, by the store's date; nothing since, for 18 min. No page saw it.
    job = running(engine, ran=20 * 60, progress=0.3, moved=18 * 60)

    e = est(engine, job)

    assert e.finish is None
    assert e.unknown is Unknown.STALLED and e.stalled_for is not None
    assert round(e.stalled_for / 60) == 18


def test_the_stores_date_of_the_progress_sets_the_pace(engine: Engine) -> None:
    runner(engine)
    # 0.5 was reached 19 min in, by the store's date: the pace says 38 min in all. Dated "now",
    # as when nothing dated it, it would say 40.
    job = running(engine, ran=20 * 60, progress=0.5, moved=60)

    e = est(engine, job)

    assert e.unknown is None and e.finish is not None
    assert seconds_after(e.finish.at, job.started_at) == pytest.approx((19 * 60) / 0.5, abs=2)


def test_a_short_wait_between_chunky_steps_is_no_stall(engine: Engine) -> None:
    runner(engine)
    job = running(engine, ran=20 * 60, progress=0.5)
    # Steps of 0.25 every 8 min or so: 8 quiet minutes are the job's own pace.
    trail = sightings(job, (4 * 60, 0.25), (12 * 60, 0.5))

    e = est(engine, job, trail)

    assert e.unknown is None and e.finish is not None
    assert seconds_after(e.finish.at, job.started_at) == pytest.approx(24 * 60, abs=1)


def test_a_running_job_whose_runner_went_silent_has_no_time(engine: Engine) -> None:
    runner(engine)
    job = running(engine, ran=60, progress=0.5)
    with engine.begin() as conn:
        conn.execute(update(Runner).values(heartbeat_at=db_later(-600)))

    e = est(engine, job)

    assert e.finish is None and e.unknown is Unknown.RUNNER_SILENT


def test_the_current_stage_ends_at_its_own_pace(engine: Engine) -> None:
    runner(engine)
    job = running(engine, ran=100, progress=0.2, stage_ran=40, stage_progress=0.25)
    sample = job.stages[1]

    e = est(engine, job)

    assert e.stage_name == "sample" and e.stage is not None and e.finish is not None
    stage_total = seconds_after(e.now, sample.started_at) / 0.25
    assert seconds_after(e.stage.at, sample.started_at) == pytest.approx(stage_total)
    assert e.stage.at <= e.finish.at


def test_queued_behind_five_jobs_on_two_slots(engine: Engine) -> None:
    runner(engine, concurrency=2)
    history(engine, [100.0] * 5)
    for _ in range(5):
        intake.submit(engine, KIND, pi())
    mine = intake.submit(engine, KIND, pi())

    e = estimate(engine, get_job(engine, mine), alive_within=ALIVE_WITHIN)

    assert e.unknown is None and e.start is not None and e.finish is not None
    assert (e.ahead, e.slots) == (5, 2)
    # Two at a time from now: the fifth leaves a slot at 200 s.
    assert seconds_after(e.start.at, e.now) == pytest.approx(200)
    assert seconds_after(e.finish.at, e.now) == pytest.approx(300)
    assert e.start.low is not None and e.start.high is not None


def test_a_queued_job_waits_for_the_running_jobs_to_end(engine: Engine) -> None:
    runner(engine, concurrency=2)
    history(engine, [100.0] * 5)
    busy = running(engine, ran=50, progress=0.0)  # 50 s left, by its past runs
    for _ in range(5):
        intake.submit(engine, KIND, pi())
    mine = intake.submit(engine, KIND, pi())

    e = estimate(engine, get_job(engine, mine), alive_within=ALIVE_WITHIN)

    assert e.start is not None
    # Slots free at 50 and 0 s; the five ahead take them in turn; the first free is at 250 s.
    left = 100 - seconds_after(e.now, busy.started_at)
    assert seconds_after(e.start.at, e.now) == pytest.approx(200 + left)


def test_first_in_line_with_a_free_slot_starts_now(engine: Engine) -> None:
    runner(engine, concurrency=1)
    mine = intake.submit(engine, KIND, pi())

    e = estimate(engine, get_job(engine, mine), alive_within=ALIVE_WITHIN)

    assert e.start is not None and e.start.at == e.now
    assert e.finish is None, "no past runs: its end is not known"


def test_queued_behind_a_kind_never_run_has_no_start(engine: Engine) -> None:
    runner(engine, concurrency=1)
    history(engine, [100.0] * 5)
    intake.submit(engine, "demo_stages", {})
    mine = intake.submit(engine, KIND, pi())

    e = estimate(engine, get_job(engine, mine), alive_within=ALIVE_WITHIN)

    assert e.start is None and e.unknown is Unknown.AHEAD_NEVER_RAN


@pytest.mark.parametrize("silent_for", [None, 600.0])
def test_with_no_runner_alive_a_queued_job_says_so(
    engine: Engine, silent_for: float | None
) -> None:
    if silent_for is not None:
        runner(engine, silent_for=silent_for)
    history(engine, [100.0] * 5)
    mine = intake.submit(engine, KIND, pi())

    e = estimate(engine, get_job(engine, mine), alive_within=ALIVE_WITHIN)

    assert e.start is None and e.unknown is Unknown.NO_RUNNER


def test_a_finished_job_has_nothing_to_estimate(engine: Engine) -> None:
    runner(engine)
    job = running(engine, ran=10, progress=0.5)
    with engine.begin() as conn:
        conn.execute(update(Job).values(status=Status.SUCCEEDED, finished_at=db_later(0)))

    e = est(engine, job)

    assert (e.start, e.finish, e.unknown) == (None, None, None)


def test_past_runs_are_the_latest_of_the_kind_read_through_its_index(engine: Engine) -> None:
    history(engine, TEN_RUNS)
    history(engine, [50.0] * 3, kind="demo_stages")
    with statements(engine) as seen, reading(engine) as conn:
        runs = past_runs(conn, KIND)
    assert sorted(r.seconds for r in runs) == TEN_RUNS
    assert [r.id for r in runs] == sorted((r.id for r in runs), reverse=True)
    assert len(seen) == 1

    with engine.connect() as conn:
        [plan] = explain(conn, seen)
    if is_postgres(engine):
        assert "Seq Scan" not in plan, plan
    assert "ix_jobs_kind_id" in plan, plan
    # Read in the index's order: a sort would read every job of the kind first.
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


def test_a_running_jobs_estimate_scans_no_table(engine: Engine) -> None:
    """Every read behind a running job's estimate goes through an index."""
    runner(engine)
    history(engine, TEN_RUNS)
    job = running(engine, ran=30, progress=0.2, stage_ran=10, stage_progress=0.5)
    detail = get_job(engine, job.id)
    with statements(engine) as seen:
        estimate(engine, detail, alive_within=ALIVE_WITHIN)
    assert seen

    with engine.connect() as conn:
        plans = explain(conn, seen)
    if is_postgres(engine):
        scans = [p for p in plans if "Seq Scan on jobs" in p or "Seq Scan on job_stages" in p]
    else:
        scans = sqlite_full_scans(plans, ("jobs", "job_stages"))
    assert not scans, plans
