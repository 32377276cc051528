"""A kind's failure that no retry can mend, through a real runner. What every kind promises is
checked for each of them in test_kinds_contract.py."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from compute import datasets, intake
from jobstore.models import Status
from runlab.artifacts import ArtifactStore
from tests.runner.helpers import assert_sound, watch

BOOTSTRAP = {"statistic": "median", "column": "x", "resamples": 20_000, "seed": 3}


def upload(artifacts: Path) -> dict[str, Any]:
    """A skewed 5,000-row column, kept in the runners' artifact store as the form keeps it."""
    rng = np.random.default_rng(11)
    buf = io.StringIO()
    np.savetxt(buf, rng.lognormal(0, 1, 5_000), header="x", comments="", fmt="%.12g")
    kept = datasets.store(ArtifactStore(str(artifacts)), "x.csv", buf.getvalue().encode())
    return kept.model_dump()


def test_a_bootstrap_whose_upload_is_gone_fails_once_with_a_clear_message(
    engine, start_runner, artifacts: Path
) -> None:
    data = upload(artifacts)
    (artifacts / "uploads" / data["sha256"]).unlink()
    start_runner()
    job = intake.submit(engine, "bootstrap", {**BOOTSTRAP, "data": data})
    final = watch(engine, job, timeout=60)[-1]
    assert final.status is Status.FAILED
    assert final.attempt == 1  # not retried: the file will not come back by itself
    assert final.error is not None and "missing from the artifact store" in final.error.message
    assert_sound(engine)
