"""Pages run in AppTest against an empty store on each backend, seeded through jobstore's own
verbs.

SQLite gets a fresh file per test, copied from one migrated at the start of the session. On
PostgreSQL every test shares one migrated schema, emptied before each test: creating and
migrating a schema per test would cost more than the test.
"""

from __future__ import annotations

import functools
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from streamlit.components.v2.component_manager import BidiComponentManager
from streamlit.testing.v1 import AppTest

from jobstore.engine import make_engine, migrate
from jobstore.models import Base
from tests.conftest import PG_ADMIN_URL, require_postgres

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TIMEOUT = 15.0  # generous for a loaded CI machine; a run takes well under a second


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file, closed, for each test to copy."""
    path = tmp_path_factory.mktemp("ui-store") / "template.db"
    eng = make_engine(f"sqlite:///{path}")
    migrate(eng)
    eng.dispose()
    assert not path.with_name(path.name + "-wal").exists()  # all of it is in the one file
    return path


@pytest.fixture(scope="session")
def pg_store() -> Iterator[tuple[str, Engine]]:
    """One migrated schema for the whole session, dropped at its end."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    eng = make_engine(url)
    try:
        migrate(eng)
        yield url, eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def emptied(eng: Engine) -> Engine:
    """Every table of the store emptied and its ids started again, as a fresh schema has them."""
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '10s'"))  # a leftover lock fails, not hangs
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return eng


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Engine]:
    """The engine the pages will use, found by them through RUNLAB_DATABASE_URL: an empty
    store on each backend in turn."""
    if request.param == "sqlite":
        path = tmp_path / "runlab.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
        eng = make_engine(url)
    else:
        url, eng = request.getfixturevalue("pg_store")
        emptied(eng)
    monkeypatch.setenv("RUNLAB_DATABASE_URL", url)
    yield eng
    if request.param == "sqlite":
        eng.dispose()


@functools.cache
def components() -> BidiComponentManager:
    """The custom components installed, found once for the session.

    A Streamlit server looks for them once, as it starts; an AppTest looks again for every app
    it runs, reading the metadata of every installed package, which costs more than most pages.
    """
    manager = BidiComponentManager()
    manager.discover_and_register_components(start_file_watching=False)
    return manager


def open_page(script: str = "app.py", /, **query: str | list[str]) -> AppTest:
    """Run `script` as a browser would open it, with `query` as its URL's query string.

    Starting from app.py keeps the multipage set-up, so `st.switch_page` is followed.
    """
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at._bidi_component_manager = components()
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
