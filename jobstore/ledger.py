"""The event ledger: every transition, request and log line of a job, in the database's clock.

Events are only ever appended, in the same transaction as the write they describe, so the
Timeline and `runlab doctor` read what the state machine did, not what a caller meant to do.
"""

from __future__ import annotations

import logging
import selectors
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, insert, text

from jobstore import wake
from jobstore.engine import db_now, is_postgres
from jobstore.models import JobEvent, Status, table_of

log = logging.getLogger(__name__)

events_t = table_of(JobEvent)

# On PostgreSQL a new or requeued job wakes the runners listening here at once; on SQLite,
# their sockets (`jobstore.wake`).
NOTIFY_CHANNEL = "runlab_jobs"
LISTEN_STOP_CHECK = 5.0  # seconds between a listening thread's looks at its stop event

_INSERT_EVENT = insert(events_t).values(at=db_now())


def event_row(
    job_id: int,
    attempt: int,
    message: str,
    *,
    kind: str = "transition",
    runner_id: str | None = None,
    from_status: Status | None = None,
    to_status: Status | None = None,
    level: str | None = None,
    detail: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """One event's parameters for `insert_events`, which stamps it with the database's clock.
    `actor` is the person who asked for it, where one did."""
    return {
        "job_id": job_id,
        "attempt": attempt,
        "runner_id": runner_id,
        "kind": kind,
        "from_status": from_status,
        "to_status": to_status,
        "level": level,
        "message": message,
        "detail": detail,
        "actor": actor or None,
    }


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Many events in one executemany, each stamped by the database's clock."""
    if rows:
        conn.execute(_INSERT_EVENT, rows)


def notify(conn: Connection) -> None:
    """Tell idle runners that a job is due; sent when the transaction commits, and not at all
    if it rolls back. PostgreSQL: NOTIFY. SQLite: a byte to each runner's socket."""
    if is_postgres(conn):
        conn.execute(text("SELECT pg_notify(:ch, '')"), {"ch": NOTIFY_CHANNEL})
    else:
        wake.after_commit(conn)


def listen(
    engine: Engine, stop: threading.Event, wake: Callable[[], None], *, retry_after: float
) -> None:
    """Call `wake` on each NOTIFY of new work until `stop` is set; PostgreSQL only.

    LISTEN needs a connection of its own outside any pool, held open for the runner's life.
    When it is lost, the caller's polling covers the gap: this waits `retry_after` seconds and
    listens again.
    """
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                with selectors.DefaultSelector() as socket:
                    socket.register(conn.fileno(), selectors.EVENT_READ)
                    while not stop.is_set():
                        # psycopg's own wait for a notification wakes ten times a second, to
                        # stay open to Ctrl-C: a tenth of a percent of a core for an idle
                        # runner. This sleeps until the server sends something, and looks at
                        # `stop` every few seconds; a closed connection reads as ready, and
                        # draining it raises.
                        if socket.select(LISTEN_STOP_CHECK):
                            for _ in conn.notifies(timeout=0):
                                wake()
        except Exception:
            log.debug("LISTEN connection lost; polling until it is back", exc_info=True)
            stop.wait(retry_after)
