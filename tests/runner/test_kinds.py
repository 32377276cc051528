"""The analysis kinds through real runners: the same parameters and seed give the same numbers,
on 1 worker or on 2, and again on an exact re-run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from compute import datasets, intake
from compute.kinds import bootstrap, option_pricing, portfolio_risk
from jobstore.artifacts import ArtifactStore
from jobstore.models import Status
from jobstore.views import JobDetail
from runlab.versions import software_versions
from tests.conftest import on_postgres_only
from tests.runner.helpers import assert_sound, watch

ASIAN = {"option_type": "asian_call", "paths": 1_000_000, "steps": 50, "seed": 17}
JOBS: dict[str, dict[str, Any]] = {
    "option_pricing": ASIAN,
    "optimize": {"objective": "rosenbrock", "dimension": 3, "starts": 6, "seed": 5},
    "portfolio_risk": {"scenarios": 8_000_000, "distribution": "student_t", "seed": 9},
    "bootstrap": {"statistic": "median", "column": "x", "resamples": 20_000, "seed": 3},
}
# What each kind must chunk, so that "1 worker against 2" compares more than one task.
LIVE = {
    "option_pricing": {"price", "ci_low", "ci_high"},
    "optimize": {"best_f"},
    "portfolio_risk": {"var_0.95", "var_0.99"},
    "bootstrap": {"ci_low", "ci_high"},
}


def upload(artifacts: Path) -> dict[str, Any]:
    """A skewed 5,000-row column, kept in the runners' artifact store as the form keeps it."""
    rng = np.random.default_rng(11)
    buf = io.StringIO()
    np.savetxt(buf, rng.lognormal(0, 1, 5_000), header="x", comments="", fmt="%.12g")
    kept = datasets.store(ArtifactStore(str(artifacts)), "x.csv", buf.getvalue().encode())
    return kept.model_dump()


def run_all(engine: Any, params: dict[str, dict[str, Any]]) -> dict[str, tuple[str, JobDetail]]:
    ids = {kind: intake.submit(engine, kind, p) for kind, p in params.items()}
    out = {}
    for kind, job in ids.items():
        final = watch(engine, job, timeout=180)[-1]
        assert final.status is Status.SUCCEEDED, (kind, final.error)
        out[kind] = (job, final)
    return out


@on_postgres_only
def test_every_kind_gives_bit_identical_results_on_1_and_2_workers_and_on_a_rerun(
    engine, start_runner, artifacts: Path
) -> None:
    params = {**JOBS, "bootstrap": {**JOBS["bootstrap"], "data": upload(artifacts)}}
    # Each job is several Dask tasks, so that 1 worker against 2 compares two schedules.
    assert len(option_pricing.plan(option_pricing.OptionParams(**ASIAN))) >= 3
    assert len(portfolio_risk.plan(portfolio_risk.PortfolioParams(**JOBS["portfolio_risk"]))) >= 3
    assert len(bootstrap.plan(bootstrap.BootstrapParams(**params["bootstrap"]), 5_000)) >= 2
    one = start_runner("--concurrency", "2", workers=1)
    first = run_all(engine, params)
    one.stop()
    start_runner("--concurrency", "2", workers=2)
    second = run_all(engine, params)

    for kind, (_, a) in first.items():
        b = second[kind][1]
        assert a.result == b.result, kind  # every float, bit for bit
        assert a.result["seed"] == params[kind]["seed"]
        assert LIVE[kind] <= set(b.series), (kind, set(b.series))
    opt = first["option_pricing"][1].result
    assert set(opt) == {
        "price", "standard_error", "ci_low", "ci_high", "delta", "paths", "partial", "seed",
    }  # fmt: skip
    assert opt["ci_low"] < opt["price"] < opt["ci_high"] and opt["partial"] is False
    assert max(abs(x - 1) for x in first["optimize"][1].result["best_x"]) < 1e-3
    boot = first["bootstrap"][1].result
    assert boot["ci_low"] < boot["estimate"] < boot["ci_high"] and boot["resamples"] == 20_000
    risk = first["portfolio_risk"][1].result
    assert risk["var"]["0.95"] < risk["var"]["0.99"] < risk["cvar"]["0.99"]

    # Exact re-runs of the first jobs: same seed, same versions, same numbers.
    for kind, (job, a) in first.items():
        c = watch(engine, intake.rerun(engine, job), timeout=180)[-1]
        assert c.status is Status.SUCCEEDED and c.result == a.result, kind
        assert c.versions == a.versions == software_versions()
    assert {"runlab", "numpy", "scipy", "dask"} <= set(c.versions)
    assert_sound(engine)


def test_a_bootstrap_whose_upload_is_gone_fails_once_with_a_clear_message(
    engine, start_runner, artifacts: Path
) -> None:
    data = upload(artifacts)
    (artifacts / "uploads" / data["sha256"]).unlink()
    start_runner()
    job = intake.submit(engine, "bootstrap", {**JOBS["bootstrap"], "data": data})
    final = watch(engine, job, timeout=60)[-1]
    assert final.status is Status.FAILED
    assert final.attempt == 1  # not retried: the file will not come back by itself
    assert final.error is not None and "missing from the artifact store" in final.error.message
    assert_sound(engine)
