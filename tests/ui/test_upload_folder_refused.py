"""/new with an artifacts folder that cannot take an upload: the field says which folder and
which setting, nothing is stored, and the same file is tried again once the folder is fixed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from jobstore import queries
from tests.ui.conftest import open_page
from tests.ui.test_new_job import after
from ui.text import md_escape

DATA = "new.bootstrap.data"
CSV = b"x\n" + b"".join(f"{i}.5\n".encode() for i in range(20))


def test_a_folder_that_refuses_the_upload_is_named_under_the_field_and_stores_nothing(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")  # a file where the folder's parent should be: refuses even root
    monkeypatch.setenv("RUNLAB_ARTIFACTS", str(blocker / "artifacts"))
    at = open_page("pages/new.py", kind="bootstrap")

    at.file_uploader(key=DATA).set_value(("d.csv", CSV, "text/csv"))
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    below = after(at, DATA)
    assert below.type == "error"
    assert below.value == md_escape(
        f"cannot keep the file: the artifacts folder {blocker / 'artifacts'} (RUNLAB_ARTIFACTS) "
        "is not a folder"
    )
    assert queries.list_jobs(store).total == 0
    assert blocker.read_bytes() == b""

    blocker.unlink()  # fixed: the next run keeps the same file
    blocker.mkdir()
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert [p.read_bytes() for p in (blocker / "artifacts" / "uploads").iterdir()] == [CSV]
