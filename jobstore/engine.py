"""One engine per process, set up for its backend, plus the database clock and migrations."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, Engine, Float, Integer, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from jobstore import jsonb
from runlab.errors import InvalidParams, StoreBusy

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_SECONDS = 30.0  # unless the URL says otherwise: sqlite:///runlab.db?timeout=5
SQLITE_BUSY_MAX = 3600.0
RECYCLE_SECONDS = 300  # a connection's life in a pool without pre-ping (see `make_engine`)
READONLY = "runlab_readonly"
# On PostgreSQL, how long a session may sit inside a transaction between two statements before
# the server ends it. A runner cut off from the network mid-transaction keeps its row locks until
# the server notices it is gone, which without this takes as long as TCP's own timeouts (minutes,
# or hours for an idle socket); meanwhile a cancel on that job waits. Runlab's transactions go
# from one statement to the next without pausing, so only a client that is gone reaches it.
IDLE_IN_TRANSACTION_SECONDS = 60
# And the server's TCP keepalives on each session: a peer silent this long is probed, and given
# up after a few probes, so that a vanished client's session does not wait on a dead socket.
KEEPALIVE_IDLE_SECONDS = 30
KEEPALIVE_INTERVAL_SECONDS = 10
KEEPALIVE_PROBES = 3
_MIGRATE_LOCK = threading.Lock()


def make_engine(url: str, *, pre_ping: bool = True) -> Engine:
    """An engine for `url`; a SQLite file's folder is made if missing.

    A SQLite URL's `timeout` (seconds, as pysqlite spells it) is how long a writer waits for
    another process's write lock before the store answers "busy".

    On PostgreSQL, `pre_ping` checks each pooled connection with a round trip as it is taken,
    so that a page never meets a connection the server closed (it restarted, say). Without it
    (a runner's engine: `for_runner`), such a connection fails its first statement instead, and
    SQLAlchemy then drops every connection the pool held before the failure.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        busy = sqlite_busy_seconds(url)
        parsed = parsed.difference_update_query(["timeout"])
        engine = create_engine(parsed, connect_args={"timeout": busy})
        _setup_sqlite(engine, busy)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(
        parsed,
        pool_pre_ping=pre_ping,
        # Without the ping, connections are renewed every few minutes all the same, before a
        # firewall or a server's idle timeout closes them unseen.
        pool_recycle=-1 if pre_ping else RECYCLE_SECONDS,
        pool_size=10,
        max_overflow=20,
        json_serializer=jsonb.dumps,
    )
    _setup_postgres(engine)
    return engine


def _setup_postgres(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Session settings, not startup options: a pooler in front of the server may refuse
        # those. SET outside a transaction, so that it holds for the session.
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        try:
            dbapi_conn.execute(
                f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_SECONDS}s';"
                f"SET tcp_keepalives_idle = {KEEPALIVE_IDLE_SECONDS};"
                f"SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL_SECONDS};"
                f"SET tcp_keepalives_count = {KEEPALIVE_PROBES}"
            )
        finally:
            dbapi_conn.autocommit = autocommit


def for_runner(engine: Engine) -> Engine:
    """The engine a runner writes through: on PostgreSQL, the same store without the pool's
    pre-ping, a round trip before every transaction, which a runner makes hundreds of a
    second; it meets a closed connection as a failed write instead, which it retries anyway
    (`compute.runner`). SQLite's engine is returned as it is."""
    if not is_postgres(engine):
        return engine
    return make_engine(engine.url.render_as_string(hide_password=False), pre_ping=False)


def stale_connection(exc: BaseException) -> bool:
    """Whether a store error came from a pooled connection the server had closed: the pool
    has since dropped every connection as old, so a second try gets a fresh one."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def sqlite_busy_seconds(url: str) -> float:
    """The write-lock wait a SQLite URL asks for with `?timeout=`, or the default 30 s."""
    raw = make_url(url).query.get("timeout", str(SQLITE_BUSY_SECONDS))
    try:
        seconds = float(raw if isinstance(raw, str) else raw[-1])
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= SQLITE_BUSY_MAX:  # also refuses nan
        raise InvalidParams(
            {
                "RUNLAB_DATABASE_URL": f"timeout must be a number of seconds, above 0 and at most "
                f"{SQLITE_BUSY_MAX:g}; got {raw!r}"
            }
        )
    return seconds


def _setup_sqlite(engine: Engine, busy: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below instead of pysqlite's own.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={round(busy * 1000)}")
        _enable_wal(cur, busy)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        # Raised here, it replaces SQLAlchemy's error once the transaction is rolled back.
        if store_busy(ctx.original_exception):
            raise StoreBusy(busy) from ctx.sqlalchemy_exception

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # BEGIN IMMEDIATE for writers: a deferred transaction that reads and then writes gets
        # SQLITE_BUSY at once, whatever busy_timeout says. Readers stay deferred so that they
        # never wait for a writer under WAL.
        if conn.get_execution_options().get(READONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _enable_wal(cur: Any, busy: float) -> None:
    """Switch a file to WAL once; it stays WAL for every later connection.

    The switch needs the file to itself and does not wait on busy_timeout, so processes that
    open a fresh file together retry it, with backoff, for as long as busy_timeout allows.
    """
    deadline = time.monotonic() + busy
    delay = 0.005
    while True:
        try:
            mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() in ("wal", "memory"):
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A consistent read-only snapshot that never takes SQLite's write lock."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{READONLY: True})
        with conn.begin():
            yield conn


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


class db_now(FunctionElement[Any]):
    """The database's clock: the one clock that leases compare across processes."""

    type = DateTime(timezone=True)
    inherit_cache = True


class db_later(FunctionElement[Any]):
    """The database's clock plus a number of seconds (a bound parameter)."""

    type = DateTime(timezone=True)
    inherit_cache = True


@compiles(db_now, "sqlite")
def _now_sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    return "strftime('%Y-%m-%d %H:%M:%f', 'now')"


@compiles(db_now, "postgresql")
def _now_pg(element: db_now, compiler: Any, **kw: Any) -> str:
    return "clock_timestamp()"


@compiles(db_later, "sqlite")
def _later_sqlite(element: db_later, compiler: Any, **kw: Any) -> str:
    secs = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', {secs}))"


@compiles(db_later, "postgresql")
def _later_pg(element: db_later, compiler: Any, **kw: Any) -> str:
    secs = compiler.process(element.clauses, **kw)
    return f"(clock_timestamp() + make_interval(secs => {secs}))"


@functools.cache
def _config() -> tuple[Config, frozenset[str]]:
    """Alembic's config and the heads of our migrations, read from disk once per process."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg, frozenset(ScriptDirectory.from_config(cfg).get_heads())


def revision(engine: Engine) -> str | None:
    """The store's schema revision (None: an empty database), read without a write lock."""
    with reading(engine) as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(current)) or None


def schema_behind(engine: Engine) -> bool:
    """Whether the store's schema lacks a migration; asked in a read, which on SQLite never
    waits for another process's write lock."""
    _cfg, heads = _config()
    with reading(engine) as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return frozenset(current) != heads


def migrate(engine: Engine) -> None:
    """`alembic upgrade head` when the schema is behind, safe when several processes start
    at once.

    The check is a read, so a command that finds the schema current (every one but the first
    after an upgrade) takes no write lock: `runlab ls` answers while another process holds
    SQLite's. SQLite serialises the upgrade through BEGIN IMMEDIATE, PostgreSQL through an
    advisory lock taken in env.py; the loser then finds the schema at head and does nothing.
    """
    if not schema_behind(engine):
        return
    cfg, _heads = _config()
    # Alembic keeps its context in module globals, so threads of one process take turns.
    with _MIGRATE_LOCK, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def store_busy(exc: BaseException) -> bool:
    """Whether a database error means another process held SQLite's write lock for longer
    than `busy_timeout`: worth a plain "busy, try again", not a traceback."""
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def database_time(conn: Connection) -> Any:
    return conn.execute(select(db_now())).scalar_one()


class seconds_since(FunctionElement[Any]):
    """Seconds from a timestamp column to the database's clock now."""

    type = Float()
    inherit_cache = True


@compiles(seconds_since, "sqlite")
def _since_sqlite(element: seconds_since, compiler: Any, **kw: Any) -> str:
    col = compiler.process(element.clauses, **kw)
    return f"((julianday('now') - julianday({col})) * 86400.0)"


@compiles(seconds_since, "postgresql")
def _since_pg(element: seconds_since, compiler: Any, **kw: Any) -> str:
    col = compiler.process(element.clauses, **kw)
    return f"EXTRACT(EPOCH FROM (clock_timestamp() - {col}))"


class whole(FunctionElement[Any]):
    """The whole part of a number that is not negative, as an integer, on both backends:
    SQLite may lack floor(), and PostgreSQL's cast rounds."""

    type = Integer()
    inherit_cache = True


@compiles(whole, "sqlite")
def _whole_sqlite(element: whole, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(whole, "postgresql")
def _whole_pg(element: whole, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor({compiler.process(element.clauses, **kw)}) AS INTEGER)"
