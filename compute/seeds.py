"""The seed every kind takes: given, or drawn once at submit and stored with the job, and the
one way a job's seed becomes its chunks' streams."""

from __future__ import annotations

import secrets
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, Field

# 53 bits: a drawn seed survives a browser, whose numbers are doubles, so the job page shows it
# exactly and a clone's form holds it. Seeds typed in may still use all 63 bits.
DRAWN_BITS = 53


def draw() -> int:
    return secrets.randbits(DRAWN_BITS)


def _or_drawn(seed: int | None) -> int:
    return draw() if seed is None else seed


# A parameter model's `seed: Seed = None`: empty in the form, filled when the job is submitted,
# so that the stored parameters re-run exactly.
Seed = Annotated[
    int | None,
    Field(
        ge=0,
        le=2**63 - 1,
        validate_default=True,
        description="Seed of the random streams; empty draws one and stores it with the job.",
    ),
    AfterValidator(_or_drawn),
]


def spawn(seed: int, n: int) -> list[np.random.SeedSequence]:
    """One independent stream per chunk, the i-th a function of the job's seed and i only: a
    chunk draws the same numbers whichever attempt, worker or order runs it."""
    return np.random.SeedSequence(seed).spawn(n)
