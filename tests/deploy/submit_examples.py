"""Run on a web host: submit jobs of every kind from its example, keeping each upload in the
artifact store that the host's settings name, as the New job form does. Prints their ids.

Run: python -m tests.deploy.submit_examples COUNT
"""

from __future__ import annotations

import json
import sys
from typing import Any

from compute import datasets, intake, registry
from compute.registry import Kind
from jobstore.engine import make_engine
from runlab.artifacts import ArtifactStore, artifact_store
from runlab.settings import load_settings


def example(kind: Kind, store: ArtifactStore, seed: int) -> dict[str, Any]:
    params = kind.example() if kind.example is not None else {}
    for info in registry.describe(kind.params):
        if info.type == "upload" and isinstance(params.get(info.name), bytes):
            kept = datasets.store(store, f"{info.name}.csv", params[info.name])
            params[info.name] = kept.model_dump()
    if "seed" in kind.params.model_fields:
        params["seed"] = seed
    return params


def main(count: int) -> None:
    settings = load_settings()
    registry.load(settings.extra_kind_modules)
    engine = make_engine(settings.database_url)
    store = artifact_store(settings)
    kinds = registry.all_kinds()
    ids = [
        intake.submit(
            engine, kinds[i % len(kinds)].name, example(kinds[i % len(kinds)], store, i + 1)
        )
        for i in range(count)
    ]
    print(json.dumps(ids))


if __name__ == "__main__":
    main(int(sys.argv[1]))
