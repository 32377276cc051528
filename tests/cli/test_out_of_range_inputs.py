"""Out-of-range input on the command line is a message and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runlab.cli import cli


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLAB_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("RUNLAB_ARTIFACTS", str(tmp_path / "artifacts"))


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    # A refusal exits through SystemExit; any other exception is a traceback a user would see.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("created:9999-12-31", "date out of range"),
        ("created>=0001-01-01T00:00:00+14:00", "date out of range"),
        ("created>=99999999999999d", "too long ago"),
        ("owner:\x00", "must not contain a NUL byte"),
    ],
)
def test_ls_refuses_a_search_out_of_range_with_a_message(query: str, says: str) -> None:
    result = run("ls", "-q", query)
    assert result.exit_code == 2
    assert says in result.stderr


def test_purge_refuses_an_age_past_any_timedelta() -> None:
    result = run("purge", "--older-than", "99999999999999999999d")
    assert result.exit_code == 2
    assert "must be at most 36500d" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RUNLAB_PURGE_AFTER", "99999999999999999999d"),
        ("RUNLAB_LEASE_SECONDS", "inf"),
        ("RUNLAB_HEARTBEAT_SECONDS", "nan"),
    ],
)
def test_every_command_names_a_bad_setting_instead_of_crashing(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = run("ls")
    assert result.exit_code == 2
    assert f"error: {variable}: " in result.stderr
