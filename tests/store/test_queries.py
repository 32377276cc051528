"""What pages and the CLI read: one job, pages of jobs, the queue, runners and the overview."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from compute.intake import submit
from jobstore.enqueue import new_public_id
from jobstore.models import Status
from jobstore.queries import (
    get_job,
    list_jobs,
    overview,
    queue_position,
    queued_jobs,
    runners,
    running_jobs,
)
from jobstore.registration import register as register_runner
from jobstore.registration import stopped as runner_stopped
from jobstore.transitions import claim, request_cancel, succeed
from runlab.errors import JobNotFound

RUNNER = "runner-q"


def test_queue_position_counts_priority_then_age(engine: Engine) -> None:
    old = submit(engine, "demo_stages", {})
    young = submit(engine, "demo_stages", {})
    urgent = submit(engine, "demo_stages", {}, priority=5)

    assert [queue_position(engine, j) for j in (urgent, old, young)] == [1, 2, 3]
    assert [(pos, s.id) for pos, s in queued_jobs(engine)] == [(1, urgent), (2, old), (3, young)]
    assert get_job(engine, young).queue_position == 3

    request_cancel(engine, urgent)

    assert queue_position(engine, urgent) is None
    assert [queue_position(engine, j) for j in (old, young)] == [1, 2]


def test_queue_position_is_none_once_running(engine: Engine) -> None:
    public_id = submit(engine, "demo_stages", {})
    assert queue_position(engine, public_id) == 1

    claim(engine, RUNNER)

    assert queue_position(engine, public_id) is None
    assert get_job(engine, public_id).queue_position is None
    assert [s.id for s in running_jobs(engine)] == [public_id]


def test_list_jobs_pages_newest_first_with_total(engine: Engine) -> None:
    ids = [submit(engine, "demo_stages", {}) for _ in range(7)]

    pages = [list_jobs(engine, limit=3, offset=off) for off in (0, 3, 6, 9)]

    assert [[s.id for s in p.rows] for p in pages] == [
        ids[6:3:-1],
        ids[3:0:-1],
        ids[:1],
        [],
    ]
    assert {p.total for p in pages} == {7}
    assert [(p.offset, p.limit) for p in pages] == [(0, 3), (3, 3), (6, 3), (9, 3)]


def test_list_jobs_filters_by_status_and_kind(engine: Engine) -> None:
    pi = [submit(engine, "monte_carlo_pi", {"samples": 10, "seed": 1}) for _ in range(2)]
    demo = [submit(engine, "demo_stages", {}) for _ in range(3)]
    request_cancel(engine, demo[0])
    request_cancel(engine, pi[0])

    def ids(**filters: list[str]) -> list[str]:
        page = list_jobs(engine, **filters)  # type: ignore[arg-type]
        assert page.total == len(page.rows)
        return [s.id for s in page.rows]

    assert ids(kind=["monte_carlo_pi"]) == pi[::-1]
    assert ids(status=[Status.CANCELLED]) == [demo[0], pi[0]]
    assert ids(status=["queued"], kind=["demo_stages"]) == demo[:0:-1]
    assert ids(status=[Status.QUEUED, Status.CANCELLED], kind=["demo_stages"]) == demo[::-1]
    assert ids(status=[Status.RUNNING]) == []


@pytest.mark.parametrize(
    "bad", ["", "short", "../../etc/passwd", "has space in it", "x" * 33, "id;DROP TABLE jobs"]
)
def test_get_job_of_malformed_id_raises_job_not_found(engine: Engine, bad: str) -> None:
    submit(engine, "demo_stages", {})

    with pytest.raises(JobNotFound):
        get_job(engine, bad)


def test_get_job_and_queue_position_of_unknown_id_raise_job_not_found(engine: Engine) -> None:
    submit(engine, "demo_stages", {})
    unknown = new_public_id()

    with pytest.raises(JobNotFound) as caught:
        get_job(engine, unknown)
    assert caught.value.job_id == unknown
    with pytest.raises(JobNotFound):
        queue_position(engine, unknown)


def test_runners_lists_live_runners_with_their_running_jobs(engine: Engine) -> None:
    register_runner(
        engine,
        RUNNER,
        host="box",
        pid=42,
        concurrency=2,
        scheduler_address="tcp://127.0.0.1:8786",
        dashboard_link="http://127.0.0.1:8787/status",
    )
    public_id = submit(engine, "demo_stages", {})
    claim(engine, RUNNER)

    (view,) = runners(engine, alive_within=60)
    # The job's attempt links to its runner's dashboard while that runner has not stopped.
    (attempt,) = get_job(engine, public_id).attempts
    assert attempt.dashboard_link == "http://127.0.0.1:8787/status"

    assert (view.id, view.host, view.pid, view.concurrency) == (RUNNER, "box", 42, 2)
    assert view.alive
    assert 0 <= view.heartbeat_age < 60
    assert view.running_jobs == 1
    assert view.scheduler_address == "tcp://127.0.0.1:8786"

    runner_stopped(engine, RUNNER)

    assert runners(engine, alive_within=60) == []
    (attempt,) = get_job(engine, public_id).attempts
    assert attempt.dashboard_link is None


def test_overview_counts_queue_running_and_recent_jobs(engine: Engine) -> None:
    register_runner(
        engine, RUNNER, host="h", pid=1, concurrency=1, scheduler_address=None, dashboard_link=None
    )
    done = submit(engine, "demo_stages", {})
    (lease,) = claim(engine, RUNNER)
    succeed(engine, lease, {"ok": True})
    running = submit(engine, "demo_stages", {})
    claim(engine, RUNNER)
    queued = submit(engine, "demo_stages", {})

    view = overview(engine, alive_within=60, recent=2)

    assert (view.queued, view.running, view.runners_alive) == (1, 1, 1)
    assert [s.id for s in view.running_jobs] == [running]
    assert [s.id for s in view.recent_jobs] == [queued, running]
    assert done not in {s.id for s in view.recent_jobs}
