"""A job's size, which picks the past runs that are like it: its integer parameters' product."""

from __future__ import annotations

from jobstore.estimates import Spread, blend, job_size


def test_size_is_the_product_of_integer_parameters_but_seed_and_chunks() -> None:
    assert job_size({"samples": 10**9, "chunks": 10, "seed": 42}) == 10**9
    assert job_size({"starts": 8, "max_iterations": 10_000, "dimension": 2, "seed": 1}) == 160_000
    assert job_size({"paths": 10**6, "sigma": 0.2, "antithetic": True, "steps": None}) == 10**6


def test_a_kind_with_no_integer_parameter_has_no_size() -> None:
    assert job_size({"objective": "rosenbrock", "tolerance": 1e-10, "seed": 3}) is None


def test_progress_weighs_the_pace_against_the_past_runs() -> None:
    pace, past = Spread(200.0), Spread(100.0, 90.0, 110.0)

    assert blend(pace, past, 0.0) == Spread(100.0, 90.0, 110.0)
    assert blend(pace, past, 1.0) == Spread(200.0, 200.0, 200.0)
    assert blend(pace, past, 0.25) == Spread(125.0, 117.5, 132.5)
    assert blend(None, past, 0.5) is past and blend(pace, None, 0.5) is pace
