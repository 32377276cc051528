"""Waking idle runners at once on SQLite, which has no LISTEN/NOTIFY.

On PostgreSQL a commit that queues work wakes every listening runner through NOTIFY
(`jobstore.ledger`). SQLite has nothing of the kind, and a faster poll would only trade an idle
runner's CPU, for ever, against a latency that stays half the poll period. So each runner on a
SQLite store binds a Unix datagram socket in a folder beside the database file,
`<file>.wake/<runner id>.sock`, and whoever commits new or requeued work sends one byte to every
socket there once the transaction has committed (`after_commit`). The byte means only "look
again": the store stays the only truth, and a wake-up lost or sent twice costs one claim round
at most, while the runner's long fallback poll (`RUNLAB_POLL_SECONDS`) still covers anything
missed. An idle runner sleeps in `recv` and costs nothing.

A send never blocks and never raises into its caller. A socket whose queue is full already has
a wake-up waiting; a socket nobody reads any more (its runner died without removing it) refuses
the byte and is removed. SQLite serves the runners of one machine, so a local socket reaches
every one of them, and the folder beside the file needs no setting: whoever may write the store
may wake its runners.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from weakref import WeakSet

from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import Pool

log = logging.getLogger(__name__)

SUFFIX = ".wake"  # the folder beside the database file
SOCKET = ".sock"
_MAX_PATH = 100  # an AF_UNIX address holds about 107 bytes; longer paths go through a dir fd
_PENDING = "runlab_wake_pending"  # on a connection's info: wake the runners at its commit
_hooked: WeakSet[Pool] = WeakSet()
_hook_lock = threading.Lock()


def folder_of(engine: Engine | Connection) -> Path | None:
    """Where the runners of a SQLite file store bind their sockets; None for PostgreSQL and for
    a store in memory, which no other process can reach."""
    url = engine.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = str(url.database)
    if database.startswith("file:"):  # a URI filename: no file of its own to sit beside
        return None
    return Path(os.path.realpath(os.path.expanduser(database)) + SUFFIX)


@contextlib.contextmanager
def _reachable(folder: Path) -> Iterator[str]:
    """`folder` as a socket address can name it: itself, or through an open descriptor of it
    when its path is longer than an AF_UNIX address holds (Linux's /proc/self/fd)."""
    if len(os.fsencode(folder)) <= _MAX_PATH:
        yield str(folder)
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def send(folder: Path | None) -> int:
    """One byte to every runner's socket in `folder`, without blocking; returns how many took
    it. No folder, or nobody in it, is no one to wake. Never raises."""
    if folder is None:
        return 0
    woken = 0
    try:
        names = [n for n in os.listdir(folder) if n.endswith(SOCKET)]
        if not names:
            return 0
        with (
            _reachable(folder) as base,
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as out,
        ):
            out.setblocking(False)
            for name in names:
                try:
                    out.sendto(b"\0", f"{base}/{name}")
                    woken += 1
                except BlockingIOError:
                    woken += 1  # its queue is full: a wake-up is waiting for it already
                except (ConnectionRefusedError, FileNotFoundError):
                    # Nobody reads it: its runner died without removing it.
                    with contextlib.suppress(OSError):
                        os.unlink(folder / name)
                        log.debug("removed the stale wake-up socket %s", folder / name)
                except OSError:
                    log.debug("could not wake %s", folder / name, exc_info=True)
    except FileNotFoundError:
        return 0  # no runner has ever listened on this store
    except Exception:
        log.debug("could not wake the runners of %s", folder, exc_info=True)
    return woken


def after_commit(conn: Connection) -> None:
    """Wake the store's runners once the transaction on `conn` has committed.

    The connection is marked; when it goes back to the pool, right after its commit, the
    runners are woken. A transaction rolled back wakes no one. Hooks on the engine's pool are
    set up on first use.
    """
    folder = folder_of(conn)
    if folder is None:
        return
    _hook(conn.engine, folder)
    conn.info[_PENDING] = True


def _hook(engine: Engine, folder: Path) -> None:
    pool = engine.pool
    if pool in _hooked:
        return
    with _hook_lock:
        if pool in _hooked:
            return

        def on_checkin(_dbapi_conn: Any, record: Any) -> None:
            info = getattr(record, "info", None)
            if info and info.pop(_PENDING, False):
                send(folder)

        def on_rollback(conn: Connection) -> None:
            conn.info.pop(_PENDING, None)

        event.listen(pool, "checkin", on_checkin)
        event.listen(engine, "rollback", on_rollback)
        _hooked.add(pool)


class Listener:
    """A runner's wake-up socket: `serve` calls `wake` for each byte sent to it, until `close`."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.path = folder / f"{name}{SOCKET}"
        folder.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # a socket left by a dead process of the same name
            with _reachable(folder) as base:
                sock.bind(f"{base}/{self.path.name}")
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._closed = threading.Event()

    @classmethod
    def open(cls, engine: Engine, name: str) -> Listener | None:
        """`name`'s socket for the store of `engine`; None where there is none to make (not a
        SQLite file, or a folder this process may not write), and then the caller polls."""
        folder = folder_of(engine)
        if folder is None:
            return None
        try:
            return cls(folder, name)
        except OSError:
            log.warning(
                "could not make a wake-up socket in %s; new jobs are noticed by polling only",
                folder,
                exc_info=True,
            )
            return None

    def serve(self, stop: threading.Event, wake: Callable[[], None]) -> None:
        """Block until a byte comes, drain the others that came with it, call `wake`; again,
        until `stop` is set or the listener is closed."""
        while not stop.is_set() and not self._closed.is_set():
            try:
                got = self._sock.recv(64)
            except OSError:
                if self._closed.is_set():
                    return
                log.debug("wake-up socket failed; the fallback poll goes on", exc_info=True)
                stop.wait(1.0)
                continue
            if not got or self._closed.is_set():
                return  # shut down by `close`
            with contextlib.suppress(OSError):
                while self._sock.recv(64, socket.MSG_DONTWAIT):
                    pass
            wake()

    def close(self) -> None:
        """Remove the socket, so that senders stop trying it, and end `serve`."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
