"""The whole of Runlab, started with `runlab up` on a free port, and a headless Chromium.

Chromium must be at /usr/bin/chromium and Playwright importable. Under CI=true a missing one
fails the tests; elsewhere they skip with a one-line reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from jobstore import queries
from jobstore.engine import make_engine
from tests.polling import wait_for
from tests.processes import RUNLAB, spawn

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
START_TIMEOUT = 90.0
# The size of the runner's LocalCluster on any machine: a job's tasks run this many at a time,
# however many cores there are.
WORKERS = 2
STOP_TIMEOUT = 30.0
LOG_TAIL_LINES = 80

_phase_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def require_browser() -> None:
    """Skip (or fail under CI) unless Playwright and the system Chromium are both there."""
    if importlib.util.find_spec("playwright") is None:
        _missing("the playwright package is not installed")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running; a zombie has exited and only waits to be reaped."""
    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


class RunlabUp:
    """One `runlab up` process, its log, and every process it started."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, db_url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.db_url = db_url
        self.log_path = log
        self.engine = make_engine(db_url)
        self.seen: dict[int, psutil.Process] = {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def descendants(self) -> list[psutil.Process]:
        """Every live process below `runlab up`; each is remembered for the final sweep."""
        with contextlib.suppress(psutil.Error):
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                self.seen.setdefault(p.pid, p)
        return alive(list(self.seen.values()))

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def runner_alive(self) -> bool:
        try:
            return any(r.alive for r in queries.runners(self.engine, alive_within=10))
        except Exception:  # the schema is not there until `runlab up` has migrated it
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"`runlab up` exited with {self.proc.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            self.descendants()
            return self.healthy() and self.runner_alive()

        try:
            wait_for(ready, timeout=timeout, what="the app's health check and a live runner")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- runlab up log ---\n{self.log_tail()}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Signal the process group as a terminal does; the exit code, or None on a timeout."""
        self.descendants()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_everything(self) -> None:
        """The safety net: SIGKILL whatever is left, in `up`'s group and below it."""
        leftovers = self.descendants()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for p in leftovers:
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(leftovers, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.engine.dispose()


@pytest.fixture(scope="module")
def runlab_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunlabUp]:
    """`runlab up` on a free port against a fresh SQLite store, ready once a runner is alive."""
    tmp = tmp_path_factory.mktemp("runlab-up")
    port = free_port()
    db_url = f"sqlite:///{(tmp / 'runlab.db').resolve()}"
    log_path = tmp / "runlab-up.log"
    env = {
        **os.environ,
        "RUNLAB_DATABASE_URL": db_url,
        "RUNLAB_SCHEDULER": "",
        "RUNLAB_ARTIFACTS": str(tmp / "artifacts"),
        "PYTHONUNBUFFERED": "1",
    }
    proc = spawn([*RUNLAB, "up", "--port", str(port), "--workers", str(WORKERS)], log_path, env=env)
    app = RunlabUp(proc, f"http://localhost:{port}", db_url, log_path)
    try:
        app.wait_ready()
        yield app
    finally:
        try:
            code = app.stop(signal.SIGTERM)
            assert code == 0, f"`runlab up` stopped with {code}:\n{app.log_tail()}"
        finally:
            app.kill_everything()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    item.stash.setdefault(_phase_reports, {})[report.when] = report
    return report


@pytest.fixture
def new_page(
    browser: Browser, runlab_app: RunlabUp, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Page]]:
    """Pages, each in a fresh browser context (no shared cookies or storage).

    When the test fails, every page is saved as a screenshot in tmp_path and the tail of
    the app's log is printed.
    """
    contexts = []
    pages: list[Page] = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(15_000)
        context.set_default_navigation_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield make
    call = request.node.stash.get(_phase_reports, {}).get("call")
    if call is not None and call.failed:
        for i, page in enumerate(pages):
            shot = tmp_path / f"page-{i}.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(shot), full_page=True, timeout=10_000)
                print(f"screenshot of page {i} ({page.url}): {shot}")
        print(f"--- runlab up log ({runlab_app.log_path}) ---\n{runlab_app.log_tail()}")
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()
