"""A pipeline in the store, on both backends: its row and its steps in one transaction, every
step waiting, one pipeline per idempotency key, and a bad spec refused with nothing stored."""

from __future__ import annotations

import tomllib

import pytest
from sqlalchemy import Engine, func, select

from compute import intake, registry
from jobstore import pipelines
from jobstore.models import Pipeline, PipelineStep
from runlab.errors import InvalidParams, PipelineNotFound

SPEC = """
name = "Vol, then prices across it"

[steps.prices]
kind = "collect"
inputs = ["price"]
on_failure = { price = "continue" }

[steps.price]
kind = "option_pricing"
params = { S = 100, K = 100, T = 1, paths = 1000 }
sweep = { sigma = "lin:${vol.result.price}:${vol.result.delta}:5" }

[steps.vol]
kind = "option_pricing"
params = { paths = 1000 }
"""


@pytest.fixture(autouse=True)
def _kinds() -> None:
    registry.load()


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(Pipeline)).scalar_one(),
            conn.execute(select(func.count()).select_from(PipelineStep)).scalar_one(),
        )


def test_a_pipeline_is_stored_with_every_step_waiting_in_order(engine: Engine) -> None:
    doc = tomllib.loads(SPEC)
    public_id = intake.submit_pipeline(engine, doc, owner="ana")
    view = pipelines.get(engine, public_id)
    assert (view.name, view.owner) == ("Vol, then prices across it", "ana")
    assert [s.name for s in view.steps] == ["vol", "price", "prices"]
    assert {s.status for s in view.steps} == {pipelines.StepStatus.WAITING}
    vol, price, prices = view.steps
    assert vol.needs == {} and price.needs == {"vol": "fail"}
    assert prices.needs == {"price": "continue"} and prices.spec["inputs"] == ["price"]
    assert price.spec["sweep"] == {"sigma": "lin:${vol.result.price}:${vol.result.delta}:5"}
    assert all(s.job is None and s.sweep is None for s in view.steps)
    assert view.to_json()["steps"][1]["needs"] == {"vol": "fail"}
    assert _counts(engine) == (1, 3)


def test_one_idempotency_key_makes_one_pipeline(engine: Engine) -> None:
    doc = tomllib.loads(SPEC)
    first = intake.submit_pipeline(engine, doc, idempotency_key="k1")
    assert intake.submit_pipeline(engine, doc, idempotency_key="k1") == first
    other = tomllib.loads(SPEC.replace("T = 1,", "T = 2,"))
    with pytest.raises(InvalidParams, match="already used by pipeline"):
        intake.submit_pipeline(engine, other, idempotency_key="k1")
    assert _counts(engine) == (1, 3)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ('"lin:${vol.result.price}:5"', "steps.price.sweep.sigma"),  # a range needs a count
        ('"lin:${volx.result.price}:1:5"', "steps.price.sweep.sigma"),
    ],
)
def test_a_bad_spec_stores_nothing(engine: Engine, change: str, field: str) -> None:
    text = SPEC.replace('"lin:${vol.result.price}:${vol.result.delta}:5"', change)
    with pytest.raises(InvalidParams) as caught:
        intake.submit_pipeline(engine, tomllib.loads(text))
    assert field in caught.value.errors, caught.value.errors
    assert _counts(engine) == (0, 0)


def test_an_unknown_pipeline_is_said_so(engine: Engine) -> None:
    with pytest.raises(PipelineNotFound, match="no such pipeline: nope"):
        pipelines.get(engine, "nope")
