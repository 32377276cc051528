"""The search grammar: what each term means, and errors that point at the bad token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobstore.search import FieldTest, InvalidQuery, Op, Query, describe, parse

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
KINDS = ["option_pricing", "bootstrap", "monte_carlo_pi"]


def p(text: str) -> Query:
    return parse(text, kinds=KINDS, param_keys={"sigma", "samples"}, me="ann", now=NOW)


def test_the_example_from_the_docs_parses_into_a_typed_query() -> None:
    q = p("kind:option_pricing sigma>=0.3 price>12 status:succeeded tag:q3")
    assert q == Query(
        statuses=frozenset({"succeeded"}),
        kinds=frozenset({"option_pricing"}),
        tags=("q3",),
        fields=(
            FieldTest("params", "sigma", Op.GE, 0.3),
            FieldTest("result", "price", Op.GT, 12),
        ),
    )


def test_spaces_around_an_operator_keep_the_term_a_comparison() -> None:
    spaced = p("kind:option_pricing sigma >= 0.3 price > 12 status: succeeded tag : q3")
    assert spaced == p("kind:option_pricing sigma>=0.3 price>12 status:succeeded tag:q3")
    assert spaced.words == ()  # nothing fell through to a name search


def test_job_fields_take_lists_and_me() -> None:
    q = p("status:failed,cancelled owner:me,bob id:AAAAAAAA,BBBBBBBB_-")
    assert q.statuses == {"failed", "cancelled"}
    assert q.owners == {"ann", "bob"}
    assert q.ids == {"AAAAAAAA", "BBBBBBBB_-"}
    assert p("status:failed,cancelled status:failed").statuses == {"failed"}


def test_words_and_phrases_search_the_name() -> None:
    q = p('risk "desk 3" name:"a b" name:c')
    assert q.words == ("risk", "desk 3", "a b", "c")
    assert p(r'"say \"hi\""').words == ('say "hi"',)


def test_values_are_typed_and_quotes_keep_text() -> None:
    fields = p('a=1 b=1.5 c=true d=false e=x f="12" g=-3 h=1e3 i=nan').fields
    assert [f.value for f in fields] == [1, 1.5, True, False, "x", "12", -3, 1000.0, "nan"]
    ops = [f.op for f in p("a:1 b=1 c!=1 d>1 e>=1 f<1 g<=1").fields]
    assert ops == [Op.EQ, *Op]
    assert len(p("a:1 a=1").fields) == 1  # the same test twice is one test


def test_prefixes_choose_params_or_result_and_bare_keys_are_resolved_by_the_kinds() -> None:
    q = p("sigma>1 price>1 result.sigma>1 param.price>1 params.x=1 results.y=2")
    assert [(f.source, f.key) for f in q.fields] == [
        ("params", "sigma"),
        ("result", "price"),
        ("result", "sigma"),
        ("params", "price"),
        ("params", "x"),
        ("result", "y"),
    ]


def test_created_takes_days_moments_and_ages() -> None:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    assert (p("created:2026-11-20").created_from, p("created:2026-11-20").created_to) == (
        day,
        day + timedelta(days=1),
    )
    assert p("created>=7d").created_from == NOW - timedelta(days=7)
    assert p("created<90m").created_to == NOW - timedelta(minutes=90)
    assert p("created>2026-11-20").created_from == day + timedelta(days=1)
    assert p("created<=2026-11-20").created_to == day + timedelta(days=1)
    at = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    assert p("created>=2026-11-20T14:30").created_from == at
    assert p("created>=2026-11-20T15:30+01:00").created_from == at
    both = p("created>=2w created>=1d created<1h created<2h")
    assert both.created_from == NOW - timedelta(days=1)
    assert both.created_to == NOW - timedelta(hours=2)


@pytest.mark.parametrize(
    ("text", "bad", "says"),
    [
        ("kind:option_pricing status:succeded", "status:succeded", "did you mean 'succeeded'"),
        ("kind:option_pricin", "kind:option_pricin", "did you mean 'option_pricing'"),
        ("status:nope", "status:nope", "one of queued, running"),
        ("sigma>=0.3 price>twelve", "price>twelve", "compares numbers"),
        ("tag:", "tag:", "needs a value"),
        ("status>=failed", "status>=failed", "takes ':'"),
        ("created>=yesterday", "created>=yesterday", "not a time"),
        ("created:7d", "created:7d", "takes a day"),
        ("created!=2026-11-01", "created!=2026-11-01", "':'"),
        ('x "open', '"open', "never closed"),
        ('name:"open', '"open', "never closed"),
        ("a.b.c>1", "a.b.c>1", "'a' is not a field"),
        ("result.a.b>1", "result.a.b>1", "one level deep"),
        ("id:short", "id:short", "is not a job id"),
        ("status:a,,b", "status:a,,b", "separated by commas"),
        ("tag:a,b", "tag:a,b", "one tag"),
        ("sigma=", "sigma=", "needs a value"),
        ('x ""', '""', "empty phrase"),
        ("kind>1", "kind>1", "takes ':'"),
    ],
)
def test_a_bad_query_names_the_token_at_fault(text: str, bad: str, says: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        p(text)
    err = caught.value
    assert says in err.message
    assert text[err.start : err.end] == bad
    caret = err.pointer().splitlines()[1]
    assert caret == " " * text.index(bad) + "^" * len(bad)


def test_size_limits_are_errors_not_slow_queries() -> None:
    with pytest.raises(InvalidQuery, match="at most 20 terms"):
        p(" ".join(f"w{i}" for i in range(21)))
    with pytest.raises(InvalidQuery, match="at most 1,000"):
        p("x" * 1001)
    with pytest.raises(InvalidQuery, match="at most 200"):
        p("a=" + "x" * 201)


def test_and_of_two_queries_narrows_both() -> None:
    a = Query(statuses=frozenset({"queued", "failed"}), words=("x",))
    b = p("status:failed,succeeded risk created>=1d")
    both = a & b
    assert both.statuses == {"failed"}
    assert both.words == ("x", "risk")
    assert both.created_from == NOW - timedelta(days=1)
    assert (Query() & Query()).empty


def test_describe_lists_what_was_understood() -> None:
    chips = describe(p("status:failed tag:q3 risk sigma>0.3 created>=2026-11-01"))
    assert chips == [
        "status is failed",
        "tag q3",
        "name has 'risk'",
        "created from 2026-11-01 00:00 UTC",
        "params.sigma > 0.3",
    ]


@given(st.text(max_size=120))
def test_any_text_either_parses_or_raises_invalid_query_with_a_span_inside_it(text: str) -> None:
    try:
        p(text)
    except InvalidQuery as err:
        assert 0 <= err.start < err.end <= max(len(text), err.start + 1)
        assert err.message


@pytest.mark.parametrize(
    "text",
    [
        "created:9999-12-31",
        "created>=0001-01-01T00:00:00+14:00",
        "created>9999-12-31",
        "created<=9999-12-31",
        "created<=9999-12-31T23:59:59.999999",
        "created<9999-12-31T23:00:00-05:00",
    ],
)
def test_a_date_past_either_end_of_the_calendar_is_an_invalid_query(text: str) -> None:
    with pytest.raises(InvalidQuery, match="date out of range") as caught:
        p(f"risk {text}")
    assert (caught.value.start, caught.value.end) == (5, 5 + len(text))


@pytest.mark.parametrize("age", ["99999999999999d", "999999w", "9" * 199 + "m"])
def test_an_age_before_the_year_one_is_too_long_ago(age: str) -> None:
    with pytest.raises(InvalidQuery, match="too long ago"):
        p(f"created>={age}")


def test_the_first_and_last_days_of_the_calendar_still_parse() -> None:
    assert p("created>=0001-01-01").created_from == datetime(1, 1, 1, tzinfo=UTC)
    assert p("created<9999-12-31").created_to == datetime(9999, 12, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "at", "says"),
    [
        ("\x00", 0, "a NUL byte"),
        ("tag:a\x00", 5, "a NUL byte"),
        ("owner:\x00", 6, "a NUL byte"),
        ('name:"a\x07b"', 7, "U+0007"),
        ("x=1 \x1b[31m", 4, "U+001B"),
        ("a\x0bb", 1, "U+000B"),
        ("risk \x85", 5, "U+0085"),
        ("x \ud800", 2, "U+D800"),
    ],
)
def test_control_characters_are_refused_with_a_caret_under_them(
    text: str, at: int, says: str
) -> None:
    with pytest.raises(InvalidQuery) as caught:
        p(text)
    assert says in caught.value.message
    assert (caught.value.start, caught.value.end) == (at, at + 1)
    shown, caret = caught.value.pointer().split("\n")
    assert shown.isprintable() and len(shown) == len(text)
    assert caret == " " * at + "^"


def test_tabs_and_line_breaks_still_separate_terms() -> None:
    assert p("risk\tdesk\r\nnight").words == ("risk", "desk", "night")


def test_describe_names_a_sweep_when_it_knows_the_name() -> None:
    query = p("sweep:AbCdEfGh12,ZyXwVuTs98")
    assert describe(query) == ["sweep is AbCdEfGh12 or ZyXwVuTs98"]
    named = describe(query, {"AbCdEfGh12": "Vol grid"})
    assert named == ['sweep is "Vol grid" (AbCdEfGh12) or ZyXwVuTs98']
