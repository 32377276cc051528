"""The runner's LISTEN thread on PostgreSQL: woken by each NOTIFY, and listening again after its
connection is cut."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psutil
import pytest
from sqlalchemy import Engine, text

from jobstore import ledger
from tests.conftest import on_postgres_only
from tests.polling import wait_for

RETRY = 0.2  # seconds before listening again on a fresh connection


class Listening:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.stop = threading.Event()
        self.woken = 0
        self.thread = threading.Thread(
            target=ledger.listen,
            args=(engine, self.stop, self.wake),
            kwargs={"retry_after": RETRY},
            daemon=True,
        )

    def wake(self) -> None:
        self.woken += 1

    def backends(self) -> list[int]:
        """The server processes of this test's LISTEN connections; other tests may listen too."""
        ports = [c.laddr.port for c in psutil.Process().net_connections("tcp") if c.raddr]
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE query LIKE 'LISTEN %' AND client_port = ANY(:ports)"
                    ),
                    {"ports": ports},
                ).scalars()
            )

    def notify_until_woken(self) -> None:
        """NOTIFY until the listener has seen one: it may be between connections."""
        before = self.woken

        def woken() -> bool:
            with self.engine.begin() as conn:
                ledger.notify(conn)
            return self.woken > before

        wait_for(woken, timeout=20, what="the listener to be woken by a NOTIFY")


@pytest.fixture
def listening(engine: Engine) -> Iterator[Listening]:
    listener = Listening(engine)
    listener.thread.start()
    wait_for(listener.backends, timeout=20, what="the LISTEN connection")
    yield listener
    listener.stop.set()
    listener.thread.join(timeout=ledger.LISTEN_STOP_CHECK + 5)
    assert not listener.thread.is_alive(), "the listener did not stop"


@on_postgres_only
def test_each_notify_wakes_the_listener_and_a_cut_connection_is_listened_on_again(
    engine: Engine, listening: Listening
) -> None:
    listening.notify_until_woken()
    (pid,) = listening.backends()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    wait_for(
        lambda: listening.backends() not in ([], [pid]),
        timeout=20,
        what="a fresh LISTEN connection",
    )
    listening.notify_until_woken()
