"""What the New-job form says above Submit: the job's size and its expected run time."""

from __future__ import annotations

import pytest

from compute import registry
from jobstore.estimates import Spread
from ui.expected import NOT_YET, caption, run_time_text, size_text, values


@pytest.mark.parametrize(
    ("spread", "runs", "text"),
    [
        (None, 0, "expected run time unknown: no past runs of this size yet"),
        (Spread(30.0), 1, "expected run time under a minute, from 1 past run of a similar size"),
        (
            Spread(255.0, 147.0, 363.0),
            10,
            "expected run time about 4 min (2–6 min), from 10 past runs of a similar size",
        ),
        (
            Spread(40.0, 20.0, 100.0),
            6,
            "expected run time under a minute (up to 2 min), from 6 past runs of a similar size",
        ),
        (
            Spread(3000.0, 2400.0, 6000.0),
            5,
            "expected run time about 50 min (40 min to 1 h 40 min), "
            "from 5 past runs of a similar size",
        ),
        (
            Spread(125.0, 110.0, 140.0),
            5,
            "expected run time about 2 min, from 5 past runs of a similar size",
        ),  # the range rounds to the same minutes: no range
    ],
)
def test_the_run_time_reads_to_the_minute_with_its_range(
    spread: Spread | None, runs: int, text: str
) -> None:
    assert run_time_text(spread, runs) == text


def test_a_kind_without_a_size_speaks_of_past_runs_only() -> None:
    assert run_time_text(None, 0, sized=False) == "expected run time unknown: no past runs yet"
    assert run_time_text(Spread(90.0), 3, sized=False) == (
        "expected run time about 2 min, from 3 past runs"
    )


def test_one_size_parameter_reads_as_a_count_and_several_as_their_product() -> None:
    pi, optimize = registry.get("monte_carlo_pi"), registry.get("optimize")

    assert size_text(pi, {"samples": 10**9, "chunks": 40, "seed": 3}) == "1,000,000,000 samples"
    assert size_text(optimize, {"dimension": 2, "starts": 8, "max_iterations": 10_000}) == (
        "160,000 (Dimension n 2 × Random starts 8 × Iterations per start, at most 10,000)"
    )


def test_the_size_is_of_the_values_the_store_would_keep() -> None:
    """Fields left to their defaults count, as in the stored parameters of past runs; a
    missing file is no size and does not hide it; a bad size hides the estimate."""
    bootstrap, pi = registry.get("bootstrap"), registry.get("monte_carlo_pi")

    complete = values(bootstrap, {"statistic": "mean"})
    assert complete is not None and size_text(bootstrap, complete) == "10,000 resamples"
    assert values(pi, {"samples": "lots"}) is None
    assert caption(pi, {"samples": "lots"}, lambda v: pytest.fail("no lookup")) == NOT_YET


def test_the_lookup_gets_the_complete_values() -> None:
    seen = []

    def lookup(v: object) -> tuple[Spread | None, int]:
        seen.append(v)
        return Spread(255.0, 147.0, 363.0), 10

    text = caption(registry.get("monte_carlo_pi"), {"samples": 2_000_000}, lookup)

    assert text == (
        "Size: 2,000,000 samples · expected run time about 4 min (2–6 min), "
        "from 10 past runs of a similar size."
    )
    [given] = seen
    assert given["samples"] == 2_000_000 and "chunks" in given  # the model's default filled in
