"""Throughput of every analysis kind's kernel on Dask, on 1 and on 2 workers.

For each kind: its own chunk plan and chunk function, sent to a `LocalCluster` of one
single-threaded process per worker, timed from the first submit to the last result. One cluster
per worker count serves every kind; its workers import the kinds and SciPy before any timing, so
the figures are throughput, not start-up. Option pricing is also compared with a plain
vectorised NumPy pricer in this process, which computes the same price and standard error
(without the delta) on one core.

Every figure is checked before it is printed: the numbers must agree with a closed form or an
independent reference (a broken kernel must not print a fast figure), and 1 and 2 workers must
return bit-identical chunks.

Run: .venv/bin/python benchmarks/bench_kinds.py [--quick] [--paths 200000000] ...
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import click
import numpy as np
from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute.datasets import Upload
from compute.kinds import bootstrap, optimize, portfolio_risk
from compute.kinds.monte_carlo_pi import PiParams, chunk_sizes, count_inside
from compute.kinds.option_pricing import OptionParams, plan, simulate, summarise

WORKERS = (1, 2)
QUICK = 0.01  # --quick scales every size by this
SIGMAS = 6.0  # how many standard errors a figure may stray from its reference
BOOT_ROWS = 10_000
BOOT_REFERENCE = 2_000  # plain-NumPy resamples that the median's bootstrap is checked against
UNIT = NormalDist()

# The scheduler's HTTP server moves to a free port when another cluster holds the default one.
warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")


class Insane(click.ClickException):
    """A kernel's numbers disagree with their reference: its timing means nothing."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise Insane(f"sanity check failed: {what}")


@dataclass
class Row:
    """One line of the final table: a workload's rate on each worker count."""

    kind: str
    what: str
    unit: str  # e.g. "paths/s"
    prefix: str  # "M" or "k"
    rates: dict[int, float] = field(default_factory=dict)

    @property
    def scale(self) -> float:
        return {"M": 1e6, "k": 1e3}[self.prefix]

    def shown(self, workers: int) -> str:
        v = self.rates[workers] / self.scale
        return f"{v:.3g}" if v < 10 else f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


# --- running chunks ------------------------------------------------------------------------------


def _warm() -> None:
    """Imports a first chunk would otherwise pay for on each worker."""
    import scipy.optimize  # noqa: F401

    import compute.kinds.bootstrap
    import compute.kinds.monte_carlo_pi
    import compute.kinds.optimize
    import compute.kinds.option_pricing
    import compute.kinds.portfolio_risk  # noqa: F401


def timed(
    client: Client, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]
) -> tuple[Any, float]:
    """Every job's result, in plan order, and the seconds from the first submit to the last."""
    started = time.perf_counter()
    futures = [client.submit(fn, *args, pure=False) for args in jobs]
    out = client.gather(futures)
    return out, time.perf_counter() - started


def run_row(
    row: Row,
    clients: dict[int, Client],
    fn: Callable[..., Any],
    jobs: Callable[[Client], Sequence[tuple[Any, ...]]],
    work: Callable[[list[Any]], float],
    verdict: Callable[[list[Any]], str],
) -> list[Any]:
    """Run the same plan on each cluster, check the chunks, print a line per worker count.

    `work` counts the units done (paths, evaluations, ...); `verdict` checks the chunks against
    their reference, raising `Insane` if they disagree, and says what was found.
    """
    first: list[Any] | None = None
    for workers, client in clients.items():
        chunks, secs = timed(client, fn, jobs(client))
        if first is None:
            first = chunks
            detail = verdict(chunks)
        check(chunks == first, f"{row.kind} {row.what}: {workers} workers gave other numbers")
        row.rates[workers] = work(chunks) / secs
        print(
            f"{row.kind}, {row.what}, {plural(workers)}: {secs:.2f} s "
            f"({row.shown(workers)} {row.prefix} {row.unit}), {detail}",
            flush=True,
        )
    assert first is not None
    return first


# --- option_pricing ------------------------------------------------------------------------------


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


def plain_european_call(p: OptionParams, block: int = 1 << 20) -> tuple[float, float, float]:
    """Antithetic European call in plain NumPy blocks: (price, standard error, seconds)."""
    started = time.perf_counter()
    rng = np.random.default_rng(p.seed)
    drift = (p.r - 0.5 * p.sigma**2) * p.T
    vol = p.sigma * math.sqrt(p.T)
    disc = math.exp(-p.r * p.T)
    n = s1 = s2 = 0.0
    left = p.paths // 2
    while left > 0:
        m = min(block, left)
        z = rng.standard_normal(m)
        up = np.maximum(p.S * np.exp(drift + vol * z) - p.K, 0.0)
        down = np.maximum(p.S * np.exp(drift - vol * z) - p.K, 0.0)
        y = disc * 0.5 * (up + down)
        n += m
        s1 += float(y.sum())
        s2 += float(np.dot(y, y))
        left -= m
    price = s1 / n
    se = math.sqrt((s2 / n - price * price) / n)
    return price, se, time.perf_counter() - started


def option_jobs(p: OptionParams) -> Callable[[Client], list[tuple[Any, ...]]]:
    sizes = plan(p)
    seeds = np.random.SeedSequence(p.seed).spawn(len(sizes))
    params = p.model_dump()
    return lambda _client: [(params, n, s) for n, s in zip(sizes, seeds, strict=True)]


def bench_option_pricing(clients: dict[int, Client], paths: int, asian_paths: int) -> list[Row]:
    euro = OptionParams(option_type="european_call", paths=paths, seed=1)
    bs, bs_delta = black_scholes_call(euro)
    price, se, plain_s = plain_european_call(euro)
    check(abs(price - bs) <= SIGMAS * se, f"plain NumPy price {price} against Black-Scholes {bs}")
    plain_rate = paths / plain_s
    print(
        f"plain NumPy, 1 process, European call: {plain_s:.2f} s "
        f"({plain_rate / 1e6:.1f} M paths/s), price {price:.5f} ± {se:.5f}",
        flush=True,
    )

    def european(chunks: list[list[float]]) -> str:
        got = summarise(chunks)
        check(
            abs(got["price"] - bs) <= SIGMAS * got["standard_error"],
            f"European price {got['price']} ± {got['standard_error']} against Black-Scholes {bs}",
        )
        # A pair's finite-difference delta is below e^{-rT} S_T / S, whose spread is about 1.
        slack = SIGMAS * 1.5 / math.sqrt(euro.paths // 2) + 1e-4
        check(abs(got["delta"] - bs_delta) <= slack, f"delta {got['delta']} against {bs_delta}")
        return (
            f"price {got['price']:.5f} ± {got['standard_error']:.5f} (Black-Scholes {bs:.5f}), "
            f"delta {got['delta']:.4f} ({bs_delta:.4f})"
        )

    row = Row("option_pricing", f"European call, {sci(paths)} paths", "paths/s", "M")
    run_row(row, clients, simulate, option_jobs(euro), lambda _: paths, european)
    print(f"2 workers / plain NumPy: {row.rates[2] / plain_rate:.2f}  (target >= 0.60)", flush=True)

    dates = 252
    asian = OptionParams(option_type="asian_call", paths=asian_paths, steps=dates, seed=1)
    low = geometric_asian_call(asian, dates)

    def arithmetic(chunks: list[list[float]]) -> str:
        got = summarise(chunks)
        slack = SIGMAS * got["standard_error"]
        check(
            low - slack <= got["price"] <= bs + slack,
            f"Asian price {got['price']} outside [geometric {low}, European {bs}]",
        )
        return (
            f"{asian_paths * dates / 1e6:,.0f} M path-steps, price {got['price']:.5f} "
            f"± {got['standard_error']:.5f} (geometric {low:.5f} <= it <= European {bs:.5f})"
        )

    asian_row = Row(
        "option_pricing", f"Asian call, {dates} dates, {sci(asian_paths)} paths", "paths/s", "k"
    )
    run_row(asian_row, clients, simulate, option_jobs(asian), lambda _: asian_paths, arithmetic)
    for workers in WORKERS:
        steps = asian_row.rates[workers] * dates / 1e6
        print(f"  Asian call, {plural(workers)}: {steps:,.0f} M path-steps/s")
    return [row, asian_row]


# --- monte_carlo_pi ------------------------------------------------------------------------------


def bench_pi(clients: dict[int, Client], samples: int) -> list[Row]:
    p = PiParams(samples=samples, seed=1)
    assert p.chunks is not None
    sizes = chunk_sizes(p.samples, p.chunks)
    seeds = np.random.SeedSequence(p.seed).spawn(p.chunks)
    jobs = list(zip(sizes, seeds, strict=True))

    def verdict(chunks: list[int]) -> str:
        q = sum(chunks) / samples
        est, se = 4.0 * q, 4.0 * math.sqrt(q * (1.0 - q) / samples)
        check(abs(est - math.pi) <= SIGMAS * se, f"π estimate {est} ± {se}")
        return f"{len(sizes)} chunks, π ≈ {est:.7f} ± {se:.1g} ({(est - math.pi) / se:+.1f} SE)"

    row = Row("monte_carlo_pi", f"{sci(samples)} samples", "samples/s", "M")
    run_row(row, clients, count_inside, lambda _: jobs, lambda _: samples, verdict)
    return [row]


# --- optimize ------------------------------------------------------------------------------------


def bench_optimize(clients: dict[int, Client], starts: int) -> list[Row]:
    p = optimize.OptimizeParams(
        objective="rosenbrock", dimension=5, method="Nelder-Mead", starts=starts, seed=1
    )
    params = p.model_dump()
    jobs = [(params, s) for s in optimize.plan(p)]

    def verdict(chunks: list[dict[str, Any]]) -> str:
        got = optimize.summarise(p, dict(enumerate(chunks)))
        best, x = got["best_f"], got["best_x"]
        check(best is not None and best < 1e-6, f"Rosenbrock best f {best}, not below 1e-6")
        check(all(abs(v - 1.0) < 1e-3 for v in x), f"Rosenbrock best x {x}, not (1, ..., 1)")
        return (
            f"{got['evaluations']:,} evaluations, best f {best:.1e}, "
            f"{got['converged_starts']} of {starts} starts converged"
        )

    def evaluations(chunks: list[dict[str, Any]]) -> float:
        return sum(c["evaluations"] for c in chunks)

    row = Row("optimize", f"5-D Rosenbrock, Nelder-Mead, {starts} starts", "evaluations/s", "k")
    run_row(row, clients, optimize.solve, lambda _: jobs, evaluations, verdict)
    return [row]


# --- portfolio_risk ------------------------------------------------------------------------------


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


def bench_portfolio(clients: dict[int, Client], scenarios: int, t_scenarios: int) -> list[Row]:
    return [
        portfolio_row(clients, "normal", scenarios),
        portfolio_row(clients, "student_t", t_scenarios),
    ]


def portfolio_row(clients: dict[int, Client], distribution: str, n: int) -> Row:
    p = portfolio_risk.PortfolioParams(scenarios=n, distribution=distribution, seed=1)
    sizes = portfolio_risk.plan(p)
    seeds = np.random.SeedSequence(p.seed).spawn(len(sizes))
    params = p.model_dump()
    jobs = [(params, k, s) for k, s in zip(sizes, seeds, strict=True)]

    def verdict(chunks: list[dict[str, Any]]) -> str:
        got = portfolio_risk.summarise(p, dict(enumerate(chunks)), len(sizes))
        check(got["scenarios"] == n, f"{got['scenarios']} of {n} scenarios came back")
        said = []
        for level in p.levels:
            key = portfolio_risk.level_key(level)
            var, var_se, es, es_se = tail_reference(p, level)
            grid = 1e-3 * abs(var)  # the loss grid's bins are far finer than this
            check(
                abs(got["var"][key] - var) <= SIGMAS * var_se + grid,
                f"{distribution} VaR {level}: {got['var'][key]} against {var} ± {var_se}",
            )
            check(
                abs(got["cvar"][key] - es) <= SIGMAS * es_se + grid,
                f"{distribution} ES {level}: {got['cvar'][key]} against {es} ± {es_se}",
            )
            said.append(
                f"VaR {level:.0%} {got['var'][key]:,.0f} (exact {var:,.0f}), "
                f"ES {got['cvar'][key]:,.0f} ({es:,.0f})"
            )
        return f"{len(sizes)} chunks, " + "; ".join(said)

    row = Row("portfolio_risk", f"{distribution}, {sci(n)} scenarios", "scenarios/s", "M")
    run_row(row, clients, portfolio_risk.simulate, lambda _: jobs, lambda _: n, verdict)
    return row


# --- bootstrap -----------------------------------------------------------------------------------


def bench_bootstrap(clients: dict[int, Client], resamples: int) -> list[Row]:
    x = np.random.default_rng(2026).lognormal(0.0, 0.5, BOOT_ROWS)
    return [bootstrap_row(clients, x, statistic, resamples) for statistic in ("mean", "median")]


def bootstrap_row(clients: dict[int, Client], x: np.ndarray, statistic: str, resamples: int) -> Row:
    csv = ("x\n" + "\n".join(repr(float(v)) for v in x) + "\n").encode()
    upload = Upload(name="bench.csv", size=len(csv), sha256=hashlib.sha256(csv).hexdigest())
    p = bootstrap.BootstrapParams(
        data=upload,
        column="x",
        statistic=statistic,
        resamples=resamples,
        method="percentile",
        seed=1,
    )
    sizes = bootstrap.plan(p, len(x))
    seeds = np.random.SeedSequence(p.seed).spawn(len(sizes))
    data = bootstrap.prepare(statistic, x)
    r_mean, r_sd, r_n = reference_bootstrap(statistic, x)

    def jobs(client: Client) -> list[tuple[Any, ...]]:
        shared = client.scatter(data, broadcast=False)  # as the kind's driver does
        return [(shared, statistic, k, s) for k, s in zip(sizes, seeds, strict=True)]

    def verdict(chunks: list[list[float | None]]) -> str:
        values = np.array([v for c in chunks for v in c], dtype=np.float64)
        check(len(values) == resamples, f"{len(values)} of {resamples} resamples came back")
        check(bool(np.isfinite(values).all()), f"undefined {statistic} resamples")
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        kurtosis = float(np.mean((values - mean) ** 4)) / sd**4
        mean_se = r_sd * math.sqrt(1.0 / resamples + 1.0 / r_n)
        sd_se = r_sd * math.sqrt((kurtosis - 1.0) / 4.0 * (1.0 / resamples + 1.0 / r_n))
        check(abs(mean - r_mean) <= SIGMAS * mean_se, f"{statistic}: centre {mean} vs {r_mean}")
        check(abs(sd - r_sd) <= SIGMAS * sd_se, f"{statistic}: standard error {sd} vs {r_sd}")
        what = "exact" if math.isinf(r_n) else f"{r_n:,.0f} plain-NumPy resamples"
        return (
            f"{len(sizes)} chunks, standard error {sd:.6f} and centre {mean:.6f} "
            f"({what}: {r_sd:.6f}, {r_mean:.6f})"
        )

    row = Row("bootstrap", f"{statistic} of {len(x):,} rows", "resamples/s", "k")
    run_row(row, clients, bootstrap.resample, jobs, lambda _: resamples, verdict)
    return row


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


# --- the table -----------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    lines = ["| kind | unit | 1 worker | 2 workers | speed-up |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| `{r.kind}`, {r.what} | {r.prefix} {r.unit} | {r.shown(1)} | {r.shown(2)} | "
            f"{r.rates[2] / r.rates[1]:.2f}× |"
        )
    return "\n".join(lines)


def plural(workers: int) -> str:
    return f"{workers} worker" + ("" if workers == 1 else "s")


def sci(n: int) -> str:
    """2×10⁸ for 200000000; plain digits when n is no round multiple of a power of ten."""
    k = len(str(n)) - 1
    m, rest = divmod(n, 10**k)
    if rest or k < 3:
        return f"{n:,}"
    power = "10" + str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return power if m == 1 else f"{m}×{power}"


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


@click.command()
@click.option("--quick", is_flag=True, help=f"Scale every size by {QUICK} for a quick check.")
@click.option("--paths", default=200_000_000, show_default=True, help="European call paths.")
@click.option("--asian-paths", default=4_000_000, show_default=True, help="Asian call paths.")
@click.option("--samples", default=1_000_000_000, show_default=True, help="π samples.")
@click.option("--starts", default=64, show_default=True, help="Optimisation starts.")
@click.option("--scenarios", default=100_000_000, show_default=True, help="Normal scenarios.")
@click.option("--t-scenarios", default=40_000_000, show_default=True, help="Student-t scenarios.")
@click.option("--resamples", default=100_000, show_default=True, help="Bootstrap resamples.")
def main(
    quick: bool,
    paths: int,
    asian_paths: int,
    samples: int,
    starts: int,
    scenarios: int,
    t_scenarios: int,
    resamples: int,
) -> None:
    started = time.perf_counter()
    if quick:
        paths, asian_paths, samples = (round(v * QUICK) for v in (paths, asian_paths, samples))
        scenarios, t_scenarios = (max(1_000, round(v * QUICK)) for v in (scenarios, t_scenarios))
        resamples, starts = max(100, round(resamples * QUICK)), min(starts, 8)
    print(
        f"machine: {os.cpu_count()} cores; NumPy {np.__version__}; load average {load()}",
        flush=True,
    )
    rows: list[Row] = []
    with ExitStack() as stack:
        clients: dict[int, Client] = {}
        for workers in WORKERS:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
            )
            clients[workers] = stack.enter_context(Client(cluster, set_as_default=False))
            clients[workers].run(_warm)
        print(f"clusters of 1 and 2 workers up after {time.perf_counter() - started:.1f} s")
        rows += bench_option_pricing(clients, paths, asian_paths)
        rows += bench_pi(clients, samples)
        rows += bench_optimize(clients, starts)
        rows += bench_portfolio(clients, scenarios, t_scenarios)
        rows += bench_bootstrap(clients, resamples)
    print()
    print(table(rows))
    print()
    print(f"run time {time.perf_counter() - started:.0f} s; load average now {load()}")


if __name__ == "__main__":
    main()
