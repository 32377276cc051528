"""Random pipelines, run by real runner subprocesses on both backends: whatever the graph, the
failures, a cancel or a runner killed with SIGKILL mid-pipeline, every step ends, none starts
before what it needs has ended, and each ends as its edges' policies say.

Each step is `test_step` (tests/runner/sample_kinds.py), whose result is its value plus one, a
sweep of it over two values, or a `collect` of the steps it needs. A step may read an earlier
single step's result as its value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from compute import intake, registry
from jobstore import pipelines, queries
from jobstore.models import Status
from jobstore.pipelines import PipelineView, StepStatus, StepView
from runlab.identity import SYSTEM
from tests.polling import wait_for
from tests.runner.conftest import RunnerProcess
from tests.runner.helpers import assert_sound

KILLED_TEST_RUNNERS: list[RunnerProcess] = []
SHORT_LEASE = {"RUNLAB_LEASE_SECONDS": "2"}  # the heartbeat renews it every 0.5 s
ENDS = 90.0  # seconds a pipeline of six steps may take on a loaded machine, a runner killed


@dataclass(frozen=True)
class Drawn:
    spec: dict[str, Any]
    fails: frozenset[str]  # the steps whose own job fails
    reads: dict[str, str]  # step → the step whose result it reads as its value


@st.composite
def graphs(draw: st.DrawFn, *, slow_root: bool = False) -> Drawn:
    """A graph of 2 to 6 steps, each needing up to three earlier ones, each edge `fail` or
    `continue`; a step reads a result only over a `fail` edge, as a reference makes one."""
    steps: dict[str, dict[str, Any]] = {}
    fails: set[str] = set()
    reads: dict[str, str] = {}
    for i in range(draw(st.integers(2, 6))):
        name = f"s{i}"
        needs = (
            draw(st.lists(st.sampled_from(sorted(steps)), unique=True, max_size=3)) if steps else []
        )
        policy = {
            d: draw(st.sampled_from(["fail", "continue"]), label=f"{name}←{d}") for d in needs
        }
        go_on = {d: p for d, p in policy.items() if p == "continue"}
        if needs and draw(st.integers(0, 2), label=f"{name} collects") == 0:
            steps[name] = {"kind": "collect", "inputs": needs, "on_failure": go_on}
            continue
        readable = [
            d
            for d in needs
            if policy[d] == "fail" and steps[d]["kind"] == "test_step" and "sweep" not in steps[d]
        ]
        read = draw(st.sampled_from([None, *readable]), label=f"{name} reads")
        fail = draw(st.integers(0, 3), label=f"{name} fails") == 0
        value: Any = f"${{{read}.result.value}}" if read else float(i)
        seconds = 2.0 if slow_root and i == 0 else 0.0
        steps[name] = {
            "kind": "test_step",
            "params": {"value": value, "fail": fail, "seconds": seconds},
            "after": [d for d in needs if d != read],
            "on_failure": go_on,
        }
        if not read and not slow_root and draw(st.integers(0, 3), label=f"{name} sweeps") == 0:
            # Two points, whose jobs both fail or both succeed, as the step's own flag says.
            del steps[name]["params"]["value"]
            steps[name]["sweep"] = {"value": f"{i},{i + 0.5}"}
        if fail:
            fails.add(name)
        if read:
            reads[name] = read
    return Drawn({"name": "drawn", "steps": steps}, frozenset(fails), reads)


def expected(drawn: Drawn) -> dict[str, StepStatus]:
    """Each step's end, as the policies say, for a pipeline left to run."""
    out: dict[str, StepStatus] = {}
    for name, body in drawn.spec["steps"].items():  # drawn in an order where needs come first
        needs = body.get("inputs") or [*body["after"], *filter(None, [drawn.reads.get(name)])]
        go_on = body.get("on_failure", {})
        blocked = any(out[d] is not StepStatus.SUCCEEDED and d not in go_on for d in needs)
        out[name] = StepStatus.FAILED if blocked or name in drawn.fails else StepStatus.SUCCEEDED
    return out


def ended(engine: Engine, public_id: str) -> PipelineView:
    def done() -> PipelineView | None:
        view = pipelines.get(engine, public_id)
        return view if all(s.status.ended for s in view.steps) else None

    return wait_for(
        done,
        timeout=ENDS,
        what=f"every step of pipeline {public_id} to end",
        interval=0.2,
    )


def check_order(view: PipelineView) -> None:
    """No step started before every step it needs had ended, and none over a failed `fail`
    edge; a step that never started has no job."""
    by_name = {s.name: s for s in view.steps}
    for s in view.steps:
        if s.started_at is None:
            assert s.job is None and s.sweep is None, s
            continue
        for dep, policy in s.needs.items():
            d = by_name[dep]
            assert d.ended_at is not None and d.ended_at <= s.started_at, (s.name, dep)
            if policy == "fail":
                assert d.status is StepStatus.SUCCEEDED, (s.name, dep, d.status)


def check_values(engine: Engine, drawn: Drawn, view: PipelineView) -> None:
    """A step that read a result ran on that result; a collect step took every input that
    succeeded."""
    by_name: dict[str, StepView] = {s.name: s for s in view.steps}
    for name, source in drawn.reads.items():
        step = by_name[name]
        if step.job is None:
            continue
        source_job = queries.get_job(engine, by_name[source].job or "")
        assert source_job.result is not None
        read = queries.get_job(engine, step.job).params["value"]
        assert read == source_job.result["value"], (name, source)
    for step in view.steps:
        if step.kind == "collect" and step.job is not None:
            rows = queries.get_job(engine, step.job).params["rows"]
            done = [
                i
                for i in step.spec["inputs"]
                for _point in range(2 if by_name[i].sweep else 1)
                if by_name[i].status is StepStatus.SUCCEEDED
            ]
            assert sorted(r["step"] for r in rows) == sorted(done)


def nothing_open(engine: Engine, view: PipelineView) -> bool:
    jobs = [queries.get_job(engine, s.job) for s in view.steps if s.job is not None]
    return all(j.status.terminal for j in jobs)


HYPOTHESIS = settings(
    deadline=None,
    derandomize=True,  # the same graphs in every run: the suite's time stays what it was
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _kinds() -> None:
    registry.load(["tests.runner.sample_kinds"])


@settings(HYPOTHESIS, max_examples=10)
@given(drawn=graphs(), cancel=st.sampled_from([None, "at once", "once one started"]))
def test_random_pipelines_end_by_their_policies(
    engine: Engine,
    start_runner: Callable[..., RunnerProcess],
    drawn: Drawn,
    cancel: str | None,
) -> None:
    if not [r for r in queries.runners(engine, alive_within=5) if r.alive]:  # two, kept
        start_runner()
        start_runner()
    public_id = intake.submit_pipeline(engine, drawn.spec, owner="ana")
    if cancel == "once one started":
        wait_for(
            lambda: any(s.started_at for s in pipelines.get(engine, public_id).steps),
            timeout=ENDS,
            what="a step to start",
        )
    if cancel is not None:
        pipelines.cancel(engine, public_id, actor=SYSTEM)
    view = ended(engine, public_id)
    check_order(view)
    check_values(engine, drawn, view)
    if cancel is None:
        assert {s.name: s.status for s in view.steps} == expected(drawn)
    else:
        assert not any(s.status in (StepStatus.WAITING, StepStatus.STARTED) for s in view.steps)
        wait_for(lambda: nothing_open(engine, view), timeout=ENDS, what="every job to end")


@settings(HYPOTHESIS, max_examples=1)
@given(drawn=graphs(slow_root=True))
def test_random_pipelines_end_after_a_runner_is_killed(
    engine: Engine, start_runner: Callable[..., RunnerProcess], drawn: Drawn
) -> None:
    for runner in KILLED_TEST_RUNNERS:  # the last example's: this one's runs on one runner
        runner.kill()
    first = start_runner(**SHORT_LEASE)
    KILLED_TEST_RUNNERS[:] = [first]
    public_id = intake.submit_pipeline(engine, drawn.spec, owner="ana")
    root = wait_for(
        lambda: next(
            (
                s.job
                for s in pipelines.get(engine, public_id).steps
                if s.name == "s0" and s.job and s.job_status is Status.RUNNING
            ),
            None,
        ),
        timeout=ENDS,
        what="the slow first step to run",
    )
    first.kill()  # SIGKILL: its job's lease lapses, and the next runner reaps it
    KILLED_TEST_RUNNERS.append(start_runner(**SHORT_LEASE))
    view = ended(engine, public_id)
    assert queries.get_job(engine, root).attempt >= 2
    check_order(view)
    check_values(engine, drawn, view)
    assert {s.name: s.status for s in view.steps} == expected(drawn)
    assert_sound(engine)
