"""The long-lived processes: `runlab runner`, and `runlab up`, which supervises a runner and
the Streamlit server and leaves no process behind when it stops."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path
from types import FrameType

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from runlab.settings import SECRETS_FILE, Settings

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
STOP_MARGIN = 15.0  # beyond the runner's grace period, for its Dask cluster to close
# The web app has no sign-in: by default only this machine reaches it.
LOOPBACK = "127.0.0.1"


def serve_runner(
    engine: Engine,
    settings: Settings,
    *,
    concurrency: int,
    scheduler: str | None,
    workers: int | None,
    queues: list[str] | None = None,
) -> None:
    from compute.cluster import connect, spawn_without_main
    from compute.runner import Runner

    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    logging.getLogger("distributed").setLevel(logging.WARNING)
    spawn_without_main()
    cluster = connect(scheduler, workers, settings.dashboard)
    runner = Runner(
        engine,
        settings,
        cluster.client,
        reconnect=cluster.reconnect,
        revive=cluster.revive,
        concurrency=concurrency,
        scheduler_address=cluster.scheduler_address,
        dashboard_link=cluster.dashboard_link,
        queues=queues,
    )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        runner.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        runner.run()
    finally:
        cluster.close()


def absolute_database_url(url: str, cwd: Path) -> str:
    """A relative SQLite path made absolute, so that every child process opens the same file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser()
        if not path.is_absolute():
            return parsed.set(database=str((cwd / path).resolve())).render_as_string(
                hide_password=False
            )
    return url


def app_dir() -> Path:
    """The folder of app.py, with pages/ and .streamlit/ beside it.

    An installed package carries them as `runlab/webapp`; a checkout, and an editable install
    of one, has them at its top level.
    """
    for folder in (PACKAGE / "webapp", PACKAGE.parent):
        if (folder / "app.py").is_file() and (folder / "pages").is_dir():
            return folder
    raise click.ClickException(
        f"the web app is missing: no app.py and pages/ in {PACKAGE / 'webapp'} or {PACKAGE.parent}"
    )


def python(*args: str) -> list[str]:
    """This interpreter, not searching the working folder for modules (`-P`): the children run
    in the user's folder, where a stray `compute/` or `numpy.py` must not replace the real one."""
    return [sys.executable, "-P", *args]


def app_command(port: int, host: str = LOOPBACK) -> list[str]:
    """The web app alone, as `runlab up` and `runlab web` start it, listening on `host`.

    Streamlit reads the app's own .streamlit/config.toml beside app.py, wherever it runs.
    """
    return [
        *python("-m", "streamlit", "run"),
        str(app_dir() / "app.py"),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]


def _loopback(host: str) -> bool:
    """Whether only this machine reaches an app that listens on `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def app_url(host: str, port: int) -> str:
    """Where a browser on this machine finds the app: localhost, unless it listens on one
    address that is not loopback, which is then the only one that answers."""
    if _loopback(host) or host in ("", "0.0.0.0", "::"):
        return f"http://localhost:{port}"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def sign_in_configured(secrets: Path = SECRETS_FILE) -> bool:
    """Whether the app in this folder will ask for sign-in: Streamlit's secrets file here has
    an `[auth]` table."""
    try:
        with secrets.open("rb") as fh:
            return isinstance(tomllib.load(fh).get("auth"), dict)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False


def warn_if_exposed(host: str, port: int) -> None:
    """Without sign-in, say so whenever the app listens beyond this machine."""
    if not _loopback(host) and not sign_in_configured():
        click.echo(
            f"warning: the web app listens on {host or 'every interface'}, port {port}, and has "
            "no sign-in: anyone who reaches it can submit, cancel, delete and upload",
            err=True,
        )


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of the children: the store and the artifacts as absolute paths, so that
    a relative setting names the same place for every process, whatever its working folder."""
    env = dict(os.environ)
    env["RUNLAB_DATABASE_URL"] = absolute_database_url(settings.database_url, Path.cwd())
    if "://" not in settings.artifacts:
        env["RUNLAB_ARTIFACTS"] = str((Path.cwd() / settings.artifacts).resolve())
    return env


def serve_web(settings: Settings, *, port: int, host: str = LOOPBACK) -> int:
    """The web app in the foreground, for a host whose runners live elsewhere."""
    env = child_env(settings)
    command = app_command(port, host)
    warn_if_exposed(host, port)
    # In the user's folder, as this process: a settings file found there is read by both.
    app = subprocess.Popen(command, env=env)

    def _forward(signum: int, _frame: object) -> None:
        # A stop sent to this process alone (a supervisor, `kill <pid>`) must reach the app
        # too, or it would go on serving with no parent.
        if app.poll() is None:
            app.send_signal(signum)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    return app.wait()


def serve_up(
    settings: Settings,
    *,
    port: int,
    concurrency: int,
    host: str = LOOPBACK,
    workers: int | None = None,
) -> int:
    """Run a runner and the web app until Ctrl-C or SIGTERM; 1 if either died on its own.

    `workers` sizes the LocalCluster the runner starts when no scheduler is set (None: one
    worker per core).
    """
    env = child_env(settings)
    runner = python("-m", "runlab.cli", "runner", "--concurrency", str(concurrency))
    if workers is not None:
        runner += ["--workers", str(workers)]
    app = app_command(port, host)
    # Both run in the user's folder, as this process: a settings file found there is read by all
    # three.
    children = {
        "runner": subprocess.Popen(runner, env=env, start_new_session=True),
        "app": subprocess.Popen(app, env=env, start_new_session=True),
    }
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # asked twice: the runner hands its jobs back without waiting
            click.echo("handing running jobs back to the queue now", err=True)
            with contextlib.suppress(ProcessLookupError):
                os.kill(children["runner"].pid, signal.SIGTERM)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    url = app_url(host, port)
    warn_if_exposed(host, port)
    announced = False
    died: str | None = None
    try:
        while not stop.is_set():
            for name, proc in children.items():
                if proc.poll() is not None:
                    died = name
                    break
            if died:
                click.echo(f"the {died} exited with code {children[died].returncode}", err=True)
                break
            if not announced and _healthy(url):
                click.echo(f"Runlab is up: open {url}  (Ctrl-C stops it)")
                announced = True
            stop.wait(0.2)
    finally:
        if stop.is_set():
            click.echo(
                f"stopping: running jobs get up to {settings.grace_seconds:g} s to finish, then go "
                "back to the queue (Ctrl-C again to hand them back now)",
                err=True,
            )
        _terminate(children, settings.grace_seconds + STOP_MARGIN)
    return 1 if died else 0


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def _terminate(children: dict[str, subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM each child, wait up to `grace`, then SIGKILL what is left of each process group.

    Only the leaders get SIGTERM: the runner's Dask workers must keep computing through its
    grace period, and it closes them itself.
    """
    for proc in children.values():
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("process %d did not stop in time; killing it", proc.pid)
    for proc in children.values():
        # Whatever is left in the group (a worker that outlived its parent) goes too.
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
