"""One settings object, read once: environment, then `.streamlit/secrets.toml`, then defaults.

Every number is finite and bounded, and no text holds a control character: a value such as
`RUNLAB_LEASE_SECONDS=inf` would start a runner whose jobs are never taken back, so each bad
value is an `InvalidParams` naming its variable, before anything starts.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jobstore.retention import Policy, parse_age, parse_statuses
from runlab.errors import InvalidParams
from runlab.text import bad_character

SECRETS_FILE = Path(".streamlit/secrets.toml")
ENV_PREFIX = "RUNLAB_"
DAY = 86400.0
HOUR = 3600.0
MINUTE = 60.0
TEXT_SETTINGS = (
    "database_url",
    "scheduler",
    "artifacts",
    "user",
    "kind_modules",
    "purge_after",
    "purge_statuses",
)


class Settings(BaseModel):
    # nan and inf are refused for every float: an infinite lease never lapses, so a claimed
    # job would never be taken back from a runner that died.
    model_config = ConfigDict(allow_inf_nan=False)

    database_url: str = "sqlite:///data/runlab.db"
    scheduler: str = Field("", description="Dask scheduler address; empty starts a LocalCluster")
    artifacts: str = "data/artifacts"
    user: str = ""
    lease_seconds: float = Field(
        30.0,
        gt=0,
        le=DAY,
        description="how long a claim holds without a heartbeat; at most a day (86400)",
    )
    heartbeat_seconds: float = Field(
        5.0, gt=0, le=HOUR, description="period of a runner's heartbeat; at most an hour (3600)"
    )
    poll_seconds: float = Field(
        0.2, gt=0, le=MINUTE, description="idle runner's poll period on SQLite; at most 60"
    )
    progress_write_seconds: float = Field(
        0.25, gt=0, le=MINUTE, description="throttle of a job's writes; at most 60"
    )
    retry_backoff_seconds: float = Field(
        5.0,
        ge=0,
        le=HOUR,
        description="first wait before a job whose lease lapsed runs again; at most 3600",
    )
    grace_seconds: float = Field(
        30.0,
        ge=0,
        le=DAY,
        description="on SIGTERM, how long running jobs may take before handed back; "
        "at most a day (86400)",
    )
    no_worker_seconds: float = Field(
        60.0,
        gt=0,
        le=DAY,
        description="how long a running job waits while its Dask cluster has no worker, "
        "before it is handed back uncharged; at most a day (86400)",
    )
    kind_modules: str = Field("", description="comma-separated modules that register more kinds")
    purge_after: str = Field(
        "", description="runners purge finished jobs older than this (30d, 12h); empty: never"
    )
    purge_statuses: str = Field(
        "succeeded,failed,cancelled", description="which finished jobs the scheduled purge takes"
    )

    @field_validator(*TEXT_SETTINGS)
    @classmethod
    def _printable(cls, value: str) -> str:
        # A NUL cannot go into a path, a URL or PostgreSQL text (the owner of every job).
        why = bad_character(value)
        if why is not None:
            raise ValueError(why)
        return value

    @field_validator("purge_after")
    @classmethod
    def _an_age_or_empty(cls, value: str) -> str:
        if value.strip():
            parse_age(value)
        return value.strip()

    @field_validator("purge_statuses")
    @classmethod
    def _finished_statuses(cls, value: str) -> str:
        parse_statuses(value)
        return value

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> Settings:
        # A lease that lapses between two heartbeats would let a healthy job be taken away.
        if self.lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must be at least twice "
                f"heartbeat_seconds ({self.heartbeat_seconds:g})"
            )
        return self

    @property
    def owner(self) -> str:
        if self.user:
            return self.user
        try:
            return getpass.getuser()
        except Exception:  # no passwd entry, as in some containers
            return "unknown"

    @property
    def purge_policy(self) -> Policy | None:
        """The scheduled purge, or None when it is off (the default)."""
        if not self.purge_after:
            return None
        return Policy(parse_age(self.purge_after), parse_statuses(self.purge_statuses))

    @property
    def extra_kind_modules(self) -> list[str]:
        return [m.strip() for m in self.kind_modules.split(",") if m.strip()]


def _secrets(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParams({str(path): f"not valid TOML: {exc}"}) from None
    section = data.get("runlab", data)
    if not isinstance(section, dict):
        raise InvalidParams({str(path): "[runlab] must be a table of settings"})
    return {k.lower(): v for k, v in section.items() if isinstance(k, str)}


def load_settings(
    environ: Mapping[str, str] | None = None, secrets_path: Path = SECRETS_FILE
) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    known = set(Settings.model_fields)
    for key, value in _secrets(secrets_path).items():
        if key in known:
            values[key] = value
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX) :].lower()
            if key in known:
                values[key] = value
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        errors = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "settings"
            name = f"{ENV_PREFIX}{field.upper()}" if field != "settings" else field
            errors[name] = str(err.get("ctx", {}).get("error", err["msg"]))
        raise InvalidParams(errors) from None
