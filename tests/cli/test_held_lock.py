"""Another process holds SQLite's write lock past a writer's wait: reads answer, writes say
"busy". The store's URL sets that wait to 8 s (`?timeout=8`), so the test need not outlast the
default 30 s; tests/unit/test_engine.py checks the default."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compute import intake
from jobstore import queries
from jobstore.engine import make_engine, migrate
from tests.processes import ROOT, run_cli

BUSY = 8  # seconds a writer waits for the lock, as the URL asks
HOLD = BUSY + 5  # seconds at least that the lock is held: longer than a writer waits

# Holds the lock until told to let go on stdin, and for HOLD s at least; says for how long.
LOCKER = f"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE jobs SET name = name")
took = time.monotonic()
print("locked", flush=True)
sys.stdin.readline()
time.sleep(max(0.0, {HOLD} - (time.monotonic() - took)))
print(time.monotonic() - took, flush=True)
conn.execute("ROLLBACK")
"""


def runlab(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """`runlab ARGS` to its end, and how many seconds it took."""
    started = time.monotonic()
    done = run_cli(env, *args)
    return done, time.monotonic() - started


# Its deadlines add up to 420 s: three commands of up to 120 s each, then the lock's release.
@pytest.mark.timeout(480)
def test_a_held_write_lock_lets_reads_answer_and_makes_a_submit_say_busy(tmp_path: Path) -> None:
    path = tmp_path / "runlab.db"
    url = f"sqlite:///{path}?timeout={BUSY}"
    engine = make_engine(url)
    migrate(engine)
    job = intake.submit(engine, "demo_stages", {}, name="before the lock")
    env = {**os.environ, "RUNLAB_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}

    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"

        listed, took = runlab(env, "ls")
        assert listed.returncode == 0, listed.stderr
        assert job in listed.stdout and "Traceback" not in listed.stderr
        assert took < BUSY, f"ls waited {took:.0f} s for the write lock"
        shown, _ = runlab(env, "show", job)
        assert shown.returncode == 0 and "before the lock" in shown.stdout

        submitted, took = runlab(env, "submit", "demo_stages", "--name", "during the lock")
    finally:
        held, _ = locker.communicate("let go\n", timeout=60)
    assert float(held.split()[-1]) >= HOLD

    assert submitted.returncode == 1
    assert "Traceback" not in submitted.stderr + submitted.stdout
    assert submitted.stderr.strip() == (
        f"error: the store is busy: another process has held its write lock for {BUSY} s; "
        "nothing was changed, try again"
    )
    assert took >= BUSY  # it waited out the busy timeout first
    names = [j.name for j in queries.list_jobs(engine).rows]
    assert names == ["before the lock"]  # nothing half-stored
    engine.dispose()
