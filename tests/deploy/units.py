"""The example systemd units in docs/deploy/, read as the deployment tests run them: each role
starts with its unit's own `ExecStart`, its `${VARIABLES}` filled from the host's settings, so
the examples are exactly the tested commands."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

UNITS = Path(__file__).resolve().parents[2] / "docs" / "deploy"
ENV_FILE = UNITS / "runlab.env"
INSTALLED = "/opt/runlab/bin/"  # where the units expect the virtualenv's commands
VARIABLE = re.compile(r"\$\{(\w+)\}")


def settings_names() -> list[str]:
    """The variables the example settings file sets, in its order."""
    lines = ENV_FILE.read_text().splitlines()
    return [ln.split("=", 1)[0] for ln in lines if ln and not ln.startswith("#") and "=" in ln]


def command(unit: str, variables: Mapping[str, str], bin_dir: Path) -> list[str]:
    """The unit's ExecStart as an argv, as systemd would run it on a host with `variables`,
    from the virtualenv at `bin_dir` rather than /opt/runlab/bin."""
    (line,) = [ln for ln in (UNITS / unit).read_text().splitlines() if ln.startswith("ExecStart=")]
    argv = [VARIABLE.sub(lambda m: variables[m.group(1)], word) for word in shlex.split(line[10:])]
    if not argv[0].startswith(INSTALLED):
        raise ValueError(f"{unit}: ExecStart runs {argv[0]}, not a command in {INSTALLED}")
    return [str(bin_dir / argv[0][len(INSTALLED) :]), *argv[1:]]
