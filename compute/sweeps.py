"""A sweep's plan: the values each swept parameter takes, and the parameter sets they make.

Each swept parameter is written as text, the same in the CLI's `-p name=TEXT` and the form:

- `0.5,1,2`: a list of values (a choice parameter's options are given this way);
- `0.1:0.5:0.05`: a range with a step, both ends included when the step lands on them;
- `log:0.01:1:5`: five points from 0.01 to 1, evenly spaced on a log scale;
- `lin:0.1:0.5:9`: nine points from 0.1 to 0.5, evenly spaced, both ends included;
- `0.1:0.5`: the bounds of a sampled parameter, when the plan samples (see below).

A grid plan makes one parameter set per combination of its axes. A sampled plan draws `count`
points at random or by Latin hypercube, every sampled parameter between its bounds, from a
seed that the plan keeps, so that the same plan always draws the same points; its grid axes,
if any, multiply the points.

Every parameter set passes the kind's model before anything is stored, and a plan of more than
MAX_JOBS sets is refused before a single one is built: a typo in a step must not make 10⁸ jobs.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from compute import registry
from runlab.errors import InvalidParams

MAX_JOBS = 10_000
Method = Literal["random", "lhs"]
METHOD_WORDS: dict[str, str] = {"random": "random", "lhs": "Latin-hypercube"}
SWEEPABLE = frozenset({"int", "float", "choice"})


@dataclass(frozen=True)
class Axis:
    """A grid axis: the values one parameter takes."""

    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Bounds:
    """A sampled parameter: drawn between `low` and `high`, on a log scale if `log`."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class Plan:
    grid: tuple[Axis, ...] = ()
    bounds: tuple[Bounds, ...] = ()
    method: Method | None = None
    count: int = 0
    seed: int | None = None
    # Each swept parameter's text, as given: what a stored sweep keeps to make its plan again.
    texts: tuple[tuple[str, str], ...] = ()

    def stored(self) -> dict[str, Any]:
        """The plan as a sweep's row keeps it: `plan(kind, stored["axes"], method=…, count=…,
        seed=…)` makes it again."""
        return {
            # Pairs, not an object: PostgreSQL's JSONB would not keep the axes' order.
            "axes": [list(pair) for pair in self.texts],
            "method": self.method,
            "count": self.count,
            "seed": self.seed,
        }

    @property
    def size(self) -> int:
        grid = math.prod(len(a.values) for a in self.grid)
        return grid * self.count if self.method else grid

    def describe(self) -> str:
        """ "48 jobs: 6 sigma × 8 T", said before anything is submitted."""
        parts = [f"{len(a.values):,} {a.name}" for a in self.grid]
        if self.method:
            names = ", ".join(b.name for b in self.bounds)
            parts.append(f"{self.count:,} {METHOD_WORDS[self.method]} points of {names}")
        jobs = f"{self.size:,} job" + ("" if self.size == 1 else "s")
        return f"{jobs}: {' × '.join(parts)}" if parts else jobs

    def points(self) -> Iterator[dict[str, Any]]:
        """Each parameter set of the plan: the grid's combinations, times the samples."""
        samples = self._samples() if self.method else [{}]
        names = [a.name for a in self.grid]
        for combo in product(*(a.values for a in self.grid)):
            for sample in samples:
                yield {**dict(zip(names, combo, strict=True)), **sample}

    def _samples(self) -> list[dict[str, Any]]:
        d = len(self.bounds)
        if self.method == "lhs":
            from scipy.stats import qmc

            unit = qmc.LatinHypercube(d=d, seed=self.seed).random(self.count)
        else:
            unit = np.random.default_rng(self.seed).random((self.count, d))
        out = []
        for row in unit:
            point: dict[str, Any] = {}
            for u, b in zip(row, self.bounds, strict=True):
                if b.log:
                    v = math.exp(math.log(b.low) + float(u) * (math.log(b.high) - math.log(b.low)))
                else:
                    v = b.low + float(u) * (b.high - b.low)
                point[b.name] = round(v) if b.integer else v
            out.append(point)
        return out


def plan(
    kind: str,
    axes: Mapping[str, str],
    *,
    method: Method | None = None,
    count: int = 0,
    seed: int | None = None,
) -> Plan:
    """The plan the texts of `axes` describe, or InvalidParams naming each bad one."""
    fields = {f.name: f for f in registry.describe(registry.get(kind).params)}
    errors: dict[str, str] = {}
    grid: list[Axis] = []
    bounds: list[Bounds] = []
    if not axes:
        errors["sweep"] = "name at least one parameter to sweep"
    if method is not None and not 1 <= count <= MAX_JOBS:
        errors["count"] = f"the number of points must be from 1 to {MAX_JOBS:,}; got {count}"
    for name, text in axes.items():
        info = fields.get(name)
        if info is None:
            errors[name] = f"{kind} has no parameter {name!r}"
            continue
        if info.type not in SWEEPABLE:
            errors[name] = f"only numbers and choices can be swept; {name} is {info.type}"
            continue
        try:
            got = _axis(info, text.strip(), sampled=method is not None)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if isinstance(got, Bounds):
            bounds.append(got)
        else:
            grid.append(got)
    if method is not None and not bounds and "count" not in errors:
        errors["sweep"] = "a sampled sweep needs at least one parameter given as low:high"
    if errors:
        raise InvalidParams(errors)
    drawn = seed if seed is not None or method is None else secrets.randbelow(2**31)
    texts = tuple((name, text.strip()) for name, text in axes.items())
    out = Plan(tuple(grid), tuple(bounds), method, count if method else 0, drawn, texts)
    if out.size > MAX_JOBS:
        raise InvalidParams(
            {"sweep": f"{out.describe()}, more than the {MAX_JOBS:,} a sweep may have"}
        )
    return out


def expand(kind: str, base: Mapping[str, Any], sweep: Plan) -> list[dict[str, Any]]:
    """Every job's parameters, each checked by the kind's model."""
    return [clean for _point, _parsed, clean in checked(kind, base, sweep)]


def checked(
    kind: str, base: Mapping[str, Any], sweep: Plan
) -> Iterator[tuple[dict[str, Any], BaseModel, dict[str, Any]]]:
    """Each point with its parameters, typed and JSON-ready, checked by the kind's model: the
    first set it refuses is named, with the field and the swept values that made it."""
    for point in sweep.points():
        try:
            parsed, clean = registry.validated(kind, {**base, **point})
        except InvalidParams as exc:
            where = point_text(point, " = ")
            raise InvalidParams(
                {f: f"{m} (where {where})" for f, m in exc.errors.items()}
            ) from None
        yield point, parsed, clean


def point_key(params: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    """Which point a job's parameters compute, for the swept `names`: the same for the same
    values, however they were reached (0.1 + 0.2 and 0.3 alike)."""
    return tuple(
        float(f"{v:.12g}") if isinstance(v, float) else v for v in (params.get(n) for n in names)
    )


def point_text(point: Mapping[str, Any], between: str = "=") -> str:
    """A point as people read it: "sigma=0.15, T=2"."""
    return ", ".join(
        f"{k}{between}{v:.6g}" if isinstance(v, float) else f"{k}{between}{v}"
        for k, v in point.items()
    )


def _axis(info: registry.FieldInfo, text: str, *, sampled: bool) -> Axis | Bounds:
    if not text:
        raise ValueError("give values (0.5,1,2), a range (0.1:0.5:0.05) or a log range")
    if info.type == "choice":
        return Axis(info.name, _choices(info, text))
    parts = text.split(":")
    if parts[0].strip().lower() == "log":
        return _log_range(info, parts[1:], sampled=sampled)
    if parts[0].strip().lower() == "lin":
        return _lin_range(info, parts[1:])
    if len(parts) == 1:
        return Axis(info.name, tuple(dict.fromkeys(_number(info, p) for p in text.split(","))))
    if len(parts) == 2:
        low, high = (_number(info, p) for p in parts)
        if not sampled:
            raise ValueError(f"{text!r} needs a step, as low:high:step, or --random/--lhs")
        return _bounds(info, low, high, log=False)
    if len(parts) == 3:
        return Axis(info.name, _range(info, *(_number(info, p) for p in parts)))
    raise ValueError(f"{text!r} is not a list (a,b,c), a range (low:high:step) or log:low:high:n")


def _range(info: registry.FieldInfo, start: float, stop: float, step: float) -> tuple[Any, ...]:
    if step == 0 or (stop - start) * step < 0:
        raise ValueError(f"a step of {step:g} never goes from {start:g} to {stop:g}")
    n = math.floor((stop - start) / step + 1e-9) + 1
    if n > MAX_JOBS:
        raise ValueError(
            f"{start:g} to {stop:g} by {step:g} makes {n:,} values, more than the "
            f"{MAX_JOBS:,} a sweep may have"
        )
    if info.type == "int":
        return tuple(int(start + i * step) for i in range(n))
    return tuple(round(start + i * step, 12) for i in range(n))


def _lin_range(info: registry.FieldInfo, parts: list[str]) -> Axis:
    if len(parts) != 3:
        raise ValueError("an evenly spaced range is lin:low:high:count, such as lin:0.1:0.5:9")
    low, high = (_number(info, p) for p in parts[:2])
    n = _count(parts[2], "an evenly spaced range")
    if n > MAX_JOBS:
        raise ValueError(f"{n:,} values, more than the {MAX_JOBS:,} a sweep may have")
    points = np.linspace(low, high, n)
    if info.type == "int":
        return Axis(info.name, tuple(dict.fromkeys(round(float(p)) for p in points)))
    return Axis(info.name, tuple(dict.fromkeys(float(f"{float(p):.12g}") for p in points)))


def _log_range(info: registry.FieldInfo, parts: list[str], *, sampled: bool) -> Axis | Bounds:
    if sampled and len(parts) == 2:
        low, high = (_number(info, p) for p in parts)
        if low <= 0 or high <= 0:
            raise ValueError("a log scale needs both ends above 0")
        return _bounds(info, low, high, log=True)
    if len(parts) != 3:
        raise ValueError("a log range is log:low:high:count, such as log:0.01:1:5")
    low, high = (_number(info, p) for p in parts[:2])
    count = _count(parts[2], "a log range")
    if low <= 0 or high <= 0:
        raise ValueError("a log range needs both ends above 0")
    if count > MAX_JOBS:
        raise ValueError(f"{count:,} values, more than the {MAX_JOBS:,} a sweep may have")
    points = np.geomspace(low, high, count)
    if info.type == "int":
        return Axis(info.name, tuple(dict.fromkeys(round(float(p)) for p in points)))
    return Axis(info.name, tuple(float(f"{float(p):.12g}") for p in points))


def _bounds(info: registry.FieldInfo, low: float, high: float, *, log: bool) -> Bounds:
    if high <= low:
        raise ValueError(f"the upper bound {high:g} must be above the lower {low:g}")
    return Bounds(info.name, float(low), float(high), log, info.type == "int")


def _number(info: registry.FieldInfo, text: str) -> Any:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    if info.type == "int":
        if not value.is_integer():
            raise ValueError(f"{info.name} takes whole numbers; got {text}")
        return int(value)
    return value


def _count(text: str, what: str) -> int:
    try:
        n = int(text.strip())
    except ValueError:
        raise ValueError(f"the number of points must be a whole number; got {text!r}") from None
    if n < 2:
        raise ValueError(f"{what} needs at least 2 points")
    return n


def _choices(info: registry.FieldInfo, text: str) -> tuple[Any, ...]:
    by_text = {str(c): c for c in info.choices}
    out = []
    for word in (w.strip() for w in text.split(",")):
        if word not in by_text:
            known = ", ".join(by_text)
            raise ValueError(f"{word!r} is not one of {info.name}'s choices: {known}")
        out.append(by_text[word])
    return tuple(dict.fromkeys(out))
