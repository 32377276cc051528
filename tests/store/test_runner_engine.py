"""A runner's engine: no pre-ping on PostgreSQL, and a connection the server closed costs one
failed try, never a lost write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from compute.runner import once_more_if_stale
from jobstore.engine import for_runner, is_postgres, make_engine
from tests.conftest import on_postgres_only


@pytest.fixture
def runner_engine(db_url: str) -> Iterator[Engine]:
    eng = for_runner(make_engine(db_url))
    yield eng
    eng.dispose()


def test_a_runner_writes_through_its_store_without_a_ping_before_each_transaction(
    engine: Engine, runner_engine: Engine
) -> None:
    if is_postgres(engine):
        assert engine.pool._pre_ping and not runner_engine.pool._pre_ping  # type: ignore[attr-defined]
        assert runner_engine.url == engine.url
    else:
        assert for_runner(engine) is engine  # nothing to ping: a file
    with runner_engine.begin() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


@on_postgres_only
def test_a_connection_the_server_closed_is_tried_once_more_on_a_fresh_one(
    engine: Engine, runner_engine: Engine
) -> None:
    with runner_engine.connect() as conn:  # the pooled connection the server will close
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with engine.begin() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    tries: list[int] = []

    def backend() -> int:
        tries.append(1)
        with runner_engine.begin() as conn:
            return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    assert once_more_if_stale(backend) != pid
    assert len(tries) == 2  # the first met the closed connection


def test_other_store_errors_are_not_tried_again(runner_engine: Engine) -> None:
    tries: list[int] = []

    def bad() -> None:
        tries.append(1)
        with runner_engine.begin() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(Exception, match="no_such_table"):
        once_more_if_stale(bad)
    assert len(tries) == 1
