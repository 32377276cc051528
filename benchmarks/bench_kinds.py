"""Every kind's whole path against its own kernel on a plain process pool, on each store.

plain:  the kind's driver, unchanged, with a context whose chunks go to a warm
        `multiprocessing` pool of one process per core (benchmarks/whole_path.py): the same
        kernel with its reused buffers, the same chunks, seeds and reduction; no Dask, no store.
runlab: the same parameters submitted to the store; a warm runner claims the job and runs it
        on its LocalCluster of one worker per core, and the job reaches `succeeded`, timed by
        the store's own clock from its created time to its finished time.

For each workload the two alternate, run for run (plain, Runlab; Runlab, plain; …), so that noise
on a shared machine, and whatever one run leaves for the next, falls on both alike; each pair gives
a ratio plain ÷ Runlab (1.0: Runlab costs nothing on top). Prints each run, the median with min and
max, the per-core rates, the load average before and after, and a last summary line of every median
ratio against its target: 0.85, and 0.9 for π.

Every result is checked before a figure is printed: Runlab's must equal the plain run's in
every headline field (same seeds, same chunks), and both must agree with a closed form or an
independent reference, so that a broken kernel cannot print a fast figure.

Run: .venv/bin/python benchmarks/bench_kinds.py [--backend sqlite|postgres|both] [--repeat 5]
     [--only option_pricing] [--scale 0.1]
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import whole_path
from benchmarks.stores import store
from benchmarks.whole_path import Pair, spread
from compute import registry
from compute.kinds import portfolio_risk
from compute.kinds.option_pricing import OptionParams
from runlab.artifacts import ArtifactStore

TARGET = 0.85
TARGET_PI = 0.9
SIGMAS = 6.0  # how many standard errors a figure may stray from its reference
BOOT_ROWS = 10_000
BOOT_REFERENCE = 2_000  # plain-NumPy resamples that the median's bootstrap is checked against
UNIT = NormalDist()


class Insane(click.ClickException):
    """A result disagrees with its reference: its timing means nothing."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise Insane(f"sanity check failed: {what}")


@dataclass(frozen=True)
class Workload:
    """One job to time: its kind, parameters (an upload field holds the file's bytes), the
    work it does for the per-core rate, and a check of its result against a reference."""

    kind: str
    short: str  # its name in the summary line
    what: str
    params: dict[str, Any]
    unit: str
    work: Callable[[dict[str, Any]], float]
    verdict: Callable[[dict[str, Any]], str]
    target: float = TARGET


# --- references ----------------------------------------------------------------------------------


def black_scholes_call(p: OptionParams) -> tuple[float, float]:
    """Price and delta of the European call."""
    sq = p.sigma * math.sqrt(p.T)
    d1 = (math.log(p.S / p.K) + (p.r + 0.5 * p.sigma**2) * p.T) / sq
    price = p.S * UNIT.cdf(d1) - p.K * math.exp(-p.r * p.T) * UNIT.cdf(d1 - sq)
    return price, UNIT.cdf(d1)


def geometric_asian_call(p: OptionParams, dates: int) -> float:
    """The call on the geometric mean of the spot at T/n, 2T/n, ..., T: lognormal, so exact.
    The arithmetic mean is never below it, path by path, so it bounds the Asian price below."""
    mu = (p.r - 0.5 * p.sigma**2) * p.T * (dates + 1) / (2 * dates)
    var = p.sigma**2 * p.T * (dates + 1) * (2 * dates + 1) / (6 * dates**2)
    d2 = (math.log(p.S / p.K) + mu) / math.sqrt(var)
    d1 = d2 + math.sqrt(var)
    forward = p.S * math.exp(mu + 0.5 * var)
    return math.exp(-p.r * p.T) * (forward * UNIT.cdf(d1) - p.K * UNIT.cdf(d2))


def tail_reference(
    p: portfolio_risk.PortfolioParams, level: float
) -> tuple[float, float, float, float]:
    """(VaR, its standard error, expected shortfall, its standard error) of the portfolio's loss,
    from the loss's own law: mean + s·X, X a standard normal or a t scaled to unit variance
    (a linear mix of jointly normal or t returns is one). Errors are the estimators' asymptotic
    ones at `p.scenarios` scenarios."""
    from scipy import integrate, stats

    w = np.asarray(p.weights)
    vol = np.asarray(p.volatilities)
    cov = np.asarray(p.correlation) * np.outer(vol, vol)
    h = p.horizon_days / 252
    mean = -p.portfolio_value * h * float(w @ np.asarray(p.expected_returns))
    s = p.portfolio_value * math.sqrt(h * float(w @ cov @ w))
    if p.distribution == "normal":
        law = stats.norm()
    else:
        assert p.dof is not None
        law = stats.t(df=p.dof, scale=math.sqrt((p.dof - 2.0) / p.dof))
    q = float(law.ppf(level))
    tail = 1.0 - level
    m1 = integrate.quad(lambda x: x * law.pdf(x), q, math.inf)[0] / tail
    m2 = integrate.quad(lambda x: x * x * law.pdf(x), q, math.inf)[0] / tail
    n = p.scenarios
    var_se = s * math.sqrt(level * tail / n) / float(law.pdf(q))
    es_se = s * math.sqrt((m2 - m1 * m1 + level * (m1 - q) ** 2) / (n * tail))
    return mean + s * q, var_se, mean + s * m1, es_se


def reference_bootstrap(statistic: str, x: np.ndarray) -> tuple[float, float, float]:
    """(centre, spread, resamples behind them) of the statistic's bootstrap distribution: exact
    for the mean (x̄ and the population deviation over √n); for the median, from plain-NumPy
    resamples (math.inf when exact)."""
    n = len(x)
    if statistic == "mean":
        return float(x.mean()), float(x.std()) / math.sqrt(n), math.inf
    rng = np.random.default_rng(99)
    medians = [
        np.median(x[rng.integers(0, n, size=(100, n))], axis=1)
        for _ in range(BOOT_REFERENCE // 100)
    ]
    ref = np.concatenate(medians)
    return float(ref.mean()), float(ref.std(ddof=1)), float(len(ref))


def sci(n: int) -> str:
    """2×10⁸ for 200000000; plain digits when n is no round multiple of a power of ten."""
    k = len(str(n)) - 1
    m, rest = divmod(n, 10**k)
    if rest or k < 3:
        return f"{n:,}"
    power = "10" + str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return power if m == 1 else f"{m}×{power}"


# --- the workloads -------------------------------------------------------------------------------


def pi_job(samples: int) -> Workload:
    def verdict(r: dict[str, Any]) -> str:
        est, se = r["estimate"], r["standard_error"]
        check(abs(est - math.pi) <= SIGMAS * se, f"π estimate {est} ± {se}")
        return f"π ≈ {est:.7f} ± {se:.1g} ({(est - math.pi) / se:+.1f} SE)"

    return Workload(
        "monte_carlo_pi",
        "π",
        f"{sci(samples)} samples",
        {"samples": samples, "seed": 1},
        "samples",
        lambda _: samples,
        verdict,
        TARGET_PI,
    )


def option_jobs(paths: int, path_paths: int, barrier_paths: int) -> list[Workload]:
    euro = OptionParams(option_type="european_call", paths=paths, seed=1)
    bs, bs_delta = black_scholes_call(euro)
    dates = 252
    asian = OptionParams(option_type="asian_call", paths=path_paths, steps=dates, seed=1)
    low = geometric_asian_call(asian, dates)

    def european(r: dict[str, Any]) -> str:
        check(
            abs(r["price"] - bs) <= SIGMAS * r["standard_error"],
            f"European price {r['price']} ± {r['standard_error']} against Black-Scholes {bs}",
        )
        # A pair's finite-difference delta is below e^{-rT} S_T / S, whose spread is about 1.
        slack = SIGMAS * 1.5 / math.sqrt(paths // 2) + 1e-4
        check(abs(r["delta"] - bs_delta) <= slack, f"delta {r['delta']} against {bs_delta}")
        return (
            f"price {r['price']:.5f} ± {r['standard_error']:.5f} (Black-Scholes {bs:.5f}), "
            f"delta {r['delta']:.4f} ({bs_delta:.4f})"
        )

    def arithmetic(r: dict[str, Any]) -> str:
        slack = SIGMAS * r["standard_error"]
        check(
            low - slack <= r["price"] <= bs + slack,
            f"Asian price {r['price']} outside [geometric {low}, European {bs}]",
        )
        return f"price {r['price']:.5f} (geometric {low:.5f} <= it <= European {bs:.5f})"

    def barrier(r: dict[str, Any]) -> str:
        # Knocked out above the barrier, it is worth less than the European call, and more
        # than nothing.
        slack = SIGMAS * r["standard_error"]
        check(0 < r["price"] <= bs + slack, f"barrier price {r['price']} outside (0, {bs}]")
        return f"price {r['price']:.5f} ± {r['standard_error']:.5f} (below European {bs:.5f})"

    def path_steps(r: dict[str, Any]) -> float:
        return r["paths"] * dates

    return [
        Workload(
            "option_pricing",
            "European",
            f"European call, {sci(paths)} paths",
            {"option_type": "european_call", "paths": paths, "seed": 1},
            "paths",
            lambda r: r["paths"],
            european,
        ),
        Workload(
            "option_pricing",
            "Asian",
            f"Asian call, {dates} dates, {sci(path_paths)} paths",
            {"option_type": "asian_call", "paths": path_paths, "steps": dates, "seed": 1},
            "path-steps",
            path_steps,
            arithmetic,
        ),
        Workload(
            "option_pricing",
            "barrier",
            f"up-and-out call, barrier 150, {dates} dates, {sci(barrier_paths)} paths",
            {
                "option_type": "barrier_up_out_call",
                "paths": barrier_paths,
                "steps": dates,
                "barrier": 150.0,
                "seed": 1,
            },
            "path-steps",
            path_steps,
            barrier,
        ),
    ]


def portfolio_job(distribution: str, n: int) -> Workload:
    params: dict[str, Any] = {"scenarios": n, "distribution": distribution, "seed": 1}
    p = portfolio_risk.PortfolioParams.model_validate(params)

    def verdict(r: dict[str, Any]) -> str:
        check(r["scenarios"] == n, f"{r['scenarios']} of {n} scenarios came back")
        said = []
        for level in p.levels:
            key = portfolio_risk.level_key(level)
            var, var_se, es, es_se = tail_reference(p, level)
            grid = 1e-3 * abs(var)  # the loss grid's bins are far finer than this
            check(
                abs(r["var"][key] - var) <= SIGMAS * var_se + grid,
                f"{distribution} VaR {level}: {r['var'][key]} against {var} ± {var_se}",
            )
            check(
                abs(r["cvar"][key] - es) <= SIGMAS * es_se + grid,
                f"{distribution} ES {level}: {r['cvar'][key]} against {es} ± {es_se}",
            )
            said.append(f"VaR {level:.0%} {r['var'][key]:,.0f} (exact {var:,.0f})")
        return "; ".join(said)

    name = {"normal": "normal", "student_t": "Student-t"}[distribution]
    return Workload(
        "portfolio_risk",
        f"{name} VaR",
        f"{name}, {sci(n)} scenarios",
        params,
        "scenarios",
        lambda r: r["scenarios"],
        verdict,
    )


def bootstrap_job(resamples: int) -> Workload:
    x = np.random.default_rng(2026).lognormal(0.0, 0.5, BOOT_ROWS)
    csv = ("x\n" + "\n".join(repr(float(v)) for v in x) + "\n").encode()
    _, r_sd, r_n = reference_bootstrap("median", x)

    def verdict(r: dict[str, Any]) -> str:
        check(r["resamples"] == resamples, f"{r['resamples']} of {resamples} resamples")
        check(r["estimate"] == float(np.median(x)), f"median {r['estimate']}")
        sd = r["standard_error"]
        # The spread of a bootstrap's standard deviation: about sd / √(2 m) for m resamples.
        sd_se = r_sd * math.sqrt(1.0 / (2 * resamples) + 1.0 / (2 * r_n))
        check(abs(sd - r_sd) <= SIGMAS * sd_se + 0.02 * r_sd, f"standard error {sd} vs {r_sd}")
        check(r["ci_low"] < r["estimate"] < r["ci_high"], "the interval misses the estimate")
        return (
            f"median {r['estimate']:.5f}, 95 % interval [{r['ci_low']:.5f}, {r['ci_high']:.5f}], "
            f"standard error {sd:.6f} ({r_n:,.0f} plain-NumPy resamples: {r_sd:.6f})"
        )

    return Workload(
        "bootstrap",
        "bootstrap",
        f"median of {BOOT_ROWS:,} rows, BCa, {resamples:,} resamples",
        {"data": csv, "column": "x", "statistic": "median", "resamples": resamples, "seed": 1},
        "resamples",
        lambda r: r["resamples"],
        verdict,
    )


def optimize_job(starts: int) -> Workload:
    def verdict(r: dict[str, Any]) -> str:
        best, x = r["best_f"], r["best_x"]
        check(best is not None and best < 1e-6, f"Rosenbrock best f {best}, not below 1e-6")
        check(all(abs(v - 1.0) < 1e-3 for v in x), f"Rosenbrock best x {x}, not (1, ..., 1)")
        return (
            f"{r['evaluations']:,} evaluations, best f {best:.1e}, "
            f"{r['converged_starts']} of {starts} starts converged"
        )

    return Workload(
        "optimize",
        "optimize",
        f"5-D Rosenbrock, Nelder-Mead, {starts} starts",
        {
            "objective": "rosenbrock",
            "dimension": 5,
            "method": "Nelder-Mead",
            "starts": starts,
            "seed": 1,
        },
        "evaluations",
        lambda r: r["evaluations"],
        verdict,
    )


# --- running -------------------------------------------------------------------------------------


def same(kind: str, a: dict[str, Any], b: dict[str, Any]) -> None:
    """Runlab's result holds the plain run's numbers, field by headline field (to the last few
    bits: chunks that finish in another order may round a sum the other way)."""
    for name in registry.get(kind).headline:
        x, y = a.get(name), b.get(name)
        ok = x == y or (
            isinstance(x, float) and isinstance(y, float) and math.isclose(x, y, rel_tol=1e-12)
        )
        check(ok, f"{kind} {name}: plain {x}, Runlab {y}")


def run(
    w: Workload,
    engine: Any,
    artifacts: ArtifactStore,
    repeat: int,
    pool: ProcessPoolExecutor,
) -> list[Pair]:
    cores = os.cpu_count() or 1
    print(f"\n-- {w.kind}, {w.what}", flush=True)
    pairs: list[Pair] = []
    work = 0.0
    for i in range(repeat):
        (t_plain, got), (t_runlab, stored) = whole_path.both(
            i,
            lambda: whole_path.plain(w.kind, w.params, pool),
            lambda: whole_path.through_runlab(engine, artifacts, w.kind, w.params),
        )
        if i == 0:
            detail = w.verdict(got)
            work = w.work(got)
            print(f"  checked: {detail}", flush=True)
        same(w.kind, got, stored)
        pairs.append(Pair(t_plain, t_runlab))
        print(
            f"  run {i + 1}: plain {t_plain:.2f} s, Runlab {t_runlab:.2f} s: "
            f"ratio {t_plain / t_runlab:.3f}",
            flush=True,
        )
    plain_s, runlab_s = [p.plain for p in pairs], [p.runlab for p in pairs]
    print(f"  plain pool, {cores} processes: {spread(plain_s)}; Runlab: {spread(runlab_s)}")
    scale, prefix = (1e6, "M") if work / statistics.median(plain_s) >= 1e7 else (1e3, "k")
    print(
        f"  per core: plain {work / statistics.median(plain_s) / cores / scale:,.3g} "
        f"{prefix} {w.unit}/s, Runlab {work / statistics.median(runlab_s) / cores / scale:,.3g} "
        f"{prefix} {w.unit}/s"
    )
    print(f"  ratio plain ÷ Runlab: {spread([p.ratio for p in pairs], unit='', digits=3)}")
    return pairs


def workloads(scale: float) -> list[Workload]:
    def n(x: float, least: int) -> int:
        return max(least, round(x * scale))

    # Each about 3-5 s of the plain pool on two cores.
    return [
        pi_job(n(1e9, 1_000_000)),
        *option_jobs(n(2e8, 10_000), n(2e6, 1_000), n(5e5, 1_000)),
        portfolio_job("normal", n(1e8, 10_000)),
        portfolio_job("student_t", n(4e7, 10_000)),
        bootstrap_job(n(6e4, 1_000)),
        optimize_job(n(256, 4)),
    ]


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgres", "both"]),
    default="both",
    show_default=True,
)
@click.option("--repeat", default=5, show_default=True, help="Alternated runs of each.")
@click.option("--scale", default=1.0, show_default=True, help="Scale every workload's size.")
@click.option("--only", default="", help="Only the workloads of this kind.")
def main(backend: str, repeat: int, scale: float, only: str) -> None:
    cores = os.cpu_count() or 1
    print(
        f"machine: {platform.node()} {platform.machine()}, {cores} cores, Python "
        f"{platform.python_version()}, NumPy {np.__version__}"
    )
    chosen = [w for w in workloads(scale) if not only or w.kind == only]
    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    results: list[tuple[str, Workload, list[Pair]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-kinds-") as tmp, whole_path.pool(cores) as pool:
        for b in backends:
            print(f"\n== {b}: {repeat} alternated runs of each; load average {whole_path.load()}")
            folder = Path(tmp) / b
            folder.mkdir()
            artifacts = ArtifactStore(str(folder / "artifacts"))
            with (
                store(b, folder, "bench_kinds") as (engine, url),
                whole_path.runner(url, folder / "artifacts"),
            ):
                # Warm: the runner's cluster up, its workers' imports done.
                for w in chosen:
                    whole_path.through_runlab(engine, artifacts, w.kind, small(w))
                for w in chosen:
                    results.append((b, w, run(w, engine, artifacts, repeat, pool)))
            print(f"load average after: {whole_path.load()}")
    print("\n| store | workload | plain ÷ Runlab, median (min, max) | target |\n|---|---|---|---|")
    medians = []
    missed = []
    for b, w, pairs in results:
        r = [p.ratio for p in pairs]
        med = statistics.median(r)
        medians.append(f"{b} {w.short} {med:.3f}")
        if med < w.target:
            missed.append(f"{b} {w.short}")
        print(
            f"| {b} | `{w.kind}`, {w.what} | {med:.3f} ({min(r):.3f}, {max(r):.3f}) "
            f"| ≥ {w.target} |"
        )
    lowest = min(statistics.median(p.ratio for p in pairs) for _, _, pairs in results)
    print(
        f"\nsummary: plain pool ÷ Runlab, median of {repeat} alternated runs: "
        + "; ".join(medians)
        + f"; lowest {lowest:.3f}; targets ≥ {TARGET}, π ≥ {TARGET_PI}: "
        + ("met" if not missed else "MISSED by " + ", ".join(missed))
    )


def small(w: Workload) -> dict[str, Any]:
    """The workload at a small size: what warms a runner's workers for it."""
    out = dict(w.params)
    for name, least in (("samples", 1_000_000), ("paths", 10_000), ("scenarios", 10_000)):
        if name in out:
            out[name] = least
    if "resamples" in out:
        out["resamples"] = 1_000
    if "starts" in out:
        out["starts"] = 2
    return out


if __name__ == "__main__":
    main()
