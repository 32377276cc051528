"""The report a runner writes for a π job halfway through, shared by the seeds of the store's
and the pages' tests."""

from __future__ import annotations

from jobstore.models import StageStatus
from jobstore.reports import Report, StageUpdate


def sampling(
    progress: float,
    *,
    stage_progress: float | None = None,
    metrics: list[tuple[str, float, float]] | None = None,
    logs: list[tuple[str, str]] | None = None,
) -> Report:
    """A π job at `progress` in its `sample` stage, its `plan` stage done; the stage is at
    `stage_progress`, or at the job's progress when that is not given."""
    return Report(
        progress=progress,
        stage="sample",
        stage_updates=[
            StageUpdate(0, "plan", StageStatus.DONE, 1.0, started=True, finished=True),
            StageUpdate(
                1,
                "sample",
                StageStatus.RUNNING,
                progress if stage_progress is None else stage_progress,
                started=True,
            ),
        ],
        metrics=metrics or [],
        logs=logs or [],
    )
