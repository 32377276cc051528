"""`runlab web`: the web app alone, for a host whose runners run elsewhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from jobstore.engine import make_engine
from jobstore.queries import runners
from tests.e2e.conftest import free_port
from tests.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_runlab_web_serves_the_pages_and_starts_no_runner(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'runlab.db'}"
    env = {**os.environ, "RUNLAB_DATABASE_URL": url, "RUNLAB_ARTIFACTS": str(tmp_path / "a")}
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlab.cli", "web", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "web.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=60, what="runlab web to answer")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/jobs") as page:
            assert page.status == 200
        engine = make_engine(url)
        assert runners(engine, alive_within=60) == []  # the store is migrated, and no runner
        engine.dispose()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        log.close()
