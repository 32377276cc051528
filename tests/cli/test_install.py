"""Runlab as a package: `pip install` of the checkout (not editable) into a new virtualenv, then
`runlab up` from another folder serves the packaged app and runs a job.

The install test needs the package indexes and about a minute, so it runs under CI=true only.
The check of pyproject's package list against the source tree is quick and runs everywhere.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.e2e.conftest import RunlabUp, alive, free_port
from tests.polling import wait_for
from tests.processes import spawn

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PACKAGE_ROOTS = ("runlab", "jobstore", "compute", "ui")
WEBAPP = "runlab.webapp"  # the checkout's app.py, pages/ and .streamlit/, once installed

# The install test's own deadlines, one after the other; its pytest-timeout sits above their sum.
INSTALL_TIMEOUT = 180.0
START_TIMEOUT = 90.0
SCRIPT_TIMEOUT = 60.0  # the first run of app.py imports every page helper and kind
JOB_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0  # GRACE_SECONDS, 15 s for the Dask cluster to close, and a margin
GRACE_SECONDS = 5
VENV_TIMEOUT = 60.0
# The import check (30 s), two pages (5 s each) and the sweep of the children (10 s).
CHECKS_TIMEOUT = 50.0
# The virtualenv, the install, then `runlab up` and `runlab web`: each starts, runs app.py once
# and stops, and `up` runs a job.
DEADLINES = (
    VENV_TIMEOUT
    + INSTALL_TIMEOUT
    + 2 * (START_TIMEOUT + SCRIPT_TIMEOUT + STOP_TIMEOUT)
    + JOB_TIMEOUT
    + CHECKS_TIMEOUT
)
SAMPLES = 4_000_000


def _setuptools_config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        config: dict[str, Any] = tomllib.load(fh)["tool"]["setuptools"]
    return config


def _source_files() -> list[Path]:
    """Every file of the importable packages, relative to the checkout; caches left out."""
    out = []
    for top in PACKAGE_ROOTS:
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                out.append(rel)
    return out


def _app_files() -> dict[Path, Path]:
    """The top level's web app: where each file lands under site-packages, and the file."""
    files = [ROOT / "app.py", ROOT / ".streamlit" / "config.toml", *(ROOT / "pages").glob("*.py")]
    return {Path("runlab", "webapp", f.relative_to(ROOT)): f for f in files}


def test_every_package_and_data_file_is_in_the_package_list() -> None:
    """setuptools ships only the packages pyproject.toml lists and the data files it names: a
    package or a template added to the source tree must be named there too. A folder of data
    files (ui/templates) is a package of its own, as setuptools expects."""
    config = _setuptools_config()
    listed = {p for p in config["packages"] if not p.startswith(WEBAPP)}
    data: dict[str, list[str]] = config.get("package-data", {})
    files = _source_files()
    on_disk = {".".join(f.parent.parts) for f in files}
    assert on_disk == listed, (
        f"[tool.setuptools] packages lacks {sorted(on_disk - listed)} "
        f"and lists {sorted(listed - on_disk)}, which hold no file"
    )
    unshipped = []
    for f in files:
        if f.suffix == ".py":
            continue
        package = ".".join(f.parent.parts)
        if not any(fnmatch.fnmatch(f.name, pattern) for pattern in data.get(package, [])):
            unshipped.append(str(f))
    assert not unshipped, f"[tool.setuptools.package-data] does not ship {unshipped}"
    # The web app: app.py and pages/ from the top level, with its config and never secrets.toml.
    assert config["package-dir"] == {WEBAPP: "."}
    assert {WEBAPP, f"{WEBAPP}.pages"} <= set(config["packages"])
    assert data[WEBAPP] == [".streamlit/config.toml"]


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """The status and body of a GET; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError:
        return 0, ""


def _check(command: list[str], *, timeout: float, **kwargs: Any) -> str:
    """Run `command` to the end; its stdout, or a failure with its stderr."""
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-4000:]}"
    )
    return result.stdout


def _install(tmp: Path) -> Path:
    """A new virtualenv in `tmp` with the checkout installed into it; its folder.

    pip builds in the source folder: setuptools' build folder goes to `tmp` instead, so the
    checkout is left as it was. The packages come from the indexes (or pip's cache), never
    from the checkout's .venv.
    """
    venv = tmp / "venv"
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=VENV_TIMEOUT)
    build = tmp / "build.cfg"
    build.write_text(f"[build]\nbuild_base = {tmp / 'build'}\n[egg_info]\negg_base = {tmp}\n")
    env = {**os.environ, "DIST_EXTRA_CONFIG": str(build), "PIP_NO_INPUT": "1"}
    env.pop("PYTHONPATH", None)
    # This pip, installing into the new virtualenv's interpreter (`--python`): the virtualenv
    # needs no pip of its own. No byte-compiling: it would double the install's time.
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    _check(
        [*pip, "install", "--quiet", "--no-compile", "--progress-bar", "off", str(ROOT)],
        timeout=INSTALL_TIMEOUT,
        env=env,
        cwd=tmp,
    )
    return venv


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user of the virtualenv: no Runlab, Streamlit or Python settings
    from this process, and the virtualenv's commands first on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNLAB_", "STREAMLIT_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _site_packages(venv: Path, cwd: Path) -> Path:
    out = _check(
        [str(venv / "bin" / "python"), "-c", "import runlab; print(runlab.__file__)"],
        timeout=30,
        cwd=cwd,
    )
    return Path(out.strip()).resolve().parent.parent


def _owned_by(p: psutil.Process) -> tuple[list[str], str]:
    try:
        return p.cmdline(), p.cwd()
    except psutil.Error:
        return [], ""


@pytest.mark.timeout(DEADLINES + 60)
def test_pip_install_then_runlab_up_from_another_folder_serves_the_app_and_runs_a_job(
    tmp_path: Path,
) -> None:
    if not IN_CI:
        pytest.skip("installs Runlab into a new virtualenv (about a minute): CI=true only")
    assert not tmp_path.resolve().is_relative_to(ROOT)
    began = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - began - sum(timings.values()), 1)

    venv = _install(tmp_path)
    lap("install")

    # The package holds every module, the web app and its config, and came from no checkout.
    work = tmp_path / "work"
    work.mkdir()
    site = _site_packages(venv, work)
    assert site.is_relative_to(venv), f"runlab was imported from {site}, not the virtualenv"
    missing = [str(f) for f in _source_files() if not (site / f).is_file()]
    missing += [str(f) for f in _app_files() if not (site / f).is_file()]
    assert not missing, f"not installed: {missing}"
    webapp = site / "runlab" / "webapp"
    assert sorted(p.name for p in (webapp / ".streamlit").iterdir()) == ["config.toml"]

    # `runlab up` in `work` with the default store, then `runlab submit --wait` from another
    # folder: both use the one store in the user's data folder (a fresh one here), and neither
    # makes a store where it runs.
    env = _clean_env(venv)
    env["XDG_DATA_HOME"] = str(tmp_path / "user-data")
    env["RUNLAB_GRACE_SECONDS"] = str(GRACE_SECONDS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Streamlit then serves /_stcore/script-health-check: app.py run once, "ok" if it raised
    # nothing. Its sidebar links every page, and a link to a page not found beside app.py fails.
    env["STREAMLIT_SERVER_SCRIPT_HEALTH_CHECK_ENABLED"] = "true"
    port = free_port()
    log = tmp_path / "up.log"
    up_command = [str(venv / "bin" / "runlab"), "up", "--port", str(port), "--workers", "1"]
    proc = spawn(up_command, log, env=env, cwd=work)
    store = tmp_path / "user-data" / "runlab" / "runlab.db"
    up = RunlabUp(proc, f"http://127.0.0.1:{port}", f"sqlite:///{store}", log)
    try:
        # A live runner in the store in the user's data folder, and the app's health check.
        up.wait_ready(timeout=START_TIMEOUT)
        lap("start")
        status, body = _get(f"{up.url}/_stcore/script-health-check", timeout=SCRIPT_TIMEOUT)
        assert (status, body) == (200, "ok"), f"app.py: {status} {body}\n{up.log_tail()}"
        for path in ("/", "/jobs"):
            status, body = _get(f"{up.url}{path}")
            assert status == 200 and "<noscript>" in body, (path, status, body[:200])
        lap("pages")

        # Both children run the virtualenv's Python in `work`; the app is the packaged one.
        children = {p.pid: _owned_by(p) for p in up.descendants()}
        app = [c for c, _ in children.values() if str(webapp / "app.py") in c]
        assert app, f"no process runs {webapp / 'app.py'}: {children}"
        assert app[0][0] == str(venv / "bin" / "python"), app[0]
        runner = [c for c, _ in children.values() if "runner" in c]
        assert runner, children
        assert {cwd for _, cwd in children.values() if cwd} == {str(work)}, children

        printed = _check(
            [
                str(venv / "bin" / "runlab"),
                "submit",
                "monte_carlo_pi",
                "-p",
                f"samples={SAMPLES}",
                "-p",
                "chunks=4",
                "-p",
                "seed=7",
                "--wait",
                "--json",
            ],
            timeout=JOB_TIMEOUT,
            cwd=elsewhere,
            env=env,
        )
        job = json.loads(printed)
        assert job["status"] == "succeeded", job
        # Four standard errors of 4·sqrt(p(1-p)/n) at n = 4e6: about 0.0033.
        assert abs(job["result"]["estimate"] - math.pi) < 0.0033, job["result"]
        lap("job")

        assert store.is_file()
        assert (store.parent / "artifacts").is_dir()  # the default, beside the store
        made_here = [p for p in (work, elsewhere, venv) if list(p.rglob("*.db"))]
        assert not made_here, f"a store was made in {made_here}"

        below = up.descendants()
        code = up.stop(signal.SIGTERM, timeout=STOP_TIMEOUT)
        assert code == 0, f"`runlab up` stopped with {code}:\n{up.log_tail()}"
        try:
            wait_for(lambda: not alive(below), timeout=10, what="every child process to exit")
        except AssertionError:
            left = [(p.pid, _owned_by(p)[0]) for p in alive(below)]
            raise AssertionError(f"processes left behind: {left}") from None
        lap("stop")
    finally:
        up.kill_everything()

    # `runlab web` from the same folder serves the same packaged app.
    port = free_port()
    web_command = [str(venv / "bin" / "runlab"), "web", "--port", str(port)]
    web = spawn(web_command, tmp_path / "web.log", env=env, cwd=work)
    try:
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert web.poll() is None, (tmp_path / "web.log").read_text()
            return _get(f"{url}/_stcore/health")[0] == 200

        wait_for(answers, timeout=START_TIMEOUT, what="runlab web to answer")
        status, body = _get(f"{url}/_stcore/script-health-check", timeout=SCRIPT_TIMEOUT)
        assert (status, body) == (200, "ok"), (tmp_path / "web.log").read_text()
        os.killpg(web.pid, signal.SIGTERM)
        assert web.wait(timeout=STOP_TIMEOUT) in (0, -signal.SIGTERM)
        lap("web")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, signal.SIGKILL)
        web.wait()
    print(f"install test: {timings}, {sum(timings.values()):.1f} s in all")
