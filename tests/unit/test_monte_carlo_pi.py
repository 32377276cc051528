"""The π kind's pure parts: parameter model, chunk plan, sampling kernel and estimate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute import registry
from compute.kernels.monte_carlo_pi import count_inside
from compute.kinds.monte_carlo_pi import (
    MAX_CHUNKS,
    MAX_SAMPLES,
    TARGET_CHUNK,
    chunk_sizes,
    estimate,
    resumable,
)
from runlab.errors import InvalidParams

KIND = "monte_carlo_pi"


def rejected(params: dict[str, Any]) -> InvalidParams:
    with pytest.raises(InvalidParams) as caught:
        registry.validate(KIND, params)
    return caught.value


# --- parameters ---------------------------------------------------------------------------------


def test_defaults_fill_samples_chunks_and_seed() -> None:
    clean = registry.validate(KIND, {})

    assert clean["samples"] == 1_000_000_000
    assert clean["chunks"] == 10
    assert isinstance(clean["seed"], int) and 0 <= clean["seed"] < 2**63


def test_each_validation_draws_a_fresh_seed_unless_one_is_given() -> None:
    seeds = {registry.validate(KIND, {})["seed"] for _ in range(5)}

    assert len(seeds) == 5
    assert registry.validate(KIND, {"seed": 42})["seed"] == 42


@pytest.mark.parametrize(
    ("samples", "chunks"),
    [
        (1, 1),
        (TARGET_CHUNK, 1),
        (TARGET_CHUNK + 1, 2),
        (25 * TARGET_CHUNK // 10, 3),
        (10**10, 100),
        (MAX_SAMPLES, 1000),
    ],
)
def test_automatic_chunks_hold_about_1e8_samples_each(samples: int, chunks: int) -> None:
    clean = registry.validate(KIND, {"samples": samples})

    assert clean["chunks"] == chunks
    assert max(chunk_sizes(samples, chunks)) <= TARGET_CHUNK


def test_given_chunks_are_kept() -> None:
    assert registry.validate(KIND, {"samples": 10, "chunks": 10, "seed": 1}) == {
        "samples": 10,
        "chunks": 10,
        "seed": 1,
    }


def test_validated_params_are_json_ready_and_validate_to_themselves() -> None:
    clean = registry.validate(KIND, {"samples": 12345})

    assert registry.validate(KIND, clean) == clean
    assert all(type(v) is int for v in clean.values())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"samples": 0}, "samples: must be an integer between 1 and 100,000,000,000"),
        ({"samples": MAX_SAMPLES + 1}, "samples: must be an integer between 1 and 100,000,000,000"),
        ({"chunks": 0}, "chunks: must be an integer between 1 and 100,000"),
        ({"chunks": MAX_CHUNKS + 1}, "chunks: must be an integer between 1 and 100,000"),
        ({"seed": -1}, "seed: must be an integer between 0 and 9,223,372,036,854,775,807"),
        ({"seed": 2**63}, "seed: must be an integer between 0 and 9,223,372,036,854,775,807"),
    ],
)
def test_out_of_bounds_values_get_the_fields_rule(params: dict[str, Any], message: str) -> None:
    assert str(rejected(params)) == message


@pytest.mark.parametrize("value", ["5", True, 1.5, 5.0, None, [5]])
def test_samples_is_strictly_an_integer(value: object) -> None:
    error = rejected({"samples": value})

    assert error.errors == {"samples": "must be an integer between 1 and 100,000,000,000"}


def test_more_chunks_than_samples_is_rejected_at_chunks() -> None:
    error = rejected({"samples": 5, "chunks": 6})

    assert error.errors == {"chunks": "must not exceed samples (5)"}


def test_unknown_parameter_is_named_with_the_known_ones() -> None:
    error = rejected({"samples": 5, "sample": 5})

    assert error.errors == {
        "sample": "is not a parameter of this kind; known: samples, chunks, seed"
    }


def test_every_bad_field_is_reported_at_once() -> None:
    error = rejected({"samples": "many", "seed": -5})

    assert set(error.errors) == {"samples", "seed"}


# --- the chunk plan -----------------------------------------------------------------------------


@given(data=st.data(), samples=st.integers(min_value=1, max_value=MAX_SAMPLES))
def test_chunk_sizes_sum_to_samples_and_differ_by_at_most_one(
    data: st.DataObject, samples: int
) -> None:
    chunks = data.draw(st.integers(min_value=1, max_value=min(samples, MAX_CHUNKS)))

    sizes = chunk_sizes(samples, chunks)

    assert len(sizes) == chunks
    assert sum(sizes) == samples
    assert max(sizes) - min(sizes) <= 1
    assert min(sizes) >= 1
    assert sizes == sorted(sizes, reverse=True)


# --- the kernel and the estimate ----------------------------------------------------------------


def test_count_inside_is_determined_by_its_seed() -> None:
    n = 200_000
    children = np.random.SeedSequence(1234).spawn(3)
    again = np.random.SeedSequence(1234).spawn(3)

    counts = [count_inside(n, s) for s in children]

    assert counts == [count_inside(n, s) for s in again]
    assert counts == [count_inside(n, s) for s in children]  # reusing a seed changes nothing
    assert len(set(counts)) == 3  # sibling chunks draw independent streams


@pytest.mark.parametrize("n", [0, 1, 1000, 65_536, 65_537])
def test_count_inside_counts_within_the_samples_drawn(n: int) -> None:
    inside = count_inside(n, np.random.SeedSequence(n))

    assert 0 <= inside <= n


def test_one_million_samples_estimate_pi_within_five_standard_errors() -> None:
    samples = 1_000_000
    inside = count_inside(samples, np.random.SeedSequence(20240101))

    est, se = estimate(inside, samples)

    assert se == pytest.approx(4 * math.sqrt(math.pi / 4 * (1 - math.pi / 4) / samples), rel=0.01)
    assert abs(est - math.pi) < 5 * se


@pytest.mark.parametrize(
    ("inside", "samples", "expected"),
    [
        (785, 1000, (3.14, 4 * math.sqrt(0.785 * 0.215 / 1000))),
        (0, 10, (0.0, 0.0)),
        (10, 10, (4.0, 0.0)),
    ],
)
def test_estimate_is_four_times_the_hit_rate_with_its_standard_error(
    inside: int, samples: int, expected: tuple[float, float]
) -> None:
    assert estimate(inside, samples) == pytest.approx(expected)


# --- checkpoints --------------------------------------------------------------------------------


def test_resumable_keeps_only_checkpoints_that_match_the_plan() -> None:
    sizes = [5, 5, 4]
    saved = {
        "chunk-0": {"n": 5, "inside": 4, "seed": 9, "of": 3},
        "chunk-1": {"n": 5, "inside": 4, "seed": 8, "of": 3},  # another seed
        "chunk-2": {"n": 4, "inside": 7, "seed": 9, "of": 3},  # more hits than points
        "chunk-3": {"n": 4, "inside": 1, "seed": 9, "of": 3},  # no such chunk
        "chunk-x": "garbage",
    }
    assert resumable(saved, sizes, 9) == {0: 4}
    assert resumable({"chunk-0": {"n": 5, "inside": 4, "seed": 9, "of": 4}}, sizes, 9) == {}
