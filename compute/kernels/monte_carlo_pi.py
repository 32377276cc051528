"""The π kind's kernel: how many random points of the unit square fall in the quarter circle."""

from __future__ import annotations

import numpy as np

BLOCK = 65_536  # fits in L2 with both coordinates; blocks of 16k-256k all run within 5 %


def count_inside(n: int, seed: np.random.SeedSequence, block: int = BLOCK) -> int:
    """Points of `n` that fall inside the quarter circle, drawn from `seed`'s own stream.

    Reuses two buffers of `block` floats: allocating fresh arrays halves the speed.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    m = min(block, n)
    x = np.empty(m)
    y = np.empty(m)
    hit = np.empty(m, dtype=bool)
    inside = 0
    left = n
    while left > 0:
        k = min(m, left)
        xs, ys, hs = x[:k], y[:k], hit[:k]
        rng.random(out=xs)
        rng.random(out=ys)
        np.multiply(xs, xs, out=xs)
        np.multiply(ys, ys, out=ys)
        np.add(xs, ys, out=xs)
        np.less_equal(xs, 1.0, out=hs)
        inside += int(np.count_nonzero(hs))
        left -= k
    return inside
