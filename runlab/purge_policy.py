"""Which finished jobs a purge removes, as a person writes it: an age (`30d`) and statuses.

Pure parsing, with no store behind it, so that the settings check `RUNLAB_PURGE_AFTER` and
`RUNLAB_PURGE_STATUSES` before anything starts, and `jobstore.retention` acts on the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from runlab.status import Status

PURGEABLE = tuple(s for s in Status if s.terminal)
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
AGE = re.compile(r"([0-9]+)\s*([mhdw])")
MAX_AGE = timedelta(days=36500)  # a hundred years: anything longer is a typo


def parse_age(text: str) -> timedelta:
    """`90m`, `12h`, `30d` or `2w` as a timedelta; ValueError says what is wrong."""
    found = AGE.fullmatch(text.strip().lower())
    if not found:
        raise ValueError(
            f"{text.strip()!r} is not an age: write a whole number and a unit, "
            "m (minutes), h (hours), d (days) or w (weeks), such as 30d"
        )
    # Checked as whole seconds before a timedelta is made: one overflows past 999999999 days.
    digits = found[1].lstrip("0")
    too_long = ValueError(f"must be at most {MAX_AGE.days}d")
    if len(digits) > 12:  # far beyond MAX_AGE in any unit; spares int() thousands of digits
        raise too_long
    seconds = int(digits or "0") * UNITS[found[2]]
    if seconds <= 0:
        raise ValueError("must be more than 0, such as 30d")
    if seconds > MAX_AGE.total_seconds():
        raise too_long
    return timedelta(seconds=seconds)


def format_age(age: timedelta) -> str:
    """The shortest spelling `parse_age` reads back as `age`."""
    seconds = int(age.total_seconds())
    for unit in ("w", "d", "h"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds // 60}m"


def parse_statuses(text: str) -> frozenset[Status]:
    """Comma-separated finished statuses; ValueError for an unknown or unfinished one."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    choices = ", ".join(PURGEABLE)
    if not names:
        raise ValueError(f"name at least one of {choices}")
    out: set[Status] = set()
    for name in names:
        try:
            status = Status(name)
        except ValueError:
            raise ValueError(f"unknown status {name!r}; choose from {choices}") from None
        if not status.terminal:
            raise ValueError(
                f"{status} jobs are never purged: only finished ones can be ({choices})"
            )
        out.add(status)
    return frozenset(out)


@dataclass(frozen=True)
class Policy:
    """Which jobs a purge removes: those of `statuses` that ended more than `older_than` ago."""

    older_than: timedelta
    statuses: frozenset[Status] = frozenset(PURGEABLE)

    def __post_init__(self) -> None:
        if not self.statuses or any(not Status(s).terminal for s in self.statuses):
            raise ValueError(f"a purge takes finished statuses only, not {sorted(self.statuses)}")
        if self.older_than <= timedelta(0):
            raise ValueError("a purge needs an age above 0")

    @property
    def status_names(self) -> list[str]:
        return [s.value for s in PURGEABLE if s in self.statuses]

    def describe(self) -> str:
        statuses = ", ".join(self.status_names)
        return f"{statuses} jobs that ended over {format_age(self.older_than)} ago"
