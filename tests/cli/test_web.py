"""`runlab web`: the web app alone, for a host whose runners run elsewhere."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from jobstore.engine import make_engine
from jobstore.queries import runners
from runlab.processes import app_url
from tests.e2e.conftest import free_port
from tests.polling import wait_for
from tests.processes import RUNLAB, spawn


def _listening(pid: int, port: int) -> set[str]:
    """The addresses that `pid`'s process tree listens on at `port`."""
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {
        c.laddr.ip
        for p in tree
        for c in p.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def _answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _other_addresses() -> list[str]:
    """Addresses of this machine other than 127.0.0.1: 127.0.0.2, which every Linux loopback
    answers, and each IPv4 address of the network interfaces."""
    found = [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    return ["127.0.0.2", *found]


def _store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runlab.db'}"


@contextlib.contextmanager
def _runlab_web(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`runlab web` with `args`, once it answers on 127.0.0.1; stopped on the way out."""
    port = free_port()
    env = {
        **os.environ,
        "RUNLAB_DATABASE_URL": _store_url(tmp_path),
        "RUNLAB_ARTIFACTS": str(tmp_path / "a"),
    }
    log = tmp_path / "web.log"
    proc = spawn([*RUNLAB, "web", "--port", str(port), *args], log, env=env)
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()
            return _answers("127.0.0.1", port)

        wait_for(healthy, timeout=60, what="runlab web to answer")
        yield proc, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


def test_runlab_web_serves_the_pages_and_starts_no_runner(tmp_path: Path) -> None:
    with _runlab_web(tmp_path) as (_, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/jobs") as page:
            assert page.status == 200
        engine = make_engine(_store_url(tmp_path))
        assert runners(engine, alive_within=60) == []  # the store is migrated, and no runner
        engine.dispose()


def test_a_stop_sent_to_runlab_web_alone_stops_the_app_it_started(tmp_path: Path) -> None:
    with _runlab_web(tmp_path) as (proc, port):
        app = psutil.Process(proc.pid).children(recursive=True)
        assert app, "runlab web started no app"
        proc.send_signal(signal.SIGTERM)  # to the parent only, as `kill <pid>` sends it
        assert proc.wait(timeout=30) == 0
        wait_for(
            lambda: not [p for p in app if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
            timeout=30,
            what="the app to stop with runlab web",
        )
        assert not _answers("127.0.0.1", port)


def test_runlab_web_listens_on_127_0_0_1_only_by_default(tmp_path: Path) -> None:
    with _runlab_web(tmp_path) as (proc, port):
        assert _listening(proc.pid, port) == {"127.0.0.1"}
        for address in _other_addresses():
            assert not _answers(address, port), f"the app answered on {address}"
    assert "no sign-in" not in (tmp_path / "web.log").read_text()


def test_runlab_web_with_host_0_0_0_0_listens_on_every_interface_and_says_so(
    tmp_path: Path,
) -> None:
    with _runlab_web(tmp_path, "--host", "0.0.0.0") as (proc, port):
        assert _listening(proc.pid, port) == {"0.0.0.0"}
        for address in _other_addresses():
            assert _answers(address, port), f"the app did not answer on {address}"
    assert "has no sign-in: anyone who reaches it" in (tmp_path / "web.log").read_text()


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://localhost:8501"),
        ("0.0.0.0", "http://localhost:8501"),
        ("::", "http://localhost:8501"),
        ("192.0.2.7", "http://192.0.2.7:8501"),
        ("fd00::2", "http://[fd00::2]:8501"),
    ],
)
def test_the_address_runlab_up_announces_is_one_the_app_answers_on(host: str, url: str) -> None:
    assert app_url(host, 8501) == url
