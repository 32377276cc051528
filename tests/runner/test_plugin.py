"""A kind from another installed package, found through the `runlab.kinds` entry point group.

`tests/plugin_example/site` holds the example package as an installer lays it out (the module
and its `.dist-info` with `entry_points.txt`), so putting it on PYTHONPATH installs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jobstore import queries
from jobstore.models import Status
from tests.conftest import on_sqlite_only
from tests.runner.helpers import assert_sound, watch

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "tests" / "plugin_example" / "site"
PATH = f"{ROOT}{os.pathsep}{SITE}"


def runlab(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNLAB_DATABASE_URL": db_url, "PYTHONPATH": PATH}
    return subprocess.run(
        [sys.executable, "-m", "runlab.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@on_sqlite_only
def test_an_installed_plugin_kind_is_listed_checked_and_run(engine, db_url, start_runner):
    listed = runlab(db_url, "kinds", "--json")
    assert listed.returncode == 0, listed.stderr
    kinds = {k["kind"]: k for k in json.loads(listed.stdout)}
    assert {"hello_sum", "monte_carlo_pi", "bootstrap"} <= set(kinds)
    assert [f["name"] for f in kinds["hello_sum"]["params"]] == ["n", "greeting"]

    bad = runlab(db_url, "submit", "hello_sum", "-p", "n=0")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: n: must be an integer between 1 and 1,000,000"

    submitted = runlab(db_url, "submit", "hello_sum", "-p", "n=100")
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().splitlines()[-1]
    start_runner(PYTHONPATH=PATH)
    final = watch(engine, job, timeout=60)[-1]
    assert final.status is Status.SUCCEEDED, final.error
    assert final.result == {"total": 5050}
    assert_sound(engine)


def test_without_the_package_its_kind_is_unknown_and_nothing_is_stored(engine, db_url):
    bare = subprocess.run(
        [sys.executable, "-m", "runlab.cli", "submit", "hello_sum"],
        cwd=ROOT,
        env={**os.environ, "RUNLAB_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bare.returncode == 2
    assert bare.stderr.startswith("error: kind: unknown kind 'hello_sum'; known kinds: ")
    assert queries.list_jobs(engine).total == 0
