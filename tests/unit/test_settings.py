"""Settings precedence: the environment, then `.streamlit/secrets.toml`, then the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from runlab.errors import InvalidParams
from runlab.settings import load_settings

DEFAULT_URL = "sqlite:///data/runlab.db"


def secrets(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "secrets.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults_apply_without_environment_or_secrets(tmp_path: Path) -> None:
    s = load_settings(environ={}, secrets_path=tmp_path / "missing.toml")

    assert s.database_url == DEFAULT_URL
    assert s.scheduler == ""
    assert s.artifacts == "data/artifacts"
    assert s.lease_seconds == 30.0


def test_secrets_beat_defaults(tmp_path: Path) -> None:
    path = secrets(
        tmp_path,
        '[runlab]\ndatabase_url = "postgresql://db/runlab"\nlease_seconds = 12\n',
    )

    s = load_settings(environ={}, secrets_path=path)

    assert s.database_url == "postgresql://db/runlab"
    assert s.lease_seconds == 12.0
    assert s.artifacts == "data/artifacts"


def test_environment_beats_secrets_and_defaults(tmp_path: Path) -> None:
    path = secrets(
        tmp_path,
        '[runlab]\ndatabase_url = "postgresql://db/runlab"\nscheduler = "tcp://a:8786"\n',
    )
    environ = {
        "RUNLAB_DATABASE_URL": "sqlite:///elsewhere.db",
        "RUNLAB_LEASE_SECONDS": "12.5",
        "DATABASE_URL": "ignored: no RUNLAB_ prefix",
        "RUNLAB_NOT_A_SETTING": "ignored",
    }

    s = load_settings(environ=environ, secrets_path=path)

    assert s.database_url == "sqlite:///elsewhere.db"
    assert s.lease_seconds == 12.5
    assert s.scheduler == "tcp://a:8786"
    assert s.artifacts == "data/artifacts"


def test_an_empty_environment_value_still_overrides(tmp_path: Path) -> None:
    path = secrets(tmp_path, '[runlab]\nscheduler = "tcp://a:8786"\n')

    assert load_settings(environ={"RUNLAB_SCHEDULER": ""}, secrets_path=path).scheduler == ""


def test_secrets_may_be_top_level_and_in_any_case(tmp_path: Path) -> None:
    path = secrets(tmp_path, 'DATABASE_URL = "postgresql://top/level"\nunknown_key = 1\n')

    assert load_settings(environ={}, secrets_path=path).database_url == "postgresql://top/level"


def test_bad_value_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidParams, match="RUNLAB_LEASE_SECONDS"):
        load_settings(environ={"RUNLAB_LEASE_SECONDS": "0"}, secrets_path=tmp_path / "none")


def test_extra_kind_modules_are_split_on_commas(tmp_path: Path) -> None:
    s = load_settings(
        environ={"RUNLAB_KIND_MODULES": " a.kinds , ,b.more "}, secrets_path=tmp_path / "none"
    )

    assert s.extra_kind_modules == ["a.kinds", "b.more"]


def test_a_bad_setting_names_its_variable(tmp_path: Path) -> None:
    with pytest.raises(InvalidParams) as caught:
        load_settings(environ={"RUNLAB_LEASE_SECONDS": "abc"}, secrets_path=tmp_path / "none")
    assert list(caught.value.errors) == ["RUNLAB_LEASE_SECONDS"]


def test_a_lease_shorter_than_two_heartbeats_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParams, match="at least twice heartbeat_seconds"):
        load_settings(
            environ={"RUNLAB_LEASE_SECONDS": "4", "RUNLAB_HEARTBEAT_SECONDS": "3"},
            secrets_path=tmp_path / "none",
        )
