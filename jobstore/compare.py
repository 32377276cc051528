"""The read behind /compare: several jobs' parameters, results and metric series side by side.

Two statements, whatever the number of jobs: the jobs with their results by `public_id` (its
unique index, plus the unique `job_results.job_id`), then the metric rows of each job's latest
attempt by `job_id` (the `ix_job_metrics_job_name_step` index). Its cost therefore grows with
the metric rows of the jobs compared, never with the size of the store.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, and_, func, select

from jobstore.engine import reading
from jobstore.models import JobMetric, JobResult, table_of
from jobstore.queries import PUBLIC_ID, SUMMARY_COLUMNS, _summary, jobs, thin
from jobstore.views import JobSummary
from runlab.errors import InvalidParams

MIN_JOBS = 2
MAX_JOBS = 10
SHORT_ID = 8
MAX_POINTS = 1000
_SEPARATORS = re.compile(r"[,\s]+")

Section = Literal["param", "result"]
Series = dict[str, tuple[list[float], list[float]]]


class Absent(enum.Enum):
    """A field that one job has and another lacks: not the same as a stored null."""

    ABSENT = "absent"


ABSENT = Absent.ABSENT


@dataclass(frozen=True)
class ComparedJob:
    summary: JobSummary
    params: dict[str, Any]
    result: dict[str, Any] | None
    series: Series = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.summary.id

    @property
    def short_id(self) -> str:
        return self.summary.id[:SHORT_ID]


@dataclass(frozen=True)
class FieldRow:
    """One parameter or result field across the jobs, in job order."""

    section: Section
    path: tuple[str, ...]  # ("var", "0.99") for a nested dict, flattened one level
    values: tuple[Any, ...]  # ABSENT where a job has no such field
    differs: bool

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Trace:
    """One job's points of one series; empty when the job has no such series."""

    job: ComparedJob
    steps: list[float]
    values: list[float]


@dataclass(frozen=True)
class Comparison:
    jobs: list[ComparedJob]  # found, in the order asked for
    unknown: list[str]  # asked for but malformed or not in the store, in the order asked for
    fields: list[FieldRow]  # parameters first, then results

    @property
    def series_names(self) -> list[str]:
        """Every series name any of the jobs has, sorted."""
        return sorted({name for job in self.jobs for name in job.series})

    @property
    def common_series(self) -> list[str]:
        """The series every job has, sorted: the ones worth overlaying first."""
        if not self.jobs:
            return []
        common = set(self.jobs[0].series).intersection(*(j.series for j in self.jobs[1:]))
        return sorted(common)

    @property
    def default_series(self) -> str | None:
        """The first common series, else the one most jobs have (ties by name)."""
        if self.common_series:
            return self.common_series[0]
        names = self.series_names
        if not names:
            return None
        return min(names, key=lambda n: (-sum(n in j.series for j in self.jobs), n))

    def overlay(self, name: str) -> list[Trace]:
        """One trace per job, in job order, so trace i is always job i's."""
        out = []
        for job in self.jobs:
            steps, values = job.series.get(name, ([], []))
            out.append(Trace(job, list(steps), list(values)))
        return out

    @property
    def differing(self) -> list[FieldRow]:
        return [row for row in self.fields if row.differs]


def parse_ids(raw: str | Iterable[str]) -> list[str]:
    """The ids of a `?ids=` value (or of repeated `?ids=`), split on commas and blanks."""
    parts = [raw] if isinstance(raw, str) else list(raw)
    return [p for text in parts for p in _SEPARATORS.split(text) if p]


def compare(engine: Engine, ids: Sequence[str], *, max_points: int = MAX_POINTS) -> Comparison:
    """Read 2 to 10 jobs by public id for a side-by-side view, in two statements.

    `ids` are public ids in the order to show them; duplicates collapse to their first place.
    Each job's metric series (its latest attempt's, as on its own page) is thinned to at most
    `max_points` points per series, keeping the last. Ids that are malformed or not in the store
    come back in `Comparison.unknown` rather than raising, so a page can name them and still
    compare the rest. Raises `InvalidParams` (field `ids`) when fewer than 2 or more than 10
    distinct ids are given; nothing is read then.
    """
    wanted = list(dict.fromkeys(ids))
    if len(wanted) < MIN_JOBS:
        raise InvalidParams(
            {"ids": f"pick at least {MIN_JOBS} jobs to compare; this link names {len(wanted)}"}
        )
    if len(wanted) > MAX_JOBS:
        raise InvalidParams(
            {"ids": f"compare at most {MAX_JOBS} jobs at a time; this link names {len(wanted)}"}
        )
    wellformed = [i for i in wanted if isinstance(i, str) and PUBLIC_ID.match(i)]
    found: dict[str, tuple[int, Any]] = {}
    series: dict[int, Series] = {}
    if wellformed:
        with reading(engine) as conn:
            rows = conn.execute(
                select(jobs.c.id, jobs.c.params, JobResult.summary, *SUMMARY_COLUMNS)
                .select_from(jobs.outerjoin(JobResult, JobResult.job_id == jobs.c.id))
                .where(jobs.c.public_id.in_(wellformed))
            ).all()
            found = {r.public_id: (r.id, r) for r in rows}
            if found:
                series = _series(conn, [job_id for job_id, _ in found.values()], max_points)
    compared = [
        ComparedJob(
            summary=_summary(row),
            params=dict(row.params or {}),
            result=None if row.summary is None else dict(row.summary),
            series=series.get(job_id, {}),
        )
        for job_id, row in (found[i] for i in wanted if i in found)
    ]
    return Comparison(
        jobs=compared,
        unknown=[i for i in wanted if i not in found],
        fields=field_rows(compared),
    )


def _series(conn: Connection, job_ids: list[int], max_points: int) -> dict[int, Series]:
    """Every job's series from its latest attempt that wrote any, in one statement."""
    m = table_of(JobMetric)
    latest = (
        select(m.c.job_id, func.max(m.c.attempt).label("attempt"))
        .where(m.c.job_id.in_(job_ids))
        .group_by(m.c.job_id)
        .subquery()
    )
    rows = conn.execute(
        select(m.c.job_id, m.c.name, m.c.step, m.c.value)
        .join(latest, and_(m.c.job_id == latest.c.job_id, m.c.attempt == latest.c.attempt))
        .order_by(m.c.job_id, m.c.name, m.c.step, m.c.id)
    ).all()
    out: dict[int, Series] = {}
    for job_id, name, step, value in rows:
        xs, ys = out.setdefault(job_id, {}).setdefault(name, ([], []))
        xs.append(step)
        ys.append(value)
    return {
        job_id: {name: thin(xs, ys, max_points) for name, (xs, ys) in named.items()}
        for job_id, named in out.items()
    }


def field_rows(members: Sequence[ComparedJob], param_order: Sequence[str] = ()) -> list[FieldRow]:
    """Parameters (in `param_order`, then by name), then results by name, with the rows that
    differ marked. A field some jobs lack does not apply to them, so only the jobs that have it
    are compared (a barrier level beside a European option's missing one is no difference);
    a job with no result yet differs from those with one.

    Sorted rather than in stored order: PostgreSQL's JSONB keeps its keys in an order of its own.
    """
    rank = {name: i for i, name in enumerate(param_order)}
    out: list[FieldRow] = []
    sections: list[tuple[Section, list[Mapping[str, Any] | None]]] = [
        ("param", [j.params for j in members]),
        ("result", [j.result for j in members]),
    ]
    for section, docs in sections:
        flat = [dict(_flatten(doc or {})) for doc in docs]
        paths = sorted(
            {p for f in flat for p in f},
            key=lambda p: (rank.get(p[0], len(rank)) if section == "param" else 0, p),
        )
        for path in paths:
            values = tuple(f.get(path, ABSENT) for f in flat)
            # A job with no result yet differs from one with a result; a field that a job's
            # kind or options do not have does not apply to it, and is left out.
            seen = [
                v for v, doc in zip(values, docs, strict=True) if v is not ABSENT or doc is None
            ]
            out.append(FieldRow(section, path, values, differs=_differ(seen)))
    return out


def _flatten(doc: Mapping[str, Any]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Nested dicts one level deep become their own fields; deeper ones stay whole values."""
    for key, value in doc.items():
        if isinstance(value, Mapping) and value:
            for sub, inner in value.items():
                yield (str(key), str(sub)), inner
        else:
            yield (str(key),), value


def _differ(values: Sequence[Any]) -> bool:
    return len({_canonical(v) for v in values}) > 1


def _canonical(value: Any) -> Any:
    """A hashable form in which 1 and 1.0 are equal but True and 1 are not, as a reader sees it."""
    if value is ABSENT:
        return ("absent",)
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return ("number", "nan")
        return ("number", value)
    if isinstance(value, str):
        return ("text", value)
    if isinstance(value, Mapping):
        return ("dict", tuple(sorted((str(k), _canonical(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("list", tuple(_canonical(v) for v in value))
    return ("other", repr(value))
