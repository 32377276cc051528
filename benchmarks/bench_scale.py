"""Runlab across hosts: what a second worker host and a second runner host add, and how long a
job waits across the network before it runs.

The hosts are network namespaces on a bridge of the benchmark's own, as in tests/deploy (root
and `ip` needed): PostgreSQL, an S3-compatible server, a Dask scheduler, worker hosts of one
thread each and runner hosts, every role started by its example unit in docs/deploy/.

cpu:      4 π jobs of 1.2×10⁹ samples in 12 chunks each, on 1 worker host, then on 2; samples
          per second over the batch (last `finished_at` - first `started_at`, in the store's
          clock). Target on this 2-core machine: 2 hosts ≥ 1.7× one.
dispatch: 3,000 zero-work jobs (`benchmarks/dispatch_kind.py`), queued at once, through 1
          runner host, then 2, each `runlab runner --concurrency 32`; jobs per second as above.
latency:  one job at a time, 0.1 to 0.2 s apart, to idle runners: submit to running
          (`started_at - created_at`), p50 and p95 of 40.

Run: .venv/bin/python benchmarks/bench_scale.py
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click
from sqlalchemy import Engine, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dispatch_kind import KIND as NOOP  # noqa: E402
from compute import intake, registry  # noqa: E402
from jobstore import queries  # noqa: E402
from jobstore.models import Job, Status  # noqa: E402
from tests.deploy import units  # noqa: E402
from tests.deploy.deployment import BIN, Deployment  # noqa: E402
from tests.deploy.hosts import Host, Network, why_not_here  # noqa: E402
from tests.polling import wait_for  # noqa: E402

PI_JOBS = 4
PI = {"samples": 1_200_000_000, "chunks": 12}
NOOPS = 3_000
LATENCY_JOBS = 40
NOOP_MODULE = "benchmarks.dispatch_kind"


def span(engine: Engine, ids: list[str], timeout: float) -> float:
    """Seconds from the first start to the last end of `ids`, once all have succeeded."""

    def ended() -> bool:
        with engine.connect() as conn:
            left = conn.execute(
                select(func.count())
                .select_from(Job)
                .where(Job.public_id.in_(ids), Job.status != Status.SUCCEEDED.value)
            ).scalar_one()
        return left == 0

    wait_for(ended, timeout=timeout, what=f"{len(ids)} jobs to succeed", interval=0.5)
    with engine.connect() as conn:
        first, last = conn.execute(
            select(func.min(Job.started_at), func.max(Job.finished_at)).where(
                Job.public_id.in_(ids)
            )
        ).one()
    return float((last - first).total_seconds())


def runner(d: Deployment, host: Host, *, noop: bool) -> None:
    """A runner host: its unit's command, or, for zero-work jobs, with room for 32 at once."""
    if not noop:
        d.start_runner(host)
        return
    env = d.env(host, RUNLAB_KIND_MODULES=NOOP_MODULE)
    argv = units.command("runlab-runner.service", env, BIN)
    argv[argv.index("--concurrency") + 1] = "32"
    d.net.spawn(host, argv, env=env, log="runlab-runner")


def registered(engine: Engine, count: int) -> None:
    wait_for(
        lambda: len([r for r in queries.runners(engine, alive_within=5) if r.alive]) >= count,
        timeout=90,
        what=f"{count} runner(s)",
        interval=0.3,
    )


def stop_runners(d: Deployment, engine: Engine) -> None:
    for host in d.runners:
        d.net.kill(host)
    wait_for(
        lambda: not [r for r in queries.runners(engine, alive_within=2) if r.alive],
        timeout=30,
        what="the runners to be gone",
        interval=0.3,
    )


def cpu(d: Deployment, engine: Engine, seed: int) -> float:
    ids = [
        intake.submit(engine, "monte_carlo_pi", {**PI, "seed": seed + i}) for i in range(PI_JOBS)
    ]
    return PI_JOBS * PI["samples"] / span(engine, ids, timeout=600)


def dispatch(engine: Engine) -> float:
    ids = intake.submit_many(engine, NOOP, [{}] * NOOPS)
    return NOOPS / span(engine, ids, timeout=600)


def latency(engine: Engine) -> list[float]:
    ids = []
    for _ in range(LATENCY_JOBS):
        ids.append(intake.submit(engine, NOOP, {}))
        time.sleep(random.uniform(0.1, 0.2))  # a user's pace, not a wait for a result
    span(engine, ids, timeout=120)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Job.created_at, Job.started_at).where(Job.public_id.in_(ids))
        ).all()
    return sorted((s - c).total_seconds() * 1000 for c, s in rows)


@click.command()
def main() -> None:
    reason = why_not_here()
    if reason:
        raise click.ClickException(f"bench_scale {reason}")
    registry.load((NOOP_MODULE,))
    with tempfile.TemporaryDirectory() as tmp, Network(Path(tmp)) as net:
        d = Deployment(net, Path(tmp))
        try:
            d.start_database()
            d.start_s3()
            d.start_scheduler()
            d.start_worker(d.workers[0])
            d.workers_joined(1)
            d.run_unit(d.runners[0], "runlab-migrate.service")
            engine = d.engine()

            for host in d.runners:
                runner(d, host, noop=False)
            registered(engine, 2)
            one_worker = cpu(d, engine, seed=1)
            d.start_worker(d.workers[1])
            d.workers_joined(2)
            two_workers = cpu(d, engine, seed=101)
            stop_runners(d, engine)

            runner(d, d.runners[0], noop=True)
            registered(engine, 1)
            one_runner = dispatch(engine)
            runner(d, d.runners[1], noop=True)
            registered(engine, 2)
            two_runners = dispatch(engine)
            waits = latency(engine)
            engine.dispose()
        finally:
            d.close()

    click.echo("Runlab across hosts (network namespaces on one 2-core machine), PostgreSQL + S3")
    click.echo(
        f"cpu, π samples/s:        1 worker host {one_worker / 1e6:,.0f} M/s, "
        f"2 hosts {two_workers / 1e6:,.0f} M/s: {two_workers / one_worker:.2f}× (target ≥ 1.7×)"
    )
    click.echo(
        f"dispatch, zero-work jobs/s: 1 runner host {one_runner:,.0f}, "
        f"2 hosts {two_runners:,.0f}: {two_runners / one_runner:.2f}×"
    )
    p50 = statistics.median(waits)
    p95 = waits[int(0.95 * (len(waits) - 1))]
    click.echo(f"latency, submit to running: p50 {p50:.0f} ms, p95 {p95:.0f} ms over {len(waits)}")


if __name__ == "__main__":
    main()
