"""The store behind every page: settings read per run, one engine per database URL per process.

Settings are cheap to read and may differ between runs (tests point RUNLAB_DATABASE_URL at a
fresh file each time), so only the engine is cached, and it is keyed by its URL.
"""

from __future__ import annotations

import json

import streamlit as st
from sqlalchemy import Engine

from compute import registry
from jobstore.engine import make_engine, migrate
from runlab.artifacts import ArtifactStore
from runlab.settings import Settings, load_settings


def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def _engine(url: str, kind_modules: tuple[str, ...]) -> Engine:
    """Made once per URL: migrating and loading the kinds belong to start-up, not to a page."""
    engine = make_engine(url)
    migrate(engine)
    registry.load(kind_modules)
    return engine


def engine(current: Settings | None = None) -> Engine:
    s = current or settings()
    return _engine(s.database_url, tuple(s.extra_kind_modules))


@st.cache_resource(show_spinner=False)
def _artifacts(location: str, options: str) -> ArtifactStore:
    return ArtifactStore(location, json.loads(options))


def artifacts(current: Settings | None = None) -> ArtifactStore:
    """Where uploads are kept; the runners read them from the same place."""
    s = current or settings()
    # As JSON, a hashable cache key; a changed option opens a new store.
    return _artifacts(s.artifacts, json.dumps(s.artifact_options, sort_keys=True))


def alive_within(current: Settings | None = None) -> float:
    """Seconds since its last heartbeat within which a runner counts as alive."""
    return (current or settings()).alive_within
