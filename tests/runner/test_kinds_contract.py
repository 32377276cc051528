"""The promises every kind keeps, checked for each registered kind on SQLite and on PostgreSQL
through real runner processes and real Dask.

A small job succeeds; bad parameters are refused field by field, with nothing stored; a cancel
ends a running job; a runner killed mid-job is replaced, and the job resumes to the numbers of an
uninterrupted run, bit for bit; a stoppable kind stopped mid-job keeps a partial result. A kind
registered later is covered as it is, given a small example (`example_params`). Kinds registered
by test modules misbehave on purpose and are left out.

The runners keep their checkpoints and read their uploads in a folder beside SQLite, and in
an S3 bucket (on moto's S3-compatible server) beside PostgreSQL, as a team's deployment does.

Each backend has one store and a pool of runners for the whole module, each running one job at
a time on one Dask worker, so that every kind's job of a scenario runs at once. Jobs are caught
mid-way without racing them: `Hold` lets a runner's worker start a given number of tasks and
then no more, so however small a job is, some of its tasks are done and the rest wait, until
the test lets them go.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from distributed import Client
from sqlalchemy import create_engine, func, select, text

from compute import datasets, intake, registry
from compute.context import LOAD
from compute.registry import FieldInfo, Kind
from jobstore import queries, transitions
from jobstore.engine import make_engine, migrate
from jobstore.models import Base, Job, JobEvent, Status
from jobstore.views import JobDetail, RunnerView
from runlab.cli import cli
from runlab.errors import InvalidParams
from runlab.versions import software_versions
from tests.conftest import PG_ADMIN_URL, require_postgres, sqlite_url
from tests.polling import wait_for
from tests.runner.conftest import RunnerProcess, launch
from tests.runner.helpers import assert_sound, expected_inside
from tests.s3 import Place, bucket_place, folder_place


def _from_tests(kind: Kind) -> bool:
    return any(
        getattr(part, "__module__", "").startswith("tests.") for part in (kind.run, kind.params)
    )


# The kinds people submit, each of which splits its work into Dask tasks. `collect`, which a
# pipeline makes and which runs no task, is run end to end by the pipeline tests instead
# (tests/runner/test_pipeline_example.py and test_pipeline_properties.py).
KINDS = [k for k in registry.all_kinds() if not _from_tests(k) and k.listed]
STOPPABLE = [k.name for k in registry.all_kinds() if k.stoppable]
POOL_LEASE = "4"  # seconds: how long the jobs of a killed runner wait before another takes them
CANCEL_SECONDS = 5.0  # a cancel ends a running job within this, whatever the kind
# Deadlines, generous for a loaded machine: each job here takes about a second.
START_SECONDS = 60.0  # runners started together, to register
CONNECT_SECONDS = 10  # a client, to reach a registered runner's scheduler
JOB_SECONDS = 120.0  # every job of a scenario, to end
UNDER_WAY_SECONDS = 60.0  # every job of a scenario, to get under way
ASKED_SECONDS = 30.0  # every job asked to cancel or stop, to end
DRAIN_SECONDS = 10.0  # a pool's schedulers, to drop the tasks of ended jobs
# The test that sets the kill scenario off waits the longest: the pool's start, the uninterrupted
# runs, the holds, the jobs under way, a new runner's start and the jobs' end.
pytestmark = pytest.mark.timeout(
    2 * START_SECONDS
    + 2 * JOB_SECONDS
    + CONNECT_SECONDS * len(KINDS)
    + UNDER_WAY_SECONDS
    + DRAIN_SECONDS
    + 60
)


def example_params(kind: Kind, artifacts: Place) -> dict[str, Any]:
    """The kind's own example (`register(example=...)`), else its defaults; uploads kept in
    `artifacts` as the form keeps them."""
    params = kind.example() if kind.example is not None else {}
    for info in registry.describe(kind.params):
        if info.type == "upload" and isinstance(params.get(info.name), bytes):
            store = artifacts.store()
            kept = datasets.store(store, f"{info.name}.csv", params[info.name])
            params[info.name] = kept.model_dump()
    return params


# --- checks of a kind's own numbers, where a kind has them (none is required) -------------------


def _pi(job: JobDetail, p: Mapping[str, Any]) -> None:
    r = job.result or {}
    # The same seed gives the same count, computed here without Dask or the store.
    assert r["inside"] == expected_inside(p["samples"], p["chunks"], p["seed"])
    assert r["samples"] == p["samples"]
    assert abs(r["estimate"] - math.pi) < 5 * r["standard_error"]
    steps, _ = job.series["estimate"]
    assert len(steps) == p["chunks"] and steps == sorted(steps) and steps[-1] == p["samples"]
    assert any(f"{p['chunks']} chunks" in line.message for line in job.logs)


def _demo(job: JobDetail, p: Mapping[str, Any]) -> None:
    assert job.result == {"stages": [s.name for s in job.stages]}  # no timings in the result
    steps, seconds = job.series["stage_seconds"]
    assert steps == [float(i) for i in range(1, p["stages"] + 1)]
    assert all(s >= p["seconds_per_stage"] for s in seconds), seconds


def _option(job: JobDetail, p: Mapping[str, Any]) -> None:
    r = job.result or {}
    assert set(r) == {
        "price", "standard_error", "ci_low", "ci_high", "delta", "paths", "partial", "seed",
    }  # fmt: skip
    assert r["ci_low"] < r["price"] < r["ci_high"] and r["paths"] == p["paths"]
    assert {"price", "ci_low", "ci_high"} <= set(job.series)


def _optimize(job: JobDetail, p: Mapping[str, Any]) -> None:
    assert max(abs(x - 1) for x in (job.result or {})["best_x"]) < 1e-3
    assert "best_f" in job.series


def _bootstrap(job: JobDetail, p: Mapping[str, Any]) -> None:
    r = job.result or {}
    assert r["ci_low"] < r["estimate"] < r["ci_high"] and r["resamples"] == p["resamples"]
    assert {"ci_low", "ci_high"} <= set(job.series)


def _portfolio(job: JobDetail, p: Mapping[str, Any]) -> None:
    r = job.result or {}
    assert r["var"]["0.95"] < r["var"]["0.99"] < r["cvar"]["0.99"]
    assert r["scenarios"] == p["scenarios"]
    assert {"var_0.95", "var_0.99"} <= set(job.series)


RESULT_CHECKS: dict[str, Callable[[JobDetail, Mapping[str, Any]], None]] = {
    "monte_carlo_pi": _pi,
    "demo_stages": _demo,
    "option_pricing": _option,
    "optimize": _optimize,
    "bootstrap": _bootstrap,
    "portfolio_risk": _portfolio,
}


def _pi_partial(job: JobDetail, whole: JobDetail, p: Mapping[str, Any]) -> None:
    r, n = job.result or {}, p["samples"]
    assert 0 < r["samples"] < n and r["samples"] % (n // p["chunks"]) == 0
    # The honest estimate over the samples kept, with its wider error.
    assert r["estimate"] == 4.0 * r["inside"] / r["samples"]
    assert r["standard_error"] > math.sqrt(math.pi * (4 - math.pi) / n)
    assert abs(r["estimate"] - math.pi) < 6 * r["standard_error"]


def _option_partial(job: JobDetail, whole: JobDetail, p: Mapping[str, Any]) -> None:
    r = job.result or {}
    assert 0 < r["paths"] < p["paths"] and r["ci_low"] < r["price"] < r["ci_high"]
    assert r["standard_error"] > (whole.result or {})["standard_error"]


def _portfolio_partial(job: JobDetail, whole: JobDetail, p: Mapping[str, Any]) -> None:
    assert 0 < (job.result or {})["scenarios"] < p["scenarios"]


def _bootstrap_partial(job: JobDetail, whole: JobDetail, p: Mapping[str, Any]) -> None:
    assert 0 < (job.result or {})["resamples"] < p["resamples"]


PARTIAL_CHECKS: dict[str, Callable[[JobDetail, JobDetail, Mapping[str, Any]], None]] = {
    "monte_carlo_pi": _pi_partial,
    "option_pricing": _option_partial,
    "portfolio_risk": _portfolio_partial,
    "bootstrap": _bootstrap_partial,
}


# --- holding a runner's Dask worker -------------------------------------------------------------

HOLD = "runlab-test-hold"


def _hold_after(starts: int, name: str) -> Callable[[Any], None]:
    def hold(dask_worker: Any) -> None:  # runs on the worker's event loop
        state = dask_worker.state

        class Counter:
            def __init__(self) -> None:
                self.left = starts

            def transition(self, key: Any, start: str, finish: str, *args: Any, **kw: Any) -> None:
                # A chunk's start, not that of the task that loads the chunks' data.
                if finish == "executing" and not str(key).startswith(f"{LOAD}-"):
                    self.left -= 1
                    if self.left <= 0:
                        state.running = False  # what a pause does, unknown to the scheduler

        dask_worker.plugins[name] = Counter()
        if starts <= 0:
            state.running = False

    return hold


def _release(name: str) -> Callable[[Any], None]:
    def release(dask_worker: Any) -> None:
        from distributed.core import Status as WorkerStatus
        from distributed.worker_state_machine import UnpauseEvent

        dask_worker.plugins.pop(name, None)
        if not dask_worker.state.running and dask_worker.status == WorkerStatus.running:
            dask_worker.handle_stimulus(UnpauseEvent(stimulus_id=f"release-{time.time()}"))

    return release


class Hold:
    """A client of a runner's scheduler that can stop its workers from starting tasks.

    A held worker finishes the task in hand and keeps the rest waiting; it still answers the
    scheduler, which is not told, so nothing is moved elsewhere. A runner that claims only
    while its cluster has a worker goes on claiming.
    """

    def __init__(self, address: str) -> None:
        self.client = Client(address, timeout=f"{CONNECT_SECONDS}s")

    def after(self, starts: int) -> None:
        """Let each worker start `starts` more tasks, then none."""
        self.client.run(_hold_after(starts, HOLD))

    def release(self) -> None:
        self.client.run(_release(HOLD))

    def tasks(self) -> int:
        """How many tasks the scheduler holds, of any client."""
        return int(self.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)


# --- one backend's store and runner -------------------------------------------------------------


@dataclass
class Run:
    """One job, every distinct state it was seen in, and what was asked of it."""

    job: str | None = None
    refused: str | None = None  # why it could not be submitted
    states: list[JobDetail] = field(default_factory=list)
    asked_at: float | None = None
    ended_at: float | None = None
    at_request: JobDetail | None = None
    outcome: Any = None
    stop_outcome: Any = None
    saved: int = 0  # checkpoints on disk when its runner was killed
    tasks_left: int | None = None  # on the cluster once the job had ended, before any release

    @property
    def final(self) -> JobDetail:
        assert self.job is not None, f"the job was not submitted: {self.refused}"
        assert self.states, f"job {self.job} was never seen"
        return self.states[-1]


def _seen(engine: Any, run: Run) -> JobDetail:
    job = queries.get_job(engine, run.job or "")
    last = run.states[-1] if run.states else None
    if last is None or (job.progress, job.status, job.stage) != (
        last.progress,
        last.status,
        last.stage,
    ):
        run.states.append(job)
    if job.status.terminal and run.ended_at is None:
        run.ended_at = time.monotonic()
    return job


def watch_all(engine: Any, runs: Mapping[str, Run], timeout: float = JOB_SECONDS) -> None:
    """Poll every job until all have ended, keeping each one's distinct states; a job still
    going at `timeout` is left for its own test to report."""

    def ended() -> bool:
        seen = [_seen(engine, r) for r in runs.values() if r.job is not None and r.ended_at is None]
        return all(job.status.terminal for job in seen)

    with contextlib.suppress(AssertionError):
        wait_for(ended, timeout=timeout, what="every job to end", interval=0.05)


def tasks_seen(job: JobDetail) -> int:
    """Tasks done whose stage has since reported its progress: the driver has taken in their
    results (and saved what it saves) before it reports progress."""
    if job.cost is None:
        return 0
    progress = {s.name: s.progress for s in job.stages}
    return sum(s.cost.tasks for s in job.cost.stages if progress.get(s.name, 0.0) > 0)


def registered(engine: Any, runners: list[RunnerProcess]) -> list[RunnerView]:
    """The runners' rows, once all have registered."""
    pids = [r.proc.pid for r in runners]

    def rows() -> list[RunnerView] | None:
        for r in runners:
            if r.proc.poll() is not None:
                raise AssertionError(f"runner exited early:\n{r.log()}")
        found = {v.pid: v for v in queries.runners(engine, alive_within=60) if v.pid in pids}
        return [found[pid] for pid in pids] if len(found) == len(pids) else None

    return wait_for(rows, timeout=START_SECONDS, what="the runners to register")


def wait_running(
    engine: Any, runs: Mapping[str, Run], tasks_done: int = 0, *, series: bool = False
) -> None:
    """Wait until every job still going is running in a stage, with `tasks_done` tasks seen
    and, if asked, a point of a live series."""

    def ready(run: Run) -> bool:
        job = queries.get_job(engine, run.job or "")
        return job.status.terminal or (
            job.status is Status.RUNNING
            and job.stage is not None
            and tasks_seen(job) >= tasks_done
            and (bool(job.series) or not series)
        )

    with contextlib.suppress(AssertionError):
        wait_for(
            lambda: all(ready(r) for r in runs.values() if r.job is not None),
            timeout=UNDER_WAY_SECONDS,
            what="every job to be under way",
        )


def checkpoints(artifacts: Place, job: str) -> list[str]:
    return [k for k in artifacts.files(f"jobs/{job}/checkpoints") if k.endswith(".json")]


def moves(engine: Any, job: str) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(JobEvent.attempt, JobEvent.to_status)
            .join(Job, Job.id == JobEvent.job_id)
            .where(Job.public_id == job, JobEvent.kind == "transition")
            .order_by(JobEvent.id)
        ).all()
    return [(int(a), str(s)) for a, s in rows]


def requests(engine: Any, job: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(JobEvent.message)
            .join(Job, Job.id == JobEvent.job_id)
            .where(Job.public_id == job, JobEvent.kind == "request")
        ).scalars()
        return list(rows)


def stored_rows(engine: Any) -> dict[str, int]:
    """Rows of the jobs table and of every table that holds a job's parts."""
    tables = [t for t in Base.metadata.sorted_tables if t.name == "jobs" or "job_id" in t.c]
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables
        }


class Bench:
    """One backend's store and artifact folder, and a pool of runners that each run one job at a
    time on one Dask worker, shared by the module's tests.

    Each scenario runs once, every kind's job at the same time on a runner of its own, and
    keeps what each job did for the tests of each kind to check. The last one kills the pool.
    """

    def __init__(self, url: str, folder: Path, artifacts: Place) -> None:
        self.url = url
        self.folder = folder
        self.artifacts = artifacts
        self.engine = make_engine(url)
        self.started: list[RunnerProcess] = []
        self.pool = [
            self.launch("--concurrency", "1", workers=1, RUNLAB_LEASE_SECONDS=POOL_LEASE)
            for _ in KINDS
        ]
        self._holds: list[Hold] = []
        self._examples: dict[str, dict[str, Any]] = {}
        self._references: dict[str, Run] | None = None
        self._cancelled: dict[str, Run] | None = None
        self._stopped: dict[str, Run] | None = None
        self._resumed: dict[str, Run] | None = None

    def launch(self, *args: str, workers: int, **env: str) -> RunnerProcess:
        log = self.folder / f"runner-{len(self.started)}.log"
        runner = launch(
            self.url,
            self.folder / "artifacts",
            log,
            *args,
            workers=workers,
            **{**self.artifacts.env, **env},
        )
        self.started.append(runner)
        return runner

    def started_pool(self) -> None:
        registered(self.engine, self.pool)

    def hold(self, starts: int) -> None:
        """Let the pool's workers start `starts` more tasks each, then none."""
        if not self._holds:
            for row in registered(self.engine, self.pool):
                assert row.scheduler_address is not None
                self._holds.append(Hold(row.scheduler_address))
        for h in self._holds:
            h.after(starts)

    def drained(self) -> int:
        """Tasks left on the pool's schedulers once they have dropped what they can."""

        def left() -> int:
            return sum(h.tasks() for h in self._holds)

        with contextlib.suppress(AssertionError):
            wait_for(lambda: left() == 0, timeout=DRAIN_SECONDS, what="the tasks to be dropped")
        return left()

    def release(self) -> int:
        """Let the pool's workers go; return the tasks their schedulers held before."""
        left = self.drained()
        for h in self._holds:
            h.release()
        self.drained()
        return left

    def example(self, kind: Kind) -> dict[str, Any]:
        if kind.name not in self._examples:
            self._examples[kind.name] = example_params(kind, self.artifacts)
        return self._examples[kind.name]

    def submit(self, kind: Kind, rerun_of: Run | None = None) -> Run:
        """A job of the kind: an exact re-run of `rerun_of` where it ran, else its example."""
        run = Run()
        try:
            if rerun_of is not None and rerun_of.job is not None:
                run.job = intake.rerun(self.engine, rerun_of.job)
            else:
                run.job = intake.submit(self.engine, kind.name, self.example(kind))
        except Exception as exc:  # reported by the kind's own test
            run.refused = f"{type(exc).__name__}: {exc}"
        return run

    def references(self) -> dict[str, Run]:
        """Every kind's example, run to the end: the uninterrupted runs."""
        if self._references is None:
            self.started_pool()
            runs = {k.name: self.submit(k) for k in KINDS}
            watch_all(self.engine, runs)
            self._references = runs
        return self._references

    def cancelled(self) -> dict[str, Run]:
        """Every kind's job held after its first task, then cancelled."""
        if self._cancelled is None:
            refs = self.references()
            self.hold(1)
            runs = {k.name: self.submit(k, refs[k.name]) for k in KINDS}
            try:
                wait_running(self.engine, runs, tasks_done=1, series=True)
                for kind in KINDS:
                    run = runs[kind.name]
                    if run.job is None:
                        continue
                    run.at_request = queries.get_job(self.engine, run.job)
                    if not kind.stoppable:
                        run.stop_outcome = transitions.request_stop(self.engine, run.job, STOPPABLE)
                    run.asked_at = time.monotonic()
                    run.outcome = transitions.request_cancel(self.engine, run.job)
                watch_all(self.engine, runs, timeout=ASKED_SECONDS)
            finally:
                left = self.release()
            for run in runs.values():
                run.tasks_left = left
            self._cancelled = runs
        return self._cancelled

    def stopped(self) -> dict[str, Run]:
        """Every stoppable kind's job held after its first task, then stopped through
        `runlab stop`."""
        if self._stopped is None:
            refs = self.references()
            self.hold(1)
            runs = {k.name: self.submit(k, refs[k.name]) for k in KINDS if k.stoppable}
            try:
                wait_running(self.engine, runs, tasks_done=1)
                for run in runs.values():
                    if run.job is None:
                        continue
                    run.at_request = queries.get_job(self.engine, run.job)
                    env = {"RUNLAB_DATABASE_URL": self.url}
                    run.outcome = CliRunner().invoke(cli, ["stop", run.job], env=env)
                watch_all(self.engine, runs, timeout=ASKED_SECONDS)
            finally:
                left = self.release()
            for run in runs.values():
                run.tasks_left = left
            self._stopped = runs
        return self._stopped

    def resumed(self) -> dict[str, Run]:
        """Every kind's job held after its first task; the whole pool killed at once, then one
        new runner, on two workers, to finish them all."""
        if self._resumed is None:
            refs = self.references()
            self.hold(1)
            runs = {k.name: self.submit(k, refs[k.name]) for k in KINDS}
            try:
                wait_running(self.engine, runs, tasks_done=1)
                heir = self.launch("--concurrency", str(len(KINDS)), workers=2)
                for run in runs.values():
                    if run.job is not None:
                        run.saved = len(checkpoints(self.artifacts, run.job))
                        run.at_request = queries.get_job(self.engine, run.job)
            finally:
                for h in self._holds:
                    h.close()
                self._holds = []
                for runner in self.pool:
                    runner.kill()  # SIGKILL to each runner and its Dask worker: no goodbye
            heir.registered(self.engine, timeout=START_SECONDS)
            watch_all(self.engine, runs)
            self._resumed = runs
        return self._resumed

    def close(self) -> None:
        for h in self._holds:
            h.close()
        for runner in self.started:
            runner.kill()
        self.engine.dispose()


@contextlib.contextmanager
def fresh_store(backend: str, folder: Path) -> Iterator[str]:
    """A migrated, empty store: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        url = sqlite_url(folder)
        eng = make_engine(url)
        migrate(eng)
        eng.dispose()
        yield url
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
        eng = make_engine(url)
        migrate(eng)
        eng.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def bench(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bench]:
    folder = tmp_path_factory.mktemp(f"contract-{request.param}")
    # As deployed: one machine keeps its files in a folder beside SQLite; a team's runners on
    # many hosts share PostgreSQL and an S3 bucket.
    if request.param == "sqlite":
        artifacts = folder_place(folder / "artifacts")
    else:
        artifacts = bucket_place(request.getfixturevalue("s3"))
    with fresh_store(request.param, folder) as url:
        b = Bench(url, folder, artifacts)
        try:
            yield b
        finally:
            b.close()


each_kind = pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])


# --- the contract -------------------------------------------------------------------------------


def bad_value(info: FieldInfo) -> Any:
    """A value the field's own rule refuses."""
    if info.type in ("int", "float"):
        if info.maximum is not None:
            beyond = 2 * info.maximum + 1
            return int(beyond) if info.type == "int" else float(beyond)
        if info.minimum is not None:
            return int(info.minimum) - 1 if info.type == "int" else float(info.minimum) - 1
        return "not a number"
    return {
        "choice": "not one of the choices",
        "bool": "not a bool",
        "list": "1, 2",
        "matrix": "1, 2",
        "upload": {"name": "x.csv"},
    }.get(info.type, 12345)


def refusal(engine: Any, kind: Kind, params: Mapping[str, Any]) -> dict[str, str]:
    try:
        job = intake.submit(engine, kind.name, params)
    except InvalidParams as exc:
        return exc.errors
    raise AssertionError(f"{kind.name} took {dict(params)!r} as job {job}")


@each_kind
def test_bad_parameters_are_refused_field_by_field_and_nothing_is_stored(
    bench: Bench, kind: Kind
) -> None:
    good = bench.example(kind)
    registry.validate(kind.name, good)  # the example itself is fine
    infos = registry.describe(kind.params)
    cases = [(i.name, {**good, i.name: bad_value(i)}) for i in infos]
    cases += [(i.name, {k: v for k, v in good.items() if k != i.name}) for i in infos if i.required]
    cases.append(("no_such_parameter", {**good, "no_such_parameter": 1}))
    before = stored_rows(bench.engine)
    for name, params in cases:
        errors = refusal(bench.engine, kind, params)
        assert name in errors, (name, params.get(name), errors)
        assert isinstance(errors[name], str) and errors[name].strip(), errors
    assert stored_rows(bench.engine) == before


@each_kind
def test_a_small_job_succeeds_with_rising_progress_every_stage_done_and_a_result(
    bench: Bench, kind: Kind
) -> None:
    run = bench.references()[kind.name]
    final = run.final
    assert final.status is Status.SUCCEEDED, (final.status, final.error, final.traceback)
    assert final.attempt == 1
    progress = [s.progress for s in run.states]
    assert progress == sorted(progress) and progress[-1] == 1.0, progress
    assert [s.name for s in final.stages] == kind.stage_names(final.params)
    assert all(s.status == "done" for s in final.stages), final.stages
    for before, after in zip(final.stages, final.stages[1:], strict=False):
        assert before.finished_at is not None and after.started_at is not None
        assert before.finished_at <= after.started_at, (before, after)
    result = final.result
    assert isinstance(result, dict) and result
    if "seed" in final.params:
        assert result["seed"] == final.params["seed"]
    if kind.stoppable:
        assert result["partial"] is False
    assert final.series, "no live series was reported"
    # At least three tasks: a stop or a crash falls after the first, and two are left to run.
    assert final.cost is not None and final.cost.total.tasks >= 3, final.cost
    assert {"runlab", "numpy", "scipy", "dask"} <= set(final.versions)
    if kind.name in RESULT_CHECKS:
        RESULT_CHECKS[kind.name](final, final.params)
    # A finished job stays as it is.
    stop = transitions.request_stop(bench.engine, run.final.id, STOPPABLE)
    assert stop is transitions.StopOutcome.ALREADY_FINISHED
    cancel = transitions.request_cancel(bench.engine, run.final.id)
    assert cancel is transitions.CancelOutcome.ALREADY_FINISHED
    assert queries.get_job(bench.engine, final.id).result == result
    assert_sound(bench.engine)


@each_kind
def test_cancel_ends_a_running_job_within_seconds_keeping_its_series_dropping_its_tasks(
    bench: Bench, kind: Kind
) -> None:
    run = bench.cancelled()[kind.name]
    assert run.at_request is not None, run.refused
    assert run.at_request.status is Status.RUNNING, run.at_request.status
    assert run.outcome is transitions.CancelOutcome.REQUESTED
    if not kind.stoppable:
        assert run.stop_outcome is transitions.StopOutcome.NOT_STOPPABLE
    final = run.final
    assert final.status is Status.CANCELLED, (final.status, final.error)
    assert final.result is None and final.attempt == 1
    # What it had reported before the cancel stays: the page still shows how far it got.
    assert run.at_request.series, "no live series before the cancel"
    for name, (steps, values) in run.at_request.series.items():
        kept_steps, kept_values = final.series[name]
        assert (kept_steps[: len(steps)], kept_values[: len(values)]) == (steps, values), name
    assert run.ended_at is not None and run.asked_at is not None
    assert run.ended_at - run.asked_at < CANCEL_SECONDS, run.ended_at - run.asked_at
    assert run.tasks_left == 0  # its waiting tasks were cancelled on the cluster, not left to run
    assert_sound(bench.engine)


@each_kind
def test_stop_and_keep_ends_a_stoppable_job_with_a_partial_result(bench: Bench, kind: Kind) -> None:
    if not kind.stoppable:
        # Refused while it runs (asked in the cancel scenario, where it was running).
        assert bench.cancelled()[kind.name].stop_outcome is transitions.StopOutcome.NOT_STOPPABLE
        return
    whole = bench.references()[kind.name].final
    run = bench.stopped()[kind.name]
    assert run.at_request is not None, run.refused
    assert run.at_request.status is Status.RUNNING, run.at_request.status
    out = run.outcome
    assert out.exit_code == 0 and "stop requested" in out.output, out.output
    final = run.final
    assert final.status is Status.SUCCEEDED, (final.status, final.error, final.traceback)
    result = final.result or {}
    assert result.get("partial") is True, result
    # The job says so itself, and its progress is the share of the work its result covers.
    assert (final.partial, final.outcome) == (True, "partial")
    assert 0 < final.progress < 1, final.progress
    assert not whole.partial and whole.progress == 1.0
    assert set(result) == set(whole.result or {})
    assert final.cost is not None and whole.cost is not None
    assert 0 < final.cost.total.tasks < whole.cost.total.tasks
    assert requests(bench.engine, final.id) == ["stop and keep requested"]
    assert run.tasks_left == 0  # the tasks not begun were cancelled on the cluster
    if kind.name in PARTIAL_CHECKS:
        PARTIAL_CHECKS[kind.name](final, whole, final.params)
    assert_sound(bench.engine)


@each_kind
def test_a_runner_killed_mid_job_is_replaced_and_the_job_resumes_to_the_same_result(
    bench: Bench, kind: Kind
) -> None:
    whole = bench.references()[kind.name].final
    run = bench.resumed()[kind.name]
    at_kill = run.at_request
    assert at_kill is not None, run.refused
    assert at_kill.status is Status.RUNNING and at_kill.attempt == 1, at_kill.status
    assert at_kill.cost is not None and at_kill.cost.total.tasks >= 1
    final = run.final
    assert final.status is Status.SUCCEEDED, (final.status, final.error, final.traceback)
    assert [(a.attempt, a.outcome) for a in final.attempts] == [(1, "requeued"), (2, "succeeded")]
    assert moves(bench.engine, final.id) == [
        (0, "queued"),
        (1, "running"),
        (1, "queued"),
        (2, "running"),
        (2, "succeeded"),
    ]
    # The same numbers as the uninterrupted run on one worker, bit for bit, on two.
    assert final.params == whole.params
    assert final.result == whole.result
    assert final.versions == whole.versions == software_versions()
    if run.saved:  # what the first attempt kept was not computed again
        assert final.cost is not None and whole.cost is not None
        assert final.cost.total.tasks < whole.cost.total.tasks, (run.saved, final.cost)
    wait_for(
        lambda: not checkpoints(bench.artifacts, final.id),
        timeout=10,
        what="the job's checkpoints to be removed",
    )
    assert_sound(bench.engine)
