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
import urllib.request
from pathlib import Path
from types import FrameType

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from runlab.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
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
) -> None:
    from compute.cluster import connect
    from compute.runner import Runner

    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    logging.getLogger("distributed").setLevel(logging.WARNING)
    cluster = connect(scheduler, workers)
    runner = Runner(
        engine,
        settings,
        cluster.client,
        reconnect=cluster.reconnect,
        revive=cluster.revive,
        concurrency=concurrency,
        scheduler_address=cluster.scheduler_address,
        dashboard_link=cluster.dashboard_link,
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


def app_command(port: int, host: str = LOOPBACK) -> list[str]:
    """The web app alone, as `runlab up` and `runlab web` start it, listening on `host`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
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


def warn_if_exposed(host: str, port: int) -> None:
    """There is no sign-in: say so whenever the app listens beyond this machine."""
    if not _loopback(host):
        click.echo(
            f"warning: the web app listens on {host or 'every interface'}, port {port}, and has "
            "no sign-in: anyone who reaches it can submit, cancel, delete and upload",
            err=True,
        )


def serve_web(settings: Settings, *, port: int, host: str = LOOPBACK) -> int:
    """The web app in the foreground, for a host whose runners live elsewhere."""
    env = dict(os.environ)
    env["RUNLAB_DATABASE_URL"] = absolute_database_url(settings.database_url, Path.cwd())
    if "://" not in settings.artifacts:
        env["RUNLAB_ARTIFACTS"] = str((Path.cwd() / settings.artifacts).resolve())
    warn_if_exposed(host, port)
    return subprocess.call(app_command(port, host), cwd=ROOT, env=env)


def serve_up(settings: Settings, *, port: int, concurrency: int, host: str = LOOPBACK) -> int:
    """Run a runner and the web app until Ctrl-C or SIGTERM; 1 if either died on its own."""
    env = dict(os.environ)
    env["RUNLAB_DATABASE_URL"] = absolute_database_url(settings.database_url, Path.cwd())
    if "://" not in settings.artifacts:
        env["RUNLAB_ARTIFACTS"] = str((Path.cwd() / settings.artifacts).resolve())
    children = {
        "runner": subprocess.Popen(
            [sys.executable, "-m", "runlab.cli", "runner", "--concurrency", str(concurrency)],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        ),
        "app": subprocess.Popen(app_command(port, host), cwd=ROOT, env=env, start_new_session=True),
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
