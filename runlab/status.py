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

# How a job ended, as the history shows and filters it: its status, except that a succeeded
# job whose result covers only part of its planned work (a stop and keep) is `partial`.
PARTIAL = "partial"
OUTCOMES = (*(s.value for s in Status), PARTIAL)


def outcome(status: Status, partial: bool) -> str:
    return PARTIAL if partial and status is Status.SUCCEEDED else status.value


def partial_note(covered: float) -> str:
    """The one sentence that the page, the report and the CLI say of a partial result.

    `covered` is the share of the planned work behind it; jobs stopped before the share was
    recorded have 1.0 there, and the sentence leaves it out.
    """
    if 0 <= covered < 1:
        return f"Stopped early: a partial result from {100 * covered:.0f} % of the planned work."
    return "Stopped early: a partial result, from part of the planned work."
