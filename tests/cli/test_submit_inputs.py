"""`runlab submit`: hostile values and uploads end as one-line messages, and leave nothing behind.

An upload is kept only once every other value has passed; a file is read one byte past the
limit at most, whatever size it reports; an artifacts folder that refuses the file is named
with its setting, and no half-written `.tmp` stays.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute import datasets, param_text, registry
from runlab.cli import parse_params
from tests.cli.conftest import job_count, run
from ui import forms

CSV = b"x\n" + b"".join(f"{i}.5\n".encode() for i in range(20))


def use_artifacts(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    monkeypatch.setenv("RUNLAB_ARTIFACTS", str(path))
    return path


@pytest.fixture
def artifact_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_artifacts(monkeypatch, tmp_path / "artifacts")


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def csv_file(tmp_path: Path, data: bytes = CSV) -> Path:
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    return path


def test_fifty_thousand_brackets_exit_2_naming_the_field_through_the_installed_command(db):
    done = subprocess.run(
        [sys.executable, "-m", "runlab.cli", "submit", "portfolio_risk", "-p",
         "weights=" + "[" * 50_000],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: weights: must be a list of numbers, separated by commas"
    assert job_count(db) == 0


CORRELATION = [[1.0, 0.3], [0.3, 1.0]]


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("weights", "0.6, 0.4", [0.6, 0.4]),
        ("weights", "0.6 0.4", [0.6, 0.4]),
        ("weights", "0.6;0.4", [0.6, 0.4]),
        ("weights", "[0.6, 0.4]", [0.6, 0.4]),
        ("correlation", "1, 0.3\n0.3, 1", CORRELATION),
        ("correlation", "1,0.3;0.3,1", CORRELATION),
        ("correlation", "1 0.3 ; 0.3 1", CORRELATION),
        ("correlation", "1, 0.3\r\n\n0.3, 1\n", CORRELATION),
        ("correlation", "[[1, 0.3], [0.3, 1]]", CORRELATION),
        ("weights", "half, 0.4", "half, 0.4"),  # not numbers: left for the model to refuse
        ("correlation", "1, 0.3\n0.3, one", "1, 0.3\n0.3, one"),
        ("correlation", "[[[1]]]", "[[[1]]]"),
    ],
)
def test_the_form_and_the_command_line_read_the_same_text_as_the_same_value(
    field: str, text: str, value: object
) -> None:
    [info] = [
        i for i in registry.describe(registry.get("portfolio_risk").params) if i.name == field
    ]
    from_form = forms.text_value(info, text)
    from_cli = parse_params("portfolio_risk", [f"{field}={text}"])[field]
    assert from_form == from_cli == value


FINITE = st.floats(allow_nan=False, allow_infinity=False)


@given(st.lists(st.lists(FINITE, min_size=1, max_size=4), min_size=1, max_size=4))
def test_a_matrix_shown_in_the_form_reads_back_as_the_same_numbers(rows: list[list[float]]) -> None:
    assert param_text.parse(param_text.to_text(rows, "matrix"), "matrix") == rows
    assert param_text.parse(param_text.to_text(rows[0], "list"), "list") == rows[0]


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("column=a\x00b", "column: must not contain a NUL byte (at character 2)"),
        ("resamples=\x1b[2J", "resamples: must not contain the control character U+001B"),
        ("sam\x00ples=1", "-p: 'sam\\x00ples' must not contain a NUL byte"),
    ],
)
def test_control_characters_exit_2_naming_the_field(db, artifact_dir, param, message):
    code, out, err = run("submit", "bootstrap", "-p", param)
    assert code == 2
    assert err.startswith(f"error: {message}")
    assert "Traceback" not in out + err
    assert job_count(db) == 0


def test_an_upload_from_dev_zero_is_refused_by_size_after_reading_past_the_limit_only(
    db, artifact_dir
):
    assert os.stat("/dev/zero").st_size == 0  # the size it reports cannot be trusted
    code, _, err = run("submit", "bootstrap", "-p", "data=@/dev/zero", "-p", "column=x")
    assert code == 2
    assert err.strip() == "error: data: the file is larger than the limit of 50.0 MB"
    assert job_count(db) == 0
    assert not artifact_dir.exists()


def test_a_file_reporting_its_size_over_the_limit_is_refused_unread(db, artifact_dir, tmp_path):
    big = tmp_path / "big.csv"
    with big.open("wb") as f:  # sparse: the size is there, the bytes are never read
        f.truncate(datasets.MAX_BYTES + 1)
    code, _, err = run("submit", "bootstrap", "-p", f"data=@{big}", "-p", "column=x")
    assert code == 2
    assert err.strip() == f"error: data: {datasets.too_big(datasets.MAX_BYTES + 1)}"
    assert not artifact_dir.exists()


@pytest.mark.parametrize(
    "other", ["resamples=0", "confidence=2", "bogus=1", "statistic=mode", "seed=" + "[" * 50_000]
)
def test_a_bad_other_parameter_leaves_no_upload_behind(db, artifact_dir, tmp_path, other):
    path = csv_file(tmp_path)
    code, out, err = run(
        "submit", "bootstrap", "-p", f"data=@{path}", "-p", "column=x", "-p", other
    )
    assert code == 2
    assert err.startswith(f"error: {other.split('=')[0]}: ")
    assert "Traceback" not in out + err
    assert job_count(db) == 0
    assert not artifact_dir.exists()


@pytest.mark.parametrize(
    ("option", "field"),
    [
        (["--name", "n" * 201], "name"),
        (["--tag", "bad\x1b"], "tags"),
        (["--max-attempts", "0"], "max_attempts"),
        (["--timeout", "0.5"], "timeout_seconds"),
        (["--idempotency-key", "k" * 201], "idempotency_key"),
    ],
)
def test_a_bad_job_option_leaves_no_upload_behind(db, artifact_dir, tmp_path, option, field):
    path = csv_file(tmp_path)
    code, out, err = run("submit", "bootstrap", "-p", f"data=@{path}", "-p", "column=x", *option)
    assert code == 2
    assert err.startswith(f"error: {field}: ")
    assert "Traceback" not in out + err
    assert job_count(db) == 0
    assert not artifact_dir.exists()


def test_with_every_parameter_good_the_upload_is_kept_and_the_job_stored(
    db, artifact_dir, tmp_path
):
    path = csv_file(tmp_path)
    code, _, err = run("submit", "bootstrap", "-p", f"data=@{path}", "-p", "column=x")
    assert code == 0, err
    assert job_count(db) == 1
    assert (artifact_dir / "uploads").is_dir()
    assert [p.read_bytes() for p in (artifact_dir / "uploads").iterdir()] == [CSV]


@pytest.fixture
def unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An artifacts folder that refuses writes: read-only, or, for root (whom a mode does not
    stop), one whose parent is a regular file."""
    if os.geteuid() == 0:
        blocker = tmp_path / "blocker"
        blocker.write_bytes(b"")
        yield use_artifacts(monkeypatch, blocker / "artifacts")
        return
    folder = tmp_path / "artifacts"
    folder.mkdir(mode=0o500)
    try:
        yield use_artifacts(monkeypatch, folder)
    finally:
        folder.chmod(0o700)


@pytest.fixture
def full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An artifacts folder on a 64 KiB tmpfs: a real full disk."""
    folder = tmp_path / "artifacts"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root), so no real full disk")
    try:
        yield use_artifacts(monkeypatch, folder)
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_an_unwritable_artifacts_folder_is_named_with_its_setting_and_stores_nothing(
    db, unwritable, tmp_path
):
    path = csv_file(tmp_path)
    code, out, err = run("submit", "bootstrap", "-p", f"data=@{path}", "-p", "column=x")
    assert code == 1
    reason = "is not a folder" if os.geteuid() == 0 else "is not writable"
    assert err.strip() == (
        f"error: data: cannot keep the file: the artifacts folder {unwritable} "
        f"(RUNLAB_ARTIFACTS) {reason}"
    )
    assert "Traceback" not in out + err
    assert job_count(db) == 0
    assert not unwritable.exists() or files_under(unwritable) == []


def test_a_full_artifacts_folder_is_named_with_its_setting_and_leaves_no_tmp(db, full, tmp_path):
    rows = b"".join(f"{i}.25\n".encode() for i in range(20_000))  # about 150 KB: over 64 KiB
    path = csv_file(tmp_path, b"x\n" + rows)
    code, out, err = run("submit", "bootstrap", "-p", f"data=@{path}", "-p", "column=x")
    assert code == 1
    assert err.strip() == (
        f"error: data: cannot keep the file: the artifacts folder {full} (RUNLAB_ARTIFACTS) is full"
    )
    assert "Traceback" not in out + err
    assert job_count(db) == 0
    assert files_under(full) == []
