"""Checking a submission, the one way a job gets into the store.

`check` is every check a job passes before anything is stored: the kind's model, the text rule,
the store's limits (`jobstore.enqueue.envelope_errors`) and, given the uploaded tables, the
columns a parameter names and the kind's own data checks. The form, the CLI and the Python API
(`submit`, `submit_many`, `rerun` here) all go through it, so a bad `-p column=` is refused by
`runlab submit` with the very message the form shows. Each failure is `InvalidParams`, naming
the field.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, Unpack

from pydantic import BaseModel
from sqlalchemy import Engine

from compute import datasets, pipelines, registry, sweeps
from jobstore import enqueue as store
from jobstore import pipelines as pipeline_store
from jobstore import sweeps as sweep_store
from jobstore.enqueue import MAX_NAME_LENGTH, NewJob
from jobstore.models import Status
from jobstore.pipelines import NewPipeline, NewStep
from jobstore.sweeps import NewSweep
from runlab.errors import InvalidParams
from runlab.settings import QUEUE_NAME, QUEUE_NAME_RULE

if TYPE_CHECKING:
    import pandas as pd


class Options(TypedDict, total=False):
    """What a submission may say besides its kind and parameters."""

    name: str | None
    idempotency_key: str | None
    owner: str
    tags: Sequence[str]
    priority: int
    max_attempts: int
    timeout_seconds: float | None
    tables: Mapping[str, pd.DataFrame] | None
    queue: str | None
    queues: Collection[str] | None


def check(
    kind: str,
    params: Mapping[str, Any],
    *,
    name: str | None = None,
    idempotency_key: str | None = None,
    owner: str = "",
    tags: Sequence[str] = (),
    priority: int = 0,
    max_attempts: int = 3,
    timeout_seconds: float | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    queue: str | None = None,
    queues: Collection[str] | None = None,
) -> NewJob:
    """The job as the store will keep it, or InvalidParams naming each bad field.

    `tables` maps an upload field to its table, read by `datasets.read_csv`; without it the
    checks that need the data wait for the driver, which makes them on the same bytes.
    `queue` defaults to the kind's; `queues`, the settings' `queue_names`, are the ones it may
    name, so that a job is never left in a queue no runner will ever serve.
    """
    spec = registry.get(kind)
    parsed, clean = registry.validated(kind, params)
    name = (name or "").strip()
    tags = [str(t).strip() for t in tags if str(t).strip()]
    if timeout_seconds is None:
        timeout_seconds = spec.timeout_seconds
    errors = store.envelope_errors(
        name=name,
        tags=tags,
        owner=owner,
        priority=priority,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        idempotency_key=idempotency_key,
    )
    queue = (queue or "").strip() or spec.queue
    if why := queue_error(queue, queues):
        errors["queue"] = why
    if errors:
        raise InvalidParams(errors)
    if tables:
        _check_data(spec, parsed, clean, tables)
    return NewJob(
        kind,
        clean,
        list(spec.stages(parsed)),
        name,
        owner,
        tags,
        priority,
        max_attempts,
        timeout_seconds,
        idempotency_key,
        queue=queue,
        seed_drawn=params.get("seed") is None,
    )


def queue_error(queue: str, queues: Collection[str] | None) -> str | None:
    """Why a job cannot go to `queue`, or None."""
    if queues is not None and queue not in queues:
        named = ", ".join(queues)
        return f"no queue named {queue!r}; the queues are: {named}"
    if not QUEUE_NAME.fullmatch(queue):
        return QUEUE_NAME_RULE
    return None


def _check_data(
    spec: registry.Kind,
    parsed: BaseModel,
    clean: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
) -> None:
    """The columns a parameter names, then the kind's own checks of the table."""
    for info in registry.describe(spec.params):
        if info.column_of is not None and info.column_of in tables:
            value = clean.get(info.name)
            if value is not None:
                datasets.column(tables[info.column_of], value, info.name)
    if spec.check is not None:
        spec.check(parsed, next(iter(tables.values())))


def submit(engine: Engine, kind: str, params: Mapping[str, Any], **options: Unpack[Options]) -> str:
    """Check, store and queue a job; return its public id once it is committed."""
    return store.enqueue(engine, check(kind, params, **options))


def submit_many(
    engine: Engine,
    kind: str,
    params: Sequence[Mapping[str, Any]],
    *,
    owner: str = "",
    tags: Sequence[str] = (),
    priority: int = 0,
    max_attempts: int = 3,
    timeout_seconds: float | None = None,
    queue: str | None = None,
    queues: Collection[str] | None = None,
    chunk: int = 1000,
) -> list[str]:
    """Queue many jobs of one kind in one transaction: all of them, or none.

    Every job is checked first; a bad one raises InvalidParams with its fields prefixed by its
    position (`3.samples`), before anything is stored.
    """
    registry.get(kind)  # an unknown kind is one error, not one per job
    checked: list[NewJob] = []
    for i, p in enumerate(params):
        try:
            checked.append(
                check(
                    kind,
                    p,
                    owner=owner,
                    tags=tags,
                    priority=priority,
                    max_attempts=max_attempts,
                    timeout_seconds=timeout_seconds,
                    queue=queue,
                    queues=queues,
                )
            )
        except InvalidParams as exc:
            raise InvalidParams({f"{i}.{k}": v for k, v in exc.errors.items()}) from None
    return store.enqueue_many(engine, checked, chunk=chunk)


def check_sweep(
    kind: str,
    base: Mapping[str, Any],
    axes: Mapping[str, str],
    *,
    method: sweeps.Method | None = None,
    count: int = 0,
    seed: int | None = None,
    **options: Unpack[Options],
) -> CheckedSweep:
    """A sweep, its children and its plan, every child checked as `check` checks a job, or
    InvalidParams naming each bad field before anything is stored.

    `base` holds the parameters the children share, `axes` the swept ones' texts
    (compute/sweeps.py). Each child is an ordinary job: its own seed unless `base` gives one
    (then they share it, which compares the points on the same random numbers), the sweep's
    queue, priority and tags, and a name that says its point.
    """
    plan = sweeps.plan(kind, axes, method=method, count=count, seed=seed)
    points = list(sweeps.checked(kind, base, plan))
    key = options.pop("idempotency_key", None)
    # The envelope, the queue and any uploaded table, checked once, on the first point.
    template = check(kind, points[0][2], **options)
    swept = {name for name, _text in plan.texts}
    shared = {
        k: v
        for k, v in template.params.items()
        if k not in swept and (k != "seed" or base.get("seed") is not None)
    }
    public_id = store.new_public_id()
    label = template.name or f"{kind} sweep {public_id[:6]}"
    children = _children(kind, template, points, label, seed_given=base.get("seed") is not None)
    sweep = NewSweep(
        public_id,
        kind,
        label,
        template.owner,
        plan.stored(),
        shared,
        template.queue,
        template.priority,
        key,
        frozenset({"seed"}) if method is not None and seed is None else frozenset(),
    )
    return CheckedSweep(sweep, children, plan)


class CheckedSweep(NamedTuple):
    sweep: NewSweep
    children: list[NewJob]
    plan: sweeps.Plan  # what it says of itself before it is stored: "48 jobs: 6 sigma × 8 T"


def _children(
    kind: str,
    template: NewJob,
    points: Sequence[tuple[dict[str, Any], BaseModel, dict[str, Any]]],
    label: str,
    *,
    seed_given: bool,
) -> list[NewJob]:
    """Each checked point's job: the template's envelope (checked once), the point's
    parameters and stages, and a name that says the point."""
    spec = registry.get(kind)
    return [
        replace(
            template,
            params=clean,
            stage_names=list(spec.stages(parsed)),
            name=f"{label} · {sweeps.point_text(point)}"[:MAX_NAME_LENGTH],
            seed_drawn=not seed_given and "seed" not in point,
        )
        for point, parsed, clean in points
    ]


def submit_sweep(
    engine: Engine,
    kind: str,
    base: Mapping[str, Any],
    axes: Mapping[str, str],
    *,
    method: sweeps.Method | None = None,
    count: int = 0,
    seed: int | None = None,
    **options: Unpack[Options],
) -> str:
    """Check a sweep and store it with all its children in one transaction; return its
    public id once committed. Under a used idempotency key, the sweep stored then."""
    checked = check_sweep(kind, base, axes, method=method, count=count, seed=seed, **options)
    return sweep_store.create(engine, checked.sweep, checked.children)


def rerun_failed(engine: Engine, sweep_id: str, *, owner: str = "") -> list[str]:
    """Run again each point of a sweep whose latest job failed or was cancelled, with the same
    parameters and seed; the new jobs are `owner`'s. Returns their ids; none if no point
    needs it."""
    sweep = sweep_store.get(engine, sweep_id)
    redo = [
        c
        for c in sweep_store.latest(engine, sweep_id)
        if c.status in (Status.FAILED, Status.CANCELLED)
    ]
    new = [
        replace(
            check(
                sweep.kind,
                c.params,
                name=c.name,
                owner=owner,
                tags=c.tags,
                max_attempts=c.max_attempts,
                timeout_seconds=c.timeout_seconds,
                queue=sweep.queue,
                priority=sweep.priority,
            ),
            note=f"as a re-run of {c.public_id}",
        )
        for c in redo
    ]
    return sweep_store.add(engine, sweep_id, new, [c.point for c in redo])


def extend_sweep(
    engine: Engine,
    sweep_id: str,
    axes: Mapping[str, str],
    *,
    owner: str = "",
    queues: Collection[str] | None = None,
) -> list[str]:
    """Widen a grid sweep: `axes` replaces the texts of the swept parameters it names, or adds
    new ones. Only the points no job of the sweep has computed are run; returns their ids."""
    sweep = sweep_store.get(engine, sweep_id)
    if sweep.plan.get("method"):
        raise InvalidParams(
            {"sweep": "drawn points cannot be extended: submit another sweep with its own seed"}
        )
    texts = {**sweep.axes, **axes}
    plan = sweeps.plan(sweep.kind, texts)
    names = list(texts)
    kids = sweep_store.latest(engine, sweep_id)
    done = {sweeps.point_key(c.params, names) for c in kids}
    fresh = [
        p
        for p in sweeps.checked(sweep.kind, sweep.params, plan)
        if sweeps.point_key(p[2], names) not in done
    ]
    new: list[NewJob] = []
    if fresh:
        like = kids[0] if kids else None
        template = check(
            sweep.kind,
            fresh[0][2],
            owner=owner,
            tags=like.tags if like else (),
            max_attempts=like.max_attempts if like else 3,
            timeout_seconds=like.timeout_seconds if like else None,
            queue=sweep.queue,
            queues=queues,
            priority=sweep.priority,
        )
        seed_given = "seed" in sweep.params
        new = _children(sweep.kind, template, fresh, sweep.name, seed_given=seed_given)
    first = max((c.point for c in kids), default=-1) + 1
    points = list(range(first, first + len(new)))
    stored = {**sweep.plan, "axes": [[k, v] for k, v in texts.items()]}
    return sweep_store.add(engine, sweep_id, new, points, plan=stored, was=sweep.plan)


def check_pipeline(
    doc: Mapping[str, Any],
    *,
    owner: str = "",
    idempotency_key: str | None = None,
    tables: Mapping[tuple[str, str], pd.DataFrame] | None = None,
) -> NewPipeline:
    """A pipeline spec checked (compute/pipelines.py) and ready to store, or InvalidParams
    naming each bad step and field.

    `tables` holds each uploaded file's table by (step, field): a step whose parameters read
    no result is checked against its data here, as a job's form checks it, so that a column
    missing from the file is said now and not when the step starts.
    """
    name = doc.get("name", "")
    errors = store.envelope_errors(
        name=name if isinstance(name, str) else "",
        tags=(),
        owner=owner,
        priority=0,
        max_attempts=1,
        timeout_seconds=None,
        idempotency_key=idempotency_key,
    )
    try:
        spec = pipelines.check(doc)
    except InvalidParams as exc:
        raise InvalidParams({**errors, **exc.errors}) from None
    if errors:
        raise InvalidParams(errors)
    steps = [spec.steps[name] for name in spec.order]
    for s in steps:
        given = {key: df for (step, key), df in (tables or {}).items() if step == s.name}
        if not given or s.is_sweep or any(pipelines.refs_in(v) for v in s.params.values()):
            continue
        try:
            check(s.kind, s.params, tables=given)
        except InvalidParams as exc:
            where = f"steps.{s.name}.params"
            raise InvalidParams({f"{where}.{k}": v for k, v in exc.errors.items()}) from None
    return NewPipeline(
        store.new_public_id(),
        spec.name,
        owner,
        dict(doc),
        [
            NewStep(
                s.name,
                s.kind,
                dict(s.needs),
                {
                    "params": s.params,
                    "sweep": s.sweep,
                    "method": s.method,
                    "count": s.count,
                    "seed": s.seed,
                    "inputs": list(s.inputs),
                },
            )
            for s in steps
        ],
        idempotency_key,
    )


def submit_pipeline(
    engine: Engine,
    doc: Mapping[str, Any],
    *,
    owner: str = "",
    idempotency_key: str | None = None,
    tables: Mapping[tuple[str, str], pd.DataFrame] | None = None,
) -> str:
    """Check a pipeline and store it with every step waiting, in one transaction; its public id
    once committed. Under a used idempotency key, the pipeline stored then."""
    return pipeline_store.create(
        engine,
        check_pipeline(doc, owner=owner, idempotency_key=idempotency_key, tables=tables),
    )


def rerun(engine: Engine, public_id: str, *, owner: str = "") -> str:
    """Queue a new job of the same kind with the same parameters, seed included.

    The stored parameters are the validated ones, with the seed the first run drew, so the
    new job computes the same numbers whenever the software versions match. The new job is
    `owner`'s, whoever owned the first, and its `submitted` event names the job it re-runs.
    """
    was = store.request_of(engine, public_id)
    job = check(
        was.kind,
        was.params,
        name=f"{was.name} (re-run)"[:MAX_NAME_LENGTH],
        owner=owner,
        tags=was.tags,
        max_attempts=was.max_attempts,
        queue=was.queue,
        priority=was.priority,
    )
    return store.enqueue(engine, replace(job, note=f"as a re-run of {public_id}"))
