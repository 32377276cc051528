"""The functions each kind sends to Dask, one module per kind.

A worker unpickles a task's function by importing the module it is defined in. These modules
import only the standard library, NumPy and SciPy, and, where a worker reads an upload itself,
`compute.datasets` (pandas) and `runlab.artifacts` (fsspec); so a worker never imports a kind's
driver, the job store, SQLAlchemy or Alembic (tests/runner/test_worker_imports.py checks it,
and an import contract in pyproject.toml). A kernel
takes plain values: the parameters as a dict of the model's fields (`model_dump()`), never the
pydantic model, whose module is the driver's.
"""
