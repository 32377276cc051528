"""One settings object, read once: environment, then `.streamlit/secrets.toml`, then defaults.

pydantic-settings reads both sources: `RUNLAB_`-prefixed variables, and the file's `[runlab]`
table (or its top level), keys in any case. Every number is finite and bounded, and no text
holds a control character: a value such as `RUNLAB_LEASE_SECONDS=inf` would start a runner
whose jobs are never taken back, so each bad value is an `InvalidParams` naming its variable,
before anything starts.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from runlab.errors import InvalidParams
from runlab.purge_policy import Policy, parse_age, parse_statuses
from runlab.text import bad_character

SECRETS_FILE = Path(".streamlit/secrets.toml")
ENV_PREFIX = "RUNLAB_"
DAY = 86400.0
HOUR = 3600.0
MINUTE = 60.0
TEXT_SETTINGS = (
    "database_url",
    "dashboard",
    "scheduler",
    "artifacts",
    "artifacts_endpoint",
    "artifacts_region",
    "artifacts_key_id",
    "artifacts_secret",
    "user",
    "kind_modules",
    "purge_after",
    "purge_statuses",
    "admins",
    "admin_groups",
    "groups_claim",
)

# Where `Settings()` reads from: the process's environment and SECRETS_FILE, unless
# `load_settings` names others for its one call (as tests do, leaving os.environ alone).
_SOURCES: ContextVar[tuple[Mapping[str, str], Path] | None] = ContextVar(
    "runlab_settings_sources", default=None
)


def data_dir() -> Path:
    """The user's own Runlab folder: `$XDG_DATA_HOME/runlab`, by default
    `~/.local/share/runlab` on Linux (platformdirs)."""
    return Path(platformdirs.user_data_dir("runlab", appauthor=False))


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'runlab.db'}"


class _Environment(EnvSettingsSource):
    """`RUNLAB_` variables of a given mapping. Only the upper-case prefix counts, as a shell
    spells it; the rest of the name is matched in any case."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if k.startswith(ENV_PREFIX)}


class _SecretsFile(TomlConfigSettingsSource):
    """The `[runlab]` table of a TOML file, or its top level when it has none; a missing file
    gives nothing, and a broken one an InvalidParams naming the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls, toml_file=path)

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            with file_path.open("rb") as fh:
                data = tomllib.load(fh)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidParams({str(file_path): f"not valid TOML: {exc}"}) from None
        section = data.get("runlab", data)
        if not isinstance(section, dict):
            raise InvalidParams({str(file_path): "[runlab] must be a table of settings"})
        return {k.lower(): v for k, v in section.items() if isinstance(k, str)}


DEFAULT_QUEUE = "default"
QUEUE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
QUEUE_NAME_RULE = (
    "1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or a digit"
)


class QueueSpec(BaseModel):
    """One named queue: how many of its jobs may run at once across every runner, and the Dask
    worker resources each of its tasks needs (`{"GPU": 1}` sends them only to workers started
    with `--resources GPU=1`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    limit: int | None = Field(default=None, ge=1, le=1_000_000)
    resources: dict[str, float] = Field(default_factory=dict)

    @field_validator("resources")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if not name or bad_character(name) or amount <= 0:
                raise ValueError(f"resource {name!r} must be named and above 0")
        return value


# A runner beats every heartbeat_seconds; missing three beats in a row means it is gone.
MISSED_BEATS = 3


class Settings(BaseSettings):
    # nan and inf are refused for every float: an infinite lease never lapses, so a claimed
    # job would never be taken back from a runner that died. Unknown keys are ignored.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", allow_inf_nan=False)

    # In the user's data folder, not the working one: `runlab submit` from any folder, the
    # runner and the app all find the same store.
    database_url: str = Field(default_factory=lambda: default_database_url())
    scheduler: str = Field(
        default="", description="Dask scheduler address; empty starts a LocalCluster"
    )
    artifacts: str = Field(default_factory=lambda: str(data_dir() / "artifacts"))
    # For an s3:// store; each left empty falls back to the usual AWS variables and files
    # (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, ~/.aws/credentials, …).
    artifacts_endpoint: str = Field(
        default="", description="URL of an S3-compatible server; empty: AWS S3 itself"
    )
    artifacts_region: str = Field(default="", description="the bucket's region")
    artifacts_key_id: str = Field(default="", description="access key id for the bucket")
    artifacts_secret: str = Field(default="", description="secret access key for the bucket")
    dashboard: str = Field(
        default="127.0.0.1:8787",
        description="where a runner's own LocalCluster serves the Dask dashboard "
        "(host:port; another port if that one is taken); empty: no dashboard",
    )
    user: str = ""
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=DAY,
        description="how long a claim holds without a heartbeat; at most a day (86400)",
    )
    heartbeat_seconds: float = Field(
        default=5.0,
        gt=0,
        le=HOUR,
        description="period of a runner's heartbeat; at most an hour (3600)",
    )
    poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=MINUTE,
        description="idle runner's fallback poll on SQLite, where a local socket wakes it for "
        "new work; at most 60",
    )
    progress_write_seconds: float = Field(
        default=0.25, gt=0, le=MINUTE, description="throttle of a job's writes; at most 60"
    )
    retry_backoff_seconds: float = Field(
        default=5.0,
        ge=0,
        le=HOUR,
        description="first wait before a job whose lease lapsed runs again; at most 3600",
    )
    grace_seconds: float = Field(
        default=30.0,
        ge=0,
        le=DAY,
        description="on SIGTERM, how long running jobs may take before handed back; "
        "at most a day (86400)",
    )
    no_worker_seconds: float = Field(
        default=60.0,
        gt=0,
        le=DAY,
        description="how long a running job waits while its Dask cluster has no worker, "
        "before it is handed back uncharged; at most a day (86400)",
    )
    kind_modules: str = Field(
        default="", description="comma-separated modules that register more kinds"
    )
    purge_after: str = Field(
        default="",
        description="runners purge finished jobs older than this (30d, 12h); empty: never",
    )
    purge_statuses: str = Field(
        default="succeeded,failed,cancelled",
        description="which finished jobs the scheduled purge takes",
    )
    # Read as text and parsed below, so that a broken value is a message naming RUNLAB_QUEUES.
    queues: Annotated[dict[str, QueueSpec], NoDecode] = Field(
        default_factory=dict,
        description="named queues besides 'default', each with an optional limit of running "
        'jobs and Dask resources: {"img": {"limit": 1, "resources": {"GPU": 1}}}',
    )
    admins: str = Field(
        default="", description="comma-separated emails of the people who may act on any job"
    )
    admin_groups: str = Field(
        default="", description="comma-separated groups (of the sign-in's groups claim) of admins"
    )
    groups_claim: str = Field(
        default="groups", description="the identity token's claim that lists a person's groups"
    )
    aging_seconds: float = Field(
        default=60.0,
        gt=0,
        le=DAY,
        description="a waiting job's priority rises by one every this many seconds, up to the "
        "highest waiting in its queue; at most a day (86400)",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest first: the environment, then the secrets file. No .env file, no secrets folder.
        environ, path = _SOURCES.get() or (os.environ, SECRETS_FILE)
        return init_settings, _Environment(settings_cls, environ), _SecretsFile(settings_cls, path)

    @field_validator(*TEXT_SETTINGS)
    @classmethod
    def _printable(cls, value: str) -> str:
        # A NUL cannot go into a path, a URL or PostgreSQL text (the owner of every job).
        why = bad_character(value)
        if why is not None:
            raise ValueError(why)
        return value

    @field_validator("queues", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # a TOML table
        if not value.strip():
            return {}
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f'not a JSON object of queues, such as {{"img": {{"limit": 1}}}}: {exc}'
            ) from None

    @field_validator("queues")
    @classmethod
    def _queue_names(cls, value: dict[str, QueueSpec]) -> dict[str, QueueSpec]:
        for name in value:
            if not QUEUE_NAME.fullmatch(name):
                raise ValueError(f"queue name {name!r}: {QUEUE_NAME_RULE}")
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
    def alive_within(self) -> float:
        """Seconds since its last heartbeat within which a runner counts as alive: three
        heartbeats missed in a row mean it is gone, for the pages and the CLI alike."""
        return MISSED_BEATS * self.heartbeat_seconds

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
    def artifact_options(self) -> dict[str, Any]:
        """fsspec's options for the artifact store: only those set, and only for s3://."""
        if not self.artifacts.startswith(("s3://", "s3a://")):
            return {}
        options: dict[str, Any] = {}
        if self.artifacts_endpoint:
            options["endpoint_url"] = self.artifacts_endpoint
        if self.artifacts_region:
            options["client_kwargs"] = {"region_name": self.artifacts_region}
        if self.artifacts_key_id:
            options["key"] = self.artifacts_key_id
        if self.artifacts_secret:
            options["secret"] = self.artifacts_secret
        return options

    @property
    def admin_emails(self) -> list[str]:
        return _comma_list(self.admins)

    @property
    def admin_group_names(self) -> list[str]:
        return _comma_list(self.admin_groups)

    @property
    def queue_names(self) -> list[str]:
        """Every queue a job may name: 'default', then the declared ones in order."""
        return [DEFAULT_QUEUE, *(q for q in self.queues if q != DEFAULT_QUEUE)]

    @property
    def queue_limits(self) -> dict[str, int]:
        """The queues with a limit of running jobs, which every claim enforces."""
        return {q: spec.limit for q, spec in self.queues.items() if spec.limit is not None}

    def queue_resources(self, queue: str) -> dict[str, float]:
        spec = self.queues.get(queue)
        return dict(spec.resources) if spec else {}

    @property
    def extra_kind_modules(self) -> list[str]:
        return _comma_list(self.kind_modules)


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


@contextmanager
def _reading(environ: Mapping[str, str], secrets_path: Path) -> Iterator[None]:
    token = _SOURCES.set((environ, secrets_path))
    try:
        yield
    finally:
        _SOURCES.reset(token)


def load_settings(
    environ: Mapping[str, str] | None = None, secrets_path: Path = SECRETS_FILE
) -> Settings:
    """The settings from `environ` (the process's by default) and the TOML file at
    `secrets_path`; InvalidParams names each bad one by its variable."""
    try:
        with _reading(os.environ if environ is None else environ, secrets_path):
            return Settings()
    except ValidationError as exc:
        errors = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "settings"
            name = f"{ENV_PREFIX}{field.upper()}" if field != "settings" else field
            why = str(err.get("ctx", {}).get("error", err["msg"]))
            inner = ".".join(str(part) for part in err["loc"][1:])  # queues' img.limit
            errors[name] = f"{inner}: {why}" if inner else why
        raise InvalidParams(errors) from None
