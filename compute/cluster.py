"""The runner's one Dask client: to a LocalCluster it starts, or to an existing scheduler."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

import dask.config
import distributed.scheduler as scheduler_module
from distributed import Client, LocalCluster, Worker
from distributed.core import Status

log = logging.getLogger(__name__)

# Dask's defaults that Runlab changes, for what an idle runner costs: with Dask's own, a runner
# and its LocalCluster of two workers used 8 % of a core doing nothing, most of it these timers
# firing in the runner's event loop and in every worker (benchmarks/bench_idle.py). They are
# defaults: a value set in Dask's own configuration (a YAML file, a DASK_… variable) wins.
DASK_DEFAULTS = {
    # The check that the event loop answers: 50 times a second in every process by default.
    # Once a second still finds a loop blocked past its 3 s limit.
    "distributed.admin.tick.interval": "1s",
    # The dashboard's CPU, memory and network plots: every 5 s instead of twice a second.
    "distributed.admin.system-monitor.interval": "5s",
    # Dask's statistical profiler samples each worker 100 times a second, busy or idle, for the
    # dashboard's Profile page. Off; DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=true brings it
    # back.
    "distributed.worker.profile.enabled": False,
    # How often a nanny and its worker compare the worker's memory with its limits.
    "distributed.worker.memory.monitor-interval": "1s",
    # The client's refresh of the scheduler's details, which the runner does not read: it asks
    # for the workers itself.
    "distributed.client.scheduler-info-interval": "10s",
}


# How often a worker reports to its scheduler. Dask asks every worker of a cluster of up to ten
# for a heartbeat twice a second, and has no setting for it; the reports feed the dashboard and
# the scheduler's view of memory, and a worker that dies is noticed by its closed connection,
# not by a missing heartbeat. Every 2 s instead, they took an idle runner with two workers, its
# other Dask defaults above already set, from about 1.35 % to 1.0 % of a core; every 5 s, the
# pace Dask itself keeps for a cluster of some 800 workers, took another 0.08-0.12 % off (two
# idle runners side by side, 120 s). Larger clusters keep Dask's own pace where it is slower.
HEARTBEAT_SECONDS = 5.0
TRIM = "MALLOC_TRIM_THRESHOLD_"
# How often a LocalCluster sends its scheduler its own name and type, which never change: Dask
# sends them every second, a round trip through the runner's event loop that took about
# 0.5 ms of CPU a second there, idle or busy.
CLUSTER_INFO_SECONDS = 60.0


def quiet_dask() -> None:
    """Runlab's Dask defaults, for each key that Dask's own configuration leaves unset, and
    the slower heartbeat of a scheduler started in this process."""
    own = dask.config.collect()  # YAML files and DASK_ variables, without Dask's defaults
    missing = object()
    dask.config.set({k: v for k, v in DASK_DEFAULTS.items() if _get(own, k, missing) is missing})
    environ = "distributed.nanny.pre-spawn-environ"
    if _get(own, f"{environ}.{TRIM}", missing) is missing:
        # Dask sets it to return freed memory to the system at once, which also turns off
        # glibc's own growing threshold for serving large blocks from the heap: every array of
        # more than 128 kB is then fresh pages from the kernel, faulted in anew. A bootstrap's
        # chunk ran 27 % slower for it. Without it, a worker keeps at most a few tens of MB
        # that it freed, for its next task.
        kept = {k: v for k, v in dask.config.get(environ).items() if k != TRIM}
        dask.config.set({environ: kept})
    if not getattr(scheduler_module.heartbeat_interval, "runlab", False):
        dasks_own = scheduler_module.heartbeat_interval

        def heartbeat_interval(n: int) -> float:
            return max(HEARTBEAT_SECONDS, dasks_own(n))

        heartbeat_interval.runlab = True  # type: ignore[attr-defined]
        heartbeat_interval.dasks_own = dasks_own  # type: ignore[attr-defined]
        # The scheduler calls this module's function by name for every heartbeat's reply.
        scheduler_module.heartbeat_interval = heartbeat_interval


def _get(config: dict[str, Any], dotted: str, default: object) -> object:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return default
        # Dask reads "monitor_interval" and "monitor-interval" alike.
        node = node.get(part, node.get(part.replace("-", "_"), default))
        if node is default:
            return default
    return node


# A nanny in one of these states will not start its worker again.
_GONE = (Status.closed, Status.closing, Status.failed)


@dataclass
class Cluster:
    client: Client
    local: LocalCluster | None
    address: str | None = None  # the scheduler given to `connect`, if any

    @property
    def scheduler_address(self) -> str:
        return str(self.client.scheduler.address)

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's address, only where one is served: without bokeh the address
        answers "Dask needs bokeh", which is no link to give anyone."""
        if importlib.util.find_spec("bokeh") is None:
            return None
        try:
            return str(self.client.dashboard_link)
        except Exception:  # no dashboard on this scheduler
            return None

    def reconnect(self) -> Client:
        """A fresh client in place of one that lost its scheduler. Raises while none answers."""
        with contextlib.suppress(Exception):
            self.client.close(timeout=2)
        address = self.address or (self.local.scheduler_address if self.local else None)
        self.client = Client(address, timeout="10s")
        log.info("connected a fresh Dask client to %s", address)
        return self.client

    def revive(self) -> bool:
        """Start again the LocalCluster's workers that are gone for good; True if any were.

        A nanny restarts a worker that dies, but one whose restart failed (a task that kills
        its worker on a busy machine) is closed, and after `lost-worker-timeout` the cluster
        drops it: nothing brings it back but this. A scheduler of someone else's is theirs to
        keep staffed, so only a cluster the runner started is revived.
        """
        local = self.local
        if local is None or local.status != Status.running or local.loop is None:
            return False
        loop = local.loop
        gone = [n for n, w in list(local.workers.items()) if w.status in _GONE]
        if not gone and not set(local.worker_spec) - set(local.workers):
            return False

        def _start_again() -> object:
            for name in gone:
                local.workers.pop(name, None)
            return local._correct_state()  # opens every worker of the spec that is missing

        loop.add_callback(_start_again)
        return True

    def close(self) -> None:
        try:
            self.client.close(timeout=10)
        finally:
            if self.local is not None:
                self.local.close(timeout=10)


def connect(
    scheduler: str | None = None, n_workers: int | None = None, dashboard: str | None = None
) -> Cluster:
    """A client to `scheduler`, or to a new LocalCluster of one single-threaded process per core.

    One thread per worker process: the kernels are NumPy loops that hold the GIL between calls,
    so processes, not threads, use the cores. The LocalCluster serves its dashboard at
    `dashboard` (host:port), if given; a scheduler of someone else's serves its own.
    """
    if scheduler:
        log.info("connecting to Dask scheduler %s", scheduler)
        return Cluster(Client(scheduler, timeout="30s"), None, scheduler)
    workers = n_workers or os.cpu_count() or 1
    quiet_dask()  # each nanny passes the configuration on to its worker
    local = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=dashboard or None,
        silence_logs=logging.WARNING,
        preload=[__name__],  # `dask_setup` below, in each worker process
        scheduler_sync_interval=CLUSTER_INFO_SECONDS,
    )
    stop_unused_checks(local)
    log.info("started a LocalCluster with %d workers at %s", workers, local.scheduler_address)
    return Cluster(Client(local), local)


def stop_unused_checks(local: LocalCluster) -> None:
    """Stop the scheduler's two checks, four times a second each, that act only on a timeout
    this cluster does not set: one closes an idle scheduler after `idle-timeout`, the other
    fails tasks left without workers after `no-workers-timeout`. With their timers, Dask's
    own tasks around them cost an idle runner about 0.7 ms of CPU a second. Either is left
    running if its timeout is set in Dask's configuration."""
    scheduler = local.scheduler
    if scheduler is None or local.loop is None:
        return
    unused = []
    if not scheduler.idle_timeout and not scheduler.jupyter:
        unused.append("idle-timeout")
    if scheduler.no_workers_timeout is None:
        unused.append("no-workers-timeout")
    for name in unused:
        check = scheduler.periodic_callbacks.get(name)
        if check is not None:
            local.loop.add_callback(check.stop)


def spawn_without_main() -> None:
    """Worker processes start without running this process's main module again.

    Dask starts each LocalCluster worker through multiprocessing's spawn, which first imports
    the parent's `__main__` in the child: by name under `python -m runlab.cli`, by path under
    the `runlab` script. For a runner that is the CLI, and with it the store, SQLAlchemy and
    Alembic, in every worker, where a task needs only its kernel's module. Called by the
    runner's entry point, whose main module defines nothing a task uses.
    """
    main = sys.modules["__main__"]
    main.__spec__ = None
    with contextlib.suppress(AttributeError):
        del main.__file__


worker_log = logging.getLogger("distributed.worker")
HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat"


class HeartbeatCutByClose(logging.Filter):
    """Drops the error of a heartbeat that the worker's own close cut short.

    A closing worker shuts its connections while a heartbeat may still be waiting for the
    scheduler's reply, and Dask logs the closed stream as an error with its traceback: in the
    runner's log of a clean stop, it reads as a crash. A heartbeat failing while the worker is
    running is still logged.
    """

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        closing = self.worker.status in (Status.closing, Status.closed)
        return not (closing and record.getMessage().startswith(HEARTBEAT_FAILED))


def dask_setup(worker: Worker) -> None:
    """Run by Dask in each LocalCluster worker process as it starts: ignore SIGTERM and SIGINT,
    and leave out of the log the heartbeat that the worker's close cuts short.

    The workers share the runner's process group, so systemd, `docker stop` or Ctrl-C in a
    terminal signal them with the runner. Killed at once, their nannies would start them again
    in the middle of the runner's graceful stop, losing the tasks of the jobs given the grace
    period, and the cluster's close would wait on the restarts until it timed out. The runner
    closes its workers itself once its jobs are done or handed back, and a worker exits as soon
    as its runner does, however that ends (SIGKILL included).
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker_log.addFilter(HeartbeatCutByClose(worker))
