"""Pages run in AppTest against a fresh SQLite store, seeded through jobstore's own verbs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TIMEOUT = 15.0  # generous for a loaded CI machine; a run takes well under a second


@pytest.fixture
def store(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The engine the pages will use, found by them through RUNLAB_DATABASE_URL."""
    monkeypatch.setenv("RUNLAB_DATABASE_URL", str(sqlite_engine.url))
    yield sqlite_engine


def open_page(script: str = "app.py", /, **query: str | list[str]) -> AppTest:
    """Run `script` as a browser would open it, with `query` as its URL's query string.

    Starting from app.py keeps the multipage set-up, so `st.switch_page` is followed.
    """
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if script != "app.py":
        at.run()
        at.switch_page(script)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown_texts(at: AppTest) -> list[str]:
    """Every string the page handed to an element that renders Markdown."""
    out: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "toast"):
        out += [str(e.value) for e in at.get(kind)]
    for alert in (at.error, at.warning, at.info, at.success):
        out += [str(e.value) for e in alert]
    out += [m.label for m in at.metric]
    out += [p.text for p in at.get("progress")]
    out += [e.label for e in at.expander]
    return out
