"""What a job's Dask tasks cost, measured inside each task and summed per stage in the driver.

A task a driver submits through `ctx.client.submit` or `ctx.client.map` runs inside a `Metered`
wrapper on its worker (compute/metering.py, which workers import, and which therefore imports
nothing of the store). The wrapper reads its own thread's CPU clock and the wall clock around
the call, and the worker process's peak resident memory while the call ran, then sends those
three numbers to the scheduler as a Dask event on `TOPIC`. The runner's client subscribes to the
topic; each event finds the job's `CostLedger` by the token the wrapper was given, and the
ledger adds it to the stage the task was submitted in. The job context writes the ledger's
totals with its next throttled report, so measuring costs no store write of its own.

Why inside the task: Dask's task stream gives wall-clock start and stop times only, which count
a task that waits on I/O or on a busy core as working; the thread's CPU clock is what it spent.
Why an event: the result stays the function's own (a driver's `.result()` is unchanged), and
the worker sends the event before the task's result, on the same ordered streams, so by the time
a driver holds a result, its cost is in the ledger.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from compute.metering import TOPIC, Metered, StageKey
from jobstore.views import Cost

log = logging.getLogger(__name__)


class CostLedger:
    """One attempt's task costs, summed per stage and in all, as they arrive.

    `add` runs on the Dask client's event loop, `take` on the driver's or the flush thread: a
    lock keeps the two apart, and `take` hands over only what changed since it last ran.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = Cost()
        self._stages: dict[int, tuple[str, Cost]] = {}
        self._changed: set[int] = set()
        self._total_changed = False

    def add(self, stage: StageKey | None, task: Cost) -> None:
        with self._lock:
            self._total = self._total.plus(task)
            self._total_changed = True
            if stage is not None:
                idx, name = stage
                _, was = self._stages.get(idx, (name, Cost()))
                self._stages[idx] = (name, was.plus(task))
                self._changed.add(idx)

    def total(self) -> Cost:
        with self._lock:
            return self._total

    def stages(self) -> dict[int, tuple[str, Cost]]:
        with self._lock:
            return dict(self._stages)

    def take(self, *, final: bool = False) -> tuple[Cost | None, dict[int, tuple[str, Cost]]]:
        """The totals and the stages changed since the last take (cumulative values, so a
        write that is retried or overtaken stays right). `final` always gives the totals: a
        job that ran no task then stores a cost of zero, not "not measured"."""
        with self._lock:
            total = self._total if (self._total_changed or final) else None
            changed = {i: self._stages[i] for i in sorted(self._changed)}
            self._total_changed = False
            self._changed.clear()
        return total, changed


def task_cost(message: dict[str, Any]) -> tuple[StageKey | None, Cost]:
    """One task's event, checked: a malformed one raises, and is dropped by the caller."""
    peak = message.get("peak")
    cost = Cost(
        cpu_seconds=max(0.0, float(message["cpu"])),
        task_seconds=max(0.0, float(message["wall"])),
        tasks=1,
        peak_memory_bytes=None if peak is None else int(peak),
        hosts={str(message["host"]): 1} if message.get("host") else {},
    )
    idx = int(message["idx"])
    return (None if idx < 0 else (idx, str(message["stage"]))), cost


_ledgers: weakref.WeakValueDictionary[str, CostLedger] = weakref.WeakValueDictionary()
_watched: weakref.WeakSet[Any] = weakref.WeakSet()
_watch_lock = threading.Lock()


def _arrived(event: tuple[float, Any]) -> None:
    """A task's cost, on the client's event loop: into its job's ledger, if this runner holds
    the job still (a task that outlived its attempt, or another runner's, is not ours)."""
    _, message = event
    try:
        with _watch_lock:
            ledger = _ledgers.get(str(message["token"]))
        if ledger is None:
            return
        stage, cost = task_cost(message)
    except (KeyError, TypeError, ValueError):
        log.debug("ignored a malformed cost event: %r", message)
        return
    ledger.add(stage, cost)


def _watch(client: Any) -> None:
    """Subscribe `client` to the cost events once (a runner's fresh client after a reconnect
    subscribes with its first job)."""
    if not hasattr(client, "subscribe_topic"):
        return
    with _watch_lock:
        if client in _watched:
            return
        _watched.add(client)
    try:
        client.subscribe_topic(TOPIC, _arrived)
    except Exception:
        # Measuring never fails a job: a client that cannot subscribe (closed, say) runs its
        # tasks unmeasured, and the job's driver meets the client's trouble on its own.
        log.warning("could not subscribe to task costs; this job's cost goes unmeasured")
        with _watch_lock:
            _watched.discard(client)


class MeteredClient:
    """The Dask client a driver holds: `submit` and `map` wrap the function in `Metered`,
    tagged with the job's ledger and the stage it is submitted in; everything else is the
    client's own. Tasks made another way (a Dask collection's `compute`, a task that submits
    tasks) are not metered. `resources`, those of the job's queue, go with every task it
    submits, so that the scheduler sends them only to workers that have them."""

    def __init__(
        self,
        client: Any,
        ledger: CostLedger,
        stage: Callable[[], StageKey | None],
        resources: Mapping[str, float] | None = None,
    ) -> None:
        self._client = client
        self._resources = dict(resources) if resources else None
        self._stage = stage
        self._token = uuid.uuid4().hex
        with _watch_lock:
            _ledgers[self._token] = ledger
        _watch(client)

    @property
    def token(self) -> str:
        """What this attempt's task events carry, to find its ledger."""
        return self._token

    def submit(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._resources:
            kwargs.setdefault("resources", self._resources)
        return self._client.submit(Metered(func, self._token, self._stage()), *args, **kwargs)

    def map(self, func: Callable[..., Any], *iterables: Any, **kwargs: Any) -> Any:
        if self._resources:
            kwargs.setdefault("resources", self._resources)
        return self._client.map(Metered(func, self._token, self._stage()), *iterables, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
