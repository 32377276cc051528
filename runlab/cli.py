"""`runlab`: the command line. Owns argument parsing, output shapes and exit codes.

Exit codes: 0 success, 1 unknown id or a job that did not succeed (with --wait), 2 bad input.
Errors are mapped to one-line messages in one place, `RunlabGroup.invoke`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from compute import datasets, intake, param_text, registry
from compute import pipelines as pipeline_specs
from compute import sweeps as sweep_plans
from jobstore import history, queries, search, sweeps, transitions
from jobstore import pipelines as pipeline_store
from jobstore.engine import make_engine, migrate, revision
from jobstore.enqueue import MAX_OWNER_LENGTH, enqueue
from jobstore.models import Status
from jobstore.pipelines import NewPipeline, PipelineView, StepStatus, StepView
from jobstore.views import Cost, JobDetail
from runlab import format as fmt
from runlab.artifacts import ArtifactStore, artifact_store
from runlab.errors import (
    InvalidParams,
    InvalidUpload,
    JobNotFound,
    PipelineNotFound,
    RunlabError,
    SweepNotFound,
)
from runlab.identity import Actor, operator
from runlab.settings import Settings, load_settings
from runlab.status import OUTCOMES, partial_note
from runlab.text import bad_character

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class RunlabGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunlabError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


class _State:
    """Settings and engine, made once per command and only when the command needs them."""

    def __init__(self) -> None:
        self.settings: Settings = load_settings()
        self._engine: Engine | None = None
        registry.load(self.settings.extra_kind_modules)
        name = click.get_current_context().meta.get(AS_KEY) or self.settings.owner
        # The CLI talks to the store directly: an operator, who may act on every job, named
        # in the events of what it does.
        self.actor: Actor = operator(name)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
            migrate(self._engine)
        return self._engine


pass_state = click.make_pass_decorator(_State, ensure=True)


AS_KEY = "runlab.as"


def _as_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    name = value.strip()
    why = bad_character(name) or (
        f"at most {MAX_OWNER_LENGTH} characters" if len(name) > MAX_OWNER_LENGTH else None
    )
    if not name or why:
        raise click.BadParameter(why or "give a name", param_hint="--as")
    return name


@click.group(cls=RunlabGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log what is happening to stderr.")
@click.option(
    "--as",
    "as_name",
    default=None,
    callback=_as_name,
    metavar="NAME",
    help="The name this command's jobs and actions are recorded under; by default RUNLAB_USER "
    "or the operating-system user. The CLI acts as an operator: it may act on every job.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool, as_name: str | None) -> None:
    """Runlab: run long simulations on Dask, watch them live, share the results."""
    if as_name:
        ctx.meta[AS_KEY] = as_name
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    cli(prog_name="runlab")


# --- kinds and parameters -----------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the kinds as JSON.")
@pass_state
def kinds(state: _State, as_json: bool) -> None:
    """List the kinds of job, with their parameters, defaults and bounds."""
    out: list[dict[str, Any]] = []
    for k in registry.all_kinds():
        fields = registry.describe(k.params)
        out.append(
            {
                "kind": k.name,
                "title": k.title,
                "description": k.description,
                # The result fields it puts first: what a pipeline step may read of a step
                # of this kind, as ${step.result.field} (not of a collect step's rows).
                "headline": list(k.headline),
                "params": [
                    {
                        "name": f.name,
                        "type": f.type,
                        "default": f.default,
                        "required": f.required,
                        "optional": f.optional,
                        "minimum": f.minimum,
                        "maximum": f.maximum,
                        "choices": list(f.choices),
                        "rule": registry.rule(f),
                        "description": f.description,
                    }
                    for f in fields
                ],
            }
        )
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for entry in out:
        click.echo(f"{entry['kind']}: {entry['description']}")
        for p in entry["params"]:
            click.echo(f"  {p['name']:<20} {p['rule']}; {_default_text(p)}")
            if p["description"]:
                click.echo(f"  {'':<20} {p['description']}")
        if entry["headline"] and entry["kind"] != pipeline_specs.COLLECT:
            click.echo(f"  result fields a pipeline step may read: {', '.join(entry['headline'])}")


def _default_text(p: dict[str, Any]) -> str:
    """What leaving a field out gives, written as `-p` would take it."""
    value = p["default"]
    if value is None:
        return "default automatic" if p["optional"] else "required"
    if p["type"] in param_text.TYPES:
        text = param_text.to_text(value, p["type"]).replace("\n", "; ")
    elif p["type"] in ("int", "float"):
        text = param_text.number_text(value)
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"default {text}"


def parse_params(
    kind: str, pairs: Sequence[str], files: dict[str, datasets.Checked] | None = None
) -> dict[str, Any]:
    """`key=value` pairs, each value read as its field's type; the model has the last word.

    Lists and matrices read as the form reads them (`compute.param_text`): `0.6,0.4`,
    `1,0.3;0.3,1` or JSON. An upload is `key=@path/to/file.csv`: the file is read and
    checked, its reference goes in the values and the file (bytes and table) in `files` by
    field, to be checked with the other values and kept (`_keep`) only once every value has
    passed, so a bad one leaves no file behind. Without
    `files`, uploads are refused. Any input ends as InvalidParams, never a traceback.
    """
    from runlab.text import TEXT_WHITESPACE, bad_character

    fields = {f.name: f for f in registry.describe(registry.get(kind).params)}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidParams({"-p": f"expected key=value, got {pair!r}"})
        # NUL, control characters and undecodable bytes (lone surrogates) are refused here, by
        # the store's one rule, so that no message echoes them and no database sees them.
        if why := bad_character(key):
            raise InvalidParams({"-p": f"{key!r} {why}"})
        if why := bad_character(raw, allow=TEXT_WHITESPACE):
            raise InvalidParams({key: why})
        info = fields.get(key)
        type_ = info.type if info else "str"
        if type_ == "upload":
            out[key] = _upload(key, raw.strip(), files)
        else:
            out[key] = param_text.scalar(raw, type_)
    return out


def _upload(key: str, raw: str, files: dict[str, datasets.Checked] | None) -> dict[str, Any]:
    """The reference to the file `@path`, checked but not yet kept; the file goes in `files`."""
    if not raw.startswith("@"):
        raise InvalidParams({key: f"give a file as {key}=@path/to/file.csv"})
    if files is None:
        raise InvalidParams({key: "this command cannot take uploads"})
    files[key] = _read_upload(Path(raw[1:]).expanduser(), key)
    return files[key].ref.model_dump()


def _read_upload(path: Path, key: str) -> datasets.Checked:
    """The file at `path`, read and checked but not kept; every failure is InvalidParams at
    `key`. A file that says it is over the limit is refused unread, and any other is read one
    byte past the limit at most, whatever size it reports."""
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > datasets.MAX_BYTES:  # refused for its size, unread
                raise InvalidUpload(datasets.too_big(size), key)
            # A device or pipe reports 0 bytes: the read itself stops past the limit.
            data = datasets.read_limited(stream, key)
    except OSError as exc:
        raise InvalidParams({key: f"cannot read {path}: {exc.strerror or exc}"}) from None
    return datasets.check_upload(path.name, data, key)


def _keep(artifacts: ArtifactStore, files: dict[str, datasets.Checked]) -> None:
    """Store the uploads of values that have passed; a folder's refusal names the field."""
    for key, file in files.items():
        artifacts.put_upload(file.data, key)


# --- jobs ---------------------------------------------------------------------------------------


F = TypeVar("F", bound=Callable[..., Any])


def submission_options(what: str) -> Callable[[F], F]:
    """The options `submit` and `sweep` share; `what` ("job" or "sweep") words their help. A
    sweep's options apply to each of its jobs."""
    options = [
        click.option("--name", default=None, help=f"A name to find the {what} by."),
        click.option("--tag", "tags", multiple=True, help="A tag; repeat for more."),
        click.option(
            "--idempotency-key",
            default=None,
            help=f"Submitting the same key twice makes one {what}.",
        ),
        click.option(
            "--max-attempts",
            default=3,
            show_default=True,
            type=int,
            help="Runs before a job fails for good.",
        ),
        click.option(
            "--timeout",
            "timeout_seconds",
            default=None,
            type=float,
            help="Seconds one attempt may run.",
        ),
        click.option(
            "--queue",
            default=None,
            help="The queue it waits in; by default its kind's (most: default).",
        ),
        click.option(
            "--priority",
            default=0,
            show_default=True,
            type=int,
            help="Higher goes first in its queue; a waiting job's priority rises as it waits.",
        ),
        click.option(
            "--json", "as_json", is_flag=True, help=f"Print the {what} as `show --json` does."
        ),
        click.option(
            "--wait",
            is_flag=True,
            help=f"Wait for the {what} to end, with progress on stderr.",
        ),
    ]

    def apply(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return apply


@cli.command()
@click.argument("kind")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter.")
@submission_options("job")
@pass_state
def submit(
    state: _State,
    kind: str,
    params: tuple[str, ...],
    name: str | None,
    tags: tuple[str, ...],
    idempotency_key: str | None,
    max_attempts: int,
    timeout_seconds: float | None,
    queue: str | None,
    priority: int,
    as_json: bool,
    wait: bool,
) -> None:
    """Submit a job of KIND; print its id (the last line of stdout)."""
    files: dict[str, datasets.Checked] = {}
    values = parse_params(kind, params, files)
    options: dict[str, Any] = {
        "name": name,
        "idempotency_key": idempotency_key,
        "owner": state.actor.name,
        "tags": tags,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout_seconds,
        "queue": queue,
        "queues": state.settings.queue_names,
        "priority": priority,
    }
    tables = {key: file.table for key, file in files.items()}
    checked = intake.check(kind, values, tables=tables, **options)
    if files:  # the whole job passes before an upload is kept, so a bad one leaves no file
        _keep(artifact_store(state.settings), files)
    public_id = enqueue(state.engine, checked)
    job = queries.get_job(state.engine, public_id)
    if wait:
        job = _wait(state.engine, public_id, state.settings)
    if as_json:
        click.echo(json.dumps(job.to_json(), indent=2))
    else:
        click.echo(public_id)
    if wait and job.status is not Status.SUCCEEDED:
        sys.exit(1)


@cli.command()
@click.argument("kind")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter. A number or choice is swept when given as a list (0.5,1,2), a range "
    "with a step (0.1:0.5:0.05), evenly spaced points (lin:0.1:0.5:9) or a log range "
    "(log:0.01:1:5); with --random or --lhs, as its bounds (0.1:0.5, or log:0.01:1).",
)
@click.option("--random", "random_points", type=int, default=None, help="Draw N random points.")
@click.option("--lhs", "lhs_points", type=int, default=None, help="Draw N Latin-hypercube points.")
@click.option(
    "--seed",
    "plan_seed",
    type=int,
    default=None,
    help="The seed of the drawn points; drawn and kept with the sweep when not given.",
)
@submission_options("sweep")
@pass_state
def sweep(
    state: _State,
    kind: str,
    params: tuple[str, ...],
    random_points: int | None,
    lhs_points: int | None,
    plan_seed: int | None,
    name: str | None,
    tags: tuple[str, ...],
    idempotency_key: str | None,
    max_attempts: int,
    timeout_seconds: float | None,
    queue: str | None,
    priority: int,
    as_json: bool,
    wait: bool,
) -> None:
    """Submit a sweep of KIND: one job per point; print its id (the last line of stdout)."""
    if random_points is not None and lhs_points is not None:
        raise InvalidParams({"--lhs": "give --random or --lhs, not both"})
    method: sweep_plans.Method | None = (
        "random" if random_points is not None else "lhs" if lhs_points is not None else None
    )
    count = random_points if random_points is not None else lhs_points or 0
    swept, fixed = _swept(kind, params)
    files: dict[str, datasets.Checked] = {}
    base = parse_params(kind, fixed, files)
    checked = intake.check_sweep(
        kind,
        base,
        swept,
        method=method,
        count=count,
        seed=plan_seed,
        name=name,
        idempotency_key=idempotency_key,
        owner=state.actor.name,
        tags=tags,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        queue=queue,
        queues=state.settings.queue_names,
        priority=priority,
        tables={key: file.table for key, file in files.items()},
    )
    if files:
        _keep(artifact_store(state.settings), files)
    click.echo(checked.plan.describe(), err=True)
    public_id = sweeps.create(state.engine, checked.sweep, checked.children)
    view = _wait_sweep(state.engine, public_id) if wait else sweeps.get(state.engine, public_id)
    click.echo(json.dumps(view.to_json(), indent=2) if as_json else public_id)
    if wait and view.statuses.get(Status.SUCCEEDED.value, 0) != view.children:
        sys.exit(1)


def _swept(kind: str, pairs: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The swept parameters' texts, and the other pairs as `submit` reads them: a number or a
    choice given as a list, a range or bounds is swept."""
    fields = {f.name: f for f in registry.describe(registry.get(kind).params)}
    swept: dict[str, str] = {}
    fixed: list[str] = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        info = fields.get(key.strip())
        sweepable = sep and info is not None and info.type in sweep_plans.SWEEPABLE
        if sweepable and any(mark in raw for mark in (",", ":")):
            swept[key.strip()] = raw
            continue
        fixed.append(pair)
    return swept, fixed


def _wait_sweep(engine: Engine, public_id: str) -> sweeps.SweepView:
    """Poll the sweep until every child has ended, with a one-line count on stderr."""
    shown = ""
    while True:
        view = sweeps.get(engine, public_id)
        counts = ", ".join(f"{n:,} {s}" for s, n in view.statuses.items())
        line = f"{view.ended:,} of {view.children:,} ended: {counts}"
        if line != shown:
            click.echo(f"\r{line:<72}", err=True, nl=False)
            shown = line
        if view.ended == view.children:
            click.echo("", err=True)
            return view
        time.sleep(0.5)


# How long `--wait` watches a queued job before it says that no runner serves the store.
NO_RUNNER_AFTER = 3.0


def _wait(engine: Engine, public_id: str, settings: Settings) -> JobDetail:
    """Poll the job until it ends, drawing a one-line progress bar with its stage on stderr;
    say once, after a few seconds, if no runner is alive for this store to run it."""
    width = 30
    shown = ""
    started = time.monotonic()
    warned = False
    while True:
        job = queries.get_job(engine, public_id, log_lines=0, max_points=1)
        filled = int(job.progress * width)
        where = f"position {job.queue_position}" if job.queue_position else job.stage or ""
        line = f"[{'#' * filled}{'.' * (width - filled)}] {job.progress:4.0%} {job.outcome} {where}"
        if (
            not warned
            and job.status is Status.QUEUED
            and time.monotonic() - started >= NO_RUNNER_AFTER
        ):
            warned = True
            if not _alive_runners(engine, settings):
                click.echo(
                    f"\rwarning: no runner is alive for the store {_store_text(settings)}; "
                    "the job waits until one starts: `runlab runner`, or `make run`",
                    err=True,
                )
                shown = ""
        if line != shown:
            click.echo(f"\r{line:<72}", err=True, nl=False)
            shown = line
        if job.status.terminal:
            click.echo("", err=True)
            if job.partial:
                click.echo(partial_note(job.progress), err=True)
            for text in _headline_lines(job):
                click.echo(text, err=True)
            if job.error is not None:
                click.echo(f"{job.error.type}: {job.error.message}", err=True)
            return job
        time.sleep(0.2)


def _headline_lines(job: JobDetail) -> list[str]:
    """The kind's headline of a finished job's result, as `Label: text` lines; none if the
    kind has none or is not installed here."""
    kind = registry.find(job.kind)
    if job.result is None or kind is None:
        return []
    headline = kind.summary(job.result, job.params)
    return [] if headline is None else headline.lines()


def _alive_runners(engine: Engine, settings: Settings) -> list[Any]:
    return [r for r in queries.runners(engine, alive_within=settings.alive_within) if r.alive]


def _store_text(settings: Settings) -> str:
    """The store's URL with any password hidden."""
    return make_url(settings.database_url).render_as_string(hide_password=True)


@cli.command()
@pass_state
def info(state: _State) -> None:
    """Where this command's store, artifacts and Dask scheduler are, and which runners serve
    the store now."""
    s = state.settings
    engine = state.engine
    overview = queries.overview(engine, alive_within=s.alive_within, recent=0)
    total = queries.list_jobs(engine, limit=1).total
    click.echo(f"store      {_store_text(s)}")
    click.echo(
        f"           {total:,} job{'s' if total != 1 else ''}: "
        f"{overview.queued:,} queued, {overview.running:,} running"
    )
    click.echo(f"artifacts  {s.artifacts}")
    click.echo(f"scheduler  {s.scheduler or 'none: each runner starts a LocalCluster of its own'}")
    alive = _alive_runners(engine, s)
    if not alive:
        click.echo("runners    none alive: start one with `runlab runner`, or `make run`")
    for i, r in enumerate(alive):
        label = "runners   " if i == 0 else "          "
        where = r.scheduler_address or "its own LocalCluster"
        click.echo(
            f"{label} {r.host} pid {r.pid}: {r.running_jobs} of {r.concurrency} running, "
            f"Dask at {where}"
        )


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def show(state: _State, job_id: str, as_json: bool) -> None:
    """Show one job, sweep or pipeline."""
    try:
        job = queries.get_job(state.engine, job_id)
    except JobNotFound:
        _show_group(state.engine, job_id, as_json)
        return
    if as_json:
        click.echo(json.dumps(job.to_json(), indent=2))
        return
    click.echo(f"{job.name}  ({job.kind}, {job.id})")
    click.echo(f"status    {job.outcome}  attempt {job.attempt}  progress {job.progress:.0%}")
    if job.partial:
        click.echo(f"          {partial_note(job.progress)}")
    place = f"  position {job.queue_position}" if job.queue_position else ""
    click.echo(f"queue     {job.queue}  priority {job.priority}{place}")
    if job.owner:
        click.echo(f"owner     {job.owner}")
    for s in job.stages:
        click.echo(f"  stage   {s.name:<20} {s.status:<8} {s.progress:.0%}")
    click.echo(f"params    {json.dumps(job.params)}")
    for i, line in enumerate(_headline_lines(job)):
        click.echo(f"{'answer' if i == 0 else '':<10}{line}")
    if job.result is not None:
        click.echo(f"result    {json.dumps(job.result)}")
    if job.error is not None:
        click.echo(f"error     {job.error.type}: {job.error.message}")
    if job.cost is not None:
        click.echo(f"cost      {_cost_text(job.cost.total)}")
        for sc in job.cost.stages:
            click.echo(f"  stage   {sc.name:<20} {_cost_text(sc.cost)}")
    for a in job.actions:
        click.echo(f"by        {a.actor}: {a.what} at {a.at:%Y-%m-%d %H:%M:%S} UTC")


def _show_group(engine: Engine, public_id: str, as_json: bool) -> None:
    """Show the sweep or the pipeline `public_id` names; JobNotFound, as for a job, when it
    names neither, since `show` takes any of the three."""
    try:
        _show_sweep(sweeps.get(engine, public_id), as_json)
        return
    except SweepNotFound:
        pass
    try:
        view = pipeline_store.get(engine, public_id)
    except PipelineNotFound:
        raise JobNotFound(public_id) from None
    _show_pipeline(view, as_json)


def _show_sweep(view: sweeps.SweepView, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2))
        return
    click.echo(f"{view.name}  ({view.kind} sweep, {view.public_id})")
    counts = ", ".join(f"{n:,} {s}" for s, n in view.statuses.items())
    click.echo(f"status    {view.ended:,} of {view.children:,} ended: {counts}")
    click.echo(f"queue     {view.queue}  priority {view.priority}")
    if view.owner:
        click.echo(f"owner     {view.owner}")
    for param, text in view.axes.items():
        click.echo(f"  swept   {param} = {text}")
    if view.plan.get("method"):
        words = sweep_plans.METHOD_WORDS.get(view.plan["method"], view.plan["method"])
        click.echo(f"  drawn   {view.plan['count']:,} {words} points, seed {view.plan['seed']}")
    click.echo(f"params    {json.dumps(view.params)}")


def _cost_text(c: Cost) -> str:
    tasks = f"{c.tasks:,} task{'s' if c.tasks != 1 else ''}"
    where = f", on {fmt.hosts(c.hosts)}" if c.hosts else ""
    return (
        f"{fmt.duration(c.cpu_seconds)} CPU, {fmt.duration(c.task_seconds)} in {tasks}, "
        f"peak memory {fmt.size(c.peak_memory_bytes)}{where}"
    )


@cli.command("ls")
@click.option("--status", "statuses", multiple=True, type=click.Choice(OUTCOMES))
@click.option("--kind", "kinds_", multiple=True)
@click.option(
    "-q",
    "--query",
    default="",
    help='A search, as on /jobs: "kind:option_pricing sigma>=0.3 price>12 tag:q3".',
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True)
@pass_state
def ls(
    state: _State,
    statuses: tuple[str, ...],
    kinds_: tuple[str, ...],
    query: str,
    limit: int,
    as_json: bool,
) -> None:
    """List jobs, newest first."""
    everything = registry.all_kinds()
    try:
        found = search.parse(
            query,
            kinds=[k.name for k in everything],
            param_keys={f for k in everything for f in k.params.model_fields},
            me=state.actor.name,
        )
    except search.InvalidQuery as exc:
        raise click.UsageError(f"{exc.message}\n{exc.pointer()}") from None
    found = found & search.Query(
        statuses=frozenset(statuses) or None, kinds=frozenset(kinds_) or None
    )
    page = history.history(state.engine, found, limit=limit)
    if as_json:
        rows = [
            {
                "id": j.id,
                "kind": j.kind,
                "name": j.name,
                "owner": j.owner,
                "status": str(j.status),
                "partial": j.partial,
                "progress": j.progress,
                "created_at": j.created_at.isoformat(),
            }
            for j in page.rows
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ID':<17} {'STATUS':<10} {'PROG':>5} {'KIND':<16} {'CREATED':<20} NAME")
    for j in page.rows:
        created = j.created_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{j.id:<17} {j.outcome:<10} {j.progress:>5.0%} {j.kind:<16} {created:<20} {j.name}"
        )
    if page.next is not None:
        click.echo(f"(the first {len(page.rows)} jobs; --limit shows more)", err=True)


@cli.command()
@click.argument("job_id")
@pass_state
def rerun(state: _State, job_id: str) -> None:
    """Submit the same kind, parameters and seed again; print the new job's id. For a sweep,
    run again each point whose job failed or was cancelled; print the new jobs' ids."""
    try:
        click.echo(intake.rerun(state.engine, job_id, owner=state.actor.name))
    except JobNotFound:
        try:
            again = intake.rerun_failed(state.engine, job_id, owner=state.actor.name)
        except SweepNotFound:
            raise JobNotFound(job_id) from None
        click.echo(f"{len(again):,} point(s) to run again", err=True)
        for public_id in again:
            click.echo(public_id)


@cli.command()
@click.argument("sweep_id")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUES",
    help="A swept parameter's new values (0.1:0.6:0.05), or a new one to sweep.",
)
@pass_state
def extend(state: _State, sweep_id: str, params: tuple[str, ...]) -> None:
    """Widen a grid sweep; only the points not yet computed run. Prints the new jobs' ids."""
    axes: dict[str, str] = {}
    for pair in params:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidParams({"-p": f"expected key=values, got {pair!r}"})
        axes[key.strip()] = raw
    if not axes:
        raise InvalidParams({"-p": "name a swept parameter and its new values"})
    added = intake.extend_sweep(
        state.engine, sweep_id, axes, owner=state.actor.name, queues=state.settings.queue_names
    )
    view = sweeps.get(state.engine, sweep_id)
    click.echo(f"{len(added):,} new job(s); the sweep has {view.children:,} points", err=True)
    for public_id in added:
        click.echo(public_id)


@cli.command()
@click.argument("job_id")
@pass_state
def cancel(state: _State, job_id: str) -> None:
    """Cancel a queued job at once, or ask a running one to stop; for a sweep, every child; for
    a pipeline, every step (as `runlab pipeline cancel`)."""
    try:
        outcome = transitions.request_cancel(state.engine, job_id, actor=state.actor)
    except JobNotFound:
        _cancel_group(state, job_id)
        return
    messages = {
        transitions.CancelOutcome.CANCELLED: f"{job_id}: cancelled",
        transitions.CancelOutcome.REQUESTED: f"{job_id}: cancel requested; it stops soon",
        transitions.CancelOutcome.ALREADY_FINISHED: f"{job_id}: already finished; nothing changed",
    }
    click.echo(messages[outcome])


def _cancel_group(state: _State, public_id: str) -> None:
    """Cancel the sweep or the pipeline `public_id` names; JobNotFound, as for a job, when it
    names neither, since `cancel` takes any of the three."""
    try:
        done = transitions.cancel_sweep(state.engine, public_id, actor=state.actor)
    except SweepNotFound:
        pass
    else:
        click.echo(
            f"{public_id}: {done.cancelled:,} waiting job(s) cancelled, "
            f"{done.asked:,} running job(s) asked to stop"
        )
        return
    try:
        _cancel_pipeline(state, public_id)
    except PipelineNotFound:
        raise JobNotFound(public_id) from None


@cli.command()
@click.argument("job_id")
@pass_state
def stop(state: _State, job_id: str) -> None:
    """Stop a running Monte Carlo job early; it ends succeeded with its partial result."""
    stoppable = [k.name for k in registry.all_kinds() if k.stoppable]
    outcome = transitions.request_stop(state.engine, job_id, stoppable, actor=state.actor)
    if outcome is transitions.StopOutcome.REQUESTED:
        click.echo(f"{job_id}: stop requested; it ends soon with the chunks done so far")
        return
    if outcome is transitions.StopOutcome.ALREADY_FINISHED:
        click.echo(f"{job_id}: already finished; nothing changed")
        return
    messages = {
        transitions.StopOutcome.NOT_STARTED: "has not started, so there is nothing to keep; "
        "`runlab cancel` it instead",
        transitions.StopOutcome.NOT_STOPPABLE: "its kind cannot keep a partial result; "
        "`runlab cancel` it instead",
    }
    click.echo(f"error: {job_id}: {messages[outcome]}", err=True)
    sys.exit(1)


# --- pipelines ----------------------------------------------------------------------------------


@cli.group(short_help="Submit, show and cancel pipelines: steps that read earlier results.")
def pipeline() -> None:
    """Pipelines: steps, each a job or a sweep, where a step starts once the steps it waits for
    have ended, and may read their results.

    A spec is a TOML file, such as:

    \b
        name = "Price across the volatility's interval"
        [steps.vol]
        kind = "bootstrap"
        params = { data = "returns.csv", column = "r", statistic = "std" }
        [steps.price]
        kind = "option_pricing"
        params = { S = 100, K = 100, T = 1 }
        sweep = { sigma = "lin:${vol.result.ci_low}:${vol.result.ci_high}:9" }
        [steps.prices]
        kind = "collect"
        inputs = ["price"]
        on_failure = { price = "continue" }

    \b
    - params: the kind's parameters, as `runlab kinds` lists them. A value
      "${step.result.field}" is a number from that step's result, read when this
      step starts: one of the result fields `runlab kinds` lists for its kind
      (bootstrap: estimate, ci_low, ci_high).
    - An upload (bootstrap's data) is a file's path from the spec's folder.
    - sweep makes the step a sweep, each text as `runlab sweep -p` takes it, and
      it may hold references; sample = { method = "lhs", count = 20, seed = 1 }
      draws points within the texts' bounds instead of making a grid.
    - A collect step gathers the results of its inputs into one table and chart.
    - after = ["vol"] waits for a step without reading it. on_failure gives, per
      step waited for, "fail" (the default: this step fails too) or "continue"
      (this step goes on without it).

    The README's Pipelines section says more, with a worked example in
    examples/volatility_to_price/.
    """


MAX_SPEC_BYTES = 1024 * 1024  # a spec of the most steps a pipeline may have is a few kB


@pipeline.command("submit")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--idempotency-key",
    default=None,
    help="Submitting the same key with the same spec and files makes one pipeline; with "
    "another spec it exits 2.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the pipeline as `pipeline show --json` does."
)
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for every step to end, with their status on stderr; exit 1 unless every step "
    "succeeded.",
)
@pass_state
def pipeline_submit(
    state: _State, file: Path, idempotency_key: str | None, as_json: bool, wait: bool
) -> None:
    """Submit the pipeline the spec FILE describes; print its id (the last line of stdout).

    Every step is checked before anything is stored, and each error names its step and field,
    such as steps.price.params.sigma. The files the spec names are read from its folder,
    checked as `runlab submit` checks an upload, and kept only once the whole pipeline has
    passed. Its steps are listed on stderr with what each waits for. Every step starts
    waiting: a runner starts it once the steps it waits for have ended.
    """
    checked, files = _checked_pipeline(
        file, owner=state.actor.name, idempotency_key=idempotency_key
    )
    if files:  # the whole pipeline passes before a file is kept, so a bad one leaves none
        _keep(artifact_store(state.settings), files)
    click.echo(_steps_text(checked), err=True)
    public_id = pipeline_store.create(state.engine, checked)
    view = (
        _wait_pipeline(state.engine, public_id, state.settings)
        if wait
        else pipeline_store.get(state.engine, public_id)
    )
    click.echo(json.dumps(view.to_json(), indent=2) if as_json else public_id)
    if wait and any(s.status is not StepStatus.SUCCEEDED for s in view.steps):
        sys.exit(1)


def _checked_pipeline(
    path: Path, *, owner: str, idempotency_key: str | None
) -> tuple[NewPipeline, dict[str, datasets.Checked]]:
    """The pipeline the spec at `path` describes, checked with the files it names, which are
    read but not kept; or InvalidParams with every error found, a file's at its parameter
    (`steps.<step>.params.<field>`), so that one run of the command says all there is to fix."""
    doc = _read_spec(path)
    errors: dict[str, str] = {}
    files: dict[str, datasets.Checked] = {}
    refs: dict[tuple[str, str], dict[str, Any]] = {}
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    for step, field, name in pipeline_specs.uploads(doc):
        key = f"steps.{step}.params.{field}"
        if why := bad_character(name) or ("give the file's path" if not name.strip() else None):
            errors[key] = why
            continue
        try:
            files[key] = _read_upload(path.parent / Path(name).expanduser(), key)
        except InvalidParams as exc:
            errors.update(exc.errors)
            continue
        refs[(step, field)] = files[key].ref.model_dump()
        tables[(step, field)] = files[key].table
    if refs:
        doc = pipeline_specs.with_files(doc, refs)
    try:
        checked = intake.check_pipeline(
            doc, owner=owner, idempotency_key=idempotency_key, tables=tables
        )
    except InvalidParams as exc:
        raise InvalidParams({**exc.errors, **errors}) from None
    if errors:
        raise InvalidParams(errors)
    return checked, files


def _read_spec(path: Path) -> dict[str, Any]:
    """The spec's TOML as a dict, or InvalidParams under `file`, where `compute.pipelines.parse`
    puts a TOML error too; a spec is read whole, so its size is bounded first."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise InvalidParams({"file": f"cannot read {path}: {exc.strerror or exc}"}) from None
    if len(data) > MAX_SPEC_BYTES:
        raise InvalidParams(
            {"file": f"{path} is over {fmt.file_size(MAX_SPEC_BYTES)}, too large for a spec"}
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidParams({"file": f"{path} is not UTF-8 text"}) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParams({"file": f"not valid TOML: {exc}"}) from None


def _kind_text(kind: str, spec: Mapping[str, Any]) -> str:
    return f"{kind} sweep" if spec.get("sweep") else kind


def _needs_text(needs: Mapping[str, str], order: Sequence[str], verb: str) -> str:
    """`waits for vol, price (goes on if it fails)`: the steps it needs in the pipeline's
    `order` (PostgreSQL's JSONB keeps no order of its own), each with its policy when that is
    not the default."""
    if not needs:
        return ""
    named = ", ".join(
        f"{dep} (goes on if it fails)" if needs[dep] == "continue" else dep
        for dep in sorted(needs, key=lambda d: order.index(d) if d in order else len(order))
    )
    return f"{verb} {named}"


def _steps_text(new: NewPipeline) -> str:
    """The steps in the order they were stored, each with its kind and what it waits for."""
    kinds = {s.name: _kind_text(s.kind, s.spec) for s in new.steps}
    width = max(len(s.name) for s in new.steps)
    kind_width = max(map(len, kinds.values()))
    order = [s.name for s in new.steps]
    lines = [f"{new.name}: {len(new.steps)} step(s), in the order they can run"]
    for s in new.steps:
        needs = _needs_text(s.needs, order, "waits for")
        lines.append(f"  {s.name:<{width}}  {kinds[s.name]:<{kind_width}}  {needs}".rstrip())
    return "\n".join(lines)


def _step_word(s: StepView) -> str:
    """`price started 40%`: a started step with its progress, any other with its status."""
    if s.status is StepStatus.STARTED:
        return f"{s.name} {s.status} {s.progress:.0%}"
    return f"{s.name} {s.status}"


def _ended_text(view: PipelineView) -> str:
    ended = sum(s.status.ended for s in view.steps)
    return f"{ended:,} of {len(view.steps):,} steps ended"


def _wait_pipeline(engine: Engine, public_id: str, settings: Settings) -> PipelineView:
    """Poll the pipeline until every step has ended, with a one-line status on stderr; say
    once, after a few seconds, if no runner is alive for this store, since runners start the
    steps. Each step that failed or was cancelled is said with its reason at the end."""
    shown = ""
    started = time.monotonic()
    warned = False
    while True:
        view = pipeline_store.get(engine, public_id)
        line = f"{_ended_text(view)}: {', '.join(map(_step_word, view.steps))}"
        if not warned and time.monotonic() - started >= NO_RUNNER_AFTER:
            warned = True
            if not _alive_runners(engine, settings):
                click.echo(
                    f"\rwarning: no runner is alive for the store {_store_text(settings)}; "
                    "the steps wait until one starts: `runlab runner`, or `make run`",
                    err=True,
                )
                shown = ""
        if line != shown:
            click.echo(f"\r{line:<72}", err=True, nl=False)
            shown = line
        if all(s.status.ended for s in view.steps):
            click.echo("", err=True)
            for s in view.steps:
                if s.status in (StepStatus.FAILED, StepStatus.CANCELLED) and s.reason:
                    click.echo(f"{s.name} {s.status}: {s.reason}", err=True)
            return view
        time.sleep(0.5)


@pipeline.command("show")
@click.argument("pipeline_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def pipeline_show(state: _State, pipeline_id: str, as_json: bool) -> None:
    """Show a pipeline: each step's status, progress, job or sweep, what it waits for, and
    why a step failed or was cancelled. `runlab show` shows a pipeline as well."""
    _show_pipeline(pipeline_store.get(state.engine, pipeline_id), as_json)


def _show_pipeline(view: PipelineView, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(view.to_json(), indent=2))
        return
    click.echo(f"{view.name}  (pipeline, {view.public_id})")
    counts = Counter(s.status for s in view.steps)
    said = ", ".join(f"{counts[status]:,} {status}" for status in StepStatus if counts[status])
    click.echo(f"status    {_ended_text(view)}: {said}")
    if view.owner:
        click.echo(f"owner     {view.owner}")
    click.echo(f"created   {view.created_at:%Y-%m-%d %H:%M:%S} UTC")
    kinds = {s.name: _kind_text(s.kind, s.spec) for s in view.steps}
    width = max(len(s.name) for s in view.steps)
    kind_width = max(map(len, kinds.values()))
    order = [s.name for s in view.steps]
    for s in view.steps:
        verb = "waits for" if s.status is StepStatus.WAITING else "after"
        parts = [_ran_as(s), _needs_text(s.needs, order, verb)]
        rest = "; ".join(p for p in parts if p)
        click.echo(
            f"  step    {s.name:<{width}}  {kinds[s.name]:<{kind_width}}  {s.status:<9} "
            f"{s.progress:>4.0%}  {rest}".rstrip()
        )
        if s.status in (StepStatus.FAILED, StepStatus.CANCELLED) and s.reason:
            click.echo(f"          {s.name} {s.status}: {s.reason}")


def _ran_as(s: StepView) -> str:
    """The job or sweep the step became, with a sweep's points by status; empty before."""
    if s.job is not None:
        return f"job {s.job}"
    if s.sweep is None:
        return ""
    points = ", ".join(f"{n:,} {status}" for status, n in sorted(s.points.items()))
    return f"sweep {s.sweep}" + (f" ({points})" if points else "")


@pipeline.command("cancel")
@click.argument("pipeline_id")
@pass_state
def pipeline_cancel(state: _State, pipeline_id: str) -> None:
    """Cancel a pipeline: its waiting steps at once, and the job or sweep of each started
    step as `runlab cancel` cancels it; that step ends cancelled with it. `runlab cancel`
    cancels a pipeline as well."""
    _cancel_pipeline(state, pipeline_id)


def _cancel_pipeline(state: _State, public_id: str) -> None:
    done = pipeline_store.cancel(state.engine, public_id, actor=state.actor)
    click.echo(
        f"{public_id}: {done.cancelled:,} waiting step(s) cancelled, "
        f"{done.asked:,} started step(s) asked to stop"
    )


@cli.command()
@click.option(
    "--lease-grace",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds a lapsed lease is forgiven, for a store whose reaper has not passed yet.",
)
@pass_state
def doctor(state: _State, lease_grace: float) -> None:
    """Check the store against Runlab's invariants; exit 1 if any is broken."""
    from jobstore.doctor import check

    # A runner hands a job back at its first heartbeat past the bound: two heartbeats of slack.
    stuck_after = state.settings.no_worker_seconds + 2 * state.settings.heartbeat_seconds
    found = check(state.engine, lease_grace=lease_grace, stuck_after=stuck_after)
    for v in found:
        click.echo(str(v))
    total = queries.list_jobs(state.engine, limit=1).total
    click.echo(f"{len(found)} violation(s) in {total} job(s)", err=True)
    if found:
        sys.exit(1)


def _age_option(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    from jobstore.retention import parse_age

    try:
        return parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _statuses_option(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> frozenset[Status]:
    from jobstore.retention import PURGEABLE, parse_statuses

    try:
        return parse_statuses(",".join(value) if value else ",".join(PURGEABLE))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command()
@click.option(
    "--older-than",
    required=True,
    metavar="AGE",
    callback=_age_option,
    help="Jobs that ended longer ago than this: 90m, 12h, 30d or 2w.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS[,STATUS]",
    callback=_statuses_option,
    help="Finished statuses to purge (default: succeeded,failed,cancelled).",
)
@click.option("--dry-run", is_flag=True, help="Print what would go; remove nothing.")
@click.option(
    "--batch-size",
    default=500,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Jobs deleted per transaction.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_state
def purge(
    state: _State,
    older_than: timedelta,
    statuses: frozenset[Status],
    dry_run: bool,
    batch_size: int,
    as_json: bool,
) -> None:
    """Delete old finished jobs with their stages, events, metrics, results and files.

    Also uploads that no job or preset names, once a day old, and unfinished writes' `.tmp`
    files, once 30 minutes old.
    """
    from jobstore import retention

    policy = retention.Policy(older_than, statuses)
    report = retention.purge(
        state.engine,
        artifact_store(state.settings),
        policy,
        batch_size=batch_size,
        dry_run=dry_run,
    )
    if dry_run:
        click.echo("dry run: nothing was removed", err=True)
    if as_json:
        out = {
            "older_than": retention.format_age(older_than),
            "statuses": policy.status_names,
            **report.to_json(),
        }
        click.echo(json.dumps(out, indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb}, of {policy.describe()}:")
    rows = [
        ("jobs", report.jobs, None),
        ("stages", report.stages, None),
        ("events", report.events, None),
        ("metrics", report.metrics, None),
        ("results", report.results, None),
        ("artifact files", report.artifact_files, report.artifact_bytes),
        ("uploads", report.uploads, report.upload_bytes),
        ("unused uploads", report.unused_uploads, report.unused_upload_bytes),
        ("temporary files", report.temporary_files, None),
    ]
    for label, count, size in rows:
        extra = f"  ({size:,} bytes)" if size is not None else ""
        click.echo(f"  {label:<15}{count:>10,}{extra}")
    click.echo(
        f"(unused uploads: named by no job or preset, over "
        f"{retention.format_age(retention.UNUSED_UPLOAD_AGE)} old; temporary files: "
        f"unfinished writes over {retention.format_age(retention.STALE_TMP_AGE)} old)",
        err=True,
    )


@cli.command("migrate")
def migrate_store() -> None:
    """Create the store's tables, or upgrade them to this version of Runlab.

    Runners and web apps upgrade on start as well; a deployment runs this once, before them.
    """
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        before = revision(engine)
        migrate(engine)
        after = revision(engine)
    finally:
        engine.dispose()
    where = _store_text(settings)
    if before == after:
        click.echo(f"the store {where}: already at revision {after}, the newest")
    else:
        click.echo(
            f"the store {where}: upgraded from revision {before or 'none (empty)'} to {after}"
        )


# --- processes ----------------------------------------------------------------------------------


@cli.command()
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 256))
@click.option("--scheduler", default=None, help="tcp://host:port of a Dask scheduler.")
@click.option("--workers", default=None, type=click.IntRange(1, 1024), help="LocalCluster size.")
@click.option(
    "--queues",
    default=None,
    metavar="NAME,…",
    help="Serve only these queues (comma-separated); by default every queue.",
)
@pass_state
def runner(
    state: _State, concurrency: int, scheduler: str | None, workers: int | None, queues: str | None
) -> None:
    """Claim jobs and run them on Dask until Ctrl-C or SIGTERM."""
    from runlab.processes import serve_runner

    serve = _served_queues(queues, state.settings)
    artifact_store(state.settings).check()
    serve_runner(
        state.engine,
        state.settings,
        concurrency=concurrency,
        scheduler=scheduler or state.settings.scheduler or None,
        workers=workers,
        queues=serve,
    )


def _served_queues(raw: str | None, settings: Settings) -> list[str] | None:
    """The queues a runner is asked to serve, each one the settings declare."""
    if raw is None:
        return None
    names = list(dict.fromkeys(q.strip() for q in raw.split(",") if q.strip()))
    unknown = [q for q in names if q not in settings.queue_names]
    if not names or unknown:
        raise click.BadParameter(
            f"{'no queue named ' + ', '.join(map(repr, unknown)) if unknown else 'no queue named'}"
            f"; the queues are: {', '.join(settings.queue_names)} (declare others in "
            "RUNLAB_QUEUES)",
            param_hint="--queues",
        )
    return names


_HOST_HELP = (
    "Address the web app listens on; 0.0.0.0 opens it to the network, where anyone who reaches "
    "the port can use it unless sign-in is set up ([auth] in .streamlit/secrets.toml)."
)


@cli.command()
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True, help=_HOST_HELP)
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 256))
@click.option("--workers", default=None, type=click.IntRange(1, 1024), help="LocalCluster size.")
@pass_state
def up(state: _State, port: int, host: str, concurrency: int, workers: int | None) -> None:
    """Start a runner and the web app together; Ctrl-C stops both."""
    from runlab.processes import serve_up

    migrate(state.engine)
    artifact_store(state.settings).check()
    sys.exit(
        serve_up(state.settings, port=port, concurrency=concurrency, host=host, workers=workers)
    )


@cli.command()
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True, help=_HOST_HELP)
@pass_state
def web(state: _State, port: int, host: str) -> None:
    """Start the web app alone: its runners run elsewhere (`runlab runner`)."""
    from runlab.processes import serve_web

    migrate(state.engine)
    artifact_store(state.settings).check()
    sys.exit(serve_web(state.settings, port=port, host=host))


if __name__ == "__main__":
    main()
