"""The history read: a typed `Query` compiled to SQL, sorted on any column, paged by keyset.

Keyset paging ("the rows after this one") costs the same on the last page as on the first,
and never skips or repeats a row while new jobs arrive, which OFFSET does at a million jobs.
A cursor holds the sort value and the id of the last row shown. Rows whose sort value is
missing (a queued job has no duration yet) come after all the others, in either direction.

Every value of a query reaches SQL as a bound parameter; the SQL text depends only on the
query's shape.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Engine,
    Float,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from jobstore.engine import reading
from jobstore.models import Job, JobResult
from jobstore.queries import SUMMARY_COLUMNS, _summary
from jobstore.search import FieldTest, Op, Query
from jobstore.views import JobSummary, as_utc

jobs = Job.__table__
results = JobResult.__table__
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


class BadCursor(ValueError):
    """A page link that does not belong to this sort, or was edited by hand."""


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the row with this sort value and id."""

    value: Any
    id: int
    missing: bool = False  # the row had no sort value: we are among the rows that come last

    def encode(self) -> str:
        value = self.value
        if isinstance(value, datetime):
            value = {"t": as_utc(value).isoformat()}
        elif isinstance(value, timedelta):
            value = {"s": value.total_seconds()}
        raw = json.dumps([value, self.id, self.missing], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            value, id_, missing = json.loads(raw)
            if isinstance(value, dict) and "t" in value:
                value = datetime.fromisoformat(value["t"])
            elif isinstance(value, dict) and "s" in value:
                value = timedelta(seconds=float(value["s"]))
            if not isinstance(id_, int) or not isinstance(missing, bool):
                raise TypeError
            if value is not None and not isinstance(
                value, str | int | float | datetime | timedelta
            ):
                raise TypeError
        except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
            raise BadCursor(text) from None
        return cls(value, id_, missing)


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


def conditions(query: Query, postgres: bool) -> list[ColumnElement[bool]]:
    """The WHERE clause of a query, every value bound."""
    where: list[ColumnElement[bool]] = []
    for column, values in (
        (jobs.c.status, query.statuses),
        (jobs.c.kind, query.kinds),
        (jobs.c.owner, query.owners),
        (jobs.c.public_id, query.ids),
    ):
        if values is not None:
            where.append(column.in_(sorted(values)) if values else false())
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
        if key is None:
            rows = conn.execute(_by_id(where, descending, after, limit + 1)).all()
            return _page(rows, limit, lambda r: Cursor(None, r.id))
        rows = []
        if after is None or not after.missing:
            rows = conn.execute(
                _by_key(key, sort in NULLABLE, where, descending, after, limit + 1)
            ).all()
        if len(rows) <= limit and sort in NULLABLE:
            # After every row with a value come those without one, by id in the same direction.
            start = after if after is not None and after.missing else None
            rest = conn.execute(
                _by_id([*where, key.is_(None)], descending, start, limit + 1 - len(rows))
            ).all()
            rows += [_Missing(r) for r in rest]
    return _page(
        rows,
        limit,
        lambda r: Cursor(None, r.id, True) if isinstance(r, _Missing) else Cursor(r.k, r.id),
    )


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


def _by_id(where: list[ColumnElement[bool]], descending: bool, after: Cursor | None, n: int) -> Any:
    stmt = select(jobs.c.id, *SUMMARY_COLUMNS).where(*where)
    if after is not None:
        stmt = stmt.where(jobs.c.id < after.id if descending else jobs.c.id > after.id)
    order = jobs.c.id.desc() if descending else jobs.c.id.asc()
    return stmt.order_by(order).limit(n)


def _by_key(
    key: ColumnElement[Any],
    nullable: bool,
    where: list[ColumnElement[bool]],
    descending: bool,
    after: Cursor | None,
    n: int,
) -> Any:
    stmt = select(jobs.c.id, key.label("k"), *SUMMARY_COLUMNS).where(*where)
    if nullable:
        stmt = stmt.where(key.is_not(None))
    if after is not None:
        pair, cursor = tuple_(key, jobs.c.id), tuple_(literal(after.value, key.type), after.id)
        stmt = stmt.where(pair < cursor if descending else pair > cursor)
    if descending:
        return stmt.order_by(key.desc(), jobs.c.id.desc()).limit(n)
    return stmt.order_by(key.asc(), jobs.c.id.asc()).limit(n)


def _page(rows: list[Any], limit: int, cursor_of: Any) -> HistoryPage:
    shown = rows[:limit]
    more = len(rows) > limit
    return HistoryPage(
        [_summary(r) for r in shown],
        cursor_of(shown[-1]) if more and shown else None,
    )


def export(engine: Engine, public_ids: list[str]) -> list[dict[str, Any]]:
    """The named jobs with their parameters and results, in the order given, for a CSV."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(
                jobs.c.public_id,
                jobs.c.name,
                jobs.c.kind,
                jobs.c.status,
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
            "status": r.status,
            "owner": r.owner,
            "tags": ", ".join(r.tags or []),
            "created_at": stamp(r.created_at),
            "started_at": stamp(r.started_at),
            "finished_at": stamp(r.finished_at),
            "params": json.dumps(r.params, sort_keys=True),
            "result": "" if r.summary is None else json.dumps(r.summary, sort_keys=True),
        }
        for r in (by_id.get(i) for i in public_ids)
        if r is not None
    ]
