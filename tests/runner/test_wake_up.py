"""An idle runner on SQLite learns of a new job from its wake-up socket, not from its poll."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from compute import intake
from jobstore import queries, wake
from jobstore.models import Status
from tests.conftest import on_sqlite_only
from tests.polling import wait_for

FALLBACK_POLL = 60  # the runner's own poll: it would find the job only after this
WITHIN = 30  # so a job started within this was found through the wake-up


def _heartbeats(engine: Engine, pid: int, count: int) -> None:
    """Return once the runner has renewed its row `count` times more: it is past whatever it
    was doing when this was called (its heartbeat runs every 0.5 s in these tests)."""
    seen: list[object] = []

    def renewed() -> bool:
        row = next(r for r in queries.runners(engine, alive_within=60) if r.pid == pid)
        if not seen or row.heartbeat_at != seen[-1]:
            seen.append(row.heartbeat_at)
        return len(seen) > count

    wait_for(renewed, timeout=60, what=f"{count} heartbeats of the runner")


def _started_within(engine: Engine, public_id: str, seconds: float) -> None:
    def started() -> bool:
        return queries.get_job(engine, public_id).status is not Status.QUEUED

    wait_for(started, timeout=seconds, what=f"job {public_id} to be claimed")


@on_sqlite_only
def test_a_job_submitted_to_an_idle_runner_starts_before_its_fallback_poll(
    engine: Engine, start_runner
) -> None:
    runner = start_runner("--concurrency", "2", RUNLAB_POLL_SECONDS=str(FALLBACK_POLL))
    folder = wake.folder_of(engine)
    assert folder is not None
    wait_for(
        lambda: any(p.suffix == ".sock" for p in folder.iterdir()) if folder.exists() else False,
        timeout=60,
        what="the runner's wake-up socket",
    )
    # A first job proves the runner claims at all; it may be found by the runner's first
    # claim round rather than by a wake-up.
    first = intake.submit(engine, "test_waits", {"seconds": 0.01})
    _started_within(engine, first, WITHIN)
    wait_for(
        lambda: queries.get_job(engine, first).status is Status.SUCCEEDED,
        timeout=60,
        what="the first job to succeed",
    )
    # The claim round that followed that job's end is long over: the runner now sleeps until
    # its poll, FALLBACK_POLL s away, unless something wakes it.
    _heartbeats(engine, runner.proc.pid, 3)
    for _ in range(2):
        job = intake.submit(engine, "test_waits", {"seconds": 0.01})
        _started_within(engine, job, WITHIN)
        wait_for(
            lambda job=job: queries.get_job(engine, job).status is Status.SUCCEEDED,
            timeout=60,
            what="the woken job to succeed",
        )
        _heartbeats(engine, runner.proc.pid, 3)
    assert runner.proc.poll() is None
    sockets = [p.name for p in Path(folder).iterdir()]
    assert len(sockets) == 1 and sockets[0].endswith(".sock")
    assert runner.stop() == 0
    assert list(Path(folder).iterdir()) == []  # a runner that stops removes its socket
