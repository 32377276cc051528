"""The versions that decide a job's numbers: recorded with every attempt, shown on its page,
and compared across the runner and its Dask cluster before the runner claims a job."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import platform
import socket
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

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


# What a runner, its Dask scheduler and every worker must share before the runner claims a job.
COMPARED = ("runlab", "dask", "distributed", "numpy")
# The code that computes results: the built-in kinds' drivers and their kernels.
KIND_PACKAGES = ("compute.kinds", "compute.kernels")


@functools.cache
def kinds_hash(kind_modules: tuple[str, ...] = ()) -> str:
    """A hash of the kinds' code as files on disk, the built-in ones and `kind_modules`:
    read, not imported, so a host that lacks a module shows a different hash rather than an
    import error, and the same version number over changed code shows too."""
    digest = hashlib.sha256()
    for name in (*KIND_PACKAGES, *kind_modules):
        digest.update(f"\0{name}\0".encode())
        for rel, data in _module_files(name):
            digest.update(f"{rel}\0".encode() + hashlib.sha256(data).digest())
    return digest.hexdigest()[:12]


def _module_files(name: str) -> list[tuple[str, bytes]]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return [("missing", b"")]
    if spec.submodule_search_locations:  # a package: every .py file under it
        base = Path(next(iter(spec.submodule_search_locations)))
        files = sorted(base.rglob("*.py"))
        return [(p.relative_to(base).as_posix(), p.read_bytes()) for p in files]
    if spec.origin and Path(spec.origin).is_file():
        return [(Path(spec.origin).name, Path(spec.origin).read_bytes())]
    return [("missing", b"")]


def fingerprint(kind_modules: tuple[str, ...] = ()) -> dict[str, str]:
    """What a runner compares with its Dask workers: the COMPARED versions and the kinds'
    hash, as this process has them, and its host's name to say where. Workers run it through
    `Client.run`."""
    versions = software_versions()
    return {
        **{name: versions[name] for name in COMPARED},
        "kinds": kinds_hash(kind_modules),
        "host": socket.gethostname(),
    }
