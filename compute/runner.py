"""The runner: claims jobs from the store and runs each one's driver on a thread of its pool.

Threads: the claim loop (the caller's); `concurrency` job threads, each running one driver at a
time; one heartbeat thread that renews the runner's row and every lease it holds, and reaps; a
flush thread for reports left pending; the results writer (group commit); the pipelines thread,
which moves pipelines' steps on (`compute.advance`); and a thread that wakes the claim loop when
work is queued: LISTEN on PostgreSQL, a local socket on SQLite (`jobstore.wake`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import queue
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy.exc
from distributed.comm.core import CommClosedError
from sqlalchemy import Engine

from compute import advance, registry, same_code
from compute.context import CHECKPOINTS, JobContext
from compute.results import clean_result
from jobstore import ledger, queues, registration, reports, retention, transitions, wake
from jobstore.engine import for_runner, is_postgres, stale_connection
from jobstore.models import Status
from jobstore.reports import Lease
from runlab.artifacts import artifact_store
from runlab.errors import ClusterLost, JobCancelled, LostJob, NoWorkers, StoreBusy
from runlab.settings import Settings
from runlab.versions import software_versions

log = logging.getLogger(__name__)
T = TypeVar("T")
STORE_FAILED = (
    "could not store the result of job %s; it runs again once its lease lapses, from its "
    "checkpoints"
)
# What a store outage looks like: the server gone or restarting, or SQLite locked for too long.
DB_DOWN = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, StoreBusy)


def _lost_scheduler(exc: BaseException) -> bool:
    """Whether a driver failed because the client lost its scheduler, not through its own fault."""
    if isinstance(exc, CommClosedError):
        return True
    return isinstance(exc, CancelledError) and "scheduler-connection-lost" in str(exc)


def once_more_if_stale(call: Callable[[], T]) -> T:
    """`call`, tried a second time at once if it met a connection the server had closed (it
    restarted): the runner's engine does not ping its connections before use (see
    `jobstore.engine.for_runner`), and the pool has dropped the others by then."""
    try:
        return call()
    except sqlalchemy.exc.DBAPIError as exc:
        if not stale_connection(exc):
            raise
    return call()


PG_FALLBACK_POLL = 2.0  # seconds: LISTEN wakes us; this only covers a missed notification
PURGE_PERIOD = 3600.0  # seconds between two scheduled purges, when RUNLAB_PURGE_AFTER is set
WORKERS_TTL = 1.0  # seconds a count of the Dask workers is trusted by the claim loop
WORKERS_TIMEOUT = 2.0  # seconds the scheduler has to say how many workers it has
PIPELINE_SECONDS = 0.5  # the pipelines thread's period when no job of this runner ends
# Its period while no pipeline is open: a new one wakes it as new work wakes the claim loop.
PIPELINE_IDLE_SECONDS = 5.0
PIPELINE_SPACING = 0.1  # and its least spacing when many do: one indexed probe each
# Seconds a busy runner waits at most, once a slot is free, for half its slots to be free
# before it claims: short jobs' slots are then claimed in a few transactions, not one by one.
# A runner with half its slots or more free, an idle one among them, claims at once.
CLAIM_LINGER = 0.005


@dataclass
class _Running:
    lease: Lease
    ctx: JobContext | None
    done: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    """Job threads hand their results to one writer, which stores every result waiting in one
    transaction: under load, a runner's many short jobs cost a few commits, not one each.

    `then`, given with a result, runs on the writer's thread once the result is stored (or
    refused), and `after` once per group, after every `then` of it."""

    MAX_GROUP = 256
    LINGER = 0.002  # seconds a group waits for the next result: a commit costs more than this

    def __init__(
        self,
        write: Callable[[list[transitions.Success]], set[int]],
        after: Callable[[], None] | None = None,
    ) -> None:
        self._write = write
        self._after = after
        self._queue: queue.SimpleQueue[tuple[transitions.Success, Future[bool]]] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._loop, name="results", daemon=True).start()

    def store(self, success: transitions.Success) -> bool:
        """Store one result; False if its attempt was fenced out. Raises the store's error."""
        return self.submit(success).result()

    def submit(
        self,
        success: transitions.Success,
        then: Callable[[Future[bool]], object] | None = None,
    ) -> Future[bool]:
        """Queue one result without waiting: its future holds whether it was stored."""
        done: Future[bool] = Future()
        if then is not None:
            done.add_done_callback(then)  # before it is queued: runs on the writer's thread
        self._queue.put((success, done))
        return done

    def _loop(self) -> None:
        while True:
            group = [self._queue.get()]
            # Results arriving close together share a commit. A plain sleep, then a drain that
            # never waits: a timed queue wait was seen to hang for good on this machine.
            time.sleep(self.LINGER)
            while len(group) < self.MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                stored = self._write([s for s, _ in group])
            except DB_DOWN as exc:  # the store is out: every result waits for it alike
                for _, done in group:
                    done.set_exception(exc)
            except Exception:
                # One result the store refuses must not fail the others: each alone, then.
                for s, done in group:
                    self._write_one(s, done)
            else:
                for s, done in group:
                    done.set_result(s.lease.job_id in stored)
            if self._after is not None:
                try:
                    self._after()
                except Exception:
                    log.exception("the results writer's follow-up failed")

    def _write_one(self, success: transitions.Success, done: Future[bool]) -> None:
        try:
            done.set_result(success.lease.job_id in self._write([success]))
        except Exception as exc:
            done.set_exception(exc)


class Runner:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        client: object | None,
        *,
        reconnect: Callable[[], object] | None = None,
        revive: Callable[[], bool] | None = None,
        concurrency: int = 2,
        scheduler_address: str | None = None,
        dashboard_link: str | None = None,
        queues: list[str] | None = None,
    ) -> None:
        self.engine = for_runner(engine)
        self.queues = queues  # those it serves; None: every queue
        self.settings = settings
        self._limits = settings.queue_limits  # read once: every claim round passes them
        self.client = client
        self._reconnect = reconnect
        self._revive = revive
        self._cluster_lost = threading.Event()  # no claims until a fresh client answers
        # The cluster's workers, as last counted, and since when it has had none.
        self._workers: tuple[float, frozenset[str]] | None = None
        # The client and workers whose code was last compared with this runner's, and whether
        # it agreed: compared again whenever either changes.
        self._code_checked: tuple[int, frozenset[str]] | None = None
        self._code_agrees = True
        self._no_workers_since: float | None = None
        self.concurrency = max(1, concurrency)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._scheduler_address = scheduler_address
        self._dashboard_link = dashboard_link
        self._stop = threading.Event()  # no more claims
        self._hurry = threading.Event()  # a second stop: hand back now, skip the grace period
        self._handing_back = threading.Event()  # grace is over: drivers still running stop
        self._closed = threading.Event()  # shut down: the heartbeat ends
        self._wake = threading.Event()
        self._listener: wake.Listener | None = None  # SQLite's wake-up socket
        self._job_ended = threading.Event()  # a step waiting for it may start now
        self._pass_due = False  # new work was queued: a pipelines pass follows the claim
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._queue: queue.SimpleQueue[Lease] = queue.SimpleQueue()  # claimed, for the pool
        self._db_down = False
        self._db_failures = 0
        self.artifacts = artifact_store(settings)
        # The limited queues this runner last found without a free slot. When one of their jobs
        # ends, the slot it frees is told to every runner in the same transaction (NOTIFY on
        # PostgreSQL), not only to this one, whose own slots may be taken by other queues; a
        # queue with room to spare wakes no one.
        self._full: frozenset[str] = frozenset()
        self._results = GroupCommit(
            lambda group: self._until_stored(
                "succeed",
                lambda: transitions.succeed_many(
                    self.engine, group, wake=any(s.lease.queue in self._full for s in group)
                ),
            ),
            after=self._jobs_ended,
        )

    # --- lifecycle ------------------------------------------------------------------------------

    def run(self) -> None:
        """Claim and run jobs until `stop()`; then finish or hand back what is running."""
        registration.register(
            self.engine,
            self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.concurrency,
            scheduler_address=self._scheduler_address,
            dashboard_link=self._dashboard_link,
            queues=self.queues,
        )
        log.info(
            "runner %s started, concurrency %d, serving %s",
            self.id,
            self.concurrency,
            "queues " + ", ".join(self.queues) if self.queues else "every queue",
        )
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        threading.Thread(target=self._flush_loop, name="flush", daemon=True).start()
        threading.Thread(target=self._reap_loop, name="reaper", daemon=True).start()
        for i in range(self.concurrency):
            threading.Thread(target=self._job_thread, name=f"job-{i}", daemon=True).start()
        if is_postgres(self.engine):
            threading.Thread(target=self._listen_loop, name="listen", daemon=True).start()
        else:
            self._listener = wake.Listener.open(self.engine, self.id)
            if self._listener is not None:
                threading.Thread(
                    target=self._listener.serve,
                    args=(self._stop, self._new_work),
                    name="wake",
                    daemon=True,
                ).start()
        if self.settings.purge_policy is not None:
            threading.Thread(target=self._purge_loop, name="purge", daemon=True).start()
        threading.Thread(target=self._pipeline_loop, name="pipelines", daemon=True).start()
        # What start-up made (the modules, Dask's client and cluster, the engine) lives as long
        # as the process: frozen, the collector's full passes no longer walk it. Without this,
        # each full pass walked some 220,000 objects, 0.1-0.15 s of CPU, twice every 5,000 jobs.
        gc.collect()
        gc.freeze()
        idle = PG_FALLBACK_POLL if is_postgres(self.engine) else self.settings.poll_seconds
        try:
            while not self._stop.is_set():
                got = self._claim_some()
                if self._pass_due:
                    self._pass_due = False
                    self._job_ended.set()
                if not got:
                    # While the store is down, claim rounds back off to once every few seconds.
                    backoff = min(5.0, idle * 2**self._db_failures)
                    self._wake.wait(backoff if self._db_down else idle)
                    self._wake.clear()
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Stop claiming and let running jobs finish; called again, hand them back at once."""
        if self._stop.is_set():
            self._hurry.set()
        self._stop.set()
        self._wake.set()

    def _new_work(self) -> None:
        """Something was queued: a job to claim, or a pipeline whose first steps may start.

        The claim loop claims first and then starts the pipelines pass (`_pass_due`): started
        together, the two threads would share the interpreter just as a new job waits."""
        self._pass_due = True
        self._wake.set()

    def _held(self) -> list[_Running]:
        with self._lock:
            return list(self._running.values())

    def _shutdown(self) -> None:
        """Graceful stop: wait out the grace period, then requeue what is still running.

        Heartbeats go on meanwhile, so no lease lapses while its job is finishing.
        """
        if self._listener is not None:
            self._listener.close()  # claims no more: senders need not wake it
        grace = self.settings.grace_seconds
        deadline = time.monotonic() + grace
        if self._held():
            log.info(
                "stopping: %d job(s) running; waiting up to %g s for them to finish "
                "(stop again to hand them back now)",
                len(self._held()),
                grace,
            )
        while self._held() and not self._hurry.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wake.wait(left)
            self._wake.clear()
        left_over = self._held()
        self._handing_back.set()
        for r in left_over:
            if r.ctx is not None:
                r.ctx.lost.set()  # the driver stops at its next check and writes nothing more
        for r in left_over:
            r.done.wait(timeout=5)
            self._hand_back(r)
        self._closed.set()
        try:
            registration.stopped(self.engine, self.id)
        except Exception:
            log.warning("could not mark runner %s stopped", self.id, exc_info=True)
        log.info("runner %s stopped; %d job(s) handed back", self.id, len(left_over))

    def _hand_back(self, r: _Running, *, reason: str | None = None) -> None:
        pending = r.ctx.take_pending() if r.ctx is not None else None
        try:
            status = transitions.hand_back(self.engine, r.lease, pending, reason=reason)
            if status is Status.CANCELLED:
                log.info(
                    "job %s cancelled, as was asked, instead of handed back", r.lease.public_id
                )
            else:
                log.info("job %s handed back to the queue", r.lease.public_id)
        except LostJob:
            log.info("job %s had already ended or moved on", r.lease.public_id)
        except Exception:
            log.warning(
                "could not hand back job %s; it returns when its lease lapses",
                r.lease.public_id,
                exc_info=True,
            )

    # --- claiming -------------------------------------------------------------------------------

    def _claim_some(self) -> int:
        free = self._free_slots()
        if 0 < free < self.concurrency / 2:
            until = time.monotonic() + CLAIM_LINGER
            while free < self.concurrency / 2 and (left := until - time.monotonic()) > 0:
                self._wake.wait(left)  # set as each job ends
                self._wake.clear()
                free = self._free_slots()
            if self._stop.is_set():
                return 0
        if (
            free <= 0
            or not self._cluster_ready()
            or not self._has_workers()
            or not self._same_code()
        ):
            return 0
        full: set[str] = set()
        try:
            leases = once_more_if_stale(
                lambda: transitions.claim(
                    self.engine,
                    self.id,
                    limit=free,
                    lease_seconds=self.settings.lease_seconds,
                    versions=software_versions(),
                    serve=self.queues,
                    limits=self._limits,
                    full=full,
                )
            )
        except Exception:
            self._db_trouble("claim")
            return 0
        self._full = frozenset(full)
        self._db_ok()
        for lease in leases:
            with self._lock:
                self._running[lease.job_id] = _Running(lease, None)
            self._queue.put(lease)
        return len(leases)

    def _free_slots(self) -> int:
        with self._lock:
            return self.concurrency - len(self._running)

    def _job_thread(self) -> None:
        """One of the pool's threads: runs the claimed jobs handed to it, one at a time.

        Daemon threads: a driver still blocked on Dask when the runner exits does not hold the
        process, since its job has already been handed back.
        """
        while True:
            self._execute(self._queue.get())

    def _listen_loop(self) -> None:
        """Wake the claim loop as soon as a job is submitted (PostgreSQL NOTIFY)."""
        ledger.listen(self.engine, self._stop, self._new_work, retry_after=PG_FALLBACK_POLL)

    # --- one job --------------------------------------------------------------------------------

    def _execute(self, lease: Lease) -> None:
        ctx: JobContext | None = None
        kind: registry.Kind | None = None
        handed = False  # the results writer ends the job
        try:
            kind = registry.get(lease.kind)
            params = kind.parse(lease.params)
            ctx = JobContext(
                self.engine,
                lease,
                self.client,  # type: ignore[arg-type]
                stage_names=kind.stages(params),
                stage_weights=kind.stage_weights(params),
                write_interval=self.settings.progress_write_seconds,
                lease_seconds=self.settings.lease_seconds,
                artifacts=self.artifacts,
                stoppable=kind.stoppable,
                resources=self.settings.queue_resources(lease.queue),
            )
            with self._lock:
                self._running[lease.job_id].ctx = ctx
            result = clean_result(kind.run(ctx, params))
            pending = ctx.take_pending()
            if ctx.lost.is_set():
                raise LostJob(lease.job_id, lease.attempt)
            success = transitions.Success(lease, result, None, pending, covered=ctx.kept(result))
            if lease.attempt == 1 and not ctx.wrote_checkpoints:
                # Once the result is stored nothing is left for this thread (no checkpoint to
                # remove): the results writer ends the job, and this thread takes the next one
                # at once, not woken again for each job.
                self._results.submit(success, functools.partial(self._stored, lease, ctx, kind))
                handed = True
                return
            try:
                stored = self._results.store(success)
            except DB_DOWN:
                log.error(STORE_FAILED, lease.public_id)
                return
            if not stored:
                raise LostJob(lease.job_id, lease.attempt)
            log.debug("job %s succeeded", lease.public_id)  # at 1,000 jobs/s, not one line each
            self._drop_checkpoints(lease, ctx)
        except JobCancelled:
            self._end(lease, "cancelled", ctx)
        except NoWorkers as exc:
            assert ctx is not None  # only a context raises it
            self._hand_back(_Running(lease, ctx), reason=str(exc))
        except LostJob:
            self._lost(lease)
        except Exception as exc:
            self._failed(lease, ctx, kind, exc)
        finally:
            if not handed:
                self._release(lease)
                self._jobs_ended()

    def _stored(
        self,
        lease: Lease,
        ctx: JobContext,
        kind: registry.Kind,
        done: Future[bool],
    ) -> None:
        """The end of a job whose thread handed its result over: on the results writer's
        thread, once the result is stored or refused. `_jobs_ended` follows, once per group."""
        exc = done.exception()
        if exc is None:
            if done.result():
                log.debug("job %s succeeded", lease.public_id)
            else:
                self._lost(lease)
        elif isinstance(exc, DB_DOWN):
            log.error(STORE_FAILED, lease.public_id)
        else:
            # A result the store refused fails the job as a driver's error does; on a thread
            # of its own, as that write must not hold up everyone's results.
            threading.Thread(
                target=self._refused, args=(lease, ctx, kind, exc), name="refused", daemon=True
            ).start()
            return
        self._release(lease)

    def _refused(
        self, lease: Lease, ctx: JobContext, kind: registry.Kind, exc: BaseException
    ) -> None:
        try:
            self._failed(lease, ctx, kind, exc)
        finally:
            self._release(lease)
            self._jobs_ended()

    def _release(self, lease: Lease) -> None:
        """The job's slot is free again."""
        with self._lock:
            r = self._running.pop(lease.job_id, None)
        if r is not None:
            r.done.set()

    def _jobs_ended(self) -> None:
        """Wake the claim loop (slots are free) and the pipelines thread (a step may start)."""
        self._wake.set()
        self._job_ended.set()

    def _lost(self, lease: Lease) -> None:
        if self._handing_back.is_set():
            log.info("job %s stopped for the shutdown", lease.public_id)
        else:
            log.warning("job %s attempt %d lost its lease; stopped", lease.public_id, lease.attempt)

    def _failed(
        self,
        lease: Lease,
        ctx: JobContext | None,
        kind: registry.Kind | None,
        exc: BaseException,
    ) -> None:
        """A driver's error, or a result the store refused: retried, or failed."""
        if _lost_scheduler(exc) or not self._client_running():
            self._cluster_lost.set()
            log.warning(
                "job %s attempt %d: the runner lost its Dask scheduler; the job goes back "
                "to the queue and nothing is claimed until a scheduler answers",
                lease.public_id,
                lease.attempt,
            )
            lost = ClusterLost(f"the runner lost its Dask scheduler mid-job ({exc})")
            self._end(lease, "retried", ctx, lost)
        elif (missing := same_code.missing_code(exc)) is not None:
            self._end(lease, "failed", ctx, missing)
        else:
            retry = kind is not None and kind.retryable(exc)
            self._end(lease, "retried" if retry else "failed", ctx, exc)

    def _drop_checkpoints(self, lease: Lease, ctx: JobContext | None) -> None:
        """A finished job needs its checkpoints no more. A first attempt that saved none has
        none to remove: on an object store, that is a request per job saved."""
        if lease.attempt == 1 and (ctx is None or not ctx.wrote_checkpoints):
            return
        try:
            self.artifacts.delete(lease.public_id, CHECKPOINTS)
        except OSError:
            log.warning("could not remove the checkpoints of %s", lease.public_id, exc_info=True)

    def _end(
        self, lease: Lease, how: str, ctx: JobContext | None, exc: BaseException | None = None
    ) -> None:
        pending = ctx.take_pending() if ctx is not None else None
        try:
            if exc is None:
                self._until_stored(
                    "cancel", lambda: transitions.cancelled(self.engine, lease, pending)
                )
            else:
                error = (
                    type(exc).__name__,
                    str(exc) or type(exc).__name__,
                    "".join(traceback.format_exception(exc)),
                )
                if how == "retried":
                    status = self._until_stored(
                        "retry",
                        lambda: transitions.retry(
                            self.engine,
                            lease,
                            *error,
                            pending,
                            backoff_base=self.settings.retry_backoff_seconds,
                        ),
                    )
                    how = "queued for another attempt" if status is Status.QUEUED else "failed"
                else:
                    self._until_stored(
                        "fail", lambda: transitions.fail(self.engine, lease, *error, pending)
                    )
            log.info("job %s %s", lease.public_id, how)
            if how != "queued for another attempt":
                self._drop_checkpoints(lease, ctx)
        except LostJob:
            log.warning("job %s was lost before it could be marked %s", lease.public_id, how)
        except Exception:
            log.exception("could not mark job %s %s; its lease will lapse", lease.public_id, how)

    # --- the Dask client ------------------------------------------------------------------------

    def _client_running(self) -> bool:
        return self.client is None or getattr(self.client, "status", "running") == "running"

    def _cluster_ready(self) -> bool:
        """Whether to claim: not while the client is without its scheduler.

        A client that lost its scheduler is replaced by a fresh one (when the runner knows how
        to make one), retried on every claim round until a scheduler answers.
        """
        if self._client_running() and not self._cluster_lost.is_set():
            return True
        if self._reconnect is None:
            return self._client_running()
        if not self._cluster_lost.is_set():
            log.warning("the Dask client lost its scheduler; claiming nothing until it is back")
            self._cluster_lost.set()
        with self._lock:
            if self._running:  # jobs still on the old client end first, as ClusterLost
                return False
        try:
            self.client = self._reconnect()
        except Exception as exc:
            log.debug("no Dask scheduler yet: %s", exc)
            self._stop.wait(1.0)
            return False
        log.info("the Dask scheduler answers again; claiming")
        self._cluster_lost.clear()
        return True

    def _worker_count(self, *, fresh: bool = False) -> int | None:
        """The workers the scheduler knows, asked at most once a second; None without a client
        that answers."""
        if self.client is None or not self._client_running():
            return None
        now = time.monotonic()
        if not fresh and self._workers is not None and now - self._workers[0] < WORKERS_TTL:
            return len(self._workers[1])
        try:
            # Bounded: a scheduler that stopped answering must not hold up the heartbeat that
            # keeps this runner's leases, which the store still takes.
            workers = frozenset(
                self.client.nthreads(callback_timeout=WORKERS_TIMEOUT)  # type: ignore[attr-defined]
            )
        except Exception:
            log.debug("could not count the Dask workers", exc_info=True)
            return None
        self._workers = (now, workers)
        return len(workers)

    def _same_code(self) -> bool:
        """Whether the scheduler and every worker run this runner's code (`same_code`): asked
        at start, after a reconnect and whenever a worker joins or leaves; until they agree,
        the runner claims nothing, and its log says in one line per host what differs."""
        if self.client is None or self._workers is None:
            return True
        key = (id(self.client), self._workers[1])
        if key == self._code_checked:
            return self._code_agrees
        try:
            lines = same_code.mismatches(self.client, tuple(self.settings.extra_kind_modules))
        except Exception:
            log.warning("could not compare versions with the Dask cluster", exc_info=True)
            return False  # asked again on the next claim round
        self._code_checked = key
        if lines:
            for line in lines:
                log.error("refusing to claim: %s", line)
        elif not self._code_agrees:
            log.info("the Dask cluster runs this runner's code again; claiming")
        self._code_agrees = not lines
        return self._code_agrees

    def _has_workers(self) -> bool:
        """Whether the cluster can run work: a job claimed with no worker would wait for ever.

        Says so once when the last worker goes, and once when one is back.
        """
        count = self._worker_count()
        if count is None or count > 0:
            if count and self._no_workers_since is not None:
                log.info("the Dask cluster has %d worker(s) again; claiming", count)
                self._no_workers_since = None
            return True  # not known (no client to ask) is not "none"
        if self._no_workers_since is None:
            self._no_workers_since = time.monotonic()
            log.warning(
                "the Dask cluster at %s has no workers; claiming nothing until one joins "
                "(running jobs are handed back after %g s without one)",
                self._scheduler_address or "its scheduler",
                self.settings.no_worker_seconds,
            )
        return False

    def _watch_workers(
        self, held: list[tuple[Lease, JobContext | None]], count: int | None
    ) -> None:
        """On each heartbeat: bring back a local cluster's lost workers, and hand back the
        running jobs once the cluster has had none for `no_worker_seconds`."""
        self._has_workers()
        if count is None or count > 0:
            return
        if self._revive is not None:
            try:
                if self._revive():
                    log.info("restarting the local Dask cluster's lost workers")
            except Exception:
                log.warning("could not restart the local Dask workers", exc_info=True)
        since = self._no_workers_since
        waited = 0.0 if since is None else time.monotonic() - since
        if waited < self.settings.no_worker_seconds:
            return
        for lease, ctx in held:
            if ctx is not None and not ctx.no_workers.is_set():
                ctx.no_workers_reason = f"as its Dask cluster had no worker for {waited:.0f} s"
                ctx.no_workers.set()
                log.warning(
                    "job %s: no Dask worker for %.0f s; handing it back", lease.public_id, waited
                )

    # --- heartbeat ------------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        period = self.settings.heartbeat_seconds
        while not self._closed.wait(period):
            with self._lock:
                held = [(r.lease, r.ctx) for r in self._running.values()]
            workers = self._worker_count(fresh=True)
            try:
                states = once_more_if_stale(
                    functools.partial(
                        reports.heartbeat,
                        self.engine,
                        self.id,
                        [lease for lease, _ in held],
                        lease_seconds=self.settings.lease_seconds,
                        workers=workers,
                    )
                )
            except Exception:
                self._db_trouble("heartbeat")
                continue
            self._db_ok()
            self._watch_workers(held, workers)
            for lease, ctx in held:
                if ctx is None:
                    continue
                asked = states.get(lease.job_id)
                if asked is None:
                    ctx.lost.set()
                else:
                    ctx.ask(asked)
                with contextlib.suppress(LostJob):
                    ctx.flush()  # a quiet driver's trailing reports still reach the page

    def _flush_loop(self) -> None:
        """Reports a quiet driver left pending (a stage it just entered) reach the page within
        about one write interval, even while the driver waits on Dask."""
        while not self._closed.wait(self.settings.progress_write_seconds):
            for r in self._held():
                if r.ctx is not None:
                    r.ctx.flush_due()

    def _reap_loop(self) -> None:
        """Every runner is also a reaper, at its heartbeat's pace but on a thread of its own:
        a reaper's write can wait on a row that a runner cut off mid-transaction still holds
        locked, and the heartbeat that keeps this runner's own leases must not wait with it."""
        while not self._closed.wait(self.settings.heartbeat_seconds):
            self._reap()

    def _reap(self) -> None:
        """Jobs of runners that went silent come back here. And it ages the waiting jobs, so
        that none waits past the bound `jobstore.queues` states."""
        try:
            reaped = transitions.reap(self.engine, backoff_base=self.settings.retry_backoff_seconds)
            queues.age(self.engine, self.settings.aging_seconds)
        except Exception:
            self._db_trouble("reap")
            return
        for r in reaped:
            log.warning(
                "job %s attempt %d lost its runner: now %s", r.public_id, r.attempt, r.status
            )
        if reaped:
            self._wake.set()

    def _purge_loop(self) -> None:
        """The scheduled purge: one pass at start, then one an hour, on its own thread so that
        a long pass never delays a heartbeat. A failed pass is logged, and the next one tries
        again; it never stops the runner."""
        policy = self.settings.purge_policy
        assert policy is not None
        while not self._stop.is_set():
            try:
                report = retention.purge(self.engine, self.artifacts, policy, stop=self._stop)
            except Exception:
                log.warning("scheduled purge failed; next try in %g s", PURGE_PERIOD, exc_info=True)
            else:
                log.info("scheduled purge of %s: removed %s", policy.describe(), report.summary())
            self._stop.wait(PURGE_PERIOD)

    def _pipeline_loop(self) -> None:
        """Move pipelines on: at once when a job of this runner ends or a pipeline is stored
        (its commit wakes the runners as new jobs do), else every half second while one is
        open, for the jobs other runners end and the steps other pipelines' clients cancel, and
        every few seconds while none is. A failed pass is logged and tried again; it never
        stops the runner."""
        failures = 0
        idle = False
        while not self._stop.is_set():
            try:
                done = advance.advance(self.engine, queues=self.settings.queue_names)
            except Exception:
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    log.warning("could not move pipelines on (%d tries)", failures, exc_info=True)
            else:
                failures = 0
                idle = not done.open
                if done.moved:
                    log.info("pipelines: %d step(s) moved on", done.moved)
                    self._wake.set()  # a step that started has jobs to claim
            self._stop.wait(PIPELINE_SPACING)
            period = PIPELINE_IDLE_SECONDS if idle else PIPELINE_SECONDS * min(10, 2**failures)
            self._job_ended.wait(period)
            self._job_ended.clear()

    def _until_stored(self, what: str, write: Callable[[], T]) -> T:
        """Retry an attempt's final write through a store outage, for as long as its lease lasts.

        Past that the job is another runner's to take, and the write would be refused anyway.
        """
        deadline = time.monotonic() + self.settings.lease_seconds
        delay = 0.1
        while True:
            try:
                out = once_more_if_stale(write)
            except DB_DOWN:
                if time.monotonic() + delay > deadline:
                    raise
                self._db_trouble(what)
                self._hurry.wait(delay)
                delay = min(2 * delay, 2.0)
                continue
            self._db_ok()
            return out

    def _db_trouble(self, what: str) -> None:
        self._db_failures = min(self._db_failures + 1, 10)
        if not self._db_down:
            log.warning("the store did not answer (%s); retrying", what, exc_info=True)
            self._db_down = True

    def _db_ok(self) -> None:
        if self._db_down:
            log.info("the store answers again")
            self._db_down = False
            self._db_failures = 0
