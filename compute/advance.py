"""Moving pipelines on: each waiting step starts once every step it needs has ended, and each
started step ends as its job or sweep ends.

Every runner calls `advance` a few times a second. The store fences each move
(`jobstore.pipelines.start` and `end`), so two runners advancing one pipeline start a step once,
and a runner killed at any point leaves a step either waiting or started with its job: the next
call by any runner goes on from there.

A step that starts reads the results of the steps it references from the store, only from the
attempt that succeeded (`jobstore.pipelines.results_of`), and is checked as a submission is
(`compute.intake`): a value read that its kind refuses fails the step, with the field and the
value in its reason, and its dependents follow by their policy. A step whose dependency ended
without success fails at once under the policy `fail`, whatever its other dependencies are
doing, and goes on without that input under `continue`: no step waits for ever.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from compute import intake, pipelines, registry
from jobstore import pipelines as store
from jobstore import sweeps as sweep_store
from jobstore.models import Status
from jobstore.pipelines import OpenPipeline, StepState, StepStatus
from runlab.errors import InvalidParams, JobNotFound

log = logging.getLogger(__name__)

MAX_ROUNDS = 20  # a chain of steps that each decide at once moves on in one call
MAX_COLLECTED = 20_000  # the rows a collect step takes; more is a sweep to read on its own page
OPEN = (Status.QUEUED.value, Status.RUNNING.value)


@dataclass(frozen=True)
class Pass:
    """What one call of `advance` did: the steps it moved, and the pipelines it found open."""

    moved: int
    open: int


def advance(engine: Engine, *, queues: Collection[str] | None = None) -> Pass:
    """Make every move that is due now. `queues` are the queues a step's job may name (the
    settings' `queue_names`)."""
    moved = 0
    seen = 0
    for round_ in range(MAX_ROUNDS):
        n = 0
        pipelines = store.open_pipelines(engine)
        if round_ == 0:
            seen = len(pipelines)
        for p in pipelines:
            try:
                n += _advance(engine, p, queues)
            except SQLAlchemyError:
                raise  # the store's trouble: the caller tries again later
            except Exception:
                # A defect, not the store: said once, and the other pipelines move on.
                if p.id not in _told:
                    _told.add(p.id)
                    log.exception("pipeline %s could not move on", p.public_id)
        moved += n
        if not n:
            break
    return Pass(moved, seen)


_told: set[int] = set()  # the pipelines whose failure to move on was logged


def _advance(engine: Engine, p: OpenPipeline, queues: Collection[str] | None) -> int:
    moved = 0
    for step in p.steps.values():
        if step.status is StepStatus.STARTED and (end := ended(step)) is not None:
            moved += store.end(engine, step.id, StepStatus.STARTED, *end)
    for step in p.steps.values():
        if step.status is not StepStatus.WAITING:
            continue
        verdict = blocked_by(step, p.steps)
        if verdict is None:
            continue  # still waiting
        if verdict:
            moved += store.end(engine, step.id, StepStatus.WAITING, StepStatus.FAILED, verdict)
            continue
        try:
            moved += _start(engine, p, step, queues)
        except InvalidParams as exc:
            why = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
            moved += store.end(engine, step.id, StepStatus.WAITING, StepStatus.FAILED, why)
        except (JobNotFound, KeyError, TypeError, ValueError, AttributeError) as exc:
            # A stored spec this code cannot read, or an input deleted meanwhile: a clear end
            # for the step, not a retry every half second.
            why = f"it could not start: {type(exc).__name__}: {exc}"
            moved += store.end(engine, step.id, StepStatus.WAITING, StepStatus.FAILED, why)
    return moved


def ended(step: StepState) -> tuple[StepStatus, str | None] | None:
    """How a started step ends, from its job or sweep; None while that is still open."""
    if step.job is None and step.sweep is None:
        return StepStatus.FAILED, "its job or sweep was deleted before it ended"
    if step.job is not None:
        status = step.job_status
        if status is Status.SUCCEEDED:
            return StepStatus.SUCCEEDED, None
        if status is Status.FAILED:
            return StepStatus.FAILED, "its job failed"
        if status is Status.CANCELLED:
            return StepStatus.CANCELLED, "its job was cancelled"
        return None
    counts = step.points
    if any(counts.get(s, 0) for s in OPEN):
        return None
    total = sum(counts.values())
    failed = counts.get(Status.FAILED.value, 0)
    cancelled = counts.get(Status.CANCELLED.value, 0)
    if failed:
        return StepStatus.FAILED, f"{failed} of {total} points of its sweep failed"
    if cancelled:
        return StepStatus.CANCELLED, f"{cancelled} of {total} points of its sweep were cancelled"
    return StepStatus.SUCCEEDED, None


def blocked_by(step: StepState, steps: Mapping[str, StepState]) -> str | None:
    """Why a waiting step fails now ("" when it may start instead), or None while a step it
    needs has not ended."""
    waiting = False
    for dep, policy in step.needs.items():
        other = steps.get(dep)
        if other is None:
            return f"it needs step {dep!r}, which this pipeline does not have"
        status = other.status
        if not status.ended:
            waiting = True
        elif status is not StepStatus.SUCCEEDED and policy != "continue":
            how = "failed" if status is StepStatus.FAILED else "was cancelled"
            return f"it needs {dep}, which {how}"
    return None if waiting else ""


def _start(engine: Engine, p: OpenPipeline, step: StepState, queues: Collection[str] | None) -> int:
    spec = step.spec
    options: intake.Options = {
        "owner": p.owner,
        "name": f"{p.name} · {step.name}",
        "queues": queues,
    }
    if step.kind == pipelines.COLLECT:
        params = collected(engine, p, [str(i) for i in spec.get("inputs", [])])
        return store.start(engine, step.id, job=intake.check(step.kind, params, **options))
    values = _read(engine, p, step)
    params = {k: _resolved(v, values, exact=True) for k, v in spec.get("params", {}).items()}
    axes = {k: str(_resolved(t, values)) for k, t in spec.get("sweep", {}).items()}
    if axes:
        checked = intake.check_sweep(
            step.kind,
            params,
            axes,
            method=spec.get("method"),
            count=int(spec.get("count") or 0),
            seed=spec.get("seed"),
            **options,
        )
        return store.start(engine, step.id, sweep=(checked.sweep, checked.children))
    return store.start(engine, step.id, job=intake.check(step.kind, params, **options))


def _read(engine: Engine, p: OpenPipeline, step: StepState) -> dict[pipelines.Ref, float]:
    """The value of every reference the step holds, from the results in the store."""
    refs = {
        ref
        for section in ("params", "sweep")
        for value in step.spec.get(section, {}).values()
        for ref in pipelines.refs_in(value)
    }
    sources = {r.step: p.steps.get(r.step) for r in refs}
    found = store.results_of(engine, [s.job for s in sources.values() if s is not None and s.job])
    out: dict[pipelines.Ref, float] = {}
    for ref in refs:
        source = sources[ref.step]
        result = found.get(source.job) if source is not None and source.job else None
        if result is None:
            raise InvalidParams({ref.text: f"{ref.step} has no result to read: it did not succeed"})
        value = result.get(ref.field)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidParams({ref.text: f"{ref.step}'s result has no number {ref.field!r}"})
        out[ref] = float(value)
    return out


def _resolved(value: Any, values: Mapping[pipelines.Ref, float], *, exact: bool = False) -> Any:
    """`value` with each reference replaced by the number read: a parameter that is one
    reference becomes the number itself, a sweep's text gets the number written out."""
    refs = pipelines.refs_in(value)
    if not refs:
        return value
    if exact:
        return values[refs[0]]
    return pipelines.REF.sub(lambda m: repr(values[_ref_of(m[0])]), value)


def _ref_of(text: str) -> pipelines.Ref:
    (ref,) = pipelines.refs_in(text)
    return ref


def collected(engine: Engine, p: OpenPipeline, inputs: list[str]) -> dict[str, Any]:
    """A collect step's parameters: each input's headline fields, one row per job that
    succeeded, a sweep's with the point it computed."""
    described: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    singles = store.results_of(
        engine, [s.job for name in inputs if (s := p.steps.get(name)) is not None and s.job]
    )
    for name in inputs:
        source = p.steps.get(name)
        if source is None:
            raise InvalidParams({"inputs": f"no step {name!r} in this pipeline"})
        kind = registry.find(source.kind)
        fields = list(kind.headline) if kind is not None else []
        swept: list[str] = []
        if source.sweep is not None:
            swept = list(sweep_store.get(engine, source.sweep).axes)
            for point in sweep_store.points(engine, source.sweep):
                if point.status is Status.SUCCEEDED and point.result is not None:
                    rows.append(
                        _row(
                            name,
                            point.public_id,
                            {k: point.params.get(k) for k in swept},
                            point.result,
                            fields,
                        )
                    )
        elif source.job is not None and source.job in singles:
            rows.append(_row(name, source.job, {}, singles[source.job], fields))
        if len(rows) > MAX_COLLECTED:
            raise InvalidParams(
                {
                    "inputs": f"more than {MAX_COLLECTED:,} results to collect; read the "
                    "sweeps' own pages instead"
                }
            )
        described.append(
            {
                "step": name,
                "kind": source.kind,
                "swept": swept,
                "fields": fields,
                "status": source.status.value,
            }
        )
    return {"inputs": described, "rows": rows}


def _row(
    step: str, job: str, point: dict[str, Any], result: Mapping[str, Any], fields: list[str]
) -> dict[str, Any]:
    values = {
        f: float(v)
        for f in fields
        if isinstance(v := result.get(f), int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
    }
    return {"step": step, "job": job, "point": point, "values": values}
