"""The history's search grammar: text in, a typed `Query` out, or an error that points at a token.

    kind:option_pricing sigma>=0.3 price>12 status:succeeded,failed tag:q3 owner:me
    created>=7d created<2026-11-20 name:"risk desk" id:Ab3x… param.seed=42 result.partial=true

- `field:value` for the job's own fields: kind, status, tag, owner, queue, name, id, sweep (the
  children of a sweep, by its id; a comma is
  "or"; `owner:me` is the user of this server; `status:partial` is a job stopped early with a
  partial result, which `status:succeeded` leaves out), and `created` with `:` (that day) or a
  comparison.
  A time is a date, a date and time (UTC), or an age such as `90m`, `12h`, `7d`, `2w` ago.
- `key OP value` (OP one of `= != > >= < <=`, and `:` for `=`, with or without spaces around
  it: `sigma >= 0.3`) tests a parameter or a result field. A bare key is a parameter if some
  kind has a parameter of that name, otherwise a result field; `param.key` and `result.key`
  say which.
- Any other word, or a "quoted phrase", must appear in the job's name (ASCII case ignored).

Terms are joined by "and". Values reach SQL only as bound parameters (see `jobstore.history`).
A search holds no control character but tab and line breaks (PostgreSQL refuses a NUL in text,
SQLite would store it), and its times lie between the years 1 and 9999, so whatever is typed
is answered with an `InvalidQuery`, the same on both backends.
"""

from __future__ import annotations

import difflib
import enum
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, TypeVar

from runlab.errors import RunlabError
from runlab.status import OUTCOMES
from runlab.text import CONTROL, TEXT_WHITESPACE, bad_character

MAX_TERMS = 20
MAX_VALUES = 20
MAX_TEXT = 200
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{8,32}")
AGE = re.compile(r"([0-9]+)([mhdw])")
AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TOKEN = re.compile(
    r"""
    (?P<key>[A-Za-z_][A-Za-z0-9_.]*) \s* (?P<op>>=|<=|!=|=|>|<|:) \s*
    (?P<value>"(?:[^"\\]|\\.)*"?|[^\s"]*)
    | (?P<phrase>"(?:[^"\\]|\\.)*"?)
    | (?P<word>[^\s"]+)
    """,
    re.VERBOSE,
)
FIELDS = ("kind", "status", "tag", "owner", "queue", "name", "id", "sweep", "created")
OUT_OF_RANGE = "date out of range (times go from 0001-01-01 to 9999-12-31, UTC)"


class Op(enum.StrEnum):
    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


ORDERING = (Op.GT, Op.GE, Op.LT, Op.LE)
Value = float | int | str | bool
_Bad = Callable[[str], "InvalidQuery"]


class InvalidQuery(RunlabError):
    """A search that cannot be run, with the span of the token at fault (0-based, end excl.)."""

    exit_code = 2

    def __init__(self, message: str, start: int, end: int, query: str) -> None:
        self.message = message
        self.start = start
        self.end = max(end, start + 1)
        self.query = query
        super().__init__(f"{message} (at column {start + 1}: {query[start:end]!r})")

    def pointer(self) -> str:
        """The query with a caret line under the bad token, for a monospace block. A tab or
        line break shows as a space and another control character as U+FFFD, each one column
        wide, so the caret stays under its token."""
        shown = CONTROL.sub(lambda m: " " if m[0] in TEXT_WHITESPACE else "\ufffd", self.query)
        return f"{shown}\n{' ' * self.start}{'^' * (self.end - self.start)}"


def check_text(text: str, what: str = "a search") -> None:
    """Refuse a control character (tab and line breaks aside) in `text`, pointing at it.

    The page uses it for the filters beside the search box too, so every value of the URL
    meets the same rule before it reaches SQL.
    """
    why = bad_character(text, allow=TEXT_WHITESPACE)
    if why is not None:
        at = next(m.start() for m in CONTROL.finditer(text) if m[0] not in TEXT_WHITESPACE)
        raise InvalidQuery(f"{what} {why}", at, at + 1, text)


@dataclass(frozen=True)
class FieldTest:
    """A test on one top-level field of a job's parameters or of its result."""

    source: Literal["params", "result"]
    key: str
    op: Op
    value: Value


@dataclass(frozen=True)
class Query:
    """What the history shows: every part must hold. None means "any" for a set of choices."""

    statuses: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    owners: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    tags: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    queues: frozenset[str] | None = None
    sweeps: frozenset[str] | None = None  # the public ids of the sweeps whose children to show
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    fields: tuple[FieldTest, ...] = ()
    # A sweep as one row: of its jobs, only its first point's first job is listed, and the
    # page shows it as the sweep. Not a filter: no job is left out but behind its sweep's row.
    grouped: bool = False

    def __and__(self, other: Query) -> Query:
        """Both queries at once, as when the filters above the search box narrow it further."""

        def both(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
            return b if a is None else a if b is None else a & b

        def later(a: datetime | None, b: datetime | None) -> datetime | None:
            return b if a is None else a if b is None else max(a, b)

        def earlier(a: datetime | None, b: datetime | None) -> datetime | None:
            return b if a is None else a if b is None else min(a, b)

        return Query(
            statuses=both(self.statuses, other.statuses),
            kinds=both(self.kinds, other.kinds),
            owners=both(self.owners, other.owners),
            ids=both(self.ids, other.ids),
            queues=both(self.queues, other.queues),
            sweeps=both(self.sweeps, other.sweeps),
            tags=_unique(self.tags + other.tags),
            words=_unique(self.words + other.words),
            created_from=later(self.created_from, other.created_from),
            created_to=earlier(self.created_to, other.created_to),
            fields=_unique(self.fields + other.fields),
            grouped=self.grouped or other.grouped,
        )

    @property
    def empty(self) -> bool:
        return replace(self, grouped=False) == Query()

    @property
    def groups_sweeps(self) -> bool:
        """Whether the jobs this query lists may stand behind their sweep's row: not when it
        names a sweep, outcomes or field values, which are asked of each job."""
        return self.sweeps is None and self.statuses is None and not self.fields


T = TypeVar("T")


def _unique(items: Iterable[T]) -> tuple[T, ...]:
    return tuple(dict.fromkeys(items))


@dataclass
class _Term:
    text: str
    start: int
    end: int
    key: str | None = None
    op: str | None = None
    raw: str = ""
    quoted: bool = False


@dataclass
class _Parts:
    statuses: set[str] | None = None
    kinds: set[str] | None = None
    owners: set[str] | None = None
    ids: set[str] | None = None
    queues: set[str] | None = None
    sweeps: set[str] | None = None
    tags: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    created_from: datetime | None = None
    created_to: datetime | None = None
    fields: list[FieldTest] = field(default_factory=list)


def parse(
    text: str,
    *,
    kinds: Collection[str],
    param_keys: Collection[str],
    me: str,
    now: datetime | None = None,
) -> Query:
    """Parse a search; `kinds` and `param_keys` are what the installed kinds define."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if len(text) > 1000:
        raise InvalidQuery("a search is at most 1,000 characters", 1000, len(text), text)
    check_text(text)
    parts = _Parts()
    terms = list(_terms(text))
    if len(terms) > MAX_TERMS:
        t = terms[MAX_TERMS]
        raise InvalidQuery(f"a search has at most {MAX_TERMS} terms", t.start, t.end, text)
    for t in terms:
        _apply(t, parts, text, set(kinds), set(param_keys), me, now)
    return Query(
        statuses=None if parts.statuses is None else frozenset(parts.statuses),
        kinds=None if parts.kinds is None else frozenset(parts.kinds),
        owners=None if parts.owners is None else frozenset(parts.owners),
        ids=None if parts.ids is None else frozenset(parts.ids),
        queues=None if parts.queues is None else frozenset(parts.queues),
        sweeps=None if parts.sweeps is None else frozenset(parts.sweeps),
        tags=_unique(parts.tags),
        words=_unique(parts.words),
        created_from=parts.created_from,
        created_to=parts.created_to,
        fields=_unique(parts.fields),
    )


def _terms(text: str) -> Iterable[_Term]:
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        m = TOKEN.match(text, pos)
        assert m is not None  # the last branch matches any non-space run
        term = _Term(m.group(0), m.start(), m.end())
        if m.group("key") is not None:
            term.key, term.op = m.group("key"), m.group("op")
            term.raw, term.quoted = _unquote(m.group("value"), m.start("value"), text)
        elif m.group("phrase") is not None:
            term.raw, term.quoted = _unquote(m.group("phrase"), m.start(), text)
        else:
            term.raw = m.group("word")
        if len(term.raw) > MAX_TEXT:
            raise InvalidQuery(
                f"a value is at most {MAX_TEXT} characters", term.start, term.end, text
            )
        yield term
        pos = m.end()


def _unquote(raw: str, start: int, text: str) -> tuple[str, bool]:
    if not raw.startswith('"'):
        return raw, False
    if len(raw) < 2 or not raw.endswith('"') or raw.endswith('\\"'):
        raise InvalidQuery("this quote is never closed", start, start + len(raw), text)
    return re.sub(r"\\(.)", r"\1", raw[1:-1]), True


def _apply(
    t: _Term,
    parts: _Parts,
    text: str,
    kinds: set[str],
    param_keys: set[str],
    me: str,
    now: datetime,
) -> None:
    def bad(message: str) -> InvalidQuery:
        return InvalidQuery(message, t.start, t.end, text)

    if t.key is None:
        if not t.raw.strip():
            raise bad("an empty phrase matches every name; remove it")
        parts.words.append(t.raw)
        return
    assert t.op is not None  # TOKEN matches an op wherever it matches a key
    key, op = t.key.lower(), Op.EQ if t.op == ":" else Op(t.op)
    if key in FIELDS and "." not in t.key:
        if not t.raw:
            raise bad(f"{key}: needs a value, as in {_example(key)}")
        if key == "created":
            _created(t, op, parts, now, bad)
            return
        if op is not Op.EQ:
            raise bad(f"{key} takes ':' (as in {_example(key)}), not {t.op!r}")
        values = [t.raw] if t.quoted else [v for v in t.raw.split(",")]
        if any(not v.strip() for v in values) or len(values) > MAX_VALUES:
            raise bad(f"{key}: give up to {MAX_VALUES} values, separated by commas")
        if key == "status":
            known = list(OUTCOMES)
            parts.statuses = _narrow(parts.statuses, _choices(values, known, "status", bad))
        elif key == "kind":
            parts.kinds = _narrow(parts.kinds, _choices(values, sorted(kinds), "kind", bad))
        elif key == "owner":
            parts.owners = _narrow(parts.owners, {me if v == "me" else v for v in values})
        elif key == "queue":
            parts.queues = _narrow(parts.queues, set(values))
        elif key in ("id", "sweep"):
            wrong = [v for v in values if not PUBLIC_ID.fullmatch(v)]
            if wrong:
                what = "job" if key == "id" else "sweep"
                raise bad(f"{wrong[0]!r} is not a {what} id (8 to 32 letters, digits, - or _)")
            if key == "id":
                parts.ids = _narrow(parts.ids, set(values))
            else:
                parts.sweeps = _narrow(parts.sweeps, set(values))
        elif key == "tag":
            if len(values) > 1:
                raise bad("a tag search takes one tag; write tag:a tag:b for both, or quote it")
            parts.tags.append(values[0])
        else:  # name
            parts.words.append(t.raw)
        return
    parts.fields.append(_field_test(t, op, param_keys, bad))


def _example(key: str) -> str:
    return {
        "kind": "kind:option_pricing",
        "status": "status:succeeded,failed",
        "tag": "tag:q3",
        "owner": "owner:me",
        "queue": "queue:img",
        "name": 'name:"risk desk"',
        "id": "id:Ab3xK9pQ",
        "sweep": "sweep:Qx7mB2rT",
        "created": "created>=7d or created:2026-11-20",
    }[key]


def _narrow(current: set[str] | None, new: set[str]) -> set[str]:
    """Two terms on one field must both hold: `status:a,b status:b` is status b."""
    return set(new) if current is None else current & new


def _choices(values: list[str], known: list[str], what: str, bad: _Bad) -> set[str]:
    for v in values:
        if v not in known:
            close = difflib.get_close_matches(v, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"one of {', '.join(known)}"
            raise bad(f"unknown {what} {v!r}; {hint}")
    return set(values)


def _created(t: _Term, op: Op, parts: _Parts, now: datetime, bad: _Bad) -> None:
    if op is Op.NE:
        raise bad("created takes ':' (a day) or one of > >= < <=")
    at, day = _when(t.raw, now, bad)
    try:
        lo, hi = _bounds(at, day, op, bad)
    except OverflowError:  # the day after 9999-12-31, or a microsecond after its end
        raise bad(OUT_OF_RANGE) from None
    if lo is not None:
        parts.created_from = lo if parts.created_from is None else max(parts.created_from, lo)
    if hi is not None:
        parts.created_to = hi if parts.created_to is None else min(parts.created_to, hi)


def _bounds(at: datetime, day: bool, op: Op, bad: _Bad) -> tuple[datetime | None, datetime | None]:
    """The created range a comparison with `at` means: from (inclusive) and to (exclusive)."""
    lo: datetime | None
    hi: datetime | None
    if op is Op.EQ:
        if not day:
            raise bad("created: takes a day (2026-11-20); for a moment use created>= or <")
        lo, hi = at, at + timedelta(days=1)
    else:
        # Times are to the microsecond, as stored: "after" a moment starts a microsecond later.
        tick = timedelta(microseconds=1)
        lo = at if op is Op.GE else at + tick if op is Op.GT else None
        hi = at if op is Op.LT else at + tick if op is Op.LE else None
        if day and op is Op.GT:  # after a day: from the next day on
            lo = at + timedelta(days=1)
        if day and op is Op.LE:  # up to a day: that day included
            hi = at + timedelta(days=1)
    return lo, hi


def _when(raw: str, now: datetime, bad: _Bad) -> tuple[datetime, bool]:
    """A moment in UTC, and whether it was given as a whole day."""
    m = AGE.fullmatch(raw)
    if m:
        n, unit = int(m.group(1)), AGE_UNITS[m.group(2)]
        try:
            return now - timedelta(**{unit: n}), False
        except OverflowError:  # before the year 1, or more days than a timedelta holds
            raise bad(f"{raw!r} is too long ago: {OUT_OF_RANGE}") from None
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(), UTC), True
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise bad(
            f"{raw!r} is not a time: give a date (2026-11-20), a date and time "
            "(2026-11-20T14:30) or an age (90m, 12h, 7d, 2w)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC), False
    except OverflowError:  # 0001-01-01 east of UTC, or 9999-12-31 west of it
        raise bad(OUT_OF_RANGE) from None


def _field_test(t: _Term, op: Op, param_keys: set[str], bad: _Bad) -> FieldTest:
    assert t.key is not None
    source: Literal["params", "result"] | None = None
    key = t.key
    head, dot, rest = key.partition(".")
    if dot:
        if head in ("param", "params"):
            source = "params"
        elif head in ("result", "results"):
            source = "result"
        else:
            raise bad(f"{head!r} is not a field; write param.{rest} or result.{rest}")
        key = rest
    if not KEY.fullmatch(key):
        raise bad(f"{key!r} is not a field name (letters, digits and _, one level deep)")
    if source is None:
        if key in FIELDS:
            raise bad(f"{key} is a field of the job; write {_example(key)}")
        source = "params" if key in param_keys else "result"
    if not t.raw:
        raise bad(f"{key}{t.op} needs a value")
    value = _value(t.raw, t.quoted)
    if op in ORDERING and not _is_number(value):
        raise bad(f"{t.op} compares numbers, and {t.raw!r} is not a number")
    return FieldTest(source, key, op, value)


def _is_number(v: Value) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _value(raw: str, quoted: bool) -> Value:
    """A number, true/false, or text; quoting keeps "12" as text."""
    if quoted:
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"[+-]?\d{1,15}", raw):
        return int(raw)
    try:
        number = float(raw)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw


def describe(query: Query, sweep_names: Mapping[str, str] | None = None) -> list[str]:
    """The query as short chips, to show what the search understood; a sweep by its name when
    `sweep_names` has it."""
    out: list[str] = []
    names = sweep_names or {}
    sweeps = None
    if query.sweeps is not None:
        sweeps = {f'"{names[s]}" ({s})' if s in names else s for s in query.sweeps}
    for label, values in (
        ("status", query.statuses),
        ("kind", query.kinds),
        ("owner", query.owners),
        ("queue", query.queues),
        ("id", query.ids),
        ("sweep", sweeps),
    ):
        if values is not None:
            out.append(f"{label} is {' or '.join(sorted(values)) or 'nothing'}")
    out += [f"tag {t}" for t in query.tags]
    out += [f"name has {w!r}" for w in query.words]
    if query.created_from:
        out.append(f"created from {query.created_from:%Y-%m-%d %H:%M} UTC")
    if query.created_to:
        out.append(f"created before {query.created_to:%Y-%m-%d %H:%M} UTC")
    out += [f"{f.source}.{f.key} {f.op} {f.value!r}" for f in query.fields]
    return out
