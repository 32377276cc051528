"""A SQLite store's write-lock wait: 30 s unless its URL's `timeout` says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from jobstore.engine import make_engine
from runlab.errors import InvalidParams


def busy_timeout_ms(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("PRAGMA busy_timeout")).scalar_one())
    finally:
        engine.dispose()


def test_a_writer_waits_30_s_for_the_lock_by_default(tmp_path: Path) -> None:
    assert busy_timeout_ms(f"sqlite:///{tmp_path / 'runlab.db'}") == 30_000


def test_the_urls_timeout_sets_the_wait(tmp_path: Path) -> None:
    assert busy_timeout_ms(f"sqlite:///{tmp_path / 'runlab.db'}?timeout=2.5") == 2_500


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "nan", "inf", "3601"])
def test_a_timeout_that_is_not_a_sensible_number_of_seconds_is_refused(
    tmp_path: Path, bad: str
) -> None:
    with pytest.raises(InvalidParams) as refused:
        make_engine(f"sqlite:///{tmp_path / 'runlab.db'}?timeout={bad}")
    assert refused.value.errors == {
        "RUNLAB_DATABASE_URL": "timeout must be a number of seconds, above 0 and at most 3600; "
        f"got {bad!r}"
    }
