"""The kinds of job Runlab can run: built-ins, entry points (`runlab.kinds`) and extra modules.

A kind is one module that calls `register(...)` with its parameter model, its stage names and its
driver. Parameter errors become field-level messages here, once, for every edge.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal, cast, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError

from compute.datasets import Upload
from compute.headline import Headline
from runlab.errors import InvalidParams, Retryable, UnknownKind
from runlab.format import label
from runlab.text import bad_in_json

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from compute.context import JobContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "runlab.kinds"
BUILTIN = (
    "compute.kinds.monte_carlo_pi",
    "compute.kinds.demo_stages",
    "compute.kinds.option_pricing",
    "compute.kinds.optimize",
    "compute.kinds.portfolio_risk",
    "compute.kinds.bootstrap",
    "compute.kinds.collect",
)

Driver = Callable[["JobContext", Any], dict[str, Any]]
Figure = Callable[[dict[str, Any], Mapping[str, tuple[list[float], list[float]]]], "go.Figure"]


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    description: str
    params: type[BaseModel]
    stages: Callable[[Any], list[str]]
    run: Driver
    figure: Figure | None = None
    weights: Callable[[Any], list[float]] | None = None
    retry_on: tuple[type[BaseException], ...] = ()
    timeout_seconds: float | None = None
    # Honours "stop and keep": ends early with a result over the chunks done, marked partial.
    stoppable: bool = False
    # Checks that need an uploaded table, run by the form before anything is stored.
    check: Callable[[Any, Any], None] | None = None
    # Turns an uploaded CSV into parameters, for kinds whose form can be filled from a file.
    from_csv: Callable[[bytes], dict[str, Any]] | None = None
    # Small valid parameters that make a few Dask tasks and run in about a second: what the
    # kinds' contract tests submit. An upload field holds the file's bytes.
    example: Callable[[], dict[str, Any]] | None = None
    # The result fields that say the answer, first the one a comparison plots: the history's
    # columns for a view of this kind, and the default series of a compare.
    headline: tuple[str, ...] = ()
    # The result in a few rounded figures and tables (compute/headline.py); None: the page
    # shows the result's numbers as they are.
    summarise: Callable[[Mapping[str, Any], Mapping[str, Any]], Headline] | None = None
    # Where its jobs go unless the submitter names another queue.
    queue: str = "default"
    # Offered on the New-job form. False for a kind whose parameters a program makes (a
    # pipeline's collect step): the form has no fields to fill them in.
    listed: bool = True

    def summary(self, result: Mapping[str, Any], params: Mapping[str, Any]) -> Headline | None:
        """The headline of a result; None when the kind has none or cannot read this one (a
        result stored by an older version, say), so that a page falls back to the numbers."""
        if self.summarise is None:
            return None
        try:
            return self.summarise(result, params)
        except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
            log.warning("kind %s could not summarise a result", self.name, exc_info=True)
            return None

    def retryable(self, exc: BaseException) -> bool:
        """Whether a failure deserves another attempt: `Retryable`, or a type the kind names."""
        return isinstance(exc, (Retryable, *self.retry_on))

    def parse(self, params: Mapping[str, Any]) -> BaseModel:
        """The typed parameters, or InvalidParams naming each bad field."""
        try:
            return self.params.model_validate(dict(params))
        except ValidationError as exc:
            raise InvalidParams(field_errors(self.params, exc)) from None

    def stage_names(self, clean: Mapping[str, Any]) -> list[str]:
        return list(self.stages(self.parse(clean)))

    def stage_weights(self, params: BaseModel) -> list[float]:
        """Each stage's share of the job's progress bar; equal unless the kind says otherwise."""
        names = self.stages(params)
        if self.weights is None:
            return [1.0] * len(names)
        return [float(w) for w in self.weights(params)]


_KINDS: dict[str, Kind] = {}
_loaded: set[str] = set()
_plugins_loaded = False


def register(
    name: str,
    *,
    title: str,
    description: str,
    params: type[BaseModel],
    stages: Iterable[str] | Callable[[Any], list[str]],
    figure: Figure | None = None,
    weights: Iterable[float] | Callable[[Any], list[float]] | None = None,
    retry_on: Iterable[type[BaseException]] = (),
    timeout_seconds: float | None = None,
    stoppable: bool = False,
    check: Callable[[Any, Any], None] | None = None,
    from_csv: Callable[[bytes], dict[str, Any]] | None = None,
    example: Mapping[str, Any] | Callable[[], dict[str, Any]] | None = None,
    headline: Iterable[str] = (),
    summarise: Callable[[Mapping[str, Any], Mapping[str, Any]], Headline] | None = None,
    queue: str = "default",
    listed: bool = True,
) -> Callable[[Driver], Driver]:
    """Decorate a driver `run(ctx, params) -> result` to make it a kind.

    `weights` gives each stage's share of the overall progress, so that a job whose work is
    all in one stage does not sit at a third while that stage runs. A `stoppable` kind ends its
    `ctx.as_completed` loop early on "stop and keep", and marks its result `partial`. A kind
    that is not `listed` stays off the New-job form, for parameters that only a program makes.
    """
    stage_fn = stages if callable(stages) else (lambda _p, fixed=tuple(stages): list(fixed))
    weight_fn = (
        weights
        if weights is None or callable(weights)
        else (lambda _p, fixed=tuple(weights): list(fixed))
    )

    def deco(run: Driver) -> Driver:
        _KINDS[name] = Kind(
            name,
            title,
            description,
            params,
            stage_fn,
            run,
            figure,
            weight_fn,
            tuple(retry_on),
            timeout_seconds,
            stoppable,
            check,
            from_csv,
            example if example is None or callable(example) else (lambda: dict(example)),
            tuple(headline),
            summarise,
            queue,
            listed,
        )
        return run

    return deco


def load(extra_modules: Iterable[str] = ()) -> None:
    """Import the built-in kinds, the installed plugins and any extra modules, once each."""
    for module in (*BUILTIN, *extra_modules):
        if module not in _loaded:
            importlib.import_module(module)
            _loaded.add(module)
    global _plugins_loaded
    if _plugins_loaded:  # scanning entry points costs milliseconds: once per process
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception:
            log.exception("could not load kind plugin %s", ep.value)


def get(name: str) -> Kind:
    load()
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownKind(name, sorted(_KINDS)) from None


def find(name: str) -> Kind | None:
    """The kind of that name, or None where it is not installed (a job stored by another
    host's kinds, say)."""
    load()
    return _KINDS.get(name)


def all_kinds() -> list[Kind]:
    load()
    return [_KINDS[k] for k in sorted(_KINDS)]


def validate(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check parameters against the kind's model; return them complete and JSON-ready."""
    return validated(kind, params)[1]


def validated(kind: str, params: Mapping[str, Any]) -> tuple[BaseModel, dict[str, Any]]:
    """The typed parameters and their complete, JSON-ready form, from one parse.

    Text in them follows the store's one rule (`runlab.text`), checked here so that SQLite and
    PostgreSQL refuse the same parameters.
    """
    parsed = get(kind).parse(params)
    clean = parsed.model_dump(mode="json")
    errors = {name: why for name, value in clean.items() if (why := bad_in_json(value))}
    if errors:
        raise InvalidParams(errors)
    return parsed, clean


# --- field-level messages -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldInfo:
    """What a form or `runlab kinds` needs to know of one parameter."""

    name: str
    type: str  # "int", "float", "bool", "str" or "choice"
    required: bool
    default: Any
    minimum: float | None
    maximum: float | None
    choices: tuple[Any, ...]
    optional: bool
    description: str
    # Shown only while each named field holds one of the listed values: {"option_type": (...)}.
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    # For a column name: the upload field whose table it names a numeric column of.
    column_of: str | None = None
    # Whether `minimum` and `maximum` themselves are refused (gt, lt) or allowed (ge, le).
    above: bool = False
    below: bool = False
    # As a domain expert writes it, with symbol and unit: the field's `title`, or its name.
    label: str = ""
    # A choice's words for people, from `labels` in the field's schema: {"bca": "BCa"}.
    choice_labels: Mapping[Any, str] = field(default_factory=dict)

    def choice_label(self, choice: Any) -> str:
        return self.choice_labels.get(choice, str(choice))

    def applies(self, values: Mapping[str, Any]) -> bool:
        return all(values.get(k) in allowed for k, allowed in self.when.items())


def fields_of(kinds: Iterable[Kind]) -> dict[str, FieldInfo]:
    """Each parameter's form field, from the first of `kinds` that has one of that name: how
    a page that lists jobs of several kinds labels and words their parameters."""
    out: dict[str, FieldInfo] = {}
    for kind in kinds:
        for info in describe(kind.params):
            out.setdefault(info.name, info)
    return out


def describe(model: type[BaseModel]) -> list[FieldInfo]:
    out = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        optional = False
        args = get_args(ann)
        if type(None) in args:
            optional = True
            ann = next(a for a in args if a is not type(None))
        choices: tuple[Any, ...] = ()
        if get_origin(ann) is Literal:
            kind, choices = "choice", get_args(ann)
        elif isinstance(ann, type) and issubclass(ann, Upload):
            kind = "upload"
        elif get_origin(ann) is list:
            (item,) = get_args(ann) or (float,)
            kind = "matrix" if get_origin(item) is list else "list"
        elif ann is bool:
            kind = "bool"
        elif ann is int:
            kind = "int"
        elif ann is float:
            kind = "float"
        else:
            kind = "str"
        lo: float | None = None
        hi: float | None = None
        above = below = False
        for m in f.metadata:  # the bounds are numbers on every numeric field of a kind
            if isinstance(m, annotated_types.Ge):
                lo, above = cast(float, m.ge), False
            elif isinstance(m, annotated_types.Gt):
                lo, above = cast(float, m.gt), True
            elif isinstance(m, annotated_types.Le):
                hi, below = cast(float, m.le), False
            elif isinstance(m, annotated_types.Lt):
                hi, below = cast(float, m.lt), True
        required = f.is_required()
        if f.default_factory is not None:
            default = None if required else f.default_factory()  # type: ignore[call-arg]
        else:
            default = None if required else f.default
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        when_raw = extra.get("when", {})
        when = (
            {str(k): tuple(v) for k, v in when_raw.items() if isinstance(v, list | tuple)}
            if isinstance(when_raw, dict)
            else {}
        )
        column_of = extra.get("column_of")
        labels = extra.get("labels", {})
        out.append(
            FieldInfo(
                name,
                kind,
                required,
                default,
                lo,
                hi,
                choices,
                optional,
                f.description or "",
                when,
                column_of if isinstance(column_of, str) else None,
                above,
                below,
                f.title or label(name),
                {k: str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
            )
        )
    return out


def _num(x: float) -> str:
    """A bound as a person reads it: 100,000,000,000, 0.999, 1e+20."""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e16):
        return f"{int(x):,}"
    return f"{x:g}"


def rule(info: FieldInfo) -> str:
    """The one-line rule for a field, as used in every message about it."""
    if info.type == "choice":
        return "must be one of " + ", ".join(str(c) for c in info.choices)
    if info.type == "list":
        return "must be a list of numbers, separated by commas"
    if info.type == "matrix":
        return (
            "must be rows of numbers separated by commas, one row per line or with ; between rows"
        )
    if info.type == "upload":
        return "must be an uploaded CSV file"
    noun = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(
        info.type, "text"
    )
    lo, hi = info.minimum, info.maximum
    if lo is not None and hi is not None and not (info.above or info.below):
        return f"must be {noun} between {_num(lo)} and {_num(hi)}"
    bounds = []
    if lo is not None:
        bounds.append(f"above {_num(lo)}" if info.above else f"at least {_num(lo)}")
    if hi is not None:
        bounds.append(f"below {_num(hi)}" if info.below else f"at most {_num(hi)}")
    if len(bounds) == 1 and not (info.above or info.below):
        return f"must be {noun} of {bounds[0]}"
    return " ".join([f"must be {noun}", " and ".join(bounds)]).strip()


_RULE_ERRORS = (
    "type",
    "list",
    "model",
    "dict",
    "parsing",
    "greater_than",
    "less_than",
    "from_float",
    "finite_number",
    "literal_error",
    "bool",
    "int",
    "float",
)


def field_errors(model: type[BaseModel], exc: ValidationError) -> dict[str, str]:
    infos = {i.name: i for i in describe(model)}
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
        name = loc[0] if loc else "params"
        if name in out:
            continue
        etype = err["type"]
        if etype == "missing" and len(loc) == 1:
            msg = "is required"
        elif etype == "extra_forbidden":
            msg = "is not a parameter of this kind; known: " + ", ".join(infos)
        elif name in infos and infos[name].type == "upload":
            msg = rule(infos[name])
        elif etype == "value_error":
            msg = str(err.get("ctx", {}).get("error", err["msg"]))
        elif name in infos and any(k in etype for k in _RULE_ERRORS):
            msg = rule(infos[name])
        else:
            msg = err["msg"]
        out[name] = msg
    return out
