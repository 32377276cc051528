"""The CLI's output shapes and exit codes are a public contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from jobstore import queries
from jobstore.engine import make_engine, migrate
from runlab.errors import InvalidParams
from tests.cli.conftest import job_count, run
from tests.s3 import Place

JSON_KEYS = {
    "id",
    "kind",
    "name",
    "status",
    "attempt",
    "progress",
    "stage",
    "stages",
    "params",
    "result",
    "error",
    "created_at",
    "started_at",
    "finished_at",
}


def test_bad_parameter_exits_2_naming_the_field_and_stores_nothing(db):
    code, out, err = run("submit", "monte_carlo_pi", "-p", "samples=0")
    assert code == 2
    assert err.strip() == "error: samples: must be an integer between 1 and 100,000,000,000"
    assert "Traceback" not in out + err
    assert job_count(db) == 0


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("samples=abc", "samples: must be an integer between 1 and 100,000,000,000"),
        ("samples=1.5", "samples: must be an integer between 1 and 100,000,000,000"),
        ("bogus=1", "bogus: is not a parameter of this kind"),
        ("samples", "-p: expected key=value"),
    ],
)
def test_each_kind_of_bad_input_gets_a_field_level_message(db, param, message):
    code, _, err = run("submit", "monte_carlo_pi", "-p", param)
    assert code == 2
    assert message in err
    assert job_count(db) == 0


def test_unknown_kind_exits_2(db):
    code, _, err = run("submit", "no_such_kind")
    assert code == 2
    assert "unknown kind 'no_such_kind'" in err


def test_unknown_id_exits_1_naming_the_id(db):
    for command in ("show", "cancel"):
        code, _, err = run(command, "nOsUcHjOb123")
        assert code == 1
        assert err.strip() == "error: no such job: nOsUcHjOb123"


def test_submit_prints_the_public_id_as_its_last_line(db):
    code, out, _ = run("submit", "monte_carlo_pi", "-p", "samples=1e6", "--name", "first")
    assert code == 0
    public_id = out.strip().splitlines()[-1]
    job = queries.get_job(make_engine(db), public_id)
    assert job.name == "first"
    assert job.params["samples"] == 1_000_000


def test_submit_json_and_show_json_print_the_same_public_shape(db):
    code, out, _ = run("submit", "demo_stages", "-p", "stages=2", "--json")
    assert code == 0
    submitted = json.loads(out)
    assert set(submitted) >= JSON_KEYS
    assert submitted["status"] == "queued" and submitted["attempt"] == 0
    assert [s["name"] for s in submitted["stages"]] == ["stage 1", "stage 2"]
    code, out, _ = run("show", submitted["id"], "--json")
    assert code == 0
    assert json.loads(out) == submitted


def test_show_prints_what_the_job_cost_in_all_and_per_stage(db):
    from jobstore.views import Cost
    from tests.ui import seed

    engine = make_engine(db)
    migrate(engine)
    public_id = seed.with_cost(
        engine,
        Cost(0.5, 0.6, 1, 100 * 2**20, {"worker-1": 1}),
        Cost(83.0, 90.0, 12, 300 * 2**20, {"worker-1": 12}),
    )
    queued = seed.queued(engine)
    assert "cost" not in run("show", queued)[1], "a queued job has cost nothing yet"

    code, out, _ = run("show", public_id)

    assert code == 0
    lines = out.splitlines()
    assert (
        "cost      1 min 23 s CPU, 1 min 30 s in 13 tasks, peak memory 300.0 MiB, "
        "on worker-1 (13 tasks)" in lines
    )
    assert (
        "  stage   plan                 500 ms CPU, 600 ms in 1 task, peak memory 100.0 MiB, "
        "on worker-1 (1 task)" in lines
    )
    assert any(line.startswith("  stage   reduce") and "0 tasks" in line for line in lines)


def test_the_same_idempotency_key_makes_one_job(db):
    first = run("submit", "monte_carlo_pi", "--idempotency-key", "nightly-7")[1].strip()
    second = run("submit", "monte_carlo_pi", "--idempotency-key", "nightly-7")[1].strip()
    assert first == second
    assert job_count(db) == 1


def test_cancel_a_queued_job_then_again(db):
    public_id = run("submit", "monte_carlo_pi")[1].strip()
    assert run("cancel", public_id) == (0, f"{public_id}: cancelled\n", "")
    code, out, _ = run("cancel", public_id)
    assert code == 0 and "already finished" in out
    assert json.loads(run("show", public_id, "--json")[1])["status"] == "cancelled"


def test_ls_filters_by_kind_and_status(db):
    pi = run("submit", "monte_carlo_pi")[1].strip()
    demo = run("submit", "demo_stages")[1].strip()
    run("cancel", demo)
    rows = json.loads(run("ls", "--json", "--kind", "monte_carlo_pi")[1])
    assert [r["id"] for r in rows] == [pi]
    rows = json.loads(run("ls", "--json", "--status", "cancelled")[1])
    assert [r["id"] for r in rows] == [demo]
    code, out, _ = run("ls")
    assert code == 0 and pi in out and demo in out


def test_ls_takes_the_history_search_and_points_at_a_bad_token(db):
    small = run("submit", "monte_carlo_pi", "-p", "samples=5000", "--tag", "q3")[1].strip()
    run("submit", "monte_carlo_pi", "-p", "samples=50000", "--tag", "q3")
    run("submit", "monte_carlo_pi", "-p", "samples=6000")
    rows = json.loads(run("ls", "--json", "-q", "samples<10000 tag:q3")[1])
    assert [r["id"] for r in rows] == [small]
    code, _, err = run("ls", "-q", "status:succeded")
    assert code == 2
    assert "did you mean 'succeeded'" in err and "^^^^^^^^^^^^^^^" in err
    code, _, err = run("ls", "--limit", "1")
    assert code == 0 and "--limit shows more" in err


def test_kinds_lists_parameters_with_defaults_and_bounds(db):
    code, out, _ = run("kinds", "--json")
    assert code == 0
    kinds = {k["kind"]: k for k in json.loads(out)}
    assert set(kinds) >= {"monte_carlo_pi", "demo_stages"}
    samples = next(p for p in kinds["monte_carlo_pi"]["params"] if p["name"] == "samples")
    assert samples["minimum"] == 1 and samples["maximum"] == 10**11
    assert samples["default"] == 1_000_000_000

    code, out, _ = run("kinds")
    assert code == 0
    lines = {
        line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()
    }
    assert lines["samples"].endswith(
        "must be an integer between 1 and 100,000,000,000; default 1,000,000,000"
    )
    assert lines["data"].endswith("must be an uploaded CSV file; required")
    assert lines["sigma"].endswith("must be a number above 0 and at most 5; default 0.2")


def test_the_installed_command_maps_errors_to_exit_codes(db):
    """The same contract through a real process: no traceback reaches the user."""
    cmd = [sys.executable, "-m", "runlab.cli"]
    bad = subprocess.run(
        [*cmd, "submit", "monte_carlo_pi", "-p", "chunks=0"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: chunks: must be an integer between 1 and 100,000"
    missing = subprocess.run([*cmd, "show", "zzzzzzzzzzzz"], capture_output=True, text=True)
    assert missing.returncode == 1
    assert "zzzzzzzzzzzz" in missing.stderr and "Traceback" not in missing.stderr


def test_rerun_prints_a_new_job_with_the_same_params_and_an_unknown_id_exits_1(db):
    code, out, _ = run("submit", "monte_carlo_pi", "-p", "samples=1000")
    first = out.strip()
    code, out, err = run("rerun", first)
    assert code == 0, err
    again = out.strip()
    engine = make_engine(db)
    assert again != first
    assert queries.get_job(engine, again).params == queries.get_job(engine, first).params
    code, out, err = run("rerun", "nosuchjob123")
    assert code == 1 and err.strip() == "error: no such job: nosuchjob123"


@pytest.fixture
def artifacts(artifact_place: Place, monkeypatch: pytest.MonkeyPatch) -> Place:
    """The CLI's artifact store as a folder, then as an S3 bucket, through its settings."""
    for name, value in artifact_place.env.items():
        monkeypatch.setenv(name, value)
    return artifact_place


def test_lists_and_matrices_are_comma_separated_with_semicolons_between_rows(db):
    code, out, err = run(
        "submit", "portfolio_risk", "-p", "weights=0.6,0.4", "-p", "expected_returns=0.05,0.03",
        "-p", "volatilities=0.2, 0.1", "-p", "correlation=1,0.3;0.3,1", "--json",
    )  # fmt: skip
    assert code == 0, err
    params = json.loads(out)["params"]
    assert params["weights"] == [0.6, 0.4]
    assert params["correlation"] == [[1.0, 0.3], [0.3, 1.0]]


def test_a_correlation_that_is_not_positive_semi_definite_exits_2_and_stores_nothing(db):
    code, _, err = run(
        "submit", "portfolio_risk", "-p", "correlation=1,0.9,-0.9;0.9,1,0.9;-0.9,0.9,1",
    )  # fmt: skip
    assert code == 2
    assert err.startswith("error: correlation: is not positive semi-definite")
    assert job_count(db) == 0


def test_an_upload_is_checked_kept_by_its_sha256_and_referenced_by_the_job(db, artifacts, tmp_path):
    import hashlib

    data = b"x,y\n" + b"".join(b"%d.5,a\n" % i for i in range(12))  # a bootstrap needs 10 rows
    (tmp_path / "d.csv").write_bytes(data)
    code, out, err = run(
        "submit", "bootstrap", "-p", f"data=@{tmp_path / 'd.csv'}", "-p", "column=x", "--json"
    )
    assert code == 0, err
    ref = json.loads(out)["params"]["data"]
    digest = hashlib.sha256(data).hexdigest()
    assert ref == {"name": "d.csv", "size": len(data), "sha256": digest}
    assert artifacts.files("uploads") == [f"uploads/{digest}"]
    assert artifacts.store().get_upload(digest) == data


def test_a_column_the_upload_lacks_exits_2_with_the_forms_message_and_stores_nothing(
    db, artifacts, tmp_path
):
    from compute import datasets, intake

    data = b"x,y\n" + b"".join(b"%d.5,%d\n" % (i, i) for i in range(12))
    (tmp_path / "d.csv").write_bytes(data)
    code, _, err = run(
        "submit", "bootstrap", "-p", f"data=@{tmp_path / 'd.csv'}", "-p", "column=nope"
    )
    assert code == 2
    # The very check the form runs, on the same table, words the same field-level message.
    with pytest.raises(InvalidParams) as form:
        params = {"data": datasets.reference("d.csv", data).model_dump(), "column": "nope"}
        intake.check("bootstrap", params, tables={"data": datasets.read_csv(data)})
    assert form.value.errors == {"column": "the file has no column 'nope'"}
    assert err == "error: column: the file has no column 'nope'\n"
    assert job_count(db) == 0
    assert artifacts.files("uploads") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"a,b\nx,y\n", "no numeric column: every column holds text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a CSV file: it holds binary data"),
    ],
)
def test_a_bad_upload_exits_2_with_its_reason_and_stores_nothing(
    db, artifacts, tmp_path, content, message
):
    (tmp_path / "bad.csv").write_bytes(content)
    code, _, err = run(
        "submit", "bootstrap", "-p", f"data=@{tmp_path / 'bad.csv'}", "-p", "column=x"
    )
    assert code == 2
    assert err.strip() == f"error: data: {message}"
    assert job_count(db) == 0
    assert artifacts.files("uploads") == []
    code, _, err = run("submit", "bootstrap", "-p", "data=@/no/such.csv", "-p", "column=x")
    assert code == 2 and err.startswith("error: data: cannot read /no/such.csv")


def test_an_idempotency_key_reused_with_other_parameters_exits_2_naming_the_first_job(db):
    code, first, _ = run("submit", "demo_stages", "-p", "stages=2", "--idempotency-key", "k1")
    assert code == 0
    code, again, _ = run("submit", "demo_stages", "-p", "stages=2", "--idempotency-key", "k1")
    assert (code, again) == (0, first)  # the same request: the same job

    code, out, err = run("submit", "demo_stages", "-p", "stages=3", "--idempotency-key", "k1")

    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: idempotency_key: already used by job {first.strip()}, with other parameters; "
        "use a new key for a different job"
    )
    assert job_count(db) == 1


def test_show_and_ls_say_a_job_stopped_early_is_partial(db):
    from tests.ui import seed

    engine = make_engine(db)
    migrate(engine)
    seed.runner(engine)
    job = seed.stopped(engine, "kept part", covered=0.27)
    engine.dispose()

    code, out, _ = run("show", job)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].startswith("status    partial  attempt 1  progress 27%"), lines
    assert lines[2] == "          Stopped early: a partial result from 27 % of the planned work."
    # The kind's headline, rounded to what the standard error supports.
    assert "answer    Estimate of π: 3.1416 ± 0.0016" in lines
    code, out, _ = run("ls", "--status", "partial")
    assert code == 0 and f"{job:<17} partial      27%" in out, out
    code, out, _ = run("show", job, "--json")
    assert json.loads(out)["partial"] is True


def test_info_names_the_store_its_jobs_and_that_no_runner_serves_it(db):
    run("submit", "demo_stages")
    code, out, _ = run("info")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"store      {db}"
    assert lines[1] == "           1 job: 1 queued, 0 running"
    assert lines[-1] == "runners    none alive: start one with `runlab runner`, or `make run`"


def test_wait_says_within_10_s_that_no_runner_serves_the_store(db, tmp_path):
    import threading
    import time

    from tests.polling import wait_for

    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlab.cli", "submit", "demo_stages", "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    said: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(
        target=lambda: said.extend(iter(lambda: proc.stderr.read(1).decode(), "")), daemon=True
    )
    reader.start()
    try:
        wait_for(
            lambda: "no runner is alive" in "".join(said),
            timeout=max(0.1, 10 - (time.monotonic() - started)),
            what="the warning that no runner serves the store",
        )
    finally:
        proc.kill()
        proc.wait()
    warning = next(x for x in "".join(said).replace("\r", "\n").splitlines() if "runner" in x)
    assert warning == (
        f"warning: no runner is alive for the store {db}; "
        "the job waits until one starts: `runlab runner`, or `make run`"
    )
    assert job_count(db) == 1  # submitted all the same: it runs once a runner starts


def test_migrate_creates_the_store_then_finds_it_current(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("RUNLAB_DATABASE_URL", url)
    code, out, err = run("migrate")
    assert code == 0, err
    assert re.fullmatch(
        rf"the store {re.escape(url)}: upgraded from revision none \(empty\) to \d{{4}}\n", out
    )
    newest = out.split()[-1]
    code, out, _ = run("migrate")
    assert (code, out) == (0, f"the store {url}: already at revision {newest}, the newest\n")
