"""The seed a job draws when none is given."""

from __future__ import annotations

import secrets

# 53 bits: a drawn seed survives a browser, whose numbers are doubles, so the job page shows it
# exactly and a clone's form holds it. Seeds typed in may still use all 63 bits.
DRAWN_BITS = 53


def draw() -> int:
    return secrets.randbits(DRAWN_BITS)
