"""A pipeline moved on by `compute.advance`, on both backends, with its jobs ended by the store's
own verbs: steps start only once what they need has ended, read their dependencies' results
from the store, fail or go on by each edge's policy, and a cancel leaves nothing waiting."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from compute import advance, intake, registry
from jobstore import doctor, pipelines, queries
from jobstore import sweeps as sweep_store
from jobstore import transitions as T
from jobstore.engine import db_now
from jobstore.models import Job, PipelineStep, Status, table_of
from jobstore.pipelines import StepStatus
from runlab.errors import Forbidden
from runlab.identity import Actor

RUNNER = "runner-p"
SPEC = """
name = "Prices across a volatility"

[steps.vol]
kind = "option_pricing"
params = { paths = 1000, seed = 1 }

[steps.price]
kind = "option_pricing"
params = { S = 100, K = 100, T = 1, paths = 1000, seed = 2 }
sweep = { sigma = "lin:${vol.result.delta}:${vol.result.price}:5" }

[steps.prices]
kind = "collect"
inputs = ["price", "vol"]
on_failure = { price = "continue" }
"""


@pytest.fixture(autouse=True)
def _kinds() -> None:
    registry.load()


def _result(price: float, delta: float = 0.5) -> dict[str, Any]:
    return {"price": price, "standard_error": 0.01, "delta": delta, "paths": 1000}


def run_queued(engine: Engine, outcome: Callable[[dict[str, Any]], dict[str, Any] | None]) -> int:
    """Claim every queued job and end it: succeeded with `outcome(params)`, or failed when
    that is None. The number of jobs ended."""
    n = 0
    while leases := T.claim(engine, RUNNER, limit=50):
        for lease in leases:
            result = outcome(dict(lease.params))
            if result is None:
                T.fail(engine, lease, "ValueError", "made to fail")
            else:
                T.succeed(engine, lease, result)
            n += 1
    return n


def statuses(engine: Engine, public_id: str) -> dict[str, StepStatus]:
    return {s.name: s.status for s in pipelines.get(engine, public_id).steps}


def job_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Job)).scalar_one())


def test_each_step_starts_after_its_needs_and_reads_their_results(engine: Engine) -> None:
    public_id = intake.submit_pipeline(engine, tomllib.loads(SPEC), owner="ana")
    assert job_count(engine) == 0
    advance.advance(engine)
    assert statuses(engine, public_id) == {
        "vol": StepStatus.STARTED,
        "price": StepStatus.WAITING,
        "prices": StepStatus.WAITING,
    }
    assert job_count(engine) == 1
    vol = pipelines.get(engine, public_id).steps[0]
    job = queries.get_job(engine, vol.job or "")
    assert (job.owner, job.name) == ("ana", "Prices across a volatility · vol")

    run_queued(engine, lambda _p: _result(0.3, 0.1))
    advance.advance(engine)
    view = pipelines.get(engine, public_id)
    assert [s.status for s in view.steps] == [
        StepStatus.SUCCEEDED,
        StepStatus.STARTED,
        StepStatus.WAITING,
    ]
    price = view.steps[1]
    assert price.sweep is not None
    sigmas = sorted(p.params["sigma"] for p in sweep_store.points(engine, price.sweep))
    assert sigmas == pytest.approx([0.1, 0.15, 0.2, 0.25, 0.3])

    run_queued(engine, lambda p: _result(p["sigma"] * 40))
    advance.advance(engine)
    view = pipelines.get(engine, public_id)
    assert [s.status for s in view.steps][:2] == [StepStatus.SUCCEEDED] * 2
    collect = view.steps[2]
    assert collect.status is StepStatus.STARTED and collect.job is not None
    params = queries.get_job(engine, collect.job).params
    assert [i["step"] for i in params["inputs"]] == ["price", "vol"]
    assert params["inputs"][0]["swept"] == ["sigma"]
    prices = sorted(r["values"]["price"] for r in params["rows"] if r["step"] == "price")
    assert prices == pytest.approx([4.0, 6.0, 8.0, 10.0, 12.0])
    assert [r["values"]["price"] for r in params["rows"] if r["step"] == "vol"] == [0.3]

    run_queued(engine, lambda _p: {"count": 6, "min": 0.3, "max": 12.0, "mean": 6.7})
    advance.advance(engine)
    assert set(statuses(engine, public_id).values()) == {StepStatus.SUCCEEDED}
    assert pipelines.open_pipelines(engine) == []


def test_a_failed_dependency_fails_its_dependents_by_policy_and_none_waits(engine: Engine) -> None:
    public_id = intake.submit_pipeline(engine, tomllib.loads(SPEC), owner="ana")
    advance.advance(engine)
    run_queued(engine, lambda _p: None)  # vol fails
    advance.advance(engine)
    view = pipelines.get(engine, public_id)
    vol, price, prices = view.steps
    assert vol.status is StepStatus.FAILED and vol.reason == "its job failed"
    # price needs vol under `fail`: it fails without a job; the collect step needs vol the
    # same way, whatever its policy on price.
    assert price.status is StepStatus.FAILED and price.job is None and price.sweep is None
    assert price.reason == "it needs vol, which failed"
    assert prices.status is StepStatus.FAILED and prices.job is None
    assert job_count(engine) == 1


def test_continue_goes_on_without_the_failed_input(engine: Engine) -> None:
    spec = tomllib.loads(SPEC)
    spec["steps"]["prices"]["inputs"] = ["price"]
    public_id = intake.submit_pipeline(engine, spec, owner="ana")
    advance.advance(engine)
    run_queued(engine, lambda _p: _result(0.3, 0.1))
    advance.advance(engine)
    run_queued(engine, lambda p: None if p["sigma"] > 0.25 else _result(p["sigma"] * 40))
    advance.advance(engine)
    view = pipelines.get(engine, public_id)
    price, prices = view.steps[1], view.steps[2]
    assert price.status is StepStatus.FAILED and price.reason == "1 of 5 points of its sweep failed"
    assert prices.status is StepStatus.STARTED and prices.job is not None
    params = queries.get_job(engine, prices.job).params
    assert params["inputs"][0]["status"] == "failed"
    assert len(params["rows"]) == 4


def test_a_value_read_that_its_kind_refuses_fails_the_step_with_the_field(engine: Engine) -> None:
    public_id = intake.submit_pipeline(engine, tomllib.loads(SPEC), owner="ana")
    advance.advance(engine)
    run_queued(engine, lambda _p: _result(9.0, 0.1))  # σ up to 9: beyond the model's bound
    advance.advance(engine)
    price = pipelines.get(engine, public_id).steps[1]
    assert price.status is StepStatus.FAILED and price.sweep is None
    assert price.reason is not None and price.reason.startswith("sigma: ")


def test_a_step_starts_once_whoever_advances(engine: Engine) -> None:
    public_id = intake.submit_pipeline(engine, tomllib.loads(SPEC), owner="ana")
    [state] = pipelines.open_pipelines(engine)
    vol = state.steps["vol"]
    job = intake.check("option_pricing", {"paths": 1000}, owner="ana")
    assert pipelines.start(engine, vol.id, job=job)
    assert not pipelines.start(engine, vol.id, job=job)  # a second advancer, a moment late
    assert job_count(engine) == 1
    advance.advance(engine)  # reads the store again, and starts nothing more
    assert job_count(engine) == 1
    assert statuses(engine, public_id)["vol"] is StepStatus.STARTED


def test_cancel_ends_every_step_that_has_not_ended(engine: Engine) -> None:
    public_id = intake.submit_pipeline(engine, tomllib.loads(SPEC), owner="ana")
    advance.advance(engine)
    with pytest.raises(Forbidden):
        pipelines.cancel(engine, public_id, actor=Actor("bob"))
    done = pipelines.cancel(engine, public_id, actor=Actor("ana"))
    assert (done.cancelled, done.asked) == (2, 1)
    advance.advance(engine)
    view = pipelines.get(engine, public_id)
    assert {s.status for s in view.steps} == {StepStatus.CANCELLED}
    assert queries.get_job(engine, view.steps[0].job or "").status is Status.CANCELLED
    assert view.steps[1].reason == "the pipeline was cancelled by ana"
    assert pipelines.open_pipelines(engine) == []


def test_the_doctor_finds_a_run_pipeline_sound_and_names_a_step_started_too_soon(
    engine: Engine,
) -> None:
    public_id = intake.submit_pipeline(engine, tomllib.loads(SPEC), owner="ana")
    advance.advance(engine)
    run_queued(engine, lambda _p: _result(0.3, 0.1))
    advance.advance(engine)
    assert doctor.check(engine) == []
    steps = table_of(PipelineStep)
    with engine.begin() as conn:  # as if the collect step had started while price still runs
        conn.execute(
            update(steps)
            .where(steps.c.name == "prices")
            .values(status=StepStatus.STARTED, started_at=db_now())
        )
    found = doctor.check(engine)
    assert [(v.job, v.rule) for v in found] == [
        (f"{public_id} step prices", "a step starts once"),
        (f"{public_id} step prices", "a step starts after what it needs"),
    ]
    assert "started before price ended" in str(found[1])


def test_bad_data_in_the_store_fails_its_step_once_and_other_pipelines_move_on(
    engine: Engine,
) -> None:
    broken = intake.submit_pipeline(engine, tomllib.loads(SPEC), owner="ana")
    unknown = intake.submit_pipeline(engine, tomllib.loads(SPEC), owner="ana")
    sound = intake.submit_pipeline(engine, tomllib.loads(SPEC), owner="ana")
    steps = table_of(PipelineStep)
    ids = {p.public_id: p.id for p in pipelines.open_pipelines(engine)}
    with engine.begin() as conn:
        conn.execute(  # a spec whose parameters are no longer a table
            update(steps)
            .where(steps.c.pipeline_id == ids[broken], steps.c.name == "vol")
            .values(spec={"params": [1, 2]})
        )
        conn.execute(  # a status this code does not know
            update(steps)
            .where(steps.c.pipeline_id == ids[unknown], steps.c.name == "prices")
            .values(status="paused")
        )
    advance.advance(engine)
    vol = pipelines.get(engine, broken).steps[0]
    assert vol.status is StepStatus.FAILED
    assert vol.reason is not None and vol.reason.startswith("it could not start: ")
    assert statuses(engine, sound)["vol"] is StepStatus.STARTED
    assert [p.public_id for p in pipelines.open_pipelines(engine)] == [sound]
    assert any(v.rule == "a step is in one known state" for v in doctor.check(engine))
