"""`runlab pipeline`: a spec stored with every step waiting and its order said, a bad spec or
file refused at its step and field with nothing stored or kept, uploads read beside the spec,
and `show` and `cancel` of a pipeline, by `runlab pipeline` and by the commands for any id.

No runner runs here: every step stays waiting, which is all these commands decide.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from jobstore import pipelines
from jobstore.engine import make_engine
from jobstore.models import Pipeline, table_of
from tests.cli.conftest import job_count, run

SPEC = """
name = "Strikes after a base price"

[steps.base]
kind = "option_pricing"
params = { S = 100, K = 100, T = 1, sigma = 0.2 }

[steps.strikes]
kind = "option_pricing"
params = { S = 100, T = 1, sigma = 0.2 }
sweep = { K = "90,100,110" }
after = ["base"]

[steps.table]
kind = "collect"
inputs = ["base", "strikes"]
on_failure = { strikes = "continue" }
"""

BOOTSTRAP = """
[steps.vol]
kind = "bootstrap"
params = {{ data = "{data}", column = "{column}", statistic = "std", resamples = 1000 }}
"""

CSV = b"r\n" + b"".join(f"{(-1) ** i * 0.001 * (i + 1):.4f}\n".encode() for i in range(30))


@pytest.fixture
def store(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The command's store, on each backend, and an artifacts folder not yet made."""
    monkeypatch.setenv("RUNLAB_DATABASE_URL", db_url)
    monkeypatch.setenv("RUNLAB_ARTIFACTS", str(tmp_path / "artifacts"))
    return db_url


def spec_file(folder: Path, text: str, name: str = "spec.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def pipeline_count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(table_of(Pipeline))).scalar_one()
            )
    finally:
        engine.dispose()


def submit(path: Path, *options: str) -> str:
    code, out, err = run("pipeline", "submit", str(path), *options)
    assert code == 0, err
    return out.strip().splitlines()[-1]


def test_a_spec_is_stored_with_every_step_waiting_and_its_order_said(
    store: str, tmp_path: Path
) -> None:
    path = spec_file(tmp_path, SPEC)
    code, out, err = run("pipeline", "submit", str(path), "--idempotency-key", "k1")
    assert code == 0, err
    public_id = out.strip().splitlines()[-1]
    assert err.splitlines() == [
        "Strikes after a base price: 3 step(s), in the order they can run",
        "  base     option_pricing",
        "  strikes  option_pricing sweep  waits for base",
        "  table    collect               waits for base, strikes (goes on if it fails)",
    ]
    code, shown, _ = run("pipeline", "show", public_id, "--json")
    assert code == 0
    view = json.loads(shown)
    assert (view["id"], view["type"], view["name"]) == (
        public_id,
        "pipeline",
        "Strikes after a base price",
    )
    assert [(s["name"], s["status"], s["job"], s["sweep"]) for s in view["steps"]] == [
        ("base", "waiting", None, None),
        ("strikes", "waiting", None, None),
        ("table", "waiting", None, None),
    ]
    assert view["steps"][2]["needs"] == {"base": "fail", "strikes": "continue"}
    assert json.loads(run("show", public_id, "--json")[1]) == view  # `show` takes any id
    code, text, _ = run("show", public_id)
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == f"Strikes after a base price  (pipeline, {public_id})"
    assert lines[1] == "status    0 of 3 steps ended: 3 waiting"
    assert "  step    strikes  option_pricing sweep  waiting     0%  waits for base" in lines
    assert submit(path, "--idempotency-key", "k1") == public_id  # the same key: one pipeline
    assert pipeline_count(store) == 1
    assert job_count(store) == 0  # a step's job is made when it starts


def test_json_prints_the_pipeline_as_show_does(store: str, tmp_path: Path) -> None:
    code, out, err = run("pipeline", "submit", str(spec_file(tmp_path, SPEC)), "--json")
    assert code == 0, err
    view = json.loads(out)
    assert json.loads(run("pipeline", "show", view["id"], "--json")[1]) == view


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            '[steps.price]\nkind = "option_pricing"\nparams = { sigma = "${vol.result.ci_low}" }',
            "error: steps.price.params.sigma: no step 'vol' in this pipeline; its steps are price",
        ),
        (
            '[steps.a]\nkind = "option_pricing"\nparams = { sigma = "${b.result.delta}" }\n'
            '[steps.b]\nkind = "option_pricing"\nparams = { sigma = "${a.result.delta}" }',
            "error: steps.a: a cycle: a → b → a",
        ),
        (
            '[steps.price]\nkind = "option_pricing"\nparams = { sigma = "wide" }',
            "error: steps.price.params.sigma: ",
        ),
        (
            '[steps.price]\nkind = "option_pricing"\nafter = ["ghost"]',
            "error: steps.price.after: no step 'ghost' in this pipeline; its steps are price",
        ),
    ],
    ids=["missing step", "cycle", "text for a number", "after a missing step"],
)
def test_a_bad_spec_exits_2_at_its_step_and_field_and_stores_nothing(
    store: str, tmp_path: Path, steps: str, message: str
) -> None:
    code, out, err = run("pipeline", "submit", str(spec_file(tmp_path, steps)))
    assert code == 2
    assert err.startswith(message), err
    assert out == "" and "Traceback" not in err
    assert pipeline_count(store) == 0


def test_every_error_is_said_at_once(store: str, tmp_path: Path) -> None:
    text = (
        '[steps.vol]\nkind = "bootstrap"\nparams = { data = "absent.csv", column = "r" }\n'
        '[steps.price]\nkind = "option_pricing"\nparams = { T = "one" }'
    )
    code, _, err = run("pipeline", "submit", str(spec_file(tmp_path, text)))
    assert code == 2
    assert "steps.vol.params.data: cannot read " in err
    assert "steps.price.params.T: " in err
    assert pipeline_count(store) == 0


def test_an_upload_is_read_beside_the_spec_and_kept_once_the_pipeline_passes(
    store: str, tmp_path: Path
) -> None:
    folder = tmp_path / "specs"  # not the working folder: the spec's own
    path = spec_file(folder, BOOTSTRAP.format(data="returns.csv", column="r"))
    (folder / "returns.csv").write_bytes(CSV)
    public_id = submit(path)
    engine = make_engine(store)
    try:
        (vol,) = pipelines.get(engine, public_id).steps
    finally:
        engine.dispose()
    ref = vol.spec["params"]["data"]
    assert (ref["name"], ref["size"]) == ("returns.csv", len(CSV))
    uploads = tmp_path / "artifacts" / "uploads"
    assert [p.read_bytes() for p in uploads.iterdir()] == [CSV]
    assert [p.name for p in uploads.iterdir()] == [ref["sha256"]]


def test_a_column_missing_from_the_file_is_refused_and_no_upload_is_kept(
    store: str, tmp_path: Path
) -> None:
    path = spec_file(tmp_path, BOOTSTRAP.format(data="returns.csv", column="returns"))
    (tmp_path / "returns.csv").write_bytes(CSV)
    code, out, err = run("pipeline", "submit", str(path))
    assert code == 2
    assert err.startswith("error: steps.vol.params.column: "), err
    assert "returns" in err and "Traceback" not in out + err
    assert pipeline_count(store) == 0
    assert not (tmp_path / "artifacts").exists()


def test_a_missing_file_is_a_clear_error(store: str, tmp_path: Path) -> None:
    path = spec_file(tmp_path, BOOTSTRAP.format(data="absent.csv", column="r"))
    code, _, err = run("pipeline", "submit", str(path))
    assert code == 2
    assert err.strip() == (
        f"error: steps.vol.params.data: cannot read {tmp_path / 'absent.csv'}: "
        "No such file or directory"
    )
    missing = tmp_path / "nowhere.toml"
    code, _, err = run("pipeline", "submit", str(missing))
    assert code == 2
    assert err.strip() == f"error: file: cannot read {missing}: No such file or directory"
    code, _, err = run("pipeline", "submit", str(spec_file(tmp_path, "name = \n", "bad.toml")))
    assert code == 2
    assert err.startswith("error: file: not valid TOML: ") and "line 1" in err
    assert pipeline_count(store) == 0
    assert not (tmp_path / "artifacts").exists()


def test_cancel_of_a_pipeline_cancels_its_waiting_steps(store: str, tmp_path: Path) -> None:
    public_id = submit(spec_file(tmp_path, SPEC))
    code, said, err = run("--as", "ops", "cancel", public_id)  # the CLI acts as an operator
    assert code == 0, err
    assert said.strip() == (
        f"{public_id}: 3 waiting step(s) cancelled, 0 started step(s) asked to stop"
    )
    code, shown, _ = run("pipeline", "show", public_id)
    assert code == 0
    assert "status    3 of 3 steps ended: 3 cancelled" in shown
    assert "          base cancelled: the pipeline was cancelled by ops" in shown.splitlines()
    code, again, _ = run("pipeline", "cancel", public_id)
    assert code == 0
    assert again.strip() == (
        f"{public_id}: 0 waiting step(s) cancelled, 0 started step(s) asked to stop"
    )


def test_show_and_cancel_of_an_unknown_id_say_not_found(store: str) -> None:
    for command in ("show", "cancel"):
        code, _, err = run(command, "nOsUcHpIpE12")
        assert code == 1
        assert err.strip() == "error: no such job: nOsUcHpIpE12"
        code, _, err = run("pipeline", command, "nOsUcHpIpE12")
        assert code == 1
        assert err.strip() == "error: no such pipeline: nOsUcHpIpE12"


def test_kinds_lists_the_result_fields_a_step_may_read(store: str) -> None:
    code, out, _ = run("kinds", "--json")
    assert code == 0
    headline = {k["kind"]: k["headline"] for k in json.loads(out)}
    assert headline["bootstrap"] == ["estimate", "ci_low", "ci_high"]
    code, out, _ = run("kinds")
    said = [line for line in out.splitlines() if "a pipeline step may read" in line]
    assert "  result fields a pipeline step may read: estimate, ci_low, ci_high" in said
    assert not any("count, min, max, mean" in line for line in said)  # collect: none to read
