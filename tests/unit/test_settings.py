"""Settings precedence: the environment, then `.streamlit/secrets.toml`, then the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from runlab.errors import InvalidParams
from runlab.settings import Settings, data_dir, default_database_url, load_settings

DEFAULT_URL = default_database_url()
DEFAULT_ARTIFACTS = str(data_dir() / "artifacts")


def secrets(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "secrets.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults_apply_without_environment_or_secrets(tmp_path: Path) -> None:
    s = load_settings(environ={}, secrets_path=tmp_path / "missing.toml")

    assert s.database_url == DEFAULT_URL
    assert s.scheduler == ""
    assert s.artifacts == DEFAULT_ARTIFACTS
    assert s.lease_seconds == 30.0


def test_secrets_beat_defaults(tmp_path: Path) -> None:
    path = secrets(
        tmp_path,
        '[runlab]\ndatabase_url = "postgresql://db/runlab"\nlease_seconds = 12\n',
    )

    s = load_settings(environ={}, secrets_path=path)

    assert s.database_url == "postgresql://db/runlab"
    assert s.lease_seconds == 12.0
    assert s.artifacts == DEFAULT_ARTIFACTS


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
    assert s.artifacts == DEFAULT_ARTIFACTS


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


FLOATS = [name for name, f in Settings.model_fields.items() if f.annotation is float]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e309", "Infinity"])
@pytest.mark.parametrize("name", FLOATS)
def test_no_float_setting_takes_infinity_or_nan(tmp_path: Path, name: str, value: str) -> None:
    variable = f"RUNLAB_{name.upper()}"
    with pytest.raises(InvalidParams) as caught:
        load_settings(environ={variable: value}, secrets_path=tmp_path / "none")
    assert caught.value.errors == {variable: "Input should be a finite number"}


def test_an_infinite_lease_is_refused_so_a_dead_runners_jobs_come_back(tmp_path: Path) -> None:
    with pytest.raises(InvalidParams, match="RUNLAB_LEASE_SECONDS"):
        load_settings(environ={"RUNLAB_LEASE_SECONDS": "inf"}, secrets_path=tmp_path / "none")


@pytest.mark.parametrize(
    ("name", "most"),
    [
        ("lease_seconds", 86400),
        ("heartbeat_seconds", 3600),
        ("poll_seconds", 60),
        ("progress_write_seconds", 60),
        ("retry_backoff_seconds", 3600),
        ("grace_seconds", 86400),
    ],
)
def test_each_period_has_a_stated_maximum(tmp_path: Path, name: str, most: int) -> None:
    variable = f"RUNLAB_{name.upper()}"
    lease = {"RUNLAB_LEASE_SECONDS": "86400"} if name == "heartbeat_seconds" else {}
    ok = load_settings(environ={**lease, variable: str(most)}, secrets_path=tmp_path / "none")
    assert getattr(ok, name) == most
    with pytest.raises(InvalidParams) as caught:
        load_settings(environ={**lease, variable: str(most + 1)}, secrets_path=tmp_path / "none")
    assert list(caught.value.errors) == [variable]
    assert f"{most}" in (Settings.model_fields[name].description or "")


def test_a_purge_age_past_any_timedelta_is_refused_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(InvalidParams) as caught:
        load_settings(
            environ={"RUNLAB_PURGE_AFTER": "99999999999999999999d"},
            secrets_path=tmp_path / "none",
        )
    assert caught.value.errors == {"RUNLAB_PURGE_AFTER": "must be at most 36500d"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RUNLAB_USER", "ann\x00"),
        ("RUNLAB_USER", "ann\x1b[2J"),
        ("RUNLAB_DATABASE_URL", "sqlite:///data/run\x00lab.db"),
        ("RUNLAB_ARTIFACTS", "data/\x00"),
        ("RUNLAB_SCHEDULER", "tcp://a:8786\n"),
    ],
)
def test_control_characters_in_text_settings_are_refused(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(InvalidParams) as caught:
        load_settings(environ={variable: value}, secrets_path=tmp_path / "none")
    assert list(caught.value.errors) == [variable]
    assert "must not contain" in caught.value.errors[variable]


@pytest.mark.parametrize("body", ["lease_seconds = ", b"\xff\xfe = 1", "runlab = 3"])
def test_a_broken_secrets_file_is_named_in_the_error(tmp_path: Path, body: str | bytes) -> None:
    path = tmp_path / "secrets.toml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    with pytest.raises(InvalidParams) as caught:
        load_settings(environ={}, secrets_path=path)
    assert list(caught.value.errors) == [str(path)]


def test_a_bad_value_in_the_secrets_file_is_named_by_its_variable(tmp_path: Path) -> None:
    path = secrets(tmp_path, '[runlab]\nlease_seconds = "abc"\n')
    with pytest.raises(InvalidParams) as caught:
        load_settings(environ={}, secrets_path=path)
    assert list(caught.value.errors) == ["RUNLAB_LEASE_SECONDS"]


def test_only_the_upper_case_prefix_is_read(tmp_path: Path) -> None:
    s = load_settings(
        environ={"runlab_user": "low", "RUNLAB_Kind_Modules": "a.kinds"},
        secrets_path=tmp_path / "none",
    )
    assert (s.user, s.kind_modules) == ("", "a.kinds")


def test_with_no_arguments_the_process_environment_and_the_apps_file_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the app's .streamlit/secrets.toml is looked for
    (tmp_path / ".streamlit").mkdir()
    secrets(tmp_path / ".streamlit", '[runlab]\nuser = "from-file"\nlease_seconds = 40\n')
    monkeypatch.setenv("RUNLAB_USER", "from-env")

    for s in (load_settings(), Settings()):
        assert (s.user, s.lease_seconds) == ("from-env", 40.0)


def test_the_default_store_is_in_the_users_data_folder_whatever_the_working_one(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.database_url == f"sqlite:///{tmp_path / 'share' / 'runlab' / 'runlab.db'}"
    assert s.artifacts == str(tmp_path / "share" / "runlab" / "artifacts")
