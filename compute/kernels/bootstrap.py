"""The bootstrap kind's kernel: the statistic of one chunk of resamples of a column's rows."""

from __future__ import annotations

import math

import numpy as np

from compute import datasets
from runlab.artifacts import UploadSource

BLOCK = 1 << 18  # indices drawn at once in a chunk: 2 MB stays in cache; 2^22 ran a third slower
CANCEL = 1e-6  # below this share of Σc², a resample's spread is recomputed in two passes


def prepare(statistic: str, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """The array the chunks resample: sorted for the median (whose resample's median is then
    the value at the middle of its sorted indices), centred for sums of squares."""
    if statistic == "mean":
        return np.ascontiguousarray(x, dtype=np.float64)
    if statistic == "median":
        return np.sort(x)
    if statistic == "std":
        return x - np.mean(x)
    assert y is not None
    return np.stack([x - np.mean(x), y - np.mean(y)])


def prepared_upload(
    source: UploadSource, sha256: str, statistic: str, column: str, column_b: str | None
) -> np.ndarray:
    """`prepare` of an uploaded CSV's columns, read on the worker that runs it from the
    artifact store: on many hosts, the upload goes from the store to the workers."""
    table = datasets.read_csv(source.read(sha256))
    x = datasets.column(table, column, "column")
    y = None if column_b is None else datasets.column(table, column_b, "column_b")
    return prepare(statistic, x, y)


def _exact(g: np.ndarray, h: np.ndarray | None) -> float:
    """One resample's standard deviation (or correlation, with `h`) in two passes; a constant
    resample gives 0 (or NaN, the correlation being undefined)."""
    if g.min() == g.max():
        return 0.0 if h is None else math.nan
    dg = g - g.mean()
    if h is None:
        return math.sqrt(float(dg @ dg) / (len(g) - 1))
    if h.min() == h.max():
        return math.nan
    dh = h - h.mean()
    r = float(dg @ dh) / math.sqrt(float(dg @ dg) * float(dh @ dh))
    return min(1.0, max(-1.0, r))


def _block(data: np.ndarray, statistic: str, idx: np.ndarray, space: np.ndarray) -> np.ndarray:
    """The statistic of each row of resampled indices `idx`; `space` holds the gathered values,
    reused from block to block."""
    m, n = idx.shape
    if statistic == "median":
        lo, hi = (n - 1) // 2, n // 2
        idx.partition([lo, hi] if hi != lo else lo, axis=1)
        return 0.5 * (data[idx[:, lo]] + data[idx[:, hi]]) if hi != lo else data[idx[:, lo]]
    if statistic == "mean":
        return np.take(data, idx, out=space[0, :m], mode="clip").mean(axis=1)
    if statistic == "std":
        g = np.take(data, idx, out=space[0, :m], mode="clip")
        s1 = g.sum(axis=1)
        s2 = np.einsum("ij,ij->i", g, g)
        var = s2 - s1 * s1 / n
        out = np.sqrt(np.maximum(var, 0.0) / (n - 1))
        for i in np.flatnonzero(var <= CANCEL * s2):
            out[i] = _exact(g[i], None)
        return out
    gx = np.take(data[0], idx, out=space[0, :m], mode="clip")
    gy = np.take(data[1], idx, out=space[1, :m], mode="clip")
    sx, sy = gx.sum(axis=1), gy.sum(axis=1)
    sxx, syy = np.einsum("ij,ij->i", gx, gx), np.einsum("ij,ij->i", gy, gy)
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    cxy = np.einsum("ij,ij->i", gx, gy) - sx * sy / n
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.clip(cxy / np.sqrt(vx * vy), -1.0, 1.0)
    for i in np.flatnonzero((vx <= CANCEL * sxx) | (vy <= CANCEL * syy)):
        out[i] = _exact(gx[i], gy[i])
    return out


Drawn = np.ndarray | list[float | None]  # a chunk as a worker sends it, or as a checkpoint kept it


def resample(
    data: np.ndarray, statistic: str, size: int, seed: np.random.SeedSequence
) -> list[float | None]:
    """One chunk as the driver keeps it: `draws` as a list, None where undefined."""
    return listed(draws(data, statistic, size, seed))


def listed(drawn: Drawn) -> list[float | None]:
    """A chunk's statistics as JSON takes them: None where the statistic is undefined (NaN)."""
    if isinstance(drawn, list):
        return drawn
    return [v if math.isfinite(v) else None for v in drawn.tolist()]


def draws(data: np.ndarray, statistic: str, size: int, seed: np.random.SeedSequence) -> np.ndarray:
    """One chunk, the task a worker runs: the statistic of `size` resamples drawn from `seed`'s
    own stream, in draw order; NaN where the statistic is undefined (a correlation with a
    constant column).

    An array, not a list: Dask sends a list item by item, and a chunk of 5,000 floats took
    108 ms to send as a list against 0.7 ms as an array.

    Memory is reused: fresh multi-megabyte arrays on every block cost new pages each time,
    and ran three times slower on this machine.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    n = data.shape[-1]
    rows = max(1, min(size, BLOCK // n))
    gathered = {"median": 0, "correlation": 2}.get(statistic, 1)
    space = np.empty((gathered, rows, n))
    out = np.empty(size)
    done = 0
    while done < size:
        m = min(rows, size - done)
        # Bound to a name, a block's indices are freed only once the next block's are drawn,
        # so the allocator hands their memory straight back.
        idx = rng.integers(0, n, size=(m, n))
        out[done : done + m] = _block(data, statistic, idx, space)
        done += m
    return out
