"""What the CLI tests share: a fresh SQLite store named by the environment, and one way to run
a command in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from jobstore import queries
from jobstore.engine import make_engine, migrate
from runlab.cli import cli


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RUNLAB_DATABASE_URL", url)
    return url


def run(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `runlab ARGS`."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def job_count(url: str) -> int:
    engine = make_engine(url)
    migrate(engine)  # the command may have failed before it ever opened the store
    try:
        return queries.list_jobs(engine).total
    finally:
        engine.dispose()
