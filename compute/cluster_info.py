"""What a Dask scheduler says about its workers: one light RPC call, with a short timeout.

`Scheduler.identity` over `distributed.core.rpc` took 3.6 ms against a local scheduler, where a
`Client` (connect, `scheduler_info()`, close) took 19 ms and registered itself with the
scheduler each time. A page that refreshes every few seconds asks the light way.

Every scheduler is asked at once, so schedulers that do not answer cost one timeout in all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from distributed.core import rpc
from distributed.security import Security

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 1.0
# A worker's tasks as its own state machine counts them: assigned and not yet done, or held.
PROCESSING_STATES = ("executing", "long-running", "ready", "constrained", "waiting")


@dataclass(frozen=True)
class WorkerInfo:
    address: str
    name: str
    nthreads: int
    memory_used: int  # bytes: the worker process's memory at its last heartbeat
    memory_limit: int | None  # bytes; None when the worker has no limit
    processing: int
    in_memory: int
    status: str


@dataclass(frozen=True)
class ClusterInfo:
    """One scheduler's workers, or why they could not be read."""

    address: str
    workers: tuple[WorkerInfo, ...] = ()
    error: str | None = None

    @property
    def threads(self) -> int:
        return sum(w.nthreads for w in self.workers)

    @property
    def memory_used(self) -> int:
        return sum(w.memory_used for w in self.workers)

    @property
    def memory_limit(self) -> int | None:
        """The workers' limits added up; None if any worker has none, since the sum would lie."""
        limits = [w.memory_limit for w in self.workers]
        return None if not limits or None in limits else sum(x or 0 for x in limits)


def ask(addresses: Iterable[str], *, timeout: float = TIMEOUT_SECONDS) -> dict[str, ClusterInfo]:
    """Each scheduler's workers, by address; one that cannot be read says why.

    Runs its own event loop, so call it from a thread that has none running (a Streamlit
    script, a CLI command, a test).
    """
    unique = list(dict.fromkeys(addresses))
    if not unique:
        return {}
    return asyncio.run(_ask_all(unique, timeout))


async def _ask_all(addresses: list[str], timeout: float) -> dict[str, ClusterInfo]:
    found = await asyncio.gather(*(_ask_one(a, timeout) for a in addresses))
    return dict(zip(addresses, found, strict=True))


async def _ask_one(address: str, timeout: float) -> ClusterInfo:
    try:
        args = Security().get_connection_args("client")
        async with rpc(address, timeout=timeout, connection_args=args) as scheduler:
            identity = await asyncio.wait_for(scheduler.identity(), timeout)
    except (TimeoutError, OSError) as exc:
        log.debug("Dask scheduler %s did not answer: %s", address, exc)
        return ClusterInfo(address, error=f"no answer within {timeout:g} s")
    except ValueError as exc:  # distributed's own words for an address it cannot parse
        return ClusterInfo(address, error=f"not a Dask address: {exc}")
    except Exception as exc:  # something answered, but not as a Dask scheduler does
        log.debug("could not ask %s for its workers", address, exc_info=True)
        return ClusterInfo(
            address, error=f"did not answer as a Dask scheduler ({type(exc).__name__})"
        )
    workers = identity.get("workers") or {}
    return ClusterInfo(
        address, tuple(sorted((_worker(a, w) for a, w in workers.items()), key=_order))
    )


def _order(w: WorkerInfo) -> tuple[int, int, str]:
    """LocalCluster names its workers 0, 1, 2…: number order, not text order."""
    return (0, int(w.name), w.address) if w.name.isdigit() else (1, 0, w.name + w.address)


def _worker(address: str, info: Mapping[str, Any]) -> WorkerInfo:
    metrics = info.get("metrics") or {}
    counts = metrics.get("task_counts") or {}
    limit = info.get("memory_limit")
    return WorkerInfo(
        address=str(address),
        name=str(info.get("name", address)),
        nthreads=int(info.get("nthreads") or 0),
        memory_used=int(metrics.get("memory") or 0),
        memory_limit=int(limit) if limit else None,
        processing=sum(int(counts.get(s, 0)) for s in PROCESSING_STATES),
        in_memory=int(counts.get("memory", 0)),
        status=str(info.get("status", "")),
    )
