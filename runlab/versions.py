"""The versions that decide a job's numbers: recorded with every attempt, shown on its page."""

from __future__ import annotations

import functools
import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("runlab", "numpy", "scipy", "dask", "distributed")


@functools.cache
def software_versions() -> dict[str, str]:
    """Runlab, the numerical libraries and Python, as installed in this process."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    out["python"] = platform.python_version()
    return out
