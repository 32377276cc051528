"""JobContext: what a driver uses to report on its job, and the only door to the store it has."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import distributed
from dask.utils import funcname
from distributed import Client, Future, as_completed
from sqlalchemy import Engine

from compute.cost import CostLedger, MeteredClient, StageKey
from compute.seeds import spawn
from jobstore import reports
from jobstore.models import StageStatus
from jobstore.reports import Lease, Report, StageUpdate
from jobstore.views import Cost
from runlab.artifacts import ArtifactStore, UploadSource
from runlab.errors import JobCancelled, JobTimedOut, LostJob, NoWorkers, UploadMissing

log = logging.getLogger(__name__)

LEVELS = ("debug", "info", "warning", "error")
# While a driver waits on Dask it looks up from the wait this often, and reads what the user
# asked of the job (cancel, stop) at least this often: a request takes effect within seconds,
# however long a task runs.
WAIT_STEP = 0.25
ASK_PERIOD = 1.0
# The key of map_chunks' `load` task starts so: on the dashboard, and to whatever counts chunks.
LOAD = "load"
CHECKPOINTS = "checkpoints"  # the folder of a job's artifacts that holds its checkpoints
# After a checkpoint fails, seconds before the next is tried: a bucket that does not answer
# costs each try its client's retries, seconds each, which would stall every chunk.
CHECKPOINT_BACKOFF = 30.0

T = TypeVar("T")
NO_TASKS = Cost()  # what an attempt that submitted no task cost


class _Reporting(Protocol):
    """What the chunk loop uses of a context: JobContext, or a test's in-memory stand-in."""

    client: Any
    covered: float | None

    def log(self, level: str, message: str) -> None: ...

    def progress(self, done: float, total: float) -> None: ...

    def checkpoint(self, key: str, value: Any) -> None: ...

    def checkpoints(self) -> dict[str, Any]: ...

    def as_completed(self, futures: Iterable[Any]) -> Iterator[tuple[Any, Any]]: ...

    def everywhere(self, future: Any) -> None: ...

    def release(self, futures: Sequence[Any]) -> None: ...


class Flag:
    """What a threading.Event is to the driver and the runner here, set and read but never
    waited on; a plain attribute is enough under the GIL, and costs a job far less to make."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set


class ChunkLoop:
    """The one driver loop of the chunked kinds, for any context that reports like JobContext."""

    # The share of its chunks that a loop stopped early kept; None while nothing was left out.
    covered: float | None = None

    def map_chunks(
        self: _Reporting,
        kernel: Callable[..., T],
        chunks: Sequence[tuple[Any, ...]],
        *,
        seed: int,
        resume: Callable[[Mapping[str, Any]], Mapping[int, T]] | None = None,
        save: Callable[[int, T], Any] | None = None,
        add: Callable[[int, T], None] | None = None,
        show: Callable[[], None] | None = None,
        load: tuple[Callable[..., Any], tuple[Any, ...]] | None = None,
        name: str = "chunk",
    ) -> dict[int, T]:
        """Run `kernel` once per chunk on Dask; return the chunks that finished, by index.

        Chunk i runs as `kernel(*chunks[i], seed_i)`, or, with `load=(fn, args)`, as
        `kernel(data, *chunks[i], seed_i)`, where `data` is `fn(*args)`: made once, and only if
        some chunk is left to run, by a task of its own on a worker, which reads what it needs
        (an upload) from the artifact store itself. The chunks take it from there, worker to
        worker, and nothing of it passes through the runner.
        `seed_i` is the i-th stream spawned from `seed` (`compute.seeds.spawn`), so a chunk's
        result depends on the parameters, the seed and i only, never on who ran it or when.

        `resume` picks, from what earlier attempts saved, the chunks that fit this plan; each
        chunk that finishes is saved as checkpoint `{name}-{i}` (`save(i, result)`, or the
        result itself), so that a resumed run ends with the results of an uninterrupted one.
        `add(i, result)` folds every kept chunk into the driver's running totals (the resumed
        ones first, by index, then each as it finishes), and `show()` draws them on the live
        chart, once after the resumed chunks and after each chunk that finishes.

        Progress is the share of chunks done. A cancel raises; a "stop and keep" ends the loop
        with what finished, logged as partial; a stop before any chunk finished raises
        JobCancelled, as there is nothing to keep.
        """
        total = len(chunks)
        seeds = spawn(seed, total)
        done: dict[int, T] = {} if resume is None else dict(resume(self.checkpoints()))
        if done:
            self.log("info", f"resuming: {len(done)} of {total} {name}s already done")
            if add is not None:
                for i in sorted(done):
                    add(i, done[i])
            self.progress(len(done), total)
            if show is not None:
                show()
        todo = [i for i in range(total) if i not in done]
        lead: tuple[Any, ...] = ()
        futures: dict[Any, int] = {}
        try:
            if todo and load is not None:
                key = f"{LOAD}-{funcname(load[0])}-{uuid.uuid4().hex}"
                lead = (self.client.submit(load[0], *load[1], key=key, pure=False),)
                self.everywhere(lead[0])
            futures = {
                self.client.submit(kernel, *lead, *chunks[i], seeds[i], pure=False): i for i in todo
            }
            for k, (fut, result) in enumerate(self.as_completed(futures), start=len(done) + 1):
                i = futures[fut]
                done[i] = result
                self.checkpoint(f"{name}-{i}", result if save is None else save(i, result))
                self.progress(k, total)
                if add is not None:
                    add(i, result)
                if show is not None:
                    show()
        finally:
            self.release([*lead, *futures])
        if total and not done:
            raise JobCancelled(f"stopped before any {name} finished: there is nothing to keep")
        if len(done) < total:
            self.log("info", f"stopped early: kept {len(done)} of {total} {name}s")
            self.covered = len(done) / total
        return dict(sorted(done.items()))

    def everywhere(self, future: Any) -> None:
        """Have a loaded value on every worker before the chunks that read it are submitted.
        Without a cluster there is nothing to spread."""

    def release(self, futures: Sequence[Any]) -> None:
        """Let the cluster drop what the loop's tasks hold, now that it has their results.
        Without a cluster there is nothing to drop."""


class JobContext(ChunkLoop):
    """Buffers a driver's reports and writes them, throttled, behind the attempt's fence.

    Progress, stage changes, metrics, log lines and what the tasks cost so far are written at
    most once per `write_interval`; the runner's flush loop writes what a quiet driver leaves
    pending. A write that finds the attempt fenced out marks the context lost, and the
    driver's next call raises `LostJob`.

    `client` is the Dask client behind a meter: each task submitted through it reports its
    CPU time, wall time and peak memory against the stage it was submitted in
    (compute/cost.py). A chunked kind runs its tasks through `map_chunks` (`ChunkLoop`).
    `resources` are those of the job's queue: each task asks the scheduler for them.
    """

    def __init__(
        self,
        engine: Engine,
        lease: Lease,
        client: Client | None,
        *,
        stage_names: list[str],
        stage_weights: list[float] | None = None,
        write_interval: float = 0.25,
        lease_seconds: float = 30.0,
        artifacts: ArtifactStore | None = None,
        stoppable: bool = False,
        clock: Callable[[], float] = time.monotonic,
        resources: Mapping[str, float] | None = None,
    ) -> None:
        self._engine = engine
        self._artifacts = artifacts
        self.lease = lease
        # The metered client and its ledger are made when the driver first asks for the client
        # (`client`): a driver that submits no task costs no ledger, token or subscription.
        self._dask = client
        self._resources = resources
        self._metered: MeteredClient | None = None
        self._ledger: CostLedger | None = None
        self._stage_names = list(stage_names)
        # Where each declared stage starts on the overall bar, and its share of it.
        if stage_weights is None and len(stage_names) == 1:
            self._shares, self._starts = [1.0], [0.0]  # most kinds: one stage, the whole bar
        else:
            weights = list(stage_weights or [1.0] * len(stage_names))
            total = sum(weights) or 1.0
            self._shares = [w / total for w in weights]
            self._starts = [sum(self._shares[:i]) for i in range(len(self._shares))]
        self._interval = write_interval
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._lock = threading.Lock()  # guards _pending and the counters
        self._flush_lock = threading.Lock()  # keeps batches in order
        self._pending = Report()
        # The claim has just written the job: the first reports may wait one interval, so a
        # short job's stages go to the store with its result, in one transaction.
        self._last_write = clock()
        self._stage: tuple[int, str] | None = None
        self._progress = 0.0
        self._deadline = None if lease.timeout_seconds is None else clock() + lease.timeout_seconds
        self.cancel_requested = Flag()
        # "Stop and keep": the driver ends its chunk loop early and keeps what finished.
        self.stop_requested = Flag()
        self.stoppable = stoppable  # only kinds that mark a partial result honour a stop
        self.lost = Flag()
        # Set by the runner once its cluster has had no worker for too long: the driver stops
        # and the attempt is handed back.
        self.no_workers = Flag()
        self.no_workers_reason = ""
        self._last_asked = clock()
        self._db_trouble = False
        self._checkpoint_failed = False  # said once in the job's log, not once per chunk
        self._checkpoints_after = -math.inf  # no checkpoint is tried before then
        # Whether this attempt tried to save one: a first attempt that did not left none.
        self.wrote_checkpoints = False

    @property
    def client(self) -> Any:
        """The Dask client behind a meter (None without a cluster), made at first use."""
        if self._metered is None and self._dask is not None:
            ledger = CostLedger()
            metered = MeteredClient(self._dask, ledger, self._current_stage, self._resources)
            with self._lock:  # the flush thread reads the ledger under it
                self._ledger, self._metered = ledger, metered
        return self._metered

    @client.setter
    def client(self, value: Any) -> None:
        self._metered = value

    @property
    def job_id(self) -> str:
        return self.lease.public_id

    @property
    def attempt(self) -> int:
        return self.lease.attempt

    # --- reporting ------------------------------------------------------------------------------

    def _current_stage(self) -> StageKey | None:
        """The stage a task submitted now is charged to (the driver's thread sets it)."""
        return self._stage

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Mark a named stage running for the block, and done when it exits cleanly."""
        self.check_cancelled()
        with self._lock:
            idx = (
                self._stage_names.index(name)
                if name in self._stage_names
                else len(self._stage_names)
            )
            if idx == len(self._stage_names):
                self._stage_names.append(name)
            self._stage = (idx, name)
            self._pending.stage = name
            self._pending.stage_updates.append(
                StageUpdate(idx, name, StageStatus.RUNNING, 0.0, started=True)
            )
            self._set_progress(idx, 0.0)
        self._maybe_flush()
        yield
        with self._lock:
            self._pending.stage_updates.append(
                StageUpdate(idx, name, StageStatus.DONE, 1.0, finished=True)
            )
            self._set_progress(idx, 1.0)
            self._stage = None
        self._maybe_flush()

    def progress(self, done: float, total: float) -> None:
        """Progress within the current stage (or the whole job outside any stage)."""
        frac = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
        with self._lock:
            if self._stage is None:
                self._progress = max(self._progress, frac)
                self._pending.progress = self._progress
            else:
                idx, name = self._stage
                self._pending.stage_updates.append(StageUpdate(idx, name, progress=frac))
                self._set_progress(idx, frac)
        self._maybe_flush()

    def metric(self, name: str, step: float, value: float) -> None:
        """One point of a series that the job page draws live."""
        with self._lock:
            self._pending.metrics.append((name, float(step), float(value)))
        self._maybe_flush()

    def log(self, level: str, message: str) -> None:
        level = level.lower()
        if level not in LEVELS:
            level = "info"
        log.log(logging.getLevelName(level.upper()), "[%s] %s", self.job_id, message)
        with self._lock:
            self._pending.logs.append((level, str(message)))
        self._maybe_flush()

    # --- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self, key: str, value: Any) -> None:
        """Save a small JSON value that a later attempt of this job can resume from.

        Keep each value a pure function of the parameters and seed (a chunk's count, say),
        so that a resumed run gives the numbers an uninterrupted one would.
        """
        if self._artifacts is None or self.lost.is_set():
            return
        if self._clock() < self._checkpoints_after:
            return  # the store failed a moment ago: trying each chunk would stall the loop
        self.wrote_checkpoints = True
        try:
            self._artifacts.put_json(self.job_id, f"{CHECKPOINTS}/{key}.json", value)
        except OSError as exc:
            # Losing a checkpoint costs only recomputation, so the job goes on; but its page
            # says so once, since a retry would start that part over.
            log.debug("could not save checkpoint %s of %s", key, self.job_id, exc_info=True)
            self._checkpoints_after = self._clock() + CHECKPOINT_BACKOFF
            if not self._checkpoint_failed:
                self._checkpoint_failed = True
                self.log(
                    "warning",
                    f"could not save checkpoint {key} ({exc.strerror or exc}); the job goes "
                    "on, but if it is retried, the work not saved is done again",
                )

    def checkpoints(self) -> dict[str, Any]:
        """What earlier attempts of this job saved, by key."""
        if self._artifacts is None:
            return {}
        try:
            saved = self._artifacts.json_under(self.job_id, CHECKPOINTS)
        except OSError:
            log.warning("could not read the checkpoints of %s", self.job_id, exc_info=True)
            return {}
        return {k[len(CHECKPOINTS) + 1 : -len(".json")]: v for k, v in saved.items()}

    def read_upload(self, sha256: str) -> bytes:
        """The bytes of a file uploaded with the job, checked against their SHA-256."""
        if self._artifacts is None:
            raise UploadMissing("this runner has no artifact store to read uploads from")
        return self._artifacts.get_upload(sha256)

    def upload_source(self) -> UploadSource:
        """Where a task on a worker reads the job's uploads from (see `map_chunks`' `load`)."""
        if self._artifacts is None:
            raise UploadMissing("this runner has no artifact store to read uploads from")
        return self._artifacts.source()

    def check_cancelled(self) -> None:
        """Raise if the driver should stop: cancelled, out of time, or no longer this attempt's."""
        self._maybe_flush()
        if self.lost.is_set():
            raise LostJob(self.lease.job_id, self.lease.attempt)
        if self.no_workers.is_set():
            raise NoWorkers(self.no_workers_reason or "the Dask cluster has no worker")
        if self.cancel_requested.is_set():
            raise JobCancelled(f"job {self.job_id} was cancelled")
        if self._deadline is not None and self._clock() >= self._deadline:
            raise JobTimedOut(
                f"the job ran past its timeout of {self.lease.timeout_seconds:g} s "
                f"(attempt {self.attempt})"
            )

    def as_completed(self, futures: Iterable[Future]) -> Iterator[tuple[Future, Any]]:
        """Yield (future, result) as Dask finishes them, checking for cancel in between.

        The wait looks up every `WAIT_STEP`, so a cancel, a stop, a timeout or a cluster left
        without workers ends it within seconds, even while one task runs for minutes.
        A "stop and keep" request ends the loop early without an error: the driver then sums
        up what finished, and marks its result partial. Whatever way the loop ends, the futures
        still pending are cancelled on the cluster.
        """
        futures = list(futures)
        done = as_completed(futures)
        try:
            while self._wait_for_one(done):
                fut = next(done)
                self.check_cancelled()
                yield fut, fut.result()  # finished work is kept, even once a stop is asked
                self.check_cancelled()
                if self.stop_requested.is_set():
                    return
        finally:
            pending = [f for f in futures if not f.done()]
            if pending and self.client is not None:
                self.client.cancel(pending)

    def everywhere(self, future: Future) -> None:
        """Copy a loaded value to every worker once it is made (checking for a cancel while it
        is). Dask runs a task where its inputs are: left on the one worker that loaded it, the
        chunks would queue there while the other workers idle, until work stealing moved a few;
        a bootstrap of 4 chunks on 2 workers ran 3 on one. A load that failed is not copied:
        the chunks fail with its error.

        The wait is on an event, not `distributed.wait` with a timeout: each of its timeouts
        raises an error whose traceback, caught in a cycle inside Dask's `sync`, kept this
        frame and the chunk loop's alive, and with them its futures, until the garbage
        collector ran: a cancelled job's finished tasks then stayed on the cluster."""
        made = threading.Event()
        future.add_done_callback(lambda _: made.set())
        while not made.wait(WAIT_STEP):
            self.check_cancelled()
        if future.status == "finished":
            self.client.replicate([future])

    def release(self, futures: Sequence[Future]) -> None:
        """Release the loop's futures as it ends, whichever way it ends, rather than when the
        last reference goes: a reference cycle anywhere on the way out (an exception's
        traceback holds every frame it passed) would keep their tasks, and the loaded data on
        every worker, until the garbage collector ran."""
        for future in futures:
            future.release()

    def _wait_for_one(self, done: distributed.as_completed) -> bool:
        """Block until a future is ready (True), or none is left or a stop was asked (False);
        raise meanwhile if the driver should no longer wait."""
        while not done.has_ready():
            if done.is_empty():
                return False
            self.check_cancelled()
            if self.stop_requested.is_set():
                return False
            if self._clock() - self._last_asked >= ASK_PERIOD:
                self._read_asked()
            # The future's callback puts it in the queue, then notifies under this condition:
            # checking inside it means no notification slips between the check and the wait.
            with done.thread_condition:
                if not done.has_ready():
                    done.thread_condition.wait(timeout=WAIT_STEP)
        return True

    def _read_asked(self) -> None:
        """A driver waiting on Dask writes nothing, so it reads back what the user asked."""
        self._last_asked = self._clock()
        try:
            asked = reports.asked(self._engine, self.lease)
        except Exception:  # the store is out: the heartbeat carries the request later
            log.debug("could not read the requests for %s", self.job_id, exc_info=True)
            return
        if asked is None:
            self.lost.set()
        else:
            self.ask(asked)

    # --- writing --------------------------------------------------------------------------------

    def _set_progress(self, idx: int, frac: float) -> None:
        if idx >= len(self._shares):  # an undeclared stage: no share of the bar to move
            return
        overall = min(1.0, self._starts[idx] + frac * self._shares[idx])
        if overall > self._progress:
            self._progress = overall
            self._pending.progress = overall

    def _maybe_flush(self) -> None:
        if self._clock() - self._last_write >= self._interval:
            self.flush()

    def flush_due(self) -> None:
        """Write what is pending if the interval has passed; for the runner's flush loop."""
        if not self.lost.is_set():
            with contextlib.suppress(LostJob):
                self._maybe_flush()

    def flush(self) -> None:
        """Write what is pending now. Raises LostJob if the attempt has been fenced out."""
        with self._flush_lock:
            with self._lock:
                self._collect_cost()
                batch, self._pending = self._pending, Report()
            if batch.empty():
                return
            try:
                asked = reports.report(
                    self._engine, self.lease, batch, lease_seconds=self._lease_seconds
                )
            except LostJob:
                self.lost.set()
                raise
            except Exception:
                if not self._db_trouble:
                    log.warning("could not write progress of %s; will retry", self.job_id)
                    self._db_trouble = True
                self._merge_back(batch)
                return
            self._db_trouble = False
            self._last_write = self._last_asked = self._clock()
            self.ask(asked)

    def ask(self, asked: reports.Asked) -> None:
        """Pass on what the user asked of the job, as read back by a write or a heartbeat."""
        if asked.cancel:
            self.cancel_requested.set()
        if asked.stop and self.stoppable:
            self.stop_requested.set()

    def _merge_back(self, batch: Report) -> None:
        with self._lock:
            newer = self._pending
            batch.stage_updates.extend(newer.stage_updates)
            batch.metrics.extend(newer.metrics)
            batch.logs.extend(newer.logs)
            if newer.progress is not None:
                batch.progress = newer.progress
            if newer.stage is not None:
                batch.stage = newer.stage
            if newer.cost is not None:
                batch.cost = newer.cost
            self._pending = batch

    def _collect_cost(self, *, final: bool = False) -> None:
        """Move what the tasks cost since the last write into the pending report (with
        `_lock` held). The values are cumulative, so the newest always wins a merge."""
        if self._ledger is None:  # no task submitted: nothing measured, zero once it ends
            if final:
                self._pending.cost = NO_TASKS
            return
        total, stages = self._ledger.take(final=final)
        if total is not None:
            self._pending.cost = total
        self._pending.stage_updates.extend(
            StageUpdate(idx, name, cost=cost) for idx, (name, cost) in stages.items()
        )

    def kept(self, result: Mapping[str, Any]) -> float | None:
        """The share of the planned work behind a result the kind marked `partial`: what the
        chunk loop kept, else the job's progress when it stopped; None for a whole result."""
        if result.get("partial") is not True:
            return None
        return self.covered if self.covered is not None else self._progress

    def take_pending(self) -> Report:
        """What is left unwritten, for the final transition to write in its own transaction.

        Every task the driver waited on has reported its cost by now: a worker sends a task's
        cost before its result, and both reach this client in that order.
        """
        with self._flush_lock, self._lock:
            self._collect_cost(final=True)
            batch, self._pending = self._pending, Report()
            return batch
