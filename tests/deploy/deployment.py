"""A team's deployment of Runlab on hosts of its own (tests/deploy/hosts.py), built as
docs/deploy.md describes it, each Runlab and Dask role started with the `ExecStart` of its
example unit in docs/deploy/ (tests/deploy/units.py):

- `db`: a PostgreSQL of the test's own (initdb into a temporary folder), on its address;
- `s3`: an S3-compatible server (moto's), holding the artifacts bucket;
- `scheduler`: `dask scheduler`;
- `worker-1`, `worker-2`: `dask worker`, one thread each;
- `runner-1`, `runner-2`: `runlab runner --scheduler tcp://…`;
- `web-1`, `web-2`: `runlab web`.

No role has a test-only code path: each reads its settings from `RUNLAB_*` variables, the
ones that docs/deploy/runlab.env sets, with this topology's addresses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import fsspec
from sqlalchemy import Engine, create_engine, text

from jobstore.engine import make_engine
from tests.deploy import units
from tests.deploy.hosts import Host, Network, on
from tests.polling import wait_for
from tests.processes import answers
from tests.s3 import KEY_ID, REGION, SECRET

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_BIN = Path(shutil.which("postgres") or "/usr/lib/postgresql/15/bin/postgres").parent
SCHEDULER_PORT = 8786
S3_PORT = 5000
WEB_PORT = 8501
BUCKET = "runlab-artifacts"
START_SECONDS = 90.0


class Deployment:
    def __init__(self, net: Network, folder: Path) -> None:
        self.net = net
        self.folder = folder
        self.db = net.add("db")
        self.s3 = net.add("s3")
        self.scheduler = net.add("scheduler")
        self.workers = [net.add("worker-1"), net.add("worker-2")]
        self.runners = [net.add("runner-1"), net.add("runner-2")]
        self.webs = [net.add("web-1"), net.add("web-2")]
        self.database_url = f"postgresql+psycopg://postgres@{self.db.address}:5432/runlab"
        self.scheduler_address = f"tcp://{self.scheduler.address}:{SCHEDULER_PORT}"
        self.s3_endpoint = f"http://{self.s3.address}:{S3_PORT}"
        self.artifacts = f"s3://{BUCKET}/runlab"
        # Each host's own data folder: no host reads another's files but through the bucket.
        self.homes: dict[str, Path] = {}
        self._pgdata: Path | None = None

    # --- settings ----------------------------------------------------------------------------

    def home(self, host: Host) -> Path:
        if host.name not in self.homes:
            self.homes[host.name] = Path(tempfile.mkdtemp(prefix=f"{host.name}-", dir=self.folder))
        return self.homes[host.name]

    def settings(self, host: Host) -> dict[str, str]:
        """docs/deploy/runlab.env's settings, with this topology's values."""
        values = {
            "HOST_ADDRESS": host.address,
            "RUNLAB_DATABASE_URL": self.database_url,
            "RUNLAB_ARTIFACTS": self.artifacts,
            "RUNLAB_ARTIFACTS_ENDPOINT": self.s3_endpoint,
            "RUNLAB_ARTIFACTS_REGION": REGION,
            "RUNLAB_ARTIFACTS_KEY_ID": KEY_ID,
            "RUNLAB_ARTIFACTS_SECRET": SECRET,
            "RUNLAB_SCHEDULER": self.scheduler_address,
        }
        assert sorted(values) == sorted(units.settings_names()), "runlab.env and this differ"
        return values

    def env(self, host: Host, **extra: str) -> dict[str, str]:
        """What every host is given: its settings, and its own folders."""
        return {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(self.home(host)),
            "XDG_DATA_HOME": str(self.home(host)),
            "PYTHONPATH": str(ROOT),
            **self.settings(host),
            # Short enough for the test to see a cut runner's jobs taken over in seconds.
            "RUNLAB_HEARTBEAT_SECONDS": "0.5",
            "RUNLAB_LEASE_SECONDS": "5",
            "RUNLAB_RETRY_BACKOFF_SECONDS": "0.5",
            **extra,
        }

    def unit(self, host: Host, unit: str, **extra: str) -> subprocess.Popen[bytes]:
        """The role that `unit` starts, on `host`, by its ExecStart."""
        env = self.env(host, **extra)
        return self.net.spawn(host, units.command(unit, env, BIN), env=env, log=unit.split(".")[0])

    def engine(self) -> Engine:
        """The store, from the machine itself, over the bridge."""
        return make_engine(self.database_url)

    # --- the roles ---------------------------------------------------------------------------

    def spawn_database(self) -> None:
        data = Path(tempfile.mkdtemp(prefix="pgdata-"))  # outside pytest's root-only folders
        self._pgdata = data
        shutil.chown(data, "postgres", "postgres")
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data),
             "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.net.prefix}.0/24 trust\n")
        self.net.spawn(
            self.db,
            [str(PG_BIN / "postgres"), "-D", str(data), "-c", f"listen_addresses={self.db.address}",
             "-c", f"unix_socket_directories={data}", "-c", "fsync=off",
             "-c", "max_connections=200"],
            env={"PATH": os.environ.get("PATH", "")}, log="postgres", user="postgres",
        )  # fmt: skip

    def database_answers(self) -> None:
        """Once the server takes connections: its `runlab` database made."""
        admin = create_engine(
            f"postgresql+psycopg://postgres@{self.db.address}:5432/postgres",
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 2},
        )

        def created() -> bool:
            try:
                with admin.connect() as conn:
                    conn.execute(text("CREATE DATABASE runlab"))
                return True
            except Exception:
                return False

        try:
            wait_for(created, timeout=START_SECONDS, what="the database host", interval=0.3)
        finally:
            admin.dispose()

    def spawn_s3(self) -> None:
        self.net.spawn(
            self.s3,
            [str(BIN / "moto_server"), "-H", self.s3.address, "-p", str(S3_PORT)],
            env=self.env(self.s3),
            log="s3",
        )

    def s3_answers(self) -> None:
        """Once the server answers: the artifacts bucket made."""
        wait_for(
            lambda: answers(f"{self.s3_endpoint}/moto-api/"),
            timeout=START_SECONDS,
            what="the S3 host",
            interval=0.3,
        )
        fs = fsspec.filesystem(
            "s3", endpoint_url=self.s3_endpoint, key=KEY_ID, secret=SECRET, skip_instance_cache=True
        )
        fs.mkdir(BUCKET)

    def start_scheduler(self) -> None:
        self.unit(self.scheduler, "dask-scheduler.service")

    def start_worker(self, host: Host, **extra: str) -> subprocess.Popen[bytes]:
        return self.unit(host, "dask-worker.service", **extra)

    def start_runner(self, host: Host) -> subprocess.Popen[bytes]:
        return self.unit(host, "runlab-runner.service")

    def start_web(self, host: Host) -> subprocess.Popen[bytes]:
        return self.unit(host, "runlab-web.service")

    def runner_log(self, host: Host) -> str:
        return self.net.log(host, "runlab-runner")

    def run_unit(self, host: Host, unit: str, timeout: float = 120) -> str:
        """A oneshot role (migrate, purge) run to its end on `host`; its output."""
        env = self.env(host)
        return self.run_on(host, units.command(unit, env, BIN), timeout=timeout)

    def web_url(self, host: Host) -> str:
        return f"http://{host.address}:{WEB_PORT}"

    def run_on(self, host: Host, argv: list[str], timeout: float = 120, **extra: str) -> str:
        """A command run to its end on `host`; its output, or an AssertionError with it."""
        done = subprocess.run(
            on(host) + argv,
            env=self.env(host, **extra),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(f"{argv} on {host.name} exited {done.returncode}:\n{done.stderr}")
        return done.stdout

    # --- waiting ------------------------------------------------------------------------------

    def workers_joined(self, count: int) -> None:
        from distributed import Client

        def joined() -> bool:
            try:
                with Client(self.scheduler_address, timeout="5s") as client:
                    return len(client.nthreads()) >= count
            except OSError:
                return False

        wait_for(joined, timeout=START_SECONDS, what=f"{count} Dask workers", interval=0.5)

    def webs_answer(self) -> None:
        for host in self.webs:
            wait_for(
                lambda h=host: answers(f"{self.web_url(h)}/_stcore/health"),
                timeout=START_SECONDS,
                what=f"the web app on {host.name}",
                interval=0.3,
            )

    def start(self) -> None:
        """Every role, in the order a team brings them up. The database, the bucket, the
        scheduler and the workers depend on none of each other: they start together, and the
        roles after them once all four answer."""
        self.spawn_database()
        self.spawn_s3()
        self.start_scheduler()
        for w in self.workers:
            self.start_worker(w)
        self.database_answers()
        self.s3_answers()
        self.workers_joined(len(self.workers))
        # The migration role, run once before the rest; runners and web apps would upgrade too.
        self.run_unit(self.runners[0], "runlab-migrate.service")
        for r in self.runners:
            self.start_runner(r)
        for w in self.webs:
            self.start_web(w)
        self.webs_answer()

    def close(self) -> None:
        self.net.close()
        if self._pgdata is not None:
            shutil.rmtree(self._pgdata, ignore_errors=True)
