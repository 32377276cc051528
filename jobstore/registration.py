"""A runner's own row: registered as it starts, marked stopped as it ends.

The row is what `/runners` and `runlab doctor` read of a runner; its heartbeat is renewed by
`jobstore.reports.heartbeat`, with the leases it holds.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, update

from jobstore.engine import db_now
from jobstore.models import Runner, table_of

runners_t = table_of(Runner)


def register(
    engine: Engine,
    runner_id: str,
    *,
    host: str,
    pid: int,
    concurrency: int,
    scheduler_address: str | None,
    dashboard_link: str | None,
    queues: list[str] | None = None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(runners_t).values(
                id=runner_id,
                host=host,
                pid=pid,
                started_at=db_now(),
                heartbeat_at=db_now(),
                concurrency=concurrency,
                scheduler_address=scheduler_address,
                dashboard_link=dashboard_link,
                queues=queues,
            )
        )


def stopped(engine: Engine, runner_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(runners_t).where(runners_t.c.id == runner_id).values(stopped_at=db_now())
        )
