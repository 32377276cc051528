"""A stop signal sent to the runner's whole process group, as systemd, `docker stop` or Ctrl-C in
a terminal send it: the Dask workers are in that group too, and must not die with it."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from compute import intake
from jobstore import queries
from jobstore.models import Status
from tests.conftest import on_sqlite_only
from tests.polling import wait_for
from tests.runner.conftest import RunnerProcess
from tests.runner.helpers import assert_sound, pi_under_way, watch

GRACE = 8.0
MARGIN = 10.0  # what the runner may take beyond its grace period to close its cluster


def _workers(runner: RunnerProcess) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(runner.proc.pid).children(recursive=True)
        if "resource_tracker" not in " ".join(p.cmdline())
    ]


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group(pgid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of the process group `pgid`."""
    members = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and _alive(p):
                members.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return members


@on_sqlite_only
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_to_the_runners_process_group_keeps_its_workers_and_exits_cleanly(
    engine, start_runner, sig: signal.Signals
) -> None:
    runner = start_runner(RUNLAB_GRACE_SECONDS=str(GRACE))
    short = intake.submit(engine, "test_waits", {"seconds": 6.0})
    wait_for(
        lambda: queries.get_job(engine, short).stage == "wait",
        timeout=60,
        what="the short job's task to start",
    )
    long = pi_under_way(engine, {"samples": 20_000_000_000, "seed": 3}, past=0.0)
    workers = _workers(runner)
    assert len(workers) == 2, [p.cmdline() for p in workers]

    sent = time.monotonic()
    os.killpg(runner.proc.pid, sig)
    # The short job finishes inside the grace period, on the workers it started on.
    final = watch(engine, short, timeout=GRACE + MARGIN)[-1]
    assert final.status is Status.SUCCEEDED, final.error
    assert final.attempt == 1
    assert all(_alive(p) for p in workers), "a Dask worker died with the group's signal"

    assert runner.proc.wait(timeout=GRACE + MARGIN) == 0, runner.log()
    wait_for(
        lambda: not _group(runner.proc.pid),
        timeout=max(0.1, GRACE + MARGIN - (time.monotonic() - sent)),
        what="every process of the runner's group to exit",
    )
    log = runner.log()
    assert "Traceback" not in log, log
    assert "Restarting worker" not in log, log
    back = queries.get_job(engine, long)
    assert back.status is Status.QUEUED
    assert [(a.attempt, a.outcome) for a in back.attempts] == [(1, "requeued")]
    assert_sound(engine)
