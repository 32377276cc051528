"""A runner or a web app whose artifact store does not answer stops at start, in one line that
names the setting, as a real process: before it claims a job or serves a page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.processes import free_port, run_cli
from tests.s3 import S3Server


def env_for(tmp_path: Path, **artifacts: str) -> dict[str, str]:
    return {
        **os.environ,
        "RUNLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'runlab.db'}",
        **artifacts,
    }


@pytest.mark.parametrize("command", ["runner", "web"])
def test_a_missing_bucket_stops_the_process_at_start(
    tmp_path: Path, s3: S3Server, command: str
) -> None:
    env = env_for(tmp_path, **s3.env("s3://no-such-bucket/runlab"))
    args = ["web", "--port", str(free_port())] if command == "web" else ["runner"]
    done = run_cli(env, *args, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: the artifact store s3://no-such-bucket/runlab (RUNLAB_ARTIFACTS): "
        "the bucket no-such-bucket does not exist"
    )


def test_a_wrong_endpoint_stops_the_runner_at_start(tmp_path: Path, s3: S3Server) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = env_for(
        tmp_path, **{**s3.env("s3://bucket/runlab"), "RUNLAB_ARTIFACTS_ENDPOINT": endpoint}
    )
    done = run_cli(env, "runner", timeout=60)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: the artifact store s3://bucket/runlab (RUNLAB_ARTIFACTS): ")
    assert endpoint in line
