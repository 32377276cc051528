"""The bootstrap kind against `scipy.stats.bootstrap`, numpy and brute force written here."""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import compute.kinds.bootstrap as bootstrap
from compute import datasets, registry
from compute.kernels import bootstrap as kernel
from compute.kernels.bootstrap import prepare, resample
from compute.kinds.bootstrap import (
    BootstrapParams,
    check,
    jackknife,
    plan,
    summarise,
)
from runlab.errors import InvalidParams, InvalidUpload
from tests.unit.fake_context import FakeContext
from tests.unit.kind_params import accepted_or_refused, assert_refused_on

KIND = "bootstrap"
NORMAL = NormalDist()


# --- helpers ------------------------------------------------------------------------------------


def csv_bytes(**columns: Any) -> bytes:
    """A CSV of the given columns; floats written with repr, so they read back exactly."""
    frame = pd.DataFrame(columns)
    out = io.StringIO()
    frame.to_csv(out, index=False, float_format=None)
    return out.getvalue().encode()


def upload(data: bytes) -> dict[str, Any]:
    return {"name": "sample.csv", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def params(data: bytes, **kw: Any) -> BootstrapParams:
    return BootstrapParams.model_validate(registry.validate(KIND, {"data": upload(data), **kw}))


def arrays(p: BootstrapParams, data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """The columns as the driver reads them: parsed, checked, as float64."""
    table = datasets.read_csv(data)
    check(p, table)
    x = datasets.column(table, p.column, "column")
    y = datasets.column(table, p.column_b, "column_b") if p.column_b is not None else None
    return x, y


def chunks_of(p: BootstrapParams, x: np.ndarray, y: np.ndarray | None) -> dict[int, list[Any]]:
    """Every chunk of the plan, as the driver's Dask tasks compute them."""
    sizes = plan(p, len(x))
    seeds = np.random.SeedSequence(p.seed).spawn(len(sizes))
    data = prepare(p.statistic, x, y)
    return {
        i: resample(data, p.statistic, n, s)
        for i, (n, s) in enumerate(zip(sizes, seeds, strict=True))
    }


def result_of(data: bytes, **kw: Any) -> dict[str, Any]:
    p = params(data, **kw)
    x, y = arrays(p, data)
    return summarise(p, x, y, chunks_of(p, x, y), len(plan(p, len(x))))


def pearson(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    cx = x - x.mean(axis=axis, keepdims=True)
    cy = y - y.mean(axis=axis, keepdims=True)
    return (cx * cy).sum(axis) / np.sqrt((cx * cx).sum(axis) * (cy * cy).sum(axis))


def sample_std(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.std(x, ddof=1, axis=axis)


NUMPY: dict[str, Callable[..., Any]] = {
    "mean": np.mean,
    "median": np.median,
    "std": sample_std,
    "correlation": pearson,
}


def tolerance(reference: np.ndarray, endpoint: float, bca: bool) -> float:
    """How far two honest Monte Carlo estimates of one bootstrap interval endpoint may differ,
    each from len(reference) resamples: five standard deviations of their difference, plus one
    step between neighbouring values where the distribution is lumpy (a median's).

    The p-quantile of B draws has standard error sqrt(p(1-p)/B) · dq/dp, with dq/dp read off
    the reference distribution itself (so skewness counts). BCa's level p moves with z0's own
    error: z0 comes from a share near one half, whose sd 0.5/√B becomes 0.5/(φ(0)√B) =
    1.2533/√B in z units, doubled by the correction's slope 1 + 1/(1 - a(z0 + z))² ≈ 2.
    """
    b = len(reference)
    p = float(np.mean(reference <= endpoint))
    h = min(0.01, p / 2, (1 - p) / 2)
    lo, hi = np.quantile(reference, [p - h, p + h])
    slope = (hi - lo) / (2 * h)
    var = p * (1 - p) / b
    if bca:
        var += (NORMAL.pdf(NORMAL.inv_cdf(p)) * 2 * 1.2533 / math.sqrt(b)) ** 2
    near = np.unique(reference[(reference >= lo) & (reference <= hi)])
    step = float(np.diff(near).max()) if len(near) > 1 else 0.0
    return 5 * math.sqrt(2 * var) * slope + step


# --- agreement with scipy -----------------------------------------------------------------------

B = 50_000  # resamples on each side: tolerances of 0.06 to 0.3 bootstrap standard errors


def skewed_data(statistic: str) -> bytes:
    rng = np.random.default_rng(11)
    if statistic == "correlation":
        x = rng.normal(size=150)
        return csv_bytes(x=x, y=x + 0.6 * x**2 + 0.8 * rng.normal(size=150))
    n, sigma = {"mean": (200, 1.0), "median": (1_000, 1.0), "std": (200, 0.7)}[statistic]
    return csv_bytes(x=rng.lognormal(0.0, sigma, size=n))


@pytest.mark.parametrize("statistic", ["mean", "median", "std", "correlation"])
def test_intervals_agree_with_scipy_bootstrap_within_monte_carlo_error(statistic: str) -> None:
    data = skewed_data(statistic)
    corr = statistic == "correlation"
    kw = {"statistic": statistic, "column": "x", "resamples": B, "seed": 3}
    if corr:
        kw["column_b"] = "y"
    p = params(data, **kw)
    x, y = arrays(p, data)
    chunks = chunks_of(p, x, y)
    ours = {
        m: summarise(p.model_copy(update={"method": m}), x, y, chunks, len(chunks))
        for m in ("percentile", "bca")
    }
    sample = (x, y) if corr else (x,)
    ref_bca = stats.bootstrap(
        sample, NUMPY[statistic], paired=corr, vectorized=True, n_resamples=B,
        confidence_level=0.95, method="BCa", batch=2_000, rng=np.random.default_rng(4),
    )  # fmt: skip
    ref_pct = stats.bootstrap(
        sample, NUMPY[statistic], paired=corr, vectorized=True, n_resamples=0,
        confidence_level=0.95, method="percentile", bootstrap_result=ref_bca,
    )  # fmt: skip
    reference = ref_bca.bootstrap_distribution
    refs = {"bca": ref_bca.confidence_interval, "percentile": ref_pct.confidence_interval}
    for method, ref in refs.items():
        assert ours[method]["method"] == method
        for key, want in (("ci_low", ref.low), ("ci_high", ref.high)):
            tol = tolerance(reference, want, method == "bca")
            assert abs(ours[method][key] - want) <= tol, (method, key, ours[method][key], want)
    se = float(ref_bca.standard_error)
    assert ours["bca"]["standard_error"] == pytest.approx(se, rel=0.03)
    if statistic != "median":
        # The check has teeth: on these skewed data, reporting the percentile interval as BCa
        # would miss scipy's BCa interval by more than the tolerance at one end at least.
        assert any(
            abs(pct - bca) > tolerance(reference, bca, True)
            for pct, bca in zip(refs["percentile"], refs["bca"], strict=True)
        )


# --- the pieces, against numpy and brute force --------------------------------------------------


@pytest.mark.parametrize("statistic", ["mean", "median", "std", "correlation"])
def test_the_estimate_is_numpys_statistic_of_the_column(statistic: str) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(10, 3, size=301), rng.gamma(2.0, size=301)
    data = csv_bytes(a=a, b=a * 0.5 + b)
    kw = {"statistic": statistic, "column": "a", "resamples": 100, "seed": 1}
    if statistic == "correlation":
        kw["column_b"] = "b"
    got = result_of(data, **kw)
    col_a, col_b = pd.read_csv(io.BytesIO(data))[["a", "b"]].to_numpy().T
    want = {
        "mean": np.mean(col_a),
        "median": np.median(col_a),
        "std": np.std(col_a, ddof=1),
        "correlation": np.corrcoef(col_a, col_b)[0, 1],
    }[statistic]
    assert got["estimate"] == pytest.approx(float(want), rel=1e-12)
    assert got["rows"] == 301 and got["resamples"] == 100 and got["seed"] == 1


@pytest.mark.parametrize("statistic", ["mean", "median", "std", "correlation"])
@pytest.mark.parametrize("n", [37, 38])
def test_the_jackknife_equals_leaving_each_row_out_by_brute_force(statistic: str, n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.round(rng.normal(1e6, 2.0, size=n), 1)  # a large mean and ties
    y = 0.3 * x + rng.normal(size=n)
    fn = NUMPY[statistic]
    keep = ~np.eye(n, dtype=bool)
    if statistic == "correlation":
        want = [float(fn(x[k], y[k])) for k in keep]
    else:
        want = [float(fn(x[k])) for k in keep]
    got = jackknife(statistic, x, y if statistic == "correlation" else None)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("statistic", ["mean", "median", "std", "correlation"])
@pytest.mark.parametrize("n", [40, 41])
def test_a_chunk_holds_the_statistic_of_exactly_the_rows_drawn(statistic: str, n: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(50.0, 4.0, size=n)
    y = x + rng.normal(size=n) if statistic == "correlation" else None
    seed = np.random.SeedSequence(99)
    size = kernel.BLOCK // n  # one block: the same draws as one call of rng.integers
    got = resample(prepare(statistic, x, y), statistic, size, seed)
    idx = np.random.Generator(np.random.PCG64(seed)).integers(0, n, size=(size, n))
    if statistic == "median":
        want = np.median(np.sort(x)[idx], axis=1)  # the kernel resamples the sorted column
    elif statistic == "correlation":
        assert y is not None
        want = pearson(x[idx], y[idx])
    else:
        want = NUMPY[statistic](x[idx], axis=1)
    np.testing.assert_allclose(np.array(got, dtype=float), want, rtol=1e-9, atol=1e-12)


def test_a_resample_with_a_constant_column_has_no_correlation_and_is_left_out() -> None:
    x = np.array([0.0, 1.0, 2.0])
    y = np.array([0.0, 2.0, 1.0])
    got = resample(prepare("correlation", x, y), "correlation", 3_000, np.random.SeedSequence(1))
    undefined = sum(v is None for v in got)
    assert 200 < undefined < 470  # each resample is constant with probability 3 / 27
    assert all(-1.0 <= v <= 1.0 for v in got if v is not None)
    std = resample(prepare("std", x), "std", 3_000, np.random.SeedSequence(1))
    assert sum(v == 0.0 for v in std) == undefined  # the same resamples: exactly no spread
    p = params(b"x", statistic="correlation", column="x", column_b="y", resamples=3_000)
    result = summarise(p, x, y, {0: got}, 1)
    assert result["undefined_resamples"] == undefined and result["resamples"] == 3_000
    assert math.isfinite(result["ci_low"]) and math.isfinite(result["ci_high"])


def test_the_plan_depends_on_the_resamples_and_rows_only_and_keeps_chunks_small() -> None:
    p = params(b"x\n1\n", resamples=1_000_000, column="x", seed=1)
    for rows in (10, 2_500, 10_000, 49_999, 1_000_000):
        sizes = plan(p, rows)
        assert sum(sizes) == 1_000_000 and max(sizes) - min(sizes) <= 1
        assert max(sizes) <= 20_000 and max(sizes) * rows <= 50_000_000
        assert plan(p, rows) == sizes
    assert plan(p, 10_000) == [5_000] * 200


def test_a_chunk_of_20000_values_fits_a_checkpoint_under_1_mb() -> None:
    rng = np.random.default_rng(2)
    x = rng.lognormal(size=12) * 1e-7
    values = resample(prepare("std", x), "std", 20_000, np.random.SeedSequence(3))
    saved = {"n": 20_000, "rows": 12, "of": 1, "seed": 2**63 - 1, "statistic": "std"}
    assert len(json.dumps({**saved, "values": values}, allow_nan=False)) < 1_000_000


# --- determinism, order, partial ----------------------------------------------------------------


def test_the_same_seed_gives_the_identical_result_and_another_seed_another() -> None:
    data = csv_bytes(v=np.random.default_rng(8).exponential(size=500))
    first = result_of(data, column="v", statistic="median", resamples=2_000, seed=21)
    assert result_of(data, column="v", statistic="median", resamples=2_000, seed=21) == first
    other = result_of(data, column="v", statistic="median", resamples=2_000, seed=22)
    assert other["estimate"] == first["estimate"] and other["histogram"] != first["histogram"]
    assert json.loads(json.dumps(first, allow_nan=False)) == first  # plain JSON values only


def test_the_summary_ignores_the_order_chunks_finish_in_and_a_stop_is_partial() -> None:
    data = csv_bytes(v=np.random.default_rng(9).lognormal(size=400))
    p = params(data, column="v", statistic="std", resamples=3_000, seed=5)
    x, _ = arrays(p, data)
    seeds = np.random.SeedSequence(5).spawn(6)
    chunks = {i: resample(prepare("std", x), "std", 500, s) for i, s in enumerate(seeds)}
    whole = summarise(p, x, None, chunks, 6)
    shuffled = {i: chunks[i] for i in (4, 1, 5, 0, 3, 2)}
    assert summarise(p, x, None, shuffled, 6) == whole
    assert whole["partial"] is False and whole["resamples"] == 3_000
    partial = summarise(p, x, None, {i: chunks[i] for i in (3, 0)}, 6)
    assert partial["partial"] is True and partial["resamples"] == 1_000
    assert sum(partial["histogram"]["counts"]) == 1_000
    assert partial["estimate"] == whole["estimate"]
    assert partial["ci_low"] != whole["ci_low"]


# --- the driver, with an in-memory stand-in for its context -------------------------------------


def drive(data: bytes, ctx: FakeContext, **kw: Any) -> dict[str, Any]:
    p = registry.get(KIND).parse({"data": upload(data), **kw})
    return registry.get(KIND).run(ctx, p)  # type: ignore[arg-type]


def test_the_driver_resumes_from_its_checkpoints_and_keeps_a_stopped_run_partial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "CHUNK_INDICES", 100_000)  # 1,000 rows: 100 per chunk
    rng = np.random.default_rng(12)
    a = rng.normal(size=1_000)
    data = csv_bytes(a=a, b=a + rng.normal(size=1_000))
    files = {upload(data)["sha256"]: data}
    kw = {"statistic": "correlation", "column": "a", "column_b": "b", "resamples": 500, "seed": 4}
    full = drive(data, FakeContext(files=files), **kw)
    assert full == result_of(data, **kw)  # the driver computes what the pure pieces do
    assert full["partial"] is False and full["resamples"] == 500 and full["method"] == "bca"
    # The data behind the interval, column by column, and in the headline as a table.
    col_a, col_b = full["data"]
    assert (col_a["column"], col_a["count"], col_b["column"]) == ("a", 1_000, "b")
    assert col_a["mean"] == pytest.approx(float(np.mean(a)), abs=1e-12)
    assert col_a["sd"] == pytest.approx(float(np.std(a, ddof=1)), abs=1e-12)
    assert (col_a["min"], col_a["max"]) == (pytest.approx(a.min()), pytest.approx(a.max()))
    (data_table,) = bootstrap.headline_of(full, kw).tables
    assert data_table.columns[:3] == ["Column", "Rows", "Mean"]
    assert [row[:2] for row in data_table.rows] == [["a", "1,000"], ["b", "1,000"]]

    stopped = FakeContext(files=files, stop_after=2)
    kept = drive(data, stopped, **kw)
    assert kept["partial"] is True and kept["resamples"] == 200
    assert stopped.stages == ["load", "validate", "resample", "summarise"]
    assert [m[1] for m in stopped.metrics if m[0] == "ci_low"][-1] == 200

    resumed = drive(data, FakeContext(stopped.saved, files=files), **kw)
    assert resumed == full
    tampered = {k: {**v, "values": v["values"][:-1]} for k, v in stopped.saved.items()}
    assert drive(data, FakeContext(tampered, files=files), **kw) == full


def test_the_driver_refuses_an_unusable_file_in_load_and_a_constant_column_in_validate() -> None:
    junk = b"\x00\x01binary"
    with pytest.raises(InvalidUpload) as caught:
        drive(junk, FakeContext(files={upload(junk)["sha256"]: junk}), column="x")
    assert "binary" in caught.value.errors["data"]

    data = csv_bytes(x=np.full(50, 3.5), y=np.arange(50.0))
    ctx = FakeContext(files={upload(data)["sha256"]: data})
    with pytest.raises(InvalidUpload) as caught:
        drive(data, ctx, column="x")
    assert "is constant" in caught.value.errors["column"]
    assert ctx.stages == ["load", "validate"]


def test_the_figure_draws_the_histogram_with_the_interval_or_the_live_interval() -> None:
    data = csv_bytes(v=np.random.default_rng(1).normal(size=100))
    result = result_of(data, column="v", resamples=1_000, seed=1)
    assert len(result["histogram"]["counts"]) == 50
    assert len(result["histogram"]["edges"]) == 51
    fig = bootstrap.figure(result, {})
    assert fig.data[0].type == "bar" and sum(fig.data[0].y) == 1_000
    xs = sorted(shape.x0 for shape in fig.layout.shapes)
    assert xs == sorted([result["ci_low"], result["estimate"], result["ci_high"]])
    series = {"ci_low": ([100.0, 200.0], [0.1, 0.2]), "ci_high": ([100.0, 200.0], [0.5, 0.4])}
    live = bootstrap.figure({}, series)
    assert [t.name for t in live.data] == ["ci_high", "ci_low"]


# --- checks on the table ------------------------------------------------------------------------


def table_with(**columns: Any) -> pd.DataFrame:
    return datasets.read_csv(csv_bytes(**columns))


GOOD = np.random.default_rng(3).normal(size=40)


@pytest.mark.parametrize(
    ("columns", "kw", "field", "message"),
    [
        ({"x": GOOD}, {"column": "nope"}, "column", "no column 'nope'"),
        ({"x": GOOD, "t": ["a"] * 40}, {"column": "t"}, "column", "not numeric"),
        ({"x": [*GOOD[:-1], None]}, {"column": "x"}, "column", "missing"),
        ({"x": np.full(40, 2.0)}, {"column": "x"}, "column", "is constant"),
        ({"x": GOOD[:9]}, {"column": "x"}, "column", "at least 10"),
        ({"x": GOOD * 1e101}, {"column": "x"}, "column", "rescale"),
        (
            {"x": GOOD, "y": np.full(40, 1.0)},
            {"statistic": "correlation", "column": "x", "column_b": "y"},
            "column_b",
            "is constant",
        ),
        (
            {"x": GOOD, "y": np.r_[np.zeros(38), 1.0, 2.0]},
            {"statistic": "correlation", "column": "x", "column_b": "y"},
            "column_b",
            "too few distinct values",
        ),
        (
            {"x": GOOD, "y": GOOD + 1},
            {"statistic": "correlation", "column": "x", "column_b": "z"},
            "column_b",
            "no column 'z'",
        ),
    ],
)  # fmt: skip
def test_check_refuses_an_unusable_column_on_its_field(
    columns: dict[str, Any], kw: dict[str, Any], field: str, message: str
) -> None:
    p = params(b"x\n1\n", **kw)
    with pytest.raises(InvalidUpload) as caught:
        check(p, table_with(**columns))
    assert list(caught.value.errors) == [field]
    assert message in caught.value.errors[field]


def test_check_refuses_a_budget_of_resamples_times_rows_over_5e10() -> None:
    table = pd.DataFrame({"x": np.arange(100_001, dtype=float)})  # no CSV needed for a budget
    with pytest.raises(InvalidUpload) as caught:
        check(params(b"x\n1\n", column="x", resamples=500_000), table)
    assert caught.value.errors["resamples"].endswith("at most 499,995 resamples")
    check(params(b"x\n1\n", column="x", resamples=499_995), table)  # just inside


# --- the parameter model ------------------------------------------------------------------------

REF = upload(b"x\n1\n")


@pytest.mark.parametrize(
    ("kw", "field", "message"),
    [
        ({"statistic": "correlation"}, "column_b", "is required for the correlation"),
        ({"column_b": "y"}, "column_b", "applies only to the correlation"),
        ({"statistic": "correlation", "column_b": "x"}, "column_b", "must differ from column"),
        ({"resamples": 99}, "resamples", "between 100 and 1,000,000"),
        ({"resamples": 1_000_001}, "resamples", "between 100 and 1,000,000"),
        ({"confidence": 0.5}, "confidence", "above 0.5 and at most 0.999"),
        ({"confidence": 1.0}, "confidence", "above 0.5 and at most 0.999"),
        ({"method": "basic"}, "method", "percentile, bca"),
        ({"statistic": "mode"}, "statistic", "mean, median, std, correlation"),
        ({"column": ""}, "column", "at least 1 character"),
        ({"data": {**REF, "sha256": "zz"}}, "data", "must be an uploaded CSV file"),
        ({"data": None}, "data", "must be an uploaded CSV file"),
    ],
)  # fmt: skip
def test_bad_parameters_get_a_message_on_their_field(
    kw: dict[str, Any], field: str, message: str
) -> None:
    assert_refused_on(KIND, {"data": REF, "column": "x", **kw}, field, message)


def test_defaults_and_a_drawn_seed_and_what_is_stored_validates_to_itself() -> None:
    clean = registry.validate(KIND, {"data": REF, "column": "x"})
    assert clean["statistic"] == "mean" and clean["method"] == "bca"
    assert clean["resamples"] == 10_000 and clean["confidence"] == 0.95
    assert clean["column_b"] is None and isinstance(clean["seed"], int)
    assert registry.validate(KIND, clean) == clean
    with pytest.raises(InvalidParams) as caught:
        registry.validate(KIND, {})
    assert caught.value.errors == {"data": "is required", "column": "is required"}
    fields = {f.name: f for f in registry.describe(BootstrapParams)}
    assert fields["data"].type == "upload" and fields["column"].column_of == "data"
    assert fields["column_b"].when == {"statistic": ("correlation",)}


junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.sampled_from(["mean", "median", "std", "correlation", "bca", "percentile", "x", "y"]),
)  # fmt: skip
uploads = st.one_of(
    junk,
    st.just(REF),
    st.dictionaries(st.sampled_from(["name", "size", "sha256", "other"]), junk, max_size=4),
    st.fixed_dictionaries({"name": junk, "size": junk, "sha256": st.just(REF["sha256"])}),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from([*BootstrapParams.model_fields, "bogus"]), junk, max_size=6),
    uploads,
)
def test_any_input_is_either_accepted_or_refused_field_by_field(
    raw: dict[str, Any], data: Any
) -> None:
    errors = accepted_or_refused(KIND, {**raw, "data": data})
    if errors is None:
        assert is_upload(data)
    elif not is_upload(data):
        assert "data" in errors  # a sub-field left out of the reference "is required"


def is_upload(data: Any) -> bool:
    """The rule of an upload reference, written out: name, size and SHA-256, nothing else."""
    return (
        isinstance(data, dict)
        and set(data) == {"name", "size", "sha256"}
        and isinstance(data["name"], str)
        and 1 <= len(data["name"]) <= 255
        and type(data["size"]) is int
        and 1 <= data["size"] <= 50 * 1024 * 1024
        and isinstance(data["sha256"], str)
        and len(data["sha256"]) == 64
        and all(c in "0123456789abcdef" for c in data["sha256"])
    )
