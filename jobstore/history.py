"""The history read: a typed `Query` compiled to SQL, sorted on any column, paged by keyset.

Keyset paging ("the rows after this one") costs the same on the last page as on the first,
and never skips or repeats a row while new jobs arrive, which OFFSET does at a million jobs.
A cursor holds the sort value and the public id of the last row shown, never the internal
row id (which would tell how many jobs exist); each page looks the row id up by the unique
public id. Rows whose sort value is missing (a queued job has no duration yet) come after all
the others, in either direction.

Every value of a query reaches SQL as a bound parameter; the SQL text depends only on the
query's shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from jobstore.engine import reading
from jobstore.models import Job, JobResult, Status, Sweep, table_of
from jobstore.queries import SUMMARY_COLUMNS, _summary
from jobstore.search import PUBLIC_ID, FieldTest, Op, Query
from jobstore.views import JobSummary, as_utc
from runlab.status import PARTIAL, outcome

jobs = table_of(Job)
results = table_of(JobResult)
sweeps_t = table_of(Sweep)
Sort = Literal["created", "name", "kind", "status", "owner", "started", "finished", "duration"]
SORTS: tuple[Sort, ...] = (
    "created",
    "name",
    "kind",
    "status",
    "owner",
    "started",
    "finished",
    "duration",
)
NULLABLE: frozenset[Sort] = frozenset({"started", "finished", "duration"})
MAX_LIMIT = 500


# A name cursor is the longest: 200 characters, each up to 12 bytes of JSON, in base64.
MAX_CURSOR = 4096
TOKEN = re.compile(f"[A-Za-z0-9_-]{{1,{MAX_CURSOR}}}")
MAX_TEXT = 200  # no sort value of text is longer: names are at most 200 characters
MAX_SECONDS = timedelta.max.total_seconds()


class BadCursor(ValueError):
    """A page link that does not belong to this sort, was edited by hand, or names a job that
    is gone: the page says the link is not valid and shows the first page."""


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the row with this sort value and public id.

    The link carries only what the page shows anyway; `decode` checks every part, so a
    crafted token is a `BadCursor`, never a value SQL cannot take.
    """

    value: Any
    public_id: str
    missing: bool = False  # the row had no sort value: we are among the rows that come last

    def encode(self) -> str:
        value = self.value
        if isinstance(value, datetime):
            value = {"t": as_utc(value).isoformat()}
        elif isinstance(value, timedelta):
            value = {"s": value.total_seconds()}
        raw = json.dumps([value, self.public_id, self.missing], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            if not isinstance(text, str) or not TOKEN.fullmatch(text):
                raise ValueError
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            parts = json.loads(raw)
            if not isinstance(parts, list) or len(parts) != 3:
                raise TypeError
            value, public_id, missing = parts
            if not isinstance(public_id, str) or not PUBLIC_ID.fullmatch(public_id):
                raise TypeError
            if not isinstance(missing, bool):
                raise TypeError
            return cls(_sort_value(value), public_id, missing)
        except (
            binascii.Error,
            ValueError,  # UnicodeDecodeError and json's errors among them
            TypeError,
            OverflowError,
            RecursionError,  # nesting deep enough to exhaust the parser
        ):
            raise BadCursor(text) from None


def _sort_value(value: Any) -> Any:
    """A sort value from a link, or an error: an aware UTC time, a duration a timedelta holds,
    a finite number, or short text that either backend can bind."""
    if value is None:
        return None
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("t"), str):
        at = datetime.fromisoformat(value["t"])
        if at.tzinfo is None:
            raise ValueError
        return at.astimezone(UTC)
    if isinstance(value, dict) and len(value) == 1 and "s" in value:
        return timedelta(seconds=_finite(value["s"], MAX_SECONDS))
    if isinstance(value, str):
        if len(value) > MAX_TEXT or "\0" in value or re.search("[\ud800-\udfff]", value):
            raise ValueError  # PostgreSQL refuses a NUL; neither backend takes a lone surrogate
        return value
    return _finite(value, MAX_SECONDS / 86400)  # a duration in days, on SQLite


def _finite(value: Any, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        raise ValueError
    return number


@dataclass(frozen=True)
class HistoryPage:
    rows: list[JobSummary]
    next: Cursor | None  # None on the last page


def _sort_expr(sort: Sort, postgres: bool, query: Query) -> ColumnElement[Any] | None:
    """The expression a sort orders by (None: by id alone); each has an index (migration 0005).

    "created" is the id order, which every other index ends with, except under a created-time
    range: then the (created_at, id) index serves the range and the order at once, instead of
    a walk through every newer id.
    """
    if sort == "created":
        timed = query.created_from is not None or query.created_to is not None
        return jobs.c.created_at if timed else None
    if sort == "duration":
        if postgres:
            return jobs.c.finished_at - jobs.c.started_at
        # In days: SQLite's expression index must see exactly this expression.
        return func.julianday(jobs.c.finished_at) - func.julianday(jobs.c.started_at)
    column = {"started": "started_at", "finished": "finished_at"}.get(sort, sort)
    return jobs.c[column]


def _outcomes(wanted: frozenset[str]) -> ColumnElement[bool]:
    """Jobs that ended as any of `wanted`: a status, or `partial`, which a succeeded job with a
    partial result is instead of `succeeded`."""
    plain = sorted(wanted - {PARTIAL, Status.SUCCEEDED})
    either: list[ColumnElement[bool]] = [jobs.c.status.in_(plain)] if plain else []
    if Status.SUCCEEDED in wanted:
        either.append(and_(jobs.c.status == Status.SUCCEEDED, jobs.c.partial == false()))
    if PARTIAL in wanted:
        either.append(and_(jobs.c.status == Status.SUCCEEDED, jobs.c.partial == true()))
    return or_(*either) if either else false()


def conditions(query: Query, postgres: bool) -> list[ColumnElement[bool]]:
    """The WHERE clause of a query, every value bound."""
    where: list[ColumnElement[bool]] = []
    if query.statuses is not None:
        where.append(_outcomes(query.statuses))
    for column, values in (
        (jobs.c.kind, query.kinds),
        (jobs.c.owner, query.owners),
        (jobs.c.queue, query.queues),
        (jobs.c.public_id, query.ids),
    ):
        if values is not None:
            where.append(column.in_(sorted(values)) if values else false())
    if query.sweeps is not None:
        of = select(sweeps_t.c.id).where(sweeps_t.c.public_id.in_(sorted(query.sweeps)))
        where.append(jobs.c.sweep_id.in_(of) if query.sweeps else false())
    if query.grouped:
        where.append(sweep_head(jobs))
    for tag in query.tags:
        where.append(_has_tag(tag, postgres))
    for word in query.words:
        where.append(jobs.c.name.icontains(word, autoescape=True))
    if query.created_from is not None:
        where.append(jobs.c.created_at >= _stamp(query.created_from, postgres))
    if query.created_to is not None:
        where.append(jobs.c.created_at < _stamp(query.created_to, postgres))
    for test in query.fields:
        if test.source == "params":
            where.append(_field(jobs.c.params, test, postgres))
        else:
            where.append(
                exists().where(
                    results.c.job_id == jobs.c.id, _field(results.c.summary, test, postgres)
                )
            )
    return where


def sweep_head(job: Any) -> ColumnElement[bool]:
    """Whether `job` stands on a row of its own: a job of no sweep, or the first job of its
    sweep's first point. One probe of `ix_jobs_sweep_point` (which finds nothing for a job of
    no sweep, whose sweep_id is NULL).

    Written without OR: given `sweep_id IS NULL OR …`, SQLite read every job of no sweep through
    that index and sorted them, 3 s a page at a million jobs, instead of walking the sort's
    own index."""
    earlier = jobs.alias("earlier")
    return and_(
        func.coalesce(job.c.sweep_point, 0) == 0,
        ~exists().where(
            earlier.c.sweep_id == job.c.sweep_id,
            earlier.c.sweep_point == 0,
            earlier.c.id < job.c.id,
        ),
    )


def _stamp(ts: datetime, postgres: bool) -> datetime:
    """SQLite keeps naive UTC strings; compare with the same."""
    ts = ts.astimezone(UTC)
    return ts if postgres else ts.replace(tzinfo=None)


def _has_tag(tag: str, postgres: bool) -> ColumnElement[bool]:
    if postgres:
        return type_coerce(jobs.c.tags, JSONB).contains([tag])
    each = func.json_each(jobs.c.tags).table_valued("value")
    return exists().select_from(each).where(each.c.value == tag)


def _field(doc: Any, t: FieldTest, postgres: bool) -> ColumnElement[bool]:
    """One test on a top-level field of a JSON document; a field of another type never matches
    an ordering, and `!=` needs the field to be there."""
    ordering = t.op in (Op.GT, Op.GE, Op.LT, Op.LE)
    if postgres:
        d = type_coerce(doc, JSONB)
        if ordering:
            # CASE, not AND: PostgreSQL may cast before it checks the type otherwise.
            number = func.jsonb_typeof(d[t.key]) == "number"
            value = case((number, d[t.key].astext), else_=None).cast(Float)
            return _compare(value, t.op, t.value)
        equal = d.contains({t.key: t.value})
        if t.op is Op.EQ:
            return equal
        return and_(d.has_key(t.key), not_(equal))
    path = '$."' + t.key + '"'
    kind = func.json_type(doc, path)
    extracted = func.json_extract(doc, path)
    if ordering:
        return and_(kind.in_(["integer", "real"]), _compare(extracted, t.op, t.value))
    if isinstance(t.value, bool):
        equal = kind == ("true" if t.value else "false")
    elif isinstance(t.value, str):
        equal = and_(kind == "text", extracted == t.value)
    else:
        equal = and_(kind.in_(["integer", "real"]), extracted == t.value)
    if t.op is Op.EQ:
        return equal
    return and_(kind.is_not(None), not_(equal))


def _compare(left: Any, op: Op, value: Any) -> ColumnElement[bool]:
    return {
        Op.GT: left > value,
        Op.GE: left >= value,
        Op.LT: left < value,
        Op.LE: left <= value,
        Op.EQ: left == value,
        Op.NE: left != value,
    }[op]


def history(
    engine: Engine,
    query: Query | None = None,
    *,
    sort: Sort = "created",
    descending: bool = True,
    after: Cursor | None = None,
    limit: int = 25,
) -> HistoryPage:
    """One page of jobs matching `query`, in `sort` order, starting after `after`."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
    limit = max(1, min(limit, MAX_LIMIT))
    postgres = engine.dialect.name == "postgresql"
    query = query or Query()
    key = _sort_expr(sort, postgres, query)
    if after is not None and not _fits(sort, key is None, after, postgres):
        raise BadCursor(after.encode())
    where = conditions(query, postgres)
    with reading(engine) as conn:
        after_id = None if after is None else _row_id(conn, after)
        if key is None:
            found = conn.execute(_by_id(where, descending, after_id, limit + 1)).all()
            return _page(found, limit, lambda r: Cursor(None, r.public_id))
        rows: list[Any] = []  # the keyed rows, then a _Missing for each without a sort value
        if after is None or not after.missing:
            at = None if after is None or after_id is None else (after.value, after_id)
            rows = list(
                conn.execute(_by_key(key, sort in NULLABLE, where, descending, at, limit + 1)).all()
            )
        if len(rows) <= limit and sort in NULLABLE:
            # After every row with a value come those without one, by id in the same direction.
            start = after_id if after is not None and after.missing else None
            rest = conn.execute(
                _by_id([*where, key.is_(None)], descending, start, limit + 1 - len(rows))
            ).all()
            rows += [_Missing(r) for r in rest]
    return _page(
        rows,
        limit,
        lambda r: (
            Cursor(None, r.public_id, True) if isinstance(r, _Missing) else Cursor(r.k, r.public_id)
        ),
    )


def _row_id(conn: Connection, after: Cursor) -> int:
    """The row a link's public id names, read through its unique index; a job deleted since
    the link was made leaves nothing to page after."""
    found = conn.execute(select(jobs.c.id).where(jobs.c.public_id == after.public_id)).scalar()
    if found is None:
        raise BadCursor(after.encode())
    return int(found)


def _fits(sort: Sort, by_id: bool, after: Cursor, postgres: bool) -> bool:
    """Whether a cursor could have come from this sort: a hand-edited or stale link must not
    reach SQL as a comparison of mismatched types."""
    v = after.value
    if by_id or after.missing:
        return v is None and not (by_id and after.missing)
    if sort in ("created", "started", "finished"):
        return isinstance(v, datetime)
    if sort == "duration":
        return isinstance(v, timedelta) if postgres else isinstance(v, int | float)
    return isinstance(v, str)


class _Missing:
    """A row read among those without a sort value; its cursor says so."""

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def _by_id(where: list[ColumnElement[bool]], descending: bool, after: int | None, n: int) -> Any:
    stmt = select(jobs.c.id, *SUMMARY_COLUMNS).where(*where)
    if after is not None:
        stmt = stmt.where(jobs.c.id < after if descending else jobs.c.id > after)
    order = jobs.c.id.desc() if descending else jobs.c.id.asc()
    return stmt.order_by(order).limit(n)


def _by_key(
    key: ColumnElement[Any],
    nullable: bool,
    where: list[ColumnElement[bool]],
    descending: bool,
    after: tuple[Any, int] | None,
    n: int,
) -> Any:
    """Rows after `after`, a (sort value, row id) pair, in key order."""
    stmt = select(jobs.c.id, key.label("k"), *SUMMARY_COLUMNS).where(*where)
    if nullable:
        stmt = stmt.where(key.is_not(None))
    if after is not None:
        value, row_id = after
        pair, cursor = tuple_(key, jobs.c.id), tuple_(literal(value, key.type), row_id)
        stmt = stmt.where(pair < cursor if descending else pair > cursor)
    if descending:
        return stmt.order_by(key.desc(), jobs.c.id.desc()).limit(n)
    return stmt.order_by(key.asc(), jobs.c.id.asc()).limit(n)


def _page(rows: Sequence[Any], limit: int, cursor_of: Any) -> HistoryPage:
    shown = rows[:limit]
    more = len(rows) > limit
    return HistoryPage(
        [_summary(r) for r in shown],
        cursor_of(shown[-1]) if more and shown else None,
    )


def values_of(
    engine: Engine, public_ids: Sequence[str]
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """The parameters and the result (empty until it succeeds) of each named job, in one
    read: the columns a view of the history adds for the fields it searches or a kind's
    headline."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(jobs.c.public_id, jobs.c.params, results.c.summary)
            .select_from(jobs.outerjoin(results, results.c.job_id == jobs.c.id))
            .where(jobs.c.public_id.in_(list(public_ids)))
        ).all()
    return {r.public_id: (dict(r.params or {}), dict(r.summary or {})) for r in rows}


def export(engine: Engine, public_ids: list[str]) -> list[dict[str, Any]]:
    """The named jobs with their parameters and results (as dicts), in the order given, for
    a CSV; `status` is the outcome, so a job stopped early reads `partial`."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(
                jobs.c.public_id,
                jobs.c.name,
                jobs.c.kind,
                jobs.c.status,
                jobs.c.partial,
                jobs.c.owner,
                jobs.c.tags,
                jobs.c.created_at,
                jobs.c.started_at,
                jobs.c.finished_at,
                jobs.c.params,
                results.c.summary,
            )
            .select_from(jobs.outerjoin(results, results.c.job_id == jobs.c.id))
            .where(jobs.c.public_id.in_(public_ids))
        ).all()
    by_id = {r.public_id: r for r in rows}

    def stamp(ts: datetime | None) -> str:
        return "" if ts is None else as_utc(ts).isoformat()

    return [
        {
            "id": r.public_id,
            "name": r.name,
            "kind": r.kind,
            "status": outcome(Status(r.status), bool(r.partial)),
            "owner": r.owner,
            "tags": ", ".join(r.tags or []),
            "created_at": stamp(r.created_at),
            "started_at": stamp(r.started_at),
            "finished_at": stamp(r.finished_at),
            "params": dict(r.params or {}),
            "result": dict(r.summary or {}),
        }
        for r in (by_id.get(i) for i in public_ids)
        if r is not None
    ]
