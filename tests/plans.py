"""What the store's reads ask the database, and how it answers: for the tests and benchmarks
that hold a read to its indexes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, text

from jobstore.engine import is_postgres


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements `engine` runs inside the block, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(conn: Connection, seen: Iterable[tuple[str, Any]]) -> list[str]:
    """The plan of each statement, as text.

    On tables as small as a test's, PostgreSQL's planner would rather scan: sequential scans
    are turned off on `conn`, so a plan shows one only where no index can serve.
    """
    if is_postgres(conn):
        conn.execute(text("SET enable_seqscan = off"))
        return [
            "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}", p)) for sql, p in seen
        ]
    return [
        "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", p))
        for sql, p in seen
    ]


def sqlite_full_scans(plans: Sequence[str], tables: Iterable[str]) -> list[str]:
    """The lines of SQLite plans that read one of `tables` whole: "SCAN <table>" with no index."""
    scans = [["SCAN", t] for t in tables]
    return [
        line
        for plan in plans
        for line in plan.splitlines()
        if line.split()[:2] in scans and "INDEX" not in line
    ]
