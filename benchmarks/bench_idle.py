"""What Runlab costs when nothing happens, and whether a runner's memory stays flat over many jobs.

idle runner: `runlab runner` with its default options, and so its LocalCluster of one worker per
             core, on a fresh store with no job. Once it has registered and settled, the CPU
             time of its whole process tree (the runner, its Dask scheduler and nannies, which
             run inside it, and every worker process) over `--seconds`, as a percentage of one
             core, with each process's share. Target ≤ 1 %.
open page:   one tiny π job run to `succeeded` by that runner, the runner then stopped, and
             `runlab web` alone serving that job's page to a headless Chromium that keeps it
             open. The CPU of the app's process tree (`runlab web` and its Streamlit child, not
             the browser) over `--seconds`, as a percentage of one core. Target ≤ 2 %.
runner RSS:  a runner (`--concurrency 32 --workers 1`, as bench_dispatch.py) running the
             zero-work `bench_noop` kind of benchmarks/dispatch_kind.py: its own RSS after
             1,000 jobs have ended, and again after 19,000 more, all queued through the store's
             bulk path. Target: the second within 50 MB of the first.

CPU is read with psutil from /proc every second, for processes that appear or end mid-way; a
process that starts inside the window counts from zero. Prints the machine, the load average
before and after, each figure, and a last summary line of the figures against their targets.

Run: .venv/bin/python benchmarks/bench_idle.py [--backend sqlite|postgres|both] [--seconds 60]
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click
import psutil
from sqlalchemy import Engine, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dispatch_kind import KIND  # noqa: E402
from benchmarks.stores import store  # noqa: E402
from benchmarks.whole_path import load  # noqa: E402
from compute import intake, registry  # noqa: E402
from jobstore import queries, transitions  # noqa: E402
from jobstore.engine import reading  # noqa: E402
from jobstore.models import TERMINAL, Status  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.processes import RUNLAB, served, spawn  # noqa: E402

RUNNER_TARGET = 1.0  # % of one core
APP_TARGET = 2.0  # % of one core
RSS_TARGET = 50.0  # MB of growth from 1,000 jobs to 20,000
FIRST_JOBS = 1_000
ALL_JOBS = 20_000
RUNNER_SETTLE = 10.0  # seconds after registering: the cluster's start-up is not idleness
PAGE_SETTLE = 5.0  # seconds after the page is drawn: its first reruns are not idleness
SAMPLE = 1.0  # seconds between reads of the tree: light, and a process that ends loses ≤ 1 s
POLL = 0.5  # seconds between counts of ended jobs: the runner needs the cores
KIND_MODULE = "benchmarks.dispatch_kind"
MB = 1024 * 1024  # MiB, as psutil and ps count

jobs_t = transitions.jobs


# --- processes ----------------------------------------------------------------------------------


def wait_until(probe: Callable[[], bool], *, timeout: float, what: str, every: float) -> None:
    """Call `probe` until it is true; SystemExit naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@contextlib.contextmanager
def runner(
    engine: Engine, url: str, folder: Path, label: str, *options: str, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`runlab runner OPTIONS` in a session of its own, once it has registered as alive; on
    leaving, SIGTERM to its process group (its Dask workers too), then SIGKILL to what is left."""
    proc = spawn(
        [*RUNLAB, "runner", *options],
        folder / f"{label}.log",
        env={
            **os.environ,
            "RUNLAB_DATABASE_URL": url,
            "PYTHONPATH": str(ROOT),
            "RUNLAB_ARTIFACTS": str(folder / f"{label}-artifacts"),
            **env,
        },
    )

    def registered() -> bool:
        if proc.poll() is not None:
            log = (folder / f"{label}.log").read_text(errors="replace")
            raise SystemExit(f"the runner exited with {proc.returncode}:\n{log[-3000:]}")
        return any(r.alive and r.pid == proc.pid for r in queries.runners(engine, alive_within=30))

    try:
        wait_until(registered, timeout=90, what="the runner to register", every=0.2)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- CPU of a process tree ----------------------------------------------------------------------


def cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def label_of(p: psutil.Process, names: Mapping[int, str]) -> str:
    """A short name for a process of the tree, from its command line."""
    if p.pid in names:
        return names[p.pid]
    try:
        cmd = p.cmdline()
    except psutil.Error:
        return f"pid {p.pid} (gone)"
    line = " ".join(cmd)
    if "resource_tracker" in line:
        return "multiprocessing resource tracker"
    if "forkserver" in line:
        return "multiprocessing forkserver"
    if "spawn_main" in line:
        return "Dask worker (spawned by a nanny in the runner)"
    if "streamlit" in line:
        return "Streamlit server"
    return line[:90]


@dataclass
class Seen:
    proc: psutil.Process
    label: str
    base: float  # CPU seconds when the window opened; 0 for a process born inside it
    last: float
    ended: bool = False

    @property
    def used(self) -> float:
        return max(0.0, self.last - self.base)


@dataclass
class Window:
    """The CPU one process tree used over a wall-clock window."""

    wall: float
    seen: list[Seen] = field(default_factory=list)

    @property
    def used(self) -> float:
        return sum(s.used for s in self.seen)

    @property
    def percent(self) -> float:
        return 100 * self.used / self.wall

    def breakdown(self) -> list[str]:
        rows = sorted(self.seen, key=lambda s: -s.used)
        return [
            f"    {100 * s.used / self.wall:6.2f} %  {s.used:6.2f} s  pid {s.proc.pid:<7} "
            f"{s.label}{' (ended in the window)' if s.ended else ''}"
            for s in rows
        ]


def measure(root: int, seconds: float, names: Mapping[int, str]) -> Window:
    """The CPU time of `root` and all its descendants over `seconds`, read every SAMPLE s.

    Each process is known by (pid, create time), so that a reused pid is a new process. One
    born inside the window counts from zero; one older, from its first reading."""
    seen: dict[tuple[int, float], Seen] = {}
    opened = time.time()

    def sweep() -> None:
        try:
            top = psutil.Process(root)
            tree = [top, *top.children(recursive=True)]
        except psutil.Error:
            tree = []
        alive = set()
        for p in tree:
            try:
                key = (p.pid, p.create_time())
                used = cpu(p)
            except psutil.Error:
                continue
            alive.add(key)
            if key in seen:
                seen[key].last = used
            else:
                base = 0.0 if key[1] > opened else used
                seen[key] = Seen(p, label_of(p, names), base, used)
        for key, s in seen.items():
            s.ended = key not in alive

    start = time.monotonic()
    sweep()
    end = start + seconds
    while (now := time.monotonic()) < end:
        time.sleep(min(SAMPLE, end - now))
        sweep()
    return Window(time.monotonic() - start, list(seen.values()))


# --- the three measurements ---------------------------------------------------------------------


def finished(engine: Engine, public_id: str, timeout: float = 120.0) -> None:
    """Wait for the job to end; SystemExit unless it succeeded."""

    def ended() -> bool:
        return queries.get_job(engine, public_id, log_lines=0, max_points=1).status.terminal

    wait_until(ended, timeout=timeout, what=f"job {public_id} to end", every=POLL)
    job = queries.get_job(engine, public_id, log_lines=0, max_points=1)
    if job.status is not Status.SUCCEEDED:
        raise SystemExit(f"job {public_id} ended {job.status}: {job.error}")


def idle_runner(engine: Engine, url: str, folder: Path, seconds: float) -> tuple[Window, str]:
    """The idle runner's tree over `seconds`; then a tiny π job run to `succeeded` by it, for
    the page of the next measurement."""
    with runner(engine, url, folder, "idle-runner") as proc:
        time.sleep(RUNNER_SETTLE)
        names = {proc.pid: "runner (its Dask scheduler and nannies run in it)"}
        window = measure(proc.pid, seconds, names)
        public_id = intake.submit(engine, "monte_carlo_pi", {"samples": 1_000_000, "seed": 1})
        finished(engine, public_id)
    return window, public_id


def web_process(port: int) -> psutil.Process:
    """The `runlab web --port PORT` that `served` started: a child of this script."""
    for p in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            cmd = p.cmdline()
            if "web" in cmd and str(port) in cmd:
                return p
    raise SystemExit(f"no `runlab web --port {port}` among this script's children")


def open_page(url: str, folder: Path, public_id: str, seconds: float) -> Window:
    """`runlab web` alone, with the finished job's page open in headless Chromium: the CPU of
    the app's tree (not the browser's) over `seconds`."""
    from playwright.sync_api import sync_playwright

    with served(url, folder) as base, sync_playwright() as pw:
        web = web_process(int(base.rsplit(":", 1)[1]))
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(f"{base}/job?id={public_id}")
            page.wait_for_selector("h1", timeout=60_000)
            time.sleep(PAGE_SETTLE)
            window = measure(web.pid, seconds, {web.pid: "runlab web (starts Streamlit, waits)"})
            page.locator("h1").first.wait_for(timeout=5_000)  # still drawn at the end
        finally:
            browser.close()
    return window


def counts(engine: Engine) -> dict[str, int]:
    """Jobs by status: one grouped count, cheap beside the runner's own work."""
    with reading(engine) as conn:
        rows = conn.execute(select(jobs_t.c.status, func.count()).group_by(jobs_t.c.status))
        return {str(status): int(n) for status, n in rows}


def run_noops(engine: Engine, count: int, ended_before: int) -> float:
    """Queue `count` zero-work jobs in one transaction and wait until all have ended; the
    seconds from queuing to the last end seen. SystemExit if one did not succeed."""
    start = time.perf_counter()
    intake.submit_many(engine, KIND, [{}] * count)
    total = ended_before + count
    terminal = {str(s) for s in TERMINAL}

    def ended() -> bool:
        return sum(n for s, n in counts(engine).items() if s in terminal) >= total

    wait_until(ended, timeout=60 + count / 20, what=f"{total:,} jobs to end", every=POLL)
    wall = time.perf_counter() - start
    by_status = counts(engine)
    if by_status.get(str(Status.SUCCEEDED), 0) != total:
        raise SystemExit(f"not every job succeeded: {by_status}")
    return wall


def runner_rss(engine: Engine, url: str, folder: Path) -> tuple[int, int]:
    """The runner process's own RSS after FIRST_JOBS zero-work jobs, and after ALL_JOBS."""
    registry.load([KIND_MODULE])
    options = ("--concurrency", "32", "--workers", "1")
    with runner(
        engine, url, folder, "rss-runner", *options, RUNLAB_KIND_MODULES=KIND_MODULE
    ) as proc:
        me = psutil.Process(proc.pid)
        wall = run_noops(engine, FIRST_JOBS, 0)
        first = me.memory_info().rss
        print(f"  {FIRST_JOBS:,} jobs ended in {wall:.1f} s; runner RSS {first / MB:.1f} MB")
        wall = run_noops(engine, ALL_JOBS - FIRST_JOBS, FIRST_JOBS)
        last = me.memory_info().rss
        print(
            f"  {ALL_JOBS - FIRST_JOBS:,} more ended in {wall:.1f} s; runner RSS {last / MB:.1f} MB"
        )
    return first, last


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Figures:
    backend: str
    runner: Window
    app: Window
    rss_first: int
    rss_last: int

    @property
    def growth(self) -> float:
        return (self.rss_last - self.rss_first) / MB


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def run(backend: str, folder: Path, seconds: float) -> Figures:
    print(f"\n== {backend} ==")
    print(f"load average before: {load()}")
    with store(backend, folder, "bench_idle") as (engine, url):
        print(
            f"idle runner (default options), settled {RUNNER_SETTLE:.0f} s, over {seconds:.0f} s:"
        )
        idle, public_id = idle_runner(engine, url, folder, seconds)
        print(f"  {idle.percent:.2f} % of one core ({idle.used:.2f} s CPU in {idle.wall:.1f} s)")
        print("\n".join(idle.breakdown()))
        print(
            f"open job page: job {public_id} (π, 10⁶ samples) succeeded; the runner is stopped, "
            f"`runlab web` alone serves the page to headless Chromium; settled "
            f"{PAGE_SETTLE:.0f} s, over {seconds:.0f} s, the app's tree only (not the browser):"
        )
        app = open_page(url, folder, public_id, seconds)
        print(f"  {app.percent:.2f} % of one core ({app.used:.2f} s CPU in {app.wall:.1f} s)")
        print("\n".join(app.breakdown()))
    with store(backend, folder, "bench_idle_rss") as (engine, url):
        print(f"runner RSS (--concurrency 32 --workers 1, {KIND} jobs, the runner process only):")
        first, last = runner_rss(engine, url, folder)
        print(
            f"  after {FIRST_JOBS:,}: {first / MB:.1f} MB; after {ALL_JOBS:,}: {last / MB:.1f} MB;"
            f" difference {(last - first) / MB:+.1f} MB"
        )
    print(f"load average after: {load()}")
    return Figures(backend, idle, app, first, last)


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgres", "both"]),
    default="sqlite",
    show_default=True,
)
@click.option("--seconds", default=60.0, show_default=True, help="Length of each CPU window.")
def main(backend: str, seconds: float) -> None:
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, psutil {psutil.__version__}"
    )
    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        results = [run(b, Path(tmp), seconds) for b in backends]
    parts = []
    for f in results:
        parts.append(
            f"{f.backend}: idle runner {f.runner.percent:.2f} % of a core (target ≤ "
            f"{RUNNER_TARGET:.0f} %: {verdict(f.runner.percent <= RUNNER_TARGET)}), open job "
            f"page {f.app.percent:.2f} % (≤ {APP_TARGET:.0f} %: "
            f"{verdict(f.app.percent <= APP_TARGET)}), runner RSS {FIRST_JOBS:,} → {ALL_JOBS:,} "
            f"jobs {f.growth:+.1f} MB (≤ {RSS_TARGET:.0f} MB: {verdict(f.growth <= RSS_TARGET)})"
        )
    print("\nsummary: " + "; ".join(parts))


if __name__ == "__main__":
    main()
