"""Whether a runner's Dask scheduler and every worker run the code the runner runs: Runlab,
Dask, distributed and NumPy at the same versions, and the same kinds (`runlab.versions`).

A job computed by workers of mixed versions could give numbers that no re-run reproduces, so a
runner claims nothing until they agree, and says in one line per host what differs.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from runlab.errors import CodeMismatch
from runlab.versions import COMPARED, fingerprint

# The scheduler runs no task: what it must share is Dask's own wire protocol.
SCHEDULER_COMPARED = ("dask", "distributed")


def differences(mine: Mapping[str, str], theirs: Mapping[str, Any], names: tuple[str, ...]) -> str:
    """`numpy 1.26.4 (this runner: 2.4.6), …` for each of `names` that differs; empty if none."""
    parts = []
    for name in names:
        if str(theirs.get(name)) != mine[name]:
            what = "the kinds' code" if name == "kinds" else name
            parts.append(f"{what} {theirs.get(name, 'unknown')} (this runner: {mine[name]})")
    return ", ".join(parts)


def mismatches(client: Any, kind_modules: tuple[str, ...] = ()) -> list[str]:
    """One line per host of the cluster whose code differs from this runner's; empty when
    the scheduler and every worker agree."""
    mine = fingerprint(kind_modules)
    lines = []
    try:
        versions = client.get_versions(check=False)
        scheduler = (versions.get("scheduler") or {}).get("packages") or {}
        address = client.scheduler.address
    except Exception as exc:
        return [f"the Dask scheduler could not say its versions: {type(exc).__name__}: {exc}"]
    diff = differences(mine, scheduler, SCHEDULER_COMPARED)
    if diff:
        lines.append(f"the Dask scheduler {address} runs {diff}")
    answers = client.run(fingerprint, kind_modules, on_error="return")
    for worker, theirs in sorted(answers.items()):
        if isinstance(theirs, BaseException):
            reason = f"{type(theirs).__name__}: {theirs}"
            lines.append(f"the Dask worker {worker} cannot run Runlab's own code ({reason})")
            continue
        diff = differences(mine, theirs, (*COMPARED, "kinds"))
        if diff:
            lines.append(f"the Dask worker {worker} on host {theirs.get('host')} runs {diff}")
    return lines


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _in_dask(exc: BaseException) -> bool:
    """Whether Dask raised it: a task graph the scheduler or a worker could not unpickle."""
    marker = f"{os.sep}distributed{os.sep}"
    return any(marker in frame.filename for frame in traceback.extract_tb(exc.__traceback__))


def missing_code(exc: BaseException) -> CodeMismatch | None:
    """A job's tasks that the Dask cluster could not load for a module it lacks, said as
    what to install, with Dask's own error kept as its cause; None for any other failure."""
    chain = list(_chain(exc))
    missing = next((e for e in chain if isinstance(e, ModuleNotFoundError)), None)
    if missing is None or not any(_in_dask(e) for e in chain):
        return None
    name = missing.name or str(missing)
    mismatch = CodeMismatch(
        f"the Dask cluster lacks the module {name!r} that this job's tasks need: install the "
        "same code on the scheduler and every worker as on the runner, then run the job again"
    )
    mismatch.__cause__ = exc
    return mismatch
