"""Every parser of outside text answers hostile input with the project's own error, never with
an exception a page or a command would show as a traceback."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from jobstore.history import BadCursor, Cursor
from jobstore.retention import MAX_AGE, parse_age
from jobstore.search import InvalidQuery, Query, parse
from runlab.errors import InvalidParams
from runlab.settings import ENV_PREFIX, QUEUE_NAME, Settings, load_settings
from runlab.text import TEXT_WHITESPACE, bad_character
from tests.hostile import AGES, CHARS, ENV_VALUES, SEARCHES, TEXT, cursor_payloads, link_token

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
NO_SECRETS = Path("/nonexistent/secrets.toml")
VARIABLES = [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]


def _texts_of(q: Query) -> list[str]:
    values = [f.value for f in q.fields if isinstance(f.value, str)]
    return [*q.tags, *q.words, *(q.owners or ()), *(q.ids or ()), *values]


@settings(max_examples=300)
@given(SEARCHES)
@example("created:9999-12-31")
@example("created>=0001-01-01T00:00:00+14:00")
@example("created>=99999999999999d")
@example("tag:a\x00 owner:\x00")
def test_a_search_parses_into_storable_values_or_is_an_invalid_query(text: str) -> None:
    try:
        q = parse(text, kinds=["monte_carlo_pi"], param_keys={"samples"}, me="ann", now=NOW)
    except InvalidQuery as err:
        assert 0 <= err.start < err.end <= max(len(text), err.start + 1)
        shown, caret = err.pointer().split("\n")
        assert bad_character(shown) is None and caret.strip(" ^") == ""
        return
    assert all(bad_character(t, allow=TEXT_WHITESPACE) is None for t in _texts_of(q))
    for bound in (q.created_from, q.created_to):
        assert bound is None or bound.utcoffset() == timedelta(0)


@settings(max_examples=300)
@given(cursor_payloads())
@example("W3sicyI6MWUzMDB9LDEsZmFsc2Vd")
@example(link_token(b'[{"s":1e300},"Ab3xK9pQ",false]'))
@example(link_token(b'[{"t":"0001-01-01T00:00:00+14:00"},"Ab3xK9pQ",false]'))
def test_a_page_link_decodes_to_bindable_values_or_is_a_bad_cursor(token: str) -> None:
    try:
        cursor = Cursor.decode(token)
    except BadCursor:
        return
    v = cursor.value
    if isinstance(v, str):
        assert "\0" not in v and len(v) <= 200
    elif isinstance(v, float):
        assert math.isfinite(v)
    elif isinstance(v, datetime):
        assert v.utcoffset() == timedelta(0)
    else:
        assert v is None or isinstance(v, timedelta)
    assert Cursor.decode(cursor.encode()) == cursor


@settings(max_examples=300)
@given(st.one_of(AGES, TEXT, st.builds("{} {}{}".format, st.text(CHARS, max_size=3), AGES, TEXT)))
@example("99999999999999999999d")
@example("9" * 5000 + "w")
def test_an_age_is_a_bounded_timedelta_or_a_value_error(text: str) -> None:
    """ValueError is parse_age's contract: the CLI turns it into a usage error, the settings
    into InvalidParams (both tested with the reported values)."""
    try:
        age = parse_age(text)
    except ValueError as err:
        assert type(err) is ValueError and str(err)
        return
    assert timedelta(0) < age <= MAX_AGE


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from([*VARIABLES, "RUNLAB_NOT_A_SETTING", "PATH"]), ENV_VALUES, max_size=6
    )
)
@example({"RUNLAB_LEASE_SECONDS": "inf"})
@example({"RUNLAB_PURGE_AFTER": "99999999999999999999d"})
@example({"RUNLAB_USER": "ann\x00"})
def test_settings_are_finite_bounded_and_printable_or_invalid_params_naming_them(
    environ: dict[str, str],
) -> None:
    try:
        s = load_settings(environ, NO_SECRETS)
    except InvalidParams as err:
        assert err.errors and set(err.errors) <= {*environ, "settings"}
        return
    for name, info in Settings.model_fields.items():
        value = getattr(s, name)
        if isinstance(value, float):
            most = next(m.le for m in info.metadata if getattr(m, "le", None) is not None)
            assert math.isfinite(value) and value <= most, name
        elif name == "queues":
            assert all(QUEUE_NAME.fullmatch(q) for q in value), value
        else:
            assert bad_character(value) is None, name
    assert s.purge_policy is None or s.purge_policy.older_than <= MAX_AGE
