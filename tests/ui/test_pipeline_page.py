"""A pipeline on the pages: submitted on /new from its spec file (with the files it reads), read
on /pipeline as a graph and a list of steps, cancelled there by its owner, listed on /jobs, and
named on the pages of the jobs and sweeps its steps became."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from streamlit.testing.v1 import AppTest

from compute import advance, intake
from compute.kinds.collect import CollectParams, collected
from jobstore import pipelines, queries
from jobstore import transitions as T
from jobstore.models import Pipeline, PipelineStep
from jobstore.pipelines import StepStatus
from tests.ui.conftest import markdown_texts, open_page
from tests.ui.seed import RUNNER
from ui import pipeline_view

SPEC = """
name = "Prices across the volatility"

[steps.vol]
kind = "option_pricing"
params = { paths = 1000 }

[steps.price]
kind = "option_pricing"
params = { paths = 1000 }
sweep = { sigma = "lin:${vol.result.delta}:${vol.result.price}:5" }

[steps.prices]
kind = "collect"
inputs = ["price"]
"""


def shown(at: AppTest) -> list[str]:
    """The page's Markdown as it reads, without the escapes that keep it plain text."""
    return [t.replace("\\", "") for t in markdown_texts(at)]


def submitted(store: Engine, owner: str = "") -> str:
    return intake.submit_pipeline(store, tomllib.loads(SPEC), owner=owner)


def steps_table(at: AppTest) -> Any:
    return next(d.value for d in at.dataframe if "note" in d.value.columns)


def pipeline_count(store: Engine) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Pipeline)).scalar_one())


def run_queued(store: Engine, result: Any) -> None:
    """Claim every queued job and succeed it with `result(params)`, then move the pipeline on."""
    while leases := T.claim(store, RUNNER, limit=50, versions={"runlab": "0.1.0"}):
        for lease in leases:
            T.succeed(store, lease, result(dict(lease.params)))
    advance.advance(store)


def option(params: dict[str, Any]) -> dict[str, Any]:
    sigma = params.get("sigma", 0.2)
    return {"price": 40 * sigma, "standard_error": 0.01, "delta": 0.1, "paths": 1000}


def to_the_end(store: Engine, public_id: str) -> None:
    """Every step run to success: vol gives σ from 0.1 to 0.3, price a price per σ, and the
    collect step the result its own driver makes of what it was handed."""
    advance.advance(store)
    run_queued(store, lambda _p: {**option({}), "delta": 0.1, "price": 0.3})
    run_queued(store, option)
    run_queued(store, lambda p: collected(CollectParams.model_validate(p)))
    assert {s.status for s in pipelines.get(store, public_id).steps} == {StepStatus.SUCCEEDED}


def test_a_new_pipeline_shows_every_step_waiting_with_what_it_waits_for(store: Engine) -> None:
    public_id = submitted(store, owner="ann")
    at = open_page("pages/pipeline.py", id=public_id)
    texts = shown(at)
    assert "Prices across the volatility" in texts
    assert any(t.startswith("Pipeline of 3 steps") and "by ann" in t for t in texts), texts
    assert any("0 of 3 steps ended · 3 waiting" in t for t in texts), texts
    df = steps_table(at)
    assert list(df["step"]) == ["vol", "price", "prices"]
    assert list(df["status"]) == ["waiting"] * 3
    assert list(df["note"]) == [
        "ready to start",
        "waits for vol",
        "waits for price",
    ]
    assert (df["link"] == "").all()  # no job or sweep yet
    assert len(at.get("plotly_chart")) == 1  # the graph
    assert any(b.label == "Cancel pipeline" for b in at.button)


def test_the_graph_places_each_step_after_what_it_needs() -> None:
    needs = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}
    assert pipeline_view.layers(needs) == {"a": 0, "b": 1, "c": 1, "d": 2, "e": 0}
    at = pipeline_view.places(needs)
    assert at["b"][1] > at["c"][1]  # spec order, top down
    assert at["d"][1] == pytest.approx((at["b"][1] + at["c"][1]) / 2)  # between its needs


def test_what_a_step_waits_for_reads_in_the_pipelines_order() -> None:
    order = ["vol", "european", "asian", "barrier", "prices"]
    needs = {"barrier": "continue", "european": "fail", "asian": "fail"}  # as JSONB may hold it
    assert pipeline_view.waits_text(needs, order) == (
        "european, asian; goes on without barrier if it fails"
    )
    assert pipeline_view.where("steps.price.params.sigma") == "price › params › sigma"
    assert pipeline_view.where("file") == "The spec file"


def test_steps_move_on_and_the_collect_steps_chart_is_on_the_page(store: Engine) -> None:
    public_id = submitted(store)
    advance.advance(store)
    at = open_page("pages/pipeline.py", id=public_id)
    df = steps_table(at)
    assert list(df["status"]) == ["queued", "waiting", "waiting"]
    job = pipelines.get(store, public_id).steps[0].job
    assert df["link"][0] == f"job?id={job}#open%20job"

    to_the_end(store, public_id)
    at = open_page("pages/pipeline.py", id=public_id)
    texts = shown(at)
    assert any("3 of 3 steps ended · 3 succeeded" in t for t in texts), texts
    df = steps_table(at)
    assert list(df["status"]) == ["succeeded"] * 3
    assert df["points"][1] == "5 of 5 points"
    assert df["link"][1].startswith("sweep?id=")
    assert not any(b.label == "Cancel pipeline" for b in at.button)  # nothing left to cancel
    assert "Collected by prices" in texts
    # The graph, then the collect step's chart: one line of the five prices over σ.
    _graph, chart = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    [trace] = figure["data"]
    assert trace["x"] == pytest.approx([0.1, 0.15, 0.2, 0.25, 0.3])
    assert trace["y"] == pytest.approx([4.0, 6.0, 8.0, 10.0, 12.0])

    # The job and the sweep of a step name it, with a link to the pipeline.
    steps = pipelines.get(store, public_id).steps
    link = "Step vol of pipeline Prices across the volatility"
    at = open_page("pages/job.py", id=steps[0].job or "")
    assert [p.label.replace("\\", "") for p in at.get("page_link") if "pipeline" in p.label] == [
        link
    ]
    at = open_page("pages/sweep.py", id=steps[1].sweep or "")
    labels = [p.label.replace("\\", "") for p in at.get("page_link")]
    assert "Step price of pipeline Prices across the volatility" in labels


def test_an_unknown_pipeline_says_so(store: Engine) -> None:
    at = open_page("pages/pipeline.py", id="nope")
    assert "No such pipeline" in shown(at)
    assert not at.get("plotly_chart")


def test_the_owner_cancels_the_steps_that_wait(store: Engine) -> None:
    public_id = submitted(store)  # the page's user, with no sign-in configured, is an admin
    advance.advance(store)
    at = open_page("pages/pipeline.py", id=public_id)
    next(b for b in at.button if b.label == "Cancel pipeline").click()
    at.run()
    assert any(
        "steps of **Prices across the volatility** that have not ended" in t for t in shown(at)
    )
    next(b for b in at.button if b.label == "Yes, cancel them").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Cancelled 2 waiting steps; asked 1 started ones to stop." in shown(at)
    view = pipelines.get(store, public_id)
    assert [s.status for s in view.steps][1:] == [StepStatus.CANCELLED] * 2
    assert queries.get_job(store, view.steps[0].job or "").status.terminal
    advance.advance(store)  # the started step ends as its job did
    at = open_page("pages/pipeline.py", id=public_id)
    assert list(steps_table(at)["status"]) == ["cancelled"] * 3
    assert not any(b.label == "Cancel pipeline" for b in at.button)


def test_jobs_lists_the_latest_pipelines_under_the_owner_filter(store: Engine) -> None:
    mine = submitted(store, owner="ann")
    submitted(store, owner="bob")
    at = open_page("pages/jobs.py")
    frame = next(d.value for d in at.dataframe if "pipeline" in d.value.columns)
    assert len(frame) == 2
    assert list(frame["steps"]) == ["0 of 3 ended · 3 waiting"] * 2
    at = open_page("pages/jobs.py", owner="ann")
    frame = next(d.value for d in at.dataframe if "pipeline" in d.value.columns)
    assert list(frame["owner"]) == ["ann"]
    assert frame["pipeline"][0] == f"pipeline?id={mine}#Prices%20across%20the%20volatility"
    # A filter about jobs leaves the pipelines out, rather than showing them unfiltered.
    at = open_page("pages/jobs.py", status="failed")
    assert not any("pipeline" in d.value.columns for d in at.dataframe)


def test_recent_reads_heads_and_counts_newest_first(store: Engine) -> None:
    first = submitted(store, owner="ann")
    second = submitted(store, owner="bob")
    rows = pipelines.recent(store)
    assert [r.public_id for r in rows] == [second, first]
    assert (rows[0].steps, rows[0].ended, rows[0].statuses) == (3, 0, {"waiting": 3})
    assert [r.public_id for r in pipelines.recent(store, owner="ann")] == [first]
    assert [r.public_id for r in pipelines.recent(store, owner=frozenset())] == []
    assert pipelines.recent(store, limit=1)[0].public_id == second
    assert pipelines.of_job(store, "nope") is None and pipelines.of_sweep(store, "nope") is None


# --- /new ------------------------------------------------------------------------------------


def pipeline_form() -> AppTest:
    at = open_page("pages/new.py", what="pipeline")
    assert [t.value for t in at.title] == ["New pipeline"]
    return at


def upload_spec(at: AppTest, text: str, name: str = "spec.toml") -> AppTest:
    at.file_uploader(key=pipeline_view.SPEC_KEY).set_value((name, text.encode(), "text/plain"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def submit_button(at: AppTest) -> Any:
    return next(b for b in at.button if b.label == "Submit pipeline")


def test_a_bad_spec_shows_each_message_at_its_step_and_field_and_stores_nothing(
    store: Engine,
) -> None:
    bad = SPEC.replace(
        "params = { paths = 1000 }\nsweep", "params = { paths = 1000, T = -1 }\nsweep"
    )
    bad = bad.replace('inputs = ["price"]', 'inputs = ["price", "nowhere"]')
    at = upload_spec(pipeline_form(), bad)
    [error] = [e.value.replace("\\", "") for e in at.error]
    assert "price › params › T: " in error
    assert "prices › inputs: no step 'nowhere' in this pipeline" in error
    assert submit_button(at).disabled
    assert pipeline_count(store) == 0


def test_a_spec_that_is_not_toml_says_so(store: Engine) -> None:
    at = upload_spec(pipeline_form(), "name = \n")
    [error] = [e.value.replace("\\", "") for e in at.error]
    assert error.startswith("The spec file: not valid TOML")
    assert pipeline_count(store) == 0


def test_a_good_spec_is_previewed_and_stored_as_one_pipeline(store: Engine) -> None:
    at = upload_spec(pipeline_form(), SPEC)
    assert not at.error
    preview = next(t for t in shown(at) if t.startswith("1. "))
    assert preview.splitlines() == [
        "1. **vol** · Option pricing · one job · starts first",
        "2. **price** · Option pricing · a sweep of sigma = "
        "lin:${vol.result.delta}:${vol.result.price}:5 · waits for vol",
        "3. **prices** · Collect · collects price · waits for price",
    ]
    assert len(at.get("plotly_chart")) == 1
    submit_button(at).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert pipeline_count(store) == 1
    [row] = pipelines.recent(store)
    assert at.query_params["id"] in (row.public_id, [row.public_id])
    assert [s.name for s in pipelines.get(store, row.public_id).steps] == ["vol", "price", "prices"]


BOOT_SPEC = """
name = "Returns' spread"

[steps.spread]
kind = "bootstrap"
params = { data = "returns.csv", column = "ret", statistic = "std", resamples = 200 }
"""


def returns_csv(rows: int = 30) -> bytes:
    lines = ["day,ret"] + [f"{i},{((i * 7) % 11 - 5) / 100}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_a_spec_that_reads_a_file_asks_for_it_and_keeps_it_once_submitted(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "artifacts"
    monkeypatch.setenv("RUNLAB_ARTIFACTS", str(root))
    at = upload_spec(pipeline_form(), BOOT_SPEC)
    assert "This spec reads returns.csv: upload it below." in shown(at)
    [error] = [e.value.replace("\\", "") for e in at.error]
    assert error == "spread › params › data: upload returns.csv below"
    assert submit_button(at).disabled

    # A file without the column the step names is refused at the step's field, and not kept.
    wrong = returns_csv().replace(b"day,ret", b"day,other")
    at.file_uploader(key=pipeline_view.FILES_KEY).set_value(("returns.csv", wrong, "text/csv"))
    at.run()
    [error] = [e.value.replace("\\", "") for e in at.error]
    assert error.startswith("spread › params › column: ")
    assert not (root / "uploads").exists()

    data = returns_csv()
    at.file_uploader(key=pipeline_view.FILES_KEY).set_value(("returns.csv", data, "text/csv"))
    at.run()
    assert not at.error
    submit_button(at).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [row] = pipelines.recent(store)
    [step] = pipelines.get(store, row.public_id).steps
    digest = hashlib.sha256(data).hexdigest()
    assert step.spec["params"]["data"] == {
        "name": "returns.csv",
        "size": len(data),
        "sha256": digest,
    }
    assert [p.name for p in (root / "uploads").iterdir()] == [digest]


def test_a_step_status_this_version_does_not_know_is_said_not_raised(store: Engine) -> None:
    public_id = intake.submit_pipeline(store, tomllib.loads(SPEC), owner="ana")
    steps = PipelineStep.__table__
    with store.begin() as conn:
        conn.execute(steps.update().where(steps.c.name == "prices").values(status="paused"))
    at = open_page("pages/pipeline.py", id=public_id)
    assert not at.exception
    [error] = at.error
    assert "step prices has the status 'paused'" in error.value
    assert "runlab doctor" in error.value
