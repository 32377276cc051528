"""SQLite's wake-up sockets (`jobstore.wake`): who is woken, when, and what is cleaned up."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from jobstore import ledger, wake
from jobstore.engine import make_engine
from tests.polling import wait_for


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'runlab.db'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    yield eng
    eng.dispose()


class Woken:
    """A listener served on a thread of its own, counting its wake-ups."""

    def __init__(self, listener: wake.Listener, on_wake: object = None) -> None:
        self.listener = listener
        self.count = 0
        self.seen: list[object] = []
        self._on_wake = on_wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=listener.serve, args=(self._stop, self._wake))
        self._thread.start()

    def _wake(self) -> None:
        if callable(self._on_wake):
            self.seen.append(self._on_wake())
        self.count += 1

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()


def test_sending_with_no_runner_is_a_no_op_and_makes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "runlab.db.wake"
    assert wake.send(folder) == 0
    assert not folder.exists()
    folder.mkdir()
    assert wake.send(folder) == 0
    assert wake.send(None) == 0


def test_a_stale_socket_is_ignored_and_removed_while_a_live_one_is_woken(tmp_path: Path) -> None:
    folder = tmp_path / "runlab.db.wake"
    folder.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(folder / "dead-runner.sock"))
    dead.close()  # its runner died without removing it
    (folder / "notes.txt").write_text("not a socket of ours")
    live = Woken(wake.Listener(folder, "live-runner"))
    try:
        assert wake.send(folder) == 1
        wait_for(lambda: live.count >= 1, timeout=10, what="the live runner to be woken")
        assert sorted(p.name for p in folder.iterdir()) == ["live-runner.sock", "notes.txt"]
    finally:
        live.close()
    assert not (folder / "live-runner.sock").exists()  # a runner removes its own on close


def test_a_full_queue_of_wake_ups_never_blocks_the_sender(tmp_path: Path) -> None:
    folder = tmp_path / "runlab.db.wake"
    listener = wake.Listener(folder, "busy")  # bound, never read
    try:
        for _ in range(2000):  # far past a datagram queue's length
            assert wake.send(folder) == 1
    finally:
        listener.close()


def test_a_folder_past_a_socket_address_length_still_works(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    eng = make_engine(f"sqlite:///{deep / 'runlab.db'}")
    folder = wake.folder_of(eng)
    assert folder is not None and len(str(folder / "runner.sock")) > 108
    woken = Woken(wake.Listener(folder, "runner"))
    try:
        assert wake.send(folder) == 1
        wait_for(lambda: woken.count >= 1, timeout=10, what="a wake-up through a long path")
    finally:
        woken.close()
        eng.dispose()


def test_a_commit_wakes_after_it_is_visible_and_a_rollback_wakes_no_one(store: Engine) -> None:
    folder = wake.folder_of(store)
    assert folder is not None and folder.name == "runlab.db.wake"

    def rows() -> int:  # read at the wake-up, on a connection of its own
        with store.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())

    woken = Woken(wake.Listener(folder, "runner"), rows)
    try:
        with store.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            ledger.notify(conn)
        wait_for(lambda: woken.count >= 1, timeout=10, what="the wake-up of a commit")
        assert woken.seen == [1]  # the runner woken finds the row committed

        with pytest.raises(RuntimeError), store.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
            ledger.notify(conn)
            raise RuntimeError("rolled back")
        with store.begin() as conn:  # a later commit that asks for no wake-up
            conn.execute(text("INSERT INTO t VALUES (3)"))
        with store.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (4)"))
            ledger.notify(conn)
        wait_for(lambda: woken.count >= 2, timeout=10, what="the next commit's wake-up")
        assert woken.seen == [1, 3]  # only the commits that notified, never the rollback
    finally:
        woken.close()


def test_postgresql_and_memory_stores_have_no_folder() -> None:
    assert wake.folder_of(make_engine("sqlite://")) is None
    assert wake.folder_of(make_engine("postgresql://u@127.0.0.1:1/none")) is None
