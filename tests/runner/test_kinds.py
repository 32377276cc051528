"""The analysis kinds through real runners: the same parameters and seed give the same numbers."""

from __future__ import annotations

from jobstore import transitions
from jobstore.models import Status
from runlab.versions import software_versions
from tests.runner.helpers import assert_sound, watch

ASIAN = {"option_type": "asian_call", "paths": 2_000_000, "steps": 50, "seed": 17}


def test_option_pricing_gives_bit_identical_results_on_1_and_on_2_workers(engine, start_runner):
    one = start_runner("--concurrency", "1", workers=1)
    first = transitions.submit(engine, "option_pricing", ASIAN)
    a = watch(engine, first, timeout=120)[-1]
    assert a.status is Status.SUCCEEDED, a.error
    one.stop()

    start_runner("--concurrency", "1", workers=2)
    second = transitions.submit(engine, "option_pricing", ASIAN)
    b = watch(engine, second, timeout=120)[-1]
    assert b.status is Status.SUCCEEDED, b.error

    assert a.result == b.result  # every float, bit for bit
    assert set(a.result) == {
        "price", "standard_error", "ci_low", "ci_high", "delta", "paths", "partial", "seed",
    }  # fmt: skip
    assert a.result["ci_low"] < a.result["price"] < a.result["ci_high"]
    # The live chart had a running price with its band.
    assert {"price", "ci_low", "ci_high"} <= set(b.series)
    # An exact re-run of the first job: same seed, same versions, same numbers.
    c = watch(engine, transitions.rerun(engine, first), timeout=120)[-1]
    assert c.status is Status.SUCCEEDED and c.result == a.result
    assert c.versions == a.versions == software_versions()
    assert {"runlab", "numpy", "scipy", "dask"} <= set(c.versions)
    assert_sound(engine)
