"""A pipeline's spec: a small graph of steps, each a kind with its parameters, where a step may
read an earlier step's result. What `check` accepts is sound to store; anything else is refused
with a message naming the step and the field, before anything is stored.

A spec is a TOML file (or the same as a dict):

    name = "Price across the volatility's interval"

    [steps.vol]
    kind = "bootstrap"
    params = { statistic = "std", resamples = 2000 }

    [steps.price]
    kind = "option_pricing"
    params = { S = 100, K = 100, T = 1 }
    sweep = { sigma = "lin:${vol.result.ci_low}:${vol.result.ci_high}:9" }

    [steps.prices]
    kind = "collect"
    inputs = ["price"]
    on_failure = { price = "continue" }

- `params` are the kind's parameters. A value written `"${step.result.field}"` is that step's
  result field when this step starts; the referenced step becomes a dependency.
- `sweep` makes the step a sweep (compute/sweeps.py), whose texts may hold references, so that
  a range is built from a result (fan-out); `sample = { method = "lhs", count = 20, seed = 1 }`
  draws its points instead of making a grid.
- A `collect` step gathers the results of its `inputs`, steps or sweeps, into one table and
  chart (fan-in).
- `after` names steps to wait for without reading them. `on_failure` gives each dependency's
  policy: `fail` (the default) fails this step when that one fails; `continue` goes on without
  that input.

A step references only the fields its kind puts first, its headline (`Kind.headline`): those are
numbers in every result, so the reference is checked here, not found missing hours later.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from itertools import count
from typing import Any, Literal

from compute import registry, sweeps
from runlab.errors import InvalidParams

COLLECT = "collect"
MAX_STEPS = 50
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
REF = re.compile(r"\$\{([^}]*)\}")
REF_INSIDE = re.compile(r"([a-z][a-z0-9_]{0,39})\.result\.([A-Za-z_][A-Za-z0-9_]*)")
STEP_KEYS = frozenset({"kind", "params", "sweep", "sample", "after", "inputs", "on_failure"})
Policy = Literal["fail", "continue"]
POLICIES: tuple[Policy, ...] = ("fail", "continue")
# What a reference stands for while its step's parameters are checked: a number each field
# accepts is not known here, so a referenced field is checked when its step starts.
PLACEHOLDER = 1.0


@dataclass(frozen=True)
class Ref:
    """`${step.result.field}`."""

    step: str
    field: str

    @property
    def text(self) -> str:
        return f"${{{self.step}.result.{self.field}}}"


@dataclass(frozen=True)
class Step:
    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, str] = field(default_factory=dict)  # axis texts, references unresolved
    method: sweeps.Method | None = None
    count: int = 0
    seed: int | None = None
    inputs: tuple[str, ...] = ()  # a collect step's
    # Each step this one waits for, with what its failure does to this one.
    needs: dict[str, Policy] = field(default_factory=dict)

    @property
    def is_sweep(self) -> bool:
        return bool(self.sweep)


@dataclass(frozen=True)
class Spec:
    name: str
    steps: dict[str, Step]
    order: tuple[str, ...]  # every step after all it needs


def parse(text: str) -> Spec:
    """A TOML spec, checked; InvalidParams names what is wrong, a TOML error by its line."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParams({"file": f"not valid TOML: {exc}"}) from None
    return check(doc)


def refs_in(value: Any) -> list[Ref]:
    """The references a parameter's value or an axis's text holds; ValueError for a `${…}`
    that is not `${step.result.field}`."""
    if not isinstance(value, str):
        return []
    out = []
    for inner in REF.findall(value):
        m = REF_INSIDE.fullmatch(inner.strip())
        if m is None:
            raise ValueError(
                f"${{{inner}}} is not a reference: write ${{step.result.field}}, such as "
                "${vol.result.ci_low}"
            )
        out.append(Ref(m[1], m[2]))
    return out


def _refs(value: Any) -> list[Ref]:
    """The references of a value whose malformed ones were already said at their field."""
    try:
        return refs_in(value)
    except ValueError:
        return []


def check(doc: Mapping[str, Any]) -> Spec:
    """The spec `doc` describes, or InvalidParams with every error found, each under the key
    `steps.<step>.<field>` (or `name`, `steps`)."""
    errors: dict[str, str] = {}
    for key in doc:
        if key not in ("name", "steps"):
            errors[key] = "a pipeline has only a name and its [steps.<name>] tables"
    name = doc.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        errors["name"] = "a text of at most 200 characters"
        name = ""
    raw = doc.get("steps")
    if not isinstance(raw, Mapping) or not raw:
        errors["steps"] = "give at least one step, as a [steps.<name>] table with its kind"
        raise InvalidParams(errors)
    if len(raw) > MAX_STEPS:
        errors["steps"] = f"at most {MAX_STEPS} steps; this has {len(raw)}"
    steps: dict[str, Step] = {}
    for step_name, body in raw.items():
        where = f"steps.{step_name}"
        if not NAME.fullmatch(step_name):
            errors[where] = (
                "a step's name is lower-case letters, digits and _, starting with a letter"
            )
            continue
        if not isinstance(body, Mapping):
            errors[where] = "a step is a table: [steps.<name>] with kind = …"
            continue
        step = _step(step_name, body, errors)
        if step is not None:
            steps[step_name] = step
    _check_needs(steps, raw, errors)
    order = _order(steps, errors)
    if errors:
        raise InvalidParams(errors)
    return Spec(name or "pipeline", steps, order)


def _step(name: str, body: Mapping[str, Any], errors: dict[str, str]) -> Step | None:
    where = f"steps.{name}"
    for key in body:
        if key not in STEP_KEYS:
            errors[f"{where}.{key}"] = f"a step takes {', '.join(sorted(STEP_KEYS))}"
    kind = body.get("kind")
    if kind == COLLECT:
        return _collect(name, body, errors)
    known = {k.name for k in registry.all_kinds()}
    if not isinstance(kind, str) or kind not in known:
        errors[f"{where}.kind"] = (
            f"unknown kind {kind!r}; one of {COLLECT}, {', '.join(sorted(known))}"
            if kind is not None
            else "every step names its kind"
        )
        return None
    params = body.get("params", {})
    axes = body.get("sweep", {})
    sample = body.get("sample", {})
    for key, value in (("params", params), ("sweep", axes), ("sample", sample)):
        if not isinstance(value, Mapping):
            errors[f"{where}.{key}"] = "a table, such as { name = value }"
            return None
    if "inputs" in body:
        errors[f"{where}.inputs"] = f"only a {COLLECT} step has inputs"
    needs = _policies(name, body, errors)
    fields = {f.name: f for f in registry.describe(registry.get(kind).params)}
    for key, value in params.items():
        info = fields.get(key)
        if info is not None and info.type == "upload" and isinstance(value, str):
            errors[f"{where}.params.{key}"] = (
                f"the file {value!r} was not given with the spec: submit it beside the spec"
            )
            continue
        try:
            refs = refs_in(value)
        except ValueError as exc:
            errors[f"{where}.params.{key}"] = str(exc)
            continue
        if refs and (len(refs) > 1 or value.strip() != refs[0].text):
            errors[f"{where}.params.{key}"] = (
                'a reference is the whole value, such as sigma = "${vol.result.estimate}"'
            )
            continue
        if refs:
            info = fields.get(key)
            if info is not None and info.type not in ("int", "float"):
                errors[f"{where}.params.{key}"] = (
                    f"{refs[0].text} is a number, and {key} takes {info.type}"
                )
            needs.setdefault(refs[0].step, "fail")
    texts: dict[str, str] = {}
    for key, text in axes.items():
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            errors[f"{where}.sweep.{key}"] = 'a text of values, such as "0.1,0.2" or "lin:a:b:n"'
            continue
        texts[key] = str(text)
        try:
            for ref in refs_in(texts[key]):
                needs.setdefault(ref.step, "fail")
        except ValueError as exc:
            errors[f"{where}.sweep.{key}"] = str(exc)
    method, count, seed = _sample(where, sample, errors)
    step = Step(name, kind, dict(params), texts, method, count, seed, (), needs)
    _check_values(step, errors)
    return step


def _collect(name: str, body: Mapping[str, Any], errors: dict[str, str]) -> Step | None:
    where = f"steps.{name}"
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        errors[f"{where}.inputs"] = 'the steps to collect, such as inputs = ["price"]'
        return None
    for key in ("params", "sweep", "sample"):
        if key in body:
            errors[f"{where}.{key}"] = f"a {COLLECT} step takes only inputs, after and on_failure"
    needs = _policies(name, body, errors)
    for i in inputs:
        needs.setdefault(i, "fail")
    return Step(name, COLLECT, inputs=tuple(inputs), needs=needs)


def _policies(name: str, body: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Policy]:
    where = f"steps.{name}"
    needs: dict[str, Policy] = {}
    after = body.get("after", [])
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        errors[f"{where}.after"] = 'a list of step names, such as after = ["vol"]'
    else:
        needs.update({a: "fail" for a in after})
    policies = body.get("on_failure", {})
    if not isinstance(policies, Mapping):
        errors[f"{where}.on_failure"] = 'a table, such as { vol = "continue" }'
        return needs
    for dep, policy in policies.items():
        if policy not in POLICIES:
            errors[f"{where}.on_failure.{dep}"] = f"{policy!r} is not one of fail, continue"
        else:
            needs[dep] = policy
    return needs


def _sample(
    where: str, sample: Mapping[str, Any], errors: dict[str, str]
) -> tuple[sweeps.Method | None, int, int | None]:
    if not sample:
        return None, 0, None
    method = sample.get("method")
    if method not in sweeps.METHOD_WORDS:
        errors[f"{where}.sample.method"] = "random or lhs"
        return None, 0, None
    count, seed = sample.get("count", 0), sample.get("seed")
    if not isinstance(count, int) or isinstance(count, bool):
        errors[f"{where}.sample.count"] = "a whole number of points"
        count = 0
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        errors[f"{where}.sample.seed"] = "a whole number"
        seed = None
    return method, count, seed


def _check_values(step: Step, errors: dict[str, str]) -> None:
    """The kind's model on the step's own values, each reference standing in as a number: a
    referenced field, and a swept one whose range is built from results, are checked when the
    step starts, with the results it reads."""
    where = f"steps.{step.name}"
    referenced = {k for k, v in step.params.items() if REF.search(str(v))}
    built = {k for k, t in step.sweep.items() if REF.search(t)}
    params = {k: (PLACEHOLDER if k in referenced else v) for k, v in step.params.items()}
    stand_in = count(1)
    texts = {k: REF.sub(lambda _m: str(next(stand_in)), t) for k, t in step.sweep.items()}
    try:
        # A text's shape is checked even where its numbers are results: "lin:${a}:5" is
        # wrong whatever ${a} holds.
        plan = (
            sweeps.plan(step.kind, texts, method=step.method, count=step.count, seed=0)
            if texts
            else None
        )
    except InvalidParams as exc:
        _say(where, exc.errors, set(), texts, params, errors)
        return
    try:
        if plan is not None:
            for _point in sweeps.checked(step.kind, params, plan):
                pass
        else:
            registry.validated(step.kind, params)
    except InvalidParams as exc:
        _say(where, exc.errors, referenced | built, texts, params, errors)


def _say(
    where: str,
    found: Mapping[str, str],
    skipped: set[str],
    texts: Mapping[str, str],
    params: Mapping[str, Any],
    errors: dict[str, str],
) -> None:
    """The kind's or the plan's messages, each at the step's field it concerns."""
    for key, message in found.items():
        if key in skipped:
            continue
        if key in texts:
            errors[f"{where}.sweep.{key}"] = message
        elif key in params:
            errors[f"{where}.params.{key}"] = message
        elif key == "count":
            errors[f"{where}.sample.count"] = message
        elif key == "sweep":
            errors[f"{where}.sweep"] = message
        else:
            errors[f"{where}.params"] = f"{key}: {message}"


def uploads(doc: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Each upload parameter the spec gives as a file's name: (step, field, name). The file is
    read beside the spec by the CLI, or uploaded with it on the page, and `with_files` puts its
    reference in its place before the spec is checked."""
    out: list[tuple[str, str, str]] = []
    raw = doc.get("steps")
    if not isinstance(raw, Mapping):
        return out
    for step, body in raw.items():
        if not isinstance(body, Mapping) or not isinstance(body.get("params"), Mapping):
            continue
        kind = registry.find(str(body.get("kind")))
        if kind is None:
            continue
        fields = {f.name: f for f in registry.describe(kind.params)}
        for key, value in body["params"].items():
            info = fields.get(key)
            if info is not None and info.type == "upload" and isinstance(value, str):
                out.append((str(step), str(key), value))
    return out


def with_files(
    doc: Mapping[str, Any], refs: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[str, Any]:
    """The spec with each (step, field) of `refs` holding that upload's reference."""
    steps = {
        name: dict(body) if isinstance(body, Mapping) else body
        for name, body in doc["steps"].items()
    }
    for (step, key), ref in refs.items():
        steps[step]["params"] = {**steps[step]["params"], key: dict(ref)}
    return {**doc, "steps": steps}


def referenced_in(step: Step) -> bool:
    """Whether the step's sweep is built from results: its points are known only when it starts."""
    return any(REF.search(t) for t in step.sweep.values())


def _check_needs(steps: Mapping[str, Step], raw: Mapping[str, Any], errors: dict[str, str]) -> None:
    """Every step waited for exists and is not the step itself; each reference is said at the
    field that holds it, each other dependency at the key that names it."""
    for step in steps.values():
        read: set[str] = set()
        for section, values in (("params", step.params), ("sweep", step.sweep)):
            for key, value in values.items():
                for ref in _refs(value):
                    read.add(ref.step)
                    _check_ref(step, f"{section}.{key}", ref, steps, raw, errors)
        body = raw[step.name]
        for dep in step.needs:
            if dep in read:
                continue
            at = (
                "inputs"
                if dep in step.inputs
                else "on_failure"
                if dep in body.get("on_failure", {})
                else "after"
            )
            if dep == step.name:
                errors[f"steps.{step.name}.{at}"] = "a step cannot wait for itself"
            elif dep not in raw:
                errors[f"steps.{step.name}.{at}"] = (
                    f"no step {dep!r} in this pipeline; its steps are {', '.join(raw)}"
                )


def _check_ref(
    step: Step,
    at: str,
    ref: Ref,
    steps: Mapping[str, Step],
    raw: Mapping[str, Any],
    errors: dict[str, str],
) -> None:
    where = f"steps.{step.name}.{at}"
    if ref.step == step.name:
        errors[where] = "a step cannot read its own result"
        return
    source = steps.get(ref.step)
    if source is None:
        if ref.step not in raw:
            errors[where] = f"no step {ref.step!r} in this pipeline; its steps are {', '.join(raw)}"
        return  # a step that is there, with errors of its own
    if source.is_sweep or source.kind == COLLECT:
        errors[where] = (
            f"{ref.step} is a {'sweep' if source.is_sweep else 'collect step'}, with no single "
            "result to read"
        )
        return
    fields = registry.get(source.kind).headline
    if ref.field not in fields:
        errors[where] = (
            f"{ref.step} ({source.kind}) has no result field {ref.field!r}; its fields are "
            f"{', '.join(fields) or 'none'}"
        )


def _order(steps: Mapping[str, Step], errors: dict[str, str]) -> tuple[str, ...]:
    graph = {s.name: [d for d in s.needs if d in steps] for s in steps.values()}
    try:
        return tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        cycle = list(exc.args[1])
        errors[f"steps.{cycle[0]}"] = "a cycle: " + " → ".join(reversed(cycle))
        return ()
