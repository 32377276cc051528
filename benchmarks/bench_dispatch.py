"""Dispatch cost: how fast real runner processes pick up and finish jobs that do no work.

For each store (a temporary SQLite file; a fresh schema in PostgreSQL), with `runlab runner`
subprocesses and the `bench_noop` kind of `benchmarks/dispatch_kind.py`:

latency:    one idle runner; jobs submitted one at a time through `intake.submit`, a
            random 0.1-0.2 s apart. Submit to running is `started_at - created_at`, both in the
            store's own clock.
throughput: 1, 2 and 4 runners, all registered first; then the jobs are queued in one
            transaction through the store's bulk path (`intake.submit_many`), and
            the rate is jobs ÷ (last `finished_at` - first `started_at`). Every job must end
            `succeeded` with exactly one claim event.
cpu:        the runner CPU per job is the CPU time (user and system, /proc) of each runner
            process and of every process under it (its LocalCluster's Dask worker, which a
            zero-work job never uses), from just before the jobs are queued until the last
            ends, divided by the jobs. SQLite's own work is inside it, since SQLite runs in the
            runner; PostgreSQL's server processes are not, as procrastinate's are not. This is
            how the peers' script counts a peer: its worker process and every child of it, over
            the window of its batch.
locks:      lines saying "database is locked" in the runners' logs, and jobs that failed.
queues:     the latency and the throughput (with the first runner count) on one queue and over
            8 named queues in turn, `--queues-repeats` times each (four of the eight with a
            limit of running jobs, set high enough not to bind, so that every claim takes the
            queues' locks and counts), priorities 0-10 and 20 owners, each job's queue,
            priority and owner drawn at random. Target: the medians within 80 % of one
            queue's (jobs/s at least 0.8 times as many, the p50 at most 1/0.8 times as long).

peers:      in the same run, `../shared/peers/dispatch_peers.py` with the peers' interpreter
            (`--peers`, by default /tmp/peers/bin/python when it exists): huey on SQLite and
            procrastinate on PostgreSQL, each measured the same way (a warm worker, jobs 0.1-0.2
            s apart for the latency, a batch of zero-work jobs for the rate and the worker's CPU
            per job). A table sets them beside Runlab's, and a last `summary:` line says of each
            target whether it is met: SQLite p50 below huey's; PostgreSQL p50 at most
            procrastinate's; runner CPU per job at most huey's on SQLite and at most a third of
            procrastinate's on PostgreSQL; no lock error and no lost job.

Each measurement gets a fresh store. Prints a table beside the spec's targets; exits 1 if a
job was lost, failed, or claimed more than once, or the store breaks an invariant.
Run: .venv/bin/python benchmarks/bench_dispatch.py [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dispatch_kind import KIND  # noqa: E402
from compute import intake, registry  # noqa: E402
from jobstore import ledger, queries, transitions  # noqa: E402
from jobstore.doctor import check  # noqa: E402
from jobstore.engine import make_engine, migrate, reading  # noqa: E402
from jobstore.enqueue import enqueue_many  # noqa: E402
from jobstore.models import TERMINAL, Status  # noqa: E402
from tests.processes import RUNLAB, spawn  # noqa: E402

KIND_MODULE = "benchmarks.dispatch_kind"
QUEUES = [f"q{i}" for i in range(8)]
# Limits above any runner's concurrency: the claim enforces them, and never has to wait on one.
QUEUE_SETTINGS = json.dumps({q: ({"limit": 1000} if i % 2 else {}) for i, q in enumerate(QUEUES)})
OWNERS = [f"analyst{i:02d}" for i in range(20)]
PG_DEFAULT = os.environ.get(
    "RUNLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PEERS_PYTHON = Path("/tmp/peers/bin/python")
PEERS_SCRIPT = ROOT.parent / "shared" / "peers" / "dispatch_peers.py"
LOCKED = "database is locked"
TROUBLE = ("the store did not answer", "could not write progress", "could not mark job")

jobs_t = transitions.jobs
stages_t = transitions.stages_t
events_t = ledger.events_t

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

T = TypeVar("T")


# --- waiting and processes ----------------------------------------------------------------------


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Call `probe` until it returns something truthy; SystemExit naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class RunnerProc:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Runners:
    """`runlab runner` subprocesses, each in its own session so that its Dask workers go too."""

    def __init__(
        self, url: str, logs: Path, label: str, concurrency: int, queues: str = ""
    ) -> None:
        self.queues = queues  # RUNLAB_QUEUES for the runners; empty: the default queue only
        self.url = url
        self.logs = logs
        self.label = label
        self.concurrency = concurrency
        self.procs: list[RunnerProc] = []
        self._stopped = False

    def start(self, engine: Engine, count: int, *, timeout: float = 90.0) -> None:
        """Start `count` runners and wait until each has registered in the store."""
        before = {r.id for r in queries.runners(engine, alive_within=3600)}
        env = {
            **os.environ,
            "RUNLAB_DATABASE_URL": self.url,
            "RUNLAB_KIND_MODULES": KIND_MODULE,
            "PYTHONPATH": str(ROOT),
            "RUNLAB_ARTIFACTS": str(self.logs / f"{self.label}-artifacts"),
            "RUNLAB_QUEUES": self.queues,
        }
        options = ["--concurrency", str(self.concurrency), "--workers", "1"]
        for i in range(count):
            log_path = self.logs / f"{self.label}-runner{i}.log"
            proc = spawn([*RUNLAB, "runner", *options], log_path, env=env)
            self.procs.append(RunnerProc(proc, log_path))

        def registered() -> bool:
            for r in self.procs:
                if r.proc.poll() is not None:
                    raise SystemExit(f"a runner exited early:\n{r.log()[-3000:]}")
            new = {r.id for r in queries.runners(engine, alive_within=3600)} - before
            return len(new) >= count

        wait_until(registered, timeout=timeout, what=f"{count} runner(s) to register", interval=0.1)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM each runner's process group, then SIGKILL whatever is left of it."""
        if self._stopped:
            return
        self._stopped = True
        for r in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for r in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.proc.pid, signal.SIGKILL)
            r.proc.wait()

    def cpu_seconds(self) -> float:
        """CPU time the runner processes and every process under them (their Dask workers, and
        the LocalCluster's nannies) have used: a whole process tree, as the peers' script counts
        each peer's worker with its children."""
        total = 0.0
        for r in self.procs:
            for pid in [r.proc.pid, *_descendants(r.proc.pid)]:
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        return total

    def log_counts(self) -> tuple[int, int]:
        """Lines saying "database is locked", and lines where the runner met store trouble."""
        locked = trouble = 0
        for r in self.procs:
            for line in r.log().splitlines():
                locked += LOCKED in line.lower()
                trouble += any(t in line for t in TROUBLE)
        return locked, trouble


def _descendants(pid: int) -> list[int]:
    """The processes under `pid`, children first, read from /proc (Linux)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                for child in (task / "children").read_text().split():
                    out += [int(child), *_descendants(int(child))]
    return out


@contextlib.contextmanager
def runners(
    url: str, logs: Path, label: str, concurrency: int, queues: str = ""
) -> Iterator[Runners]:
    group = Runners(url, logs, label, concurrency, queues)
    try:
        yield group
    finally:
        group.stop()


# --- stores -------------------------------------------------------------------------------------


def pg_reachable(url: str) -> bool:
    try:
        eng = create_engine(url, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def fresh_store(backend: str, pg_url: str, tmp: Path, label: str) -> Iterator[tuple[str, Engine]]:
    """A migrated, empty store: a new SQLite file, or a new PostgreSQL schema dropped after."""
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / label}.db"
    else:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = (
            make_url(pg_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    engine = make_engine(url)
    try:
        migrate(engine)
        yield url, engine
    finally:
        engine.dispose()
        if schema is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


# --- queuing many jobs at once ------------------------------------------------------------------


def internal_ids(engine: Engine, public_ids: Sequence[str]) -> list[int]:
    with reading(engine) as conn:
        return list(
            conn.execute(select(jobs_t.c.id).where(jobs_t.c.public_id.in_(public_ids))).scalars()
        )


@dataclass
class Outcome:
    """What the store says about a set of jobs once they ended."""

    statuses: Counter[str]
    claims: Counter[int]
    per_runner: Counter[str]
    started: list[datetime]
    finished: list[datetime]
    latencies_ms: list[float]
    done_ms: list[float]
    locked_failures: int


def outcome(engine: Engine, ids: Sequence[int]) -> Outcome:
    wanted = set(ids)
    with reading(engine) as conn:
        rows = conn.execute(
            select(
                jobs_t.c.id,
                jobs_t.c.status,
                jobs_t.c.runner_id,
                jobs_t.c.created_at,
                jobs_t.c.started_at,
                jobs_t.c.finished_at,
                jobs_t.c.error_message,
            ).where(jobs_t.c.id.in_(wanted))
        ).all()
        claims: Counter[int] = Counter({i: 0 for i in wanted})
        for job_id, n in conn.execute(
            select(events_t.c.job_id, func.count())
            .where(events_t.c.kind == "transition", events_t.c.to_status == Status.RUNNING)
            .group_by(events_t.c.job_id)
        ):
            if job_id in wanted:
                claims[job_id] = n
    done = [r for r in rows if r.started_at is not None and r.finished_at is not None]
    return Outcome(
        statuses=Counter(r.status for r in rows),
        claims=claims,
        per_runner=Counter(r.runner_id for r in rows if r.runner_id),
        started=[r.started_at for r in done],
        finished=[r.finished_at for r in done],
        latencies_ms=[(r.started_at - r.created_at).total_seconds() * 1e3 for r in done],
        done_ms=[(r.finished_at - r.created_at).total_seconds() * 1e3 for r in done],
        locked_failures=sum(
            r.status == Status.FAILED and LOCKED in (r.error_message or "").lower() for r in rows
        ),
    )


def terminal_count(engine: Engine, ids: Sequence[int]) -> int:
    lo, hi = min(ids), max(ids)
    with reading(engine) as conn:
        return conn.execute(
            select(func.count()).where(
                jobs_t.c.id.between(lo, hi), jobs_t.c.status.in_([s.value for s in TERMINAL])
            )
        ).scalar_one()


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between ranks."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --- the measurements ---------------------------------------------------------------------------


@dataclass
class Figures:
    backend: str
    latency_p50: float = float("nan")
    latency_p95: float = float("nan")
    done_p50: float = float("nan")
    latency_n: int = 0
    rates: dict[int, float] = field(default_factory=dict)
    cpu_ms: dict[int, float] = field(default_factory=dict)
    # One queue against 8 queues with mixed priorities and 20 owners, run in turn: (one, mixed)
    # per repeat.
    paired_latency: list[tuple[float, float]] = field(default_factory=list)
    paired_rates: list[tuple[float, float]] = field(default_factory=list)
    paired_runners: int = 0
    locked_lines: int = 0
    trouble_lines: int = 0
    failed: int = 0
    locked_failures: int = 0
    lost: int = 0  # jobs that did not succeed exactly once, over every run
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify(fig: Figures, label: str, engine: Engine, out: Outcome, expected: int) -> None:
    """Record every job that did not succeed exactly once, and every broken invariant."""
    fig.failed += out.statuses.get(Status.FAILED, 0)
    fig.locked_failures += out.locked_failures
    ok = out.statuses.get(Status.SUCCEEDED, 0)
    twice = sum(1 for n in out.claims.values() if n > 1)
    fig.lost += max(0, expected - ok) + twice
    if ok != expected:
        fig.problems.append(f"{label}: {ok} of {expected} succeeded ({dict(out.statuses)})")
    never = sum(1 for n in out.claims.values() if n == 0)
    if twice or never:
        fig.problems.append(f"{label}: {twice} job(s) claimed more than once, {never} never")
    found = check(engine)
    if found:
        fig.problems.append(f"{label}: doctor found {len(found)} violation(s), e.g. {found[0]}")


def measure_latency(
    fig: Figures,
    backend: str,
    pg_url: str,
    tmp: Path,
    *,
    count: int,
    concurrency: int,
    rng: random.Random,
    mixed: bool = False,
    repeat: int = 0,
) -> float:
    """The run's submit-to-running p50, in ms."""
    label = f"{backend}-latency" + (f"-queues{repeat}" if mixed else f"{repeat or ''}")
    with (
        fresh_store(backend, pg_url, tmp, label) as (url, engine),
        runners(url, tmp, label, concurrency, QUEUE_SETTINGS if mixed else "") as group,
    ):
        group.start(engine, 1)
        warm = [intake.submit(engine, KIND, {}) for _ in range(3)]
        public_ids: list[str] = []
        wait_until(
            lambda: all(queries.get_job(engine, p).status.terminal for p in warm),
            timeout=60,
            what="the warm-up jobs",
        )
        for _ in range(count):
            public_ids.append(intake.submit(engine, KIND, {}, **_drawn(rng, mixed)))
            time.sleep(rng.uniform(0.1, 0.2))  # the spacing of arrivals, not a wait for state
        ids = internal_ids(engine, public_ids)
        wait_until(
            lambda: terminal_count(engine, ids) >= count,
            timeout=60,
            what="the latency jobs to end",
            interval=0.1,
        )
        out = outcome(engine, ids)
        verify(fig, label, engine, out, count)
        if not repeat and not mixed:
            fig.latency_n = len(out.latencies_ms)
            fig.latency_p50 = pct(out.latencies_ms, 50)
            fig.latency_p95 = pct(out.latencies_ms, 95)
            fig.done_p50 = pct(out.done_ms, 50)
        group.stop()
        locked, trouble = group.log_counts()
        fig.locked_lines += locked
        fig.trouble_lines += trouble
        return pct(out.latencies_ms, 50)


def _drawn(rng: random.Random, mixed: bool) -> dict[str, Any]:
    """A job's queue, priority and owner in the mixed run; nothing in the single-queue one."""
    if not mixed:
        return {}
    return {
        "queue": rng.choice(QUEUES),
        "priority": rng.randint(0, 10),
        "owner": rng.choice(OWNERS),
    }


def measure_throughput(
    fig: Figures,
    backend: str,
    pg_url: str,
    tmp: Path,
    *,
    n_runners: int,
    count: int,
    concurrency: int,
    timeout: float,
    mixed: bool = False,
    rng: random.Random | None = None,
    repeat: int = 0,
) -> float:
    """The run's jobs per second, first start to last finish."""
    label = f"{backend}-throughput-{n_runners}" + (
        f"-queues{repeat}" if mixed else f"-{repeat}" if repeat else ""
    )
    with (
        fresh_store(backend, pg_url, tmp, label) as (url, engine),
        runners(url, tmp, label, concurrency, QUEUE_SETTINGS if mixed else "") as group,
    ):
        group.start(engine, n_runners)
        cpu0 = group.cpu_seconds()
        t0 = time.perf_counter()
        # The store's own bulk path: one transaction, the rows `submit` writes; in the mixed
        # run each job with the queue, priority and owner drawn for it.
        if mixed:
            draw = rng or random.Random(0)
            checked = [intake.check(KIND, {}, **_drawn(draw, True)) for _ in range(count)]
            ids = internal_ids(engine, enqueue_many(engine, checked))
        else:
            ids = internal_ids(engine, intake.submit_many(engine, KIND, [{}] * count))
        queued = time.perf_counter() - t0
        ended = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = terminal_count(engine, ids)
            if ended >= count:
                break
            time.sleep(0.5)  # a light poll: the runners need the cores
        wall = time.perf_counter() - t0
        cpu = group.cpu_seconds() - cpu0
        group.stop()
        locked, trouble = group.log_counts()
        fig.locked_lines += locked
        fig.trouble_lines += trouble
        out = outcome(engine, ids)
        if ended < count:
            fig.problems.append(f"{label}: only {ended} of {count} ended within {timeout:.0f} s")
        verify(fig, label, engine, out, count)
        span = (max(out.finished) - min(out.started)).total_seconds() if out.started else 0.0
        rate = len(out.finished) / span if span > 0 else float("nan")
        if span > 0 and not mixed and not repeat:
            fig.rates[n_runners] = rate
        if cpu > 0 and out.finished and not mixed and not repeat:
            fig.cpu_ms[n_runners] = cpu / len(out.finished) * 1e3
        shares = ", ".join(str(n) for _, n in out.per_runner.most_common())
        fig.notes.append(
            f"{label}: {len(out.finished)} jobs; queued in {queued:.2f} s; first start to "
            f"last finish {span:.2f} s, wall from queuing {wall:.2f} s; "
            f"runner CPU {cpu / max(1, len(out.finished)) * 1e3:.2f} ms/job; "
            f"jobs per runner {shares}"
        )
        return rate


# --- the report ---------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def report(figures: Sequence[Figures], runner_counts: Sequence[int]) -> None:
    rows: list[tuple[str, str, str, str, str]] = []
    for f in figures:
        lat_target = 100.0 if f.backend == "postgres" else 300.0
        rows.append(
            (
                f.backend,
                f"submit→running p50 ({f.latency_n} jobs)",
                f"{f.latency_p50:.0f} ms",
                f"< {lat_target:.0f} ms",
                _verdict(f.latency_p50 < lat_target),
            )
        )
        rows.append((f.backend, "submit→running p95", f"{f.latency_p95:.0f} ms", "", ""))
        rows.append((f.backend, "submit→finished p50", f"{f.done_p50:.0f} ms", "", ""))
        for k in runner_counts:
            rate = f.rates.get(k)
            if rate is None:
                continue
            target = f.backend == "sqlite" and k == 1
            cpu = f.cpu_ms.get(k)
            rows.append(
                (
                    f.backend,
                    f"throughput, {k} runner{'s' if k > 1 else ''}",
                    f"{rate:,.0f} jobs/s" + (f" ({cpu:.1f} ms runner CPU/job)" if cpu else ""),
                    "≥ 1000 jobs/s" if target else "",
                    _verdict(rate >= 1000) if target else "",
                )
            )
        if f.paired_rates:
            one = statistics.median(a for a, _ in f.paired_rates)
            mixed = statistics.median(b for _, b in f.paired_rates)
            share = mixed / one
            rows.append(
                (
                    f.backend,
                    f"8 queues, 20 owners: throughput, {f.paired_runners} runner(s), median "
                    f"of {len(f.paired_rates)}",
                    f"{mixed:,.0f} jobs/s against {one:,.0f} on one queue: {share:.0%}",
                    "≥ 80 %",
                    _verdict(share >= 0.8),
                )
            )
        if f.paired_latency:
            one = statistics.median(a for a, _ in f.paired_latency)
            mixed = statistics.median(b for _, b in f.paired_latency)
            share = one / mixed
            rows.append(
                (
                    f.backend,
                    f"8 queues, 20 owners: submit→running p50, median of {len(f.paired_latency)}",
                    f"{mixed:.1f} ms against {one:.1f} ms on one queue: {share:.0%} of its speed",
                    "≥ 80 %",
                    _verdict(share >= 0.8),
                )
            )
        rows.append(
            (
                f.backend,
                f'"{LOCKED}" lines in runner logs',
                str(f.locked_lines),
                "0",
                _verdict(f.locked_lines == 0),
            )
        )
        rows.append(
            (
                f.backend,
                "failed jobs (of which lock errors)",
                f"{f.failed} ({f.locked_failures})",
                "0",
                _verdict(f.failed == 0),
            )
        )
        rows.append((f.backend, "store-trouble warnings in logs", str(f.trouble_lines), "", ""))
    head = ("store", "measure", "figure", "target", "")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(5)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for r in (head, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if r is head:
            print(line)
    print(line)
    for f in figures:
        for n in f.notes:
            print(n)
    for f in figures:
        for p in f.problems:
            print(f"PROBLEM {p}")


# --- the peers, side by side --------------------------------------------------------------------

PEER_OF = {"sqlite": "huey", "postgres": "procrastinate"}
_PEER_LINE = re.compile(
    r"^(?P<name>huey|procrastinate) (?P<version>\S+) .*?submit->started p50 (?P<p50>[\d.]+) ms, "
    r"p95 (?P<p95>[\d.]+) ms.*?= (?P<rate>[\d.]+) jobs/s.*?CPU (?P<cpu>[\d.]+) ms/job"
)


@dataclass
class Peer:
    name: str
    version: str
    p50: float
    p95: float
    rate: float
    cpu_ms: float


def run_peers(python: Path, script: Path, backends: Sequence[str]) -> tuple[dict[str, Peer], str]:
    """The peers' script, run to its end; its figures by the Runlab store each stands beside,
    and its output as printed."""
    names = [PEER_OF[b] for b in backends]
    which = "both" if len(names) == 2 else names[0]
    done = subprocess.run(
        [str(python), str(script), which], capture_output=True, text=True, timeout=1800
    )
    text_out = done.stdout + done.stderr
    found: dict[str, Peer] = {}
    for line in done.stdout.splitlines():
        m = _PEER_LINE.match(line.strip())
        if m:
            peer = Peer(
                m["name"],
                m["version"],
                float(m["p50"]),
                float(m["p95"]),
                float(m["rate"]),
                float(m["cpu"]),
            )
            found[next(b for b, n in PEER_OF.items() if n == peer.name)] = peer
    return found, text_out


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def side_by_side(figures: Sequence[Figures], peers: dict[str, Peer]) -> None:
    """Runlab's figures beside its peers', and the summary line of the targets against them."""
    head = ["", *(c for f in figures for c in (f"Runlab, {f.backend}", _peer_head(f, peers)))]
    rows: list[list[str]] = [
        ["submit → running p50", *_pairs(figures, peers, lambda f: f.latency_p50, "p50", "ms")],
        ["submit → running p95", *_pairs(figures, peers, lambda f: f.latency_p95, "p95", "ms")],
        ["zero-work jobs/s, 1 worker", *_pairs(figures, peers, lambda f: f.rates.get(1), "rate")],
        [
            "worker CPU per job",
            *_pairs(figures, peers, lambda f: f.cpu_ms.get(1), "cpu_ms", "ms", digits=2),
        ],
        [
            "lock errors, lost jobs",
            *(c for f in figures for c in (f"{f.locked_lines + f.locked_failures}, {f.lost}", "")),
        ],
    ]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    parts: list[str] = []
    for f in figures:
        peer = peers.get(f.backend)
        cpu = f.cpu_ms.get(1, float("nan"))
        if peer is None:
            parts.append(f"{f.backend}: no peer figures")
            continue
        if f.backend == "sqlite":
            parts.append(
                f"sqlite p50 {f.latency_p50:.1f} ms < huey {peer.p50:.1f} ms: "
                f"{_mark(f.latency_p50 < peer.p50)}"
            )
            parts.append(
                f"sqlite CPU {cpu:.2f} ≤ huey {peer.cpu_ms:.2f} ms/job: {_mark(cpu <= peer.cpu_ms)}"
            )
        else:
            parts.append(
                f"postgres p50 {f.latency_p50:.1f} ms ≤ procrastinate {peer.p50:.1f} ms: "
                f"{_mark(f.latency_p50 <= peer.p50)}"
            )
            parts.append(
                f"postgres CPU {cpu:.2f} ≤ procrastinate/3 {peer.cpu_ms / 3:.2f} ms/job: "
                f"{_mark(cpu <= peer.cpu_ms / 3)}"
            )
    errors = sum(f.locked_lines + f.locked_failures for f in figures)
    lost = sum(f.lost for f in figures)
    parts.append(f"lock errors {errors}, lost jobs {lost}: {_mark(errors == 0 and lost == 0)}")
    print(f"summary ({datetime.now():%Y-%m-%d %H:%M}): " + "; ".join(parts))


def _peer_head(f: Figures, peers: dict[str, Peer]) -> str:
    peer = peers.get(f.backend)
    return f"{peer.name} {peer.version}" if peer else f"{PEER_OF[f.backend]} (not run)"


def _pairs(
    figures: Sequence[Figures],
    peers: dict[str, Peer],
    ours: Callable[[Figures], float | None],
    theirs: str,
    unit: str = "",
    *,
    digits: int = 1,
) -> list[str]:
    def show(v: float | None) -> str:
        if v is None or v != v:
            return "–"
        return f"{v:,.{digits}f} {unit}".strip() if unit else f"{v:,.0f}"

    out: list[str] = []
    for f in figures:
        peer = peers.get(f.backend)
        out += [show(ours(f)), show(getattr(peer, theirs) if peer else None)]
    return out


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgres", "both"]),
    default=None,
    help="Default: both when PostgreSQL answers, else sqlite.",
)
@click.option(
    "--database-url",
    default=PG_DEFAULT,
    show_default=True,
    help="PostgreSQL server; each measurement makes a fresh schema in it and drops it after.",
)
@click.option("--latency-jobs", default=50, show_default=True, help="Jobs timed one at a time.")
@click.option("--jobs", default=5000, show_default=True, help="Jobs per throughput run.")
@click.option("--runners", "runner_counts", default="1,2,4", show_default=True)
@click.option("--concurrency", default=32, show_default=True, help="Each runner's --concurrency.")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds per throughput run.")
@click.option("--keep", is_flag=True, help="Keep the temporary folder (stores and runner logs).")
@click.option(
    "--queues-repeats",
    default=5,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Runs of one queue and of 8 queues with mixed priorities and 20 owners, in turn; "
    "0 for none.",
)
@click.option(
    "--peers",
    "peers_python",
    default=str(PEERS_PYTHON) if PEERS_PYTHON.exists() else "",
    show_default=True,
    help="The interpreter of the peers' venv (huey, procrastinate): their figures are measured "
    "in the same run and set beside Runlab's. Empty for none.",
)
@click.option("--peers-script", default=str(PEERS_SCRIPT), show_default=True)
def main(
    backend: str | None,
    database_url: str,
    latency_jobs: int,
    jobs: int,
    runner_counts: str,
    concurrency: int,
    timeout: float,
    keep: bool,
    queues_repeats: int,
    peers_python: str,
    peers_script: str,
) -> None:
    if make_url(database_url).get_backend_name() != "postgresql":
        raise click.BadParameter("must be a PostgreSQL URL", param_hint="--database-url")
    if backend is None:
        backend = "both" if pg_reachable(database_url) else "sqlite"
    elif backend != "sqlite" and not pg_reachable(database_url):
        raise SystemExit(f"PostgreSQL does not answer at {database_url}")
    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    counts = [int(c) for c in runner_counts.split(",") if c.strip()]
    registry.load([KIND_MODULE])
    tmp = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; stores: {', '.join(backends)}; runner --concurrency "
        f"{concurrency} --workers 1; {jobs} jobs per throughput run"
    )
    rng = random.Random(20261123)
    figures: list[Figures] = []
    started = time.perf_counter()
    try:
        for b in backends:
            fig = Figures(b)
            figures.append(fig)
            measure_latency(
                fig, b, database_url, tmp, count=latency_jobs, concurrency=concurrency, rng=rng
            )
            print(f"{b}: latency done ({time.perf_counter() - started:.0f} s)", flush=True)
            for k in counts:
                measure_throughput(
                    fig,
                    b,
                    database_url,
                    tmp,
                    n_runners=k,
                    count=jobs,
                    concurrency=concurrency,
                    timeout=timeout,
                )
                print(
                    f"{b}: {k} runner(s) done ({time.perf_counter() - started:.0f} s)", flush=True
                )
            # One queue and eight in turn, so that the machine's drift falls on both alike.
            fig.paired_runners = counts[0]
            for r in range(1, queues_repeats + 1):
                lat = [
                    measure_latency(
                        fig,
                        b,
                        database_url,
                        tmp,
                        count=latency_jobs,
                        concurrency=concurrency,
                        rng=rng,
                        mixed=mixed,
                        repeat=r,
                    )
                    for mixed in (False, True)
                ]
                fig.paired_latency.append((lat[0], lat[1]))
                rate = [
                    measure_throughput(
                        fig,
                        b,
                        database_url,
                        tmp,
                        n_runners=counts[0],
                        count=jobs,
                        concurrency=concurrency,
                        timeout=timeout,
                        mixed=mixed,
                        rng=rng,
                        repeat=r,
                    )
                    for mixed in (False, True)
                ]
                fig.paired_rates.append((rate[0], rate[1]))
                print(
                    f"{b}: queues, repeat {r} done ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    finally:
        if keep:
            print(f"stores and runner logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(figures, counts)
    if peers_python:
        print(f"peers: {peers_python} {peers_script}", flush=True)
        peers, printed = run_peers(Path(peers_python), Path(peers_script), backends)
        print(printed.rstrip())
        side_by_side(figures, peers)
    if any(f.problems for f in figures):
        sys.exit(1)


if __name__ == "__main__":
    main()
