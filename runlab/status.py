"""A job's status: the words every layer shares, so that the settings, the CLI, the pages and
the store name a status alike without the settings depending on the store."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """A job's state. The only spelling of these strings in the code base."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
