"""Gather the results of a pipeline's steps into one table and chart: the fan-in step.

A pipeline's runtime makes the parameters: one entry per input step, in the spec's order, and
one row per job whose result it collected, a sweep giving a row per point that succeeded. The
job itself computes nothing on Dask: the numbers are already in the rows, and the result is the
rows with a few figures over them, so that a pipeline ends in one place to read and compare.

PostgreSQL's JSONB reorders the keys of an object, so the order of a point's parameters and of a
row's fields is read from the input's `swept` and `fields` lists, never from the dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import plotly.graph_objects as go
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import ErrorDetails

from compute import registry
from compute.context import JobContext
from compute.headline import Figure, Headline, Table
from compute.registry import register
from compute.sweeps import point_text
from runlab import format as fmt

MAX_INPUTS = 50
MAX_ROWS = 20_000
MAX_KEYS = 20  # swept parameters of a point, or result fields of a row
STEP_CHARS = 40  # as long as a pipeline's step name may be
JOB_CHARS = 32
NAME_CHARS = 64  # a parameter's or a result field's name
KIND_CHARS = 100
CHOICE_CHARS = 100  # a swept choice's text, such as "barrier_up_out_call"
TABLE_ROWS = 200  # the headline's table; the result keeps every row
DIGITS = 4

StepName = Annotated[str, StringConstraints(min_length=1, max_length=STEP_CHARS)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_CHARS)]
Number = Annotated[float, Field(allow_inf_nan=False)]
InputStatus = Literal["succeeded", "failed", "cancelled"]


def _coordinate(value: object) -> int | float | str:
    """A swept parameter's value: a number, or the text of a choice.

    One check with one message, where a union of types would give three messages, one per
    type, none of them saying what is allowed. Integers stay integers, so that a swept path
    count reads 200002, not 200002.0.
    """
    if isinstance(value, int | float | str) and not isinstance(value, bool) and _fits(value):
        return value
    raise ValueError(f"must be a finite number, or a choice of at most {CHOICE_CHARS} characters")


def _fits(value: int | float | str) -> bool:
    if isinstance(value, str):
        return 0 < len(value) <= CHOICE_CHARS
    if isinstance(value, int):
        return -(2**63) <= value < 2**63  # a signed 64-bit integer, as a seed is
    return math.isfinite(value)


Coordinate = Annotated[int | float | str, PlainValidator(_coordinate)]


class CollectInput(BaseModel):
    """One input step: what it is, what its rows hold, and how it ended."""

    model_config = ConfigDict(strict=True, extra="forbid")

    step: StepName
    kind: Annotated[str, StringConstraints(min_length=1, max_length=KIND_CHARS)]
    swept: list[Name] = Field(max_length=MAX_KEYS)  # empty for a single job
    fields: list[Name] = Field(max_length=MAX_KEYS)
    status: InputStatus


class CollectRow(BaseModel):
    """One collected result: the job, the swept values it ran at, its headline fields."""

    model_config = ConfigDict(strict=True, extra="forbid")

    step: StepName
    job: Annotated[str, StringConstraints(min_length=1, max_length=JOB_CHARS)]
    point: dict[Name, Coordinate] = Field(max_length=MAX_KEYS)
    values: dict[Name, Number] = Field(max_length=MAX_KEYS)


KNOWN = {
    "input": ", ".join(CollectInput.model_fields),
    "row": ", ".join(CollectRow.model_fields),
}


def _part(p: str | int) -> str:
    """A step of an error's location: a key cut short, a list's place counted from 1."""
    if isinstance(p, int):
        return f"#{p + 1}"
    return p if len(p) <= NAME_CHARS else p[:NAME_CHARS] + "…"


def _words(err: ErrorDetails, noun: str, items: str = "items") -> str:
    """One pydantic error in the words the other kinds' messages use; `items` names what a list
    that is too long or too short holds."""
    etype, ctx = err["type"], err.get("ctx") or {}
    if etype == "missing":
        return "is required"
    if etype == "extra_forbidden":
        return f"is not a field of {'an' if noun == 'input' else 'a'} {noun}; known: {KNOWN[noun]}"
    if etype == "value_error":
        return str(ctx.get("error", err["msg"]))
    if etype in ("finite_number", "float_type", "float_parsing"):
        return "must be a finite number"
    if etype == "string_type":
        return "must be text"
    if etype == "string_too_short":
        return "must not be empty"
    if etype == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if etype == "too_long":
        return f"must hold at most {ctx.get('max_length'):,} {items}"
    if etype == "too_short":
        least = ctx.get("min_length")
        return "must not be empty" if least == 1 else f"must hold at least {least:,} {items}"
    if etype == "list_type":
        return "must be a list"
    if etype in ("dict_type", "model_type", "model_attributes_type"):
        return "must be an object of named values"
    if etype == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    msg = err["msg"]
    return msg[:1].lower() + msg[1:]


def _explained(exc: ValidationError, noun: str, whole: str) -> ValueError:
    """The first problem of a list of inputs or rows, placed ("row 3, values.price: …"), and how
    many more there are: one line that says where to look, however many rows are wrong."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = list(first["loc"])
    if not loc:  # the list itself
        if first["type"] == "list_type":
            return ValueError(f"must be a list of {whole}")
        return ValueError(_words(first, noun, f"{noun}s"))
    where = []
    if loc and isinstance(loc[0], int):
        where.append(f"{noun} {loc[0] + 1}")
        loc = loc[1:]
    if loc:
        where.append(".".join(_part(p) for p in loc))
    text = _words(first, noun)
    if where:
        text = f"{', '.join(where)}: {text}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1:,} more problem{'s' if len(errors) > 2 else ''})"
    return ValueError(text)


def _twice(names: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return None


class CollectParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    inputs: list[CollectInput] = Field(
        min_length=1,
        max_length=MAX_INPUTS,
        title="Inputs",
        description="One per input step, in the spec's order: its step, kind, swept "
        "parameters, result fields and status. Made by the pipeline.",
    )
    rows: list[CollectRow] = Field(
        max_length=MAX_ROWS,
        title="Rows",
        description="One per collected result: its step, job, point and values. Made by the "
        "pipeline.",
    )

    @field_validator("inputs", mode="wrap")
    @classmethod
    def _inputs(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> list[CollectInput]:
        try:
            inputs: list[CollectInput] = handler(value)
        except ValidationError as exc:
            raise _explained(exc, "input", "inputs, one per input step") from None
        if (name := _twice([i.step for i in inputs])) is not None:
            raise ValueError(f"step {name!r} is given twice")
        for n, i in enumerate(inputs, start=1):
            for what in ("swept", "fields"):
                if (name := _twice(getattr(i, what))) is not None:
                    raise ValueError(f"input {n}, {what}: {name!r} is given twice")
        return inputs

    @field_validator("rows", mode="wrap")
    @classmethod
    def _rows(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> list[CollectRow]:
        try:
            rows: list[CollectRow] = handler(value)
        except ValidationError as exc:
            raise _explained(exc, "row", "rows, one per collected result") from None
        inputs = info.data.get("inputs")
        if inputs is None:  # refused on their own field: nothing to check the rows against
            return rows
        by_step = {i.step: i for i in inputs}
        for n, row in enumerate(rows, start=1):
            source = by_step.get(row.step)
            if source is None:
                known = ", ".join(by_step)
                raise ValueError(f"row {n}, step: {row.step!r} is not an input ({known})")
            if set(row.point) != set(source.swept):
                names = ", ".join(source.swept) or "none"
                raise ValueError(
                    f"row {n}, point: must give exactly {row.step}'s swept parameters ({names})"
                )
            # A result may lack a field (one stored by an older version of its kind): that row
            # gives the others, and the table leaves the cell empty.
            if not set(row.values) <= set(source.fields):
                names = ", ".join(source.fields) or "none"
                raise ValueError(
                    f"row {n}, values: must give only {row.step}'s result fields ({names})"
                )
        return rows


# --- the result ---------------------------------------------------------------------------------


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _mean(values: Sequence[float]) -> float:
    """The mean from a correctly rounded sum, or from the terms each divided first where that
    sum would overflow (values near 1e308); kept inside [min, max], which rounding could leave."""
    try:
        mean = math.fsum(values) / len(values)
    except OverflowError:
        mean = math.fsum(v / len(values) for v in values)
    return min(max(mean, min(values)), max(values))


def collected(p: CollectParams) -> dict[str, Any]:
    """The rows as given, with the figures the headline and the chart read.

    The chart's y is the first input's first result field (or, where that step's kind has no
    headline, the first field any input has); its x is the first input's first swept
    parameter, None for a single job. Every headline field is a number in every result, the
    empty one included, as a later step may read it.
    """
    first = p.inputs[0]
    x = first.swept[0] if first.swept else None
    y = next((i.fields[0] for i in p.inputs if i.fields), None)
    ys = [r.values[y] for r in p.rows if y is not None and y in r.values]
    return {
        "count": len(p.rows),
        "x": x,
        "y": y,
        "min": min(ys) if ys else 0.0,
        "max": max(ys) if ys else 0.0,
        "mean": _mean(ys) if ys else 0.0,
        "steps": [i.step for i in p.inputs],
        "missing": [i.step for i in p.inputs if i.status != "succeeded"],
        "inputs": [i.model_dump() for i in p.inputs],
        "rows": [r.model_dump() for r in p.rows],
    }


# --- the chart ----------------------------------------------------------------------------------


def _param_title(kind_name: object, name: str) -> str:
    """A swept parameter as its kind labels it ("Volatility σ (per year)"), or its name where
    the kind is not installed here or gives no title."""
    kind = registry.find(kind_name) if isinstance(kind_name, str) else None
    field = kind.params.model_fields.get(name) if kind is not None else None
    return field.title if field is not None and field.title else name


def _ordered_point(row: Mapping[str, Any], swept: Sequence[str]) -> dict[str, Any]:
    """The row's point in its input's swept order: JSONB keeps no order of its own."""
    point = row.get("point") or {}
    return {n: point[n] for n in swept if n in point}


def figure(
    result: Mapping[str, Any], series: Mapping[str, tuple[list[float], list[float]]]
) -> go.Figure | None:
    """Each input's y against x, one trace per step; bars of y per row where there is no x.

    A step whose rows lack y is in the table only. Nothing collected draws nothing: the
    headline says so.
    """
    y, x = result.get("y"), result.get("x")
    rows = [r for r in result.get("rows") or [] if isinstance(r, Mapping)]
    if not isinstance(y, str) or not rows:
        return None
    inputs = [i for i in result.get("inputs") or [] if isinstance(i, Mapping)]
    by_step: dict[str, list[Mapping[str, Any]]] = {str(s): [] for s in result.get("steps") or []}
    for r in rows:
        if _is_number((r.get("values") or {}).get(y)):
            by_step.setdefault(str(r.get("step")), []).append(r)
    fig = go.Figure()
    if isinstance(x, str) and _against(fig, by_step, x, y):
        x_title = _param_title(inputs[0].get("kind") if inputs else None, x)
    else:
        swept = {str(i.get("step")): list(i.get("swept") or []) for i in inputs}
        _bars(fig, by_step, swept, y)
        x_title = "Step"
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title=fmt.label(y) if y else "",
        height=360,
        legend_title_text="Step",
    )
    return fig


def _against(
    fig: go.Figure, by_step: Mapping[str, Sequence[Mapping[str, Any]]], x: str, y: str
) -> bool:
    """Add a trace of y against x per step; False, adding nothing, where no row has an x.

    Numbers are sorted along x; a swept choice keeps the order its sweep ran in. Where a step
    swept more than x, several of its points share an x, and a line through them would zigzag:
    they are drawn as markers only. A step of one row without x, a single job beside sweeps,
    is a dashed line across the swept range: a reference to read the sweeps against. A sweep
    over other parameters has no x either, and is in the table only.
    """
    xs = [r["point"][x] for rs in by_step.values() for r in rs if x in (r.get("point") or {})]
    if not xs:
        return False
    numeric = all(_is_number(v) for v in xs)
    ends = [min(xs), max(xs)] if numeric else [xs[0], xs[-1]]
    for step, rs in by_step.items():
        pts = [(r["point"][x], r["values"][y]) for r in rs if x in (r.get("point") or {})]
        if numeric:
            pts.sort(key=lambda pt: pt[0])
        if pts:
            once = len({a for a, _ in pts}) == len(pts)
            fig.add_trace(
                go.Scatter(
                    x=[a for a, _ in pts],
                    y=[b for _, b in pts],
                    mode="lines+markers" if once else "markers",
                    name=step,
                )
            )
        elif len(rs) == 1:
            v = rs[0]["values"][y]
            fig.add_trace(go.Scatter(x=ends, y=[v, v], mode="lines", line_dash="dash", name=step))
    return True


def _bars(
    fig: go.Figure,
    by_step: Mapping[str, Sequence[Mapping[str, Any]]],
    swept: Mapping[str, Sequence[str]],
    y: str,
) -> None:
    """Add a bar trace of y per step, a bar per row, labelled by its step and point."""
    seen: set[str] = set()
    for step, rs in by_step.items():
        if not rs:
            continue
        labels = []
        for r in rs:
            text = point_text(_ordered_point(r, swept.get(step, [])))
            label = f"{step}: {text}" if text else step
            if label in seen:  # the same point twice: told apart by its job
                label = f"{label} ({r.get('job')})"
            seen.add(label)
            labels.append(label)
        fig.add_trace(go.Bar(x=labels, y=[r["values"][y] for r in rs], name=step))


# --- the headline -------------------------------------------------------------------------------


def _number(v: object) -> str:
    return fmt.significant(v, DIGITS) if isinstance(v, int | float) and _is_number(v) else ""


def headline_of(result: Mapping[str, Any], params: Mapping[str, Any]) -> Headline:
    """How many results, the range and mean of y over them, which inputs did not succeed, and
    the rows as a table (the first TABLE_ROWS; the result holds them all)."""
    count = int(result["count"])
    y = result.get("y")
    inputs = [i for i in result.get("inputs") or params.get("inputs") or [] if isinstance(i, dict)]
    rows = [r for r in result.get("rows") or [] if isinstance(r, dict)]
    with_y = sum(
        1 for r in rows if isinstance(y, str) and _is_number((r.get("values") or {}).get(y))
    )
    figures = [Figure("Results", f"{count:,}", "One per job whose result was collected.")]
    if isinstance(y, str) and with_y:
        figures += [
            Figure(
                f"{fmt.label(y)} range",
                f"{_number(result['min'])} – {_number(result['max'])}",
                f"Over the {with_y:,} result{'s' if with_y != 1 else ''} that give {y}.",
            ),
            Figure(f"{fmt.label(y)} mean", _number(result["mean"])),
        ]
    notes = []
    if count == 0:
        notes.append("No result was collected.")
    elif isinstance(y, str) and with_y < count:
        lacking = count - with_y
        notes.append(
            f"1 result gives no {y}: it is in the table only."
            if lacking == 1
            else f"{lacking:,} results give no {y}: they are in the table only."
        )
    rows_of: dict[str, int] = {}
    for r in rows:
        rows_of[str(r.get("step"))] = rows_of.get(str(r.get("step")), 0) + 1
    missing = []
    for i in inputs:
        if i.get("status") != "succeeded":
            n = rows_of.get(str(i.get("step")), 0)
            kept = f"; {n:,} of its results collected" if n else ""
            missing.append(f"{i.get('step')} ({i.get('status')}{kept})")
    if missing:
        notes.append("Did not succeed: " + ", ".join(missing) + ".")
    fields: list[str] = []
    for i in inputs:
        fields += [f for f in i.get("fields") or [] if f not in fields]
    swept = {str(i.get("step")): list(i.get("swept") or []) for i in inputs}
    table = [
        [
            str(r.get("step")),
            point_text(_ordered_point(r, swept.get(str(r.get("step")), []))),
            *(_number((r.get("values") or {}).get(f)) for f in fields),
        ]
        for r in rows[:TABLE_ROWS]
    ]
    if len(rows) > TABLE_ROWS:
        notes.append(
            f"The table shows the first {TABLE_ROWS:,} of {len(rows):,} results; the result "
            "holds them all."
        )
    tables = [Table("Collected results", ["Step", "Point", *fields], table)] if table else []
    return Headline(figures, tables, notes)


# --- the kind -----------------------------------------------------------------------------------


def example() -> dict[str, Any]:
    """Two sweeps of a call's price over σ, European and Asian, three points each, as a
    pipeline's runtime hands them over."""
    fields = ["price", "standard_error", "delta"]
    points = {
        "european": [(0.1, 6.8050, 0.0061, 0.7088), (0.2, 10.4506, 0.0147, 0.6368),
                     (0.3, 14.2313, 0.0232, 0.6227)],
        "asian": [(0.1, 3.6414, 0.0035, 0.6321), (0.2, 5.7726, 0.0081, 0.5840),
                  (0.3, 7.9494, 0.0128, 0.5686)],
    }  # fmt: skip
    inputs = [
        {"step": step, "kind": "option_pricing", "swept": ["sigma"], "fields": fields,
         "status": "succeeded"}
        for step in points
    ]  # fmt: skip
    rows = [
        {
            "step": step,
            "job": f"{step[:2]}{k}q0cVQm3kE7tZa",
            "point": {"sigma": sigma},
            "values": {"price": price, "standard_error": se, "delta": delta},
        }
        for step, done in points.items()
        for k, (sigma, price, se, delta) in enumerate(done)
    ]
    return {"inputs": inputs, "rows": rows}


@register(
    "collect",
    summarise=headline_of,
    headline=("count", "min", "max", "mean"),
    title="Collect",
    description="Gathers the results of a pipeline's steps into one table and chart.",
    params=CollectParams,
    stages=["collect"],
    figure=figure,
    example=example,
    listed=False,
)
def run(ctx: JobContext, p: CollectParams) -> dict[str, Any]:
    with ctx.stage("collect"):
        ctx.check_cancelled()
        result = collected(p)
        missing = f"; did not succeed: {', '.join(result['missing'])}" if result["missing"] else ""
        ctx.log("info", f"{result['count']:,} results from {len(p.inputs)} steps{missing}")
    return result
