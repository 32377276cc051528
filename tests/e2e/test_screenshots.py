"""`make screenshots` draws every page and job tab, and the README shows the main ones."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import require_browser
from ui.job_view import TABS

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "make_screenshots.py"
MAKEFILE = ROOT / "Makefile"
README = ROOT / "README.md"
# The home page, a running job, a finished option-pricing job, the history and a compare.
MAIN = {"home", "job-running", "job-option-result", "jobs-search", "compare"}
PNG = b"\x89PNG\r\n\x1a\n"


def size_of(png: Path) -> tuple[int, int]:
    """Width and height from the PNG's header chunk."""
    head = png.read_bytes()[:24]
    assert head[:8] == PNG, f"{png.name} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_make_screenshots_runs_the_script_the_readme_shows() -> None:
    assert re.search(
        r"^screenshots:.*\n\t\$\(BIN\)/python docs/make_screenshots\.py$",
        MAKEFILE.read_text(),
        re.M,
    )
    embedded = set(re.findall(r"\]\(docs/screenshots/([\w-]+)\.png\)", README.read_text()))
    assert embedded >= MAIN, f"the README does not show {sorted(MAIN - embedded)}"
    assert all((ROOT / "docs" / "screenshots" / f"{name}.png").is_file() for name in embedded)


@pytest.mark.timeout(420)
def test_every_page_and_tab_is_drawn(tmp_path: Path) -> None:
    require_browser()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    drawn = {p.stem for p in tmp_path.glob("*.png")}
    assert drawn == {Path(line).stem for line in done.stdout.split()}, "a shot it did not name"
    assert drawn >= MAIN
    # Every page of the app, and every tab of a job's page.
    pages = {p.stem for p in [ROOT / "app.py", *ROOT.glob("pages/*.py")]}
    shot_of = {"app": "home", "new": "new-job", "job": "job-option-result"}
    assert {shot_of.get(page, page) for page in pages} <= drawn
    assert {f"job-option-{tab.lower()}" for tab in TABS} <= drawn
    for name in sorted(drawn):
        png = tmp_path / f"{name}.png"
        width, height = size_of(png)
        assert width == 1300 and height >= 1000, (name, width, height)
        assert png.stat().st_size > 30_000, f"{name}.png looks blank"
