"""The runner's results writer: results that arrive together share one write, and one result
the store refuses does not fail the others."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy.exc

from compute.runner import GroupCommit
from jobstore.reports import Lease
from jobstore.transitions import Success


def success(job_id: int) -> Success:
    return Success(Lease(job_id, f"j{job_id}", "k", {}, 1, "r"), {"job": job_id})


class Store:
    """Stands in for `succeed_many`: refuses job 2's result, fences out job 3."""

    def __init__(self, down: bool = False) -> None:
        self.groups: list[list[int]] = []
        self.down = down
        self.lock = threading.Lock()

    def write(self, group: list[Success]) -> set[int]:
        ids = [s.lease.job_id for s in group]
        with self.lock:
            self.groups.append(ids)
        if self.down:
            raise sqlalchemy.exc.OperationalError("x", {}, Exception("server closed"))
        if 2 in ids:
            raise ValueError("result 2 cannot be stored")
        return {i for i in ids if i != 3}


def store_together(commit: GroupCommit, ids: list[int]) -> dict[int, object]:
    def one(i: int) -> object:
        try:
            return commit.store(success(i))
        except Exception as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(len(ids)) as pool:
        return dict(zip(ids, pool.map(one, ids), strict=True))


def test_a_refused_result_fails_alone_and_a_fenced_one_reads_false() -> None:
    store = Store()
    commit = GroupCommit(store.write)
    commit.LINGER = 0.5  # type: ignore[misc]  # wide enough that all four share a group
    outcomes = store_together(commit, [1, 2, 3, 4])

    assert outcomes == {1: True, 2: "ValueError", 3: False, 4: True}
    assert sorted(store.groups[0]) == [1, 2, 3, 4]  # tried together first
    assert sorted(len(g) for g in store.groups[1:]) == [1, 1, 1, 1]  # then each alone


@pytest.mark.parametrize("ids", [[1], [1, 4]])
def test_a_store_outage_reaches_every_waiting_job(ids: list[int]) -> None:
    store = Store(down=True)
    commit = GroupCommit(store.write)
    commit.LINGER = 0.5  # type: ignore[misc]
    assert set(store_together(commit, ids).values()) == {"OperationalError"}
    assert len(store.groups) == 1  # no retry one by one: the store is simply out


def test_a_result_handed_over_is_ended_on_the_writer_and_each_group_is_followed_once() -> None:
    store = Store()
    events: list[tuple[str, object]] = []
    lock = threading.Lock()

    def after() -> None:
        with lock:
            events.append(("after", threading.current_thread().name))
        done.set()

    done = threading.Event()
    commit = GroupCommit(store.write, after=after)
    commit.LINGER = 0.5  # type: ignore[misc]

    def then(i: int):  # type: ignore[no-untyped-def]
        def ended(fut) -> None:  # type: ignore[no-untyped-def]
            outcome = type(fut.exception()).__name__ if fut.exception() else fut.result()
            with lock:
                events.append((f"job {i}", (outcome, threading.current_thread().name)))

        return ended

    for i in (1, 2, 3, 4):
        commit.submit(success(i), then(i))  # returns at once: nothing waits for the store
    assert done.wait(10)
    jobs = dict(e for e in events if e[0].startswith("job"))
    assert jobs == {
        "job 1": (True, "results"),
        "job 2": ("ValueError", "results"),
        "job 3": (False, "results"),
        "job 4": (True, "results"),
    }
    assert events[-1] == ("after", "results")  # after every job of the group
    assert [e for e in events if e[0] == "after"] == [("after", "results")]
