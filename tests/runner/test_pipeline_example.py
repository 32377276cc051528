"""The worked pipeline of examples/volatility_to_price, submitted with `runlab pipeline submit`
and run by a real runner: its numbers are those of the same steps run by hand, one by one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from compute import intake, registry
from jobstore import pipelines, queries
from jobstore import sweeps as sweep_store
from jobstore.models import Status
from tests.polling import wait_for
from tests.runner.conftest import ROOT, RunnerProcess

EXAMPLE = ROOT / "examples" / "volatility_to_price"


def runlab(db_url: str, artifacts: Path, *args: str) -> dict[str, Any]:
    """`runlab ARGS --json` as an analyst runs it, against the runner's store."""
    env = {**os.environ, "RUNLAB_DATABASE_URL": db_url, "RUNLAB_ARTIFACTS": str(artifacts)}
    done = subprocess.run(
        [sys.executable, "-m", "runlab.cli", *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_worked_pipeline_gives_the_numbers_of_its_steps_run_by_hand(
    db_url: str,
    engine: Engine,
    artifacts: Path,
    start_runner: Callable[..., RunnerProcess],
) -> None:
    start_runner()
    shown = runlab(
        db_url, artifacts, "pipeline", "submit", str(EXAMPLE / "pipeline.toml"), "--wait"
    )
    assert [s["status"] for s in shown["steps"]] == ["succeeded"] * 3
    view = pipelines.get(engine, shown["id"])
    vol, price, prices = view.steps
    assert vol.job and price.sweep and prices.job

    # The pricing step's σ run from the bootstrap's stored interval, low end to high end.
    interval = queries.get_job(engine, vol.job).result or {}
    points = sweep_store.points(engine, price.sweep)
    sigmas = sorted(p.params["sigma"] for p in points)
    assert sigmas == pytest.approx(np.linspace(interval["ci_low"], interval["ci_high"], 9))
    assert all(p.status is Status.SUCCEEDED for p in points)

    # The same steps by hand: the bootstrap from the CLI, each price from the Python API.
    spec = {
        k: v
        for k, v in pipelines.get(engine, view.public_id).spec["steps"]["vol"]["params"].items()
        if k != "data"
    }
    by_hand = runlab(
        db_url,
        artifacts,
        "submit",
        "bootstrap",
        f"-pdata=@{EXAMPLE / 'returns.csv'}",
        *(f"-p{k}={v}" for k, v in spec.items()),
        "--wait",
    )
    assert by_hand["id"] != vol.job
    for field in ("estimate", "ci_low", "ci_high"):
        assert by_hand["result"][field] == interval[field], field
    base = dict(pipelines.get(engine, view.public_id).spec["steps"]["price"]["params"])
    hand_ids = [intake.submit(engine, "option_pricing", {**base, "sigma": s}) for s in sigmas]
    wait_for(
        lambda: all(queries.get_job(engine, i).status.terminal for i in hand_ids),
        timeout=120,
        what="the prices run by hand",
        interval=0.2,
    )
    hand = [(queries.get_job(engine, i).result or {})["price"] for i in hand_ids]

    # The collect step holds every price, and its chart draws each of them.
    collect = queries.get_job(engine, prices.job)
    assert collect.result is not None
    rows = sorted(collect.params["rows"], key=lambda r: r["point"]["sigma"])
    assert [r["values"]["price"] for r in rows] == hand
    figure = registry.get("collect").figure
    assert figure is not None
    [trace] = figure(collect.result, {}).data
    assert sorted(trace.y) == sorted(hand)
    assert list(trace.x) == pytest.approx(sigmas)
    assert hand == sorted(hand)  # a call is worth more the higher the volatility
    print(
        f"σ {sigmas[0]:.4f} to {sigmas[-1]:.4f} (the interval of an estimate of "
        f"{interval['estimate']:.4f}); prices {hand[0]:.3f} to {hand[-1]:.3f}, the same by hand"
    )
