"""/compare?ids=…: jobs side by side, the fields that differ, one chart, and bad links explained."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from compute import intake, registry
from jobstore import enqueue, reports
from jobstore import transitions as T
from jobstore.compare import MAX_JOBS, SHORT_ID
from tests.ui import seed
from tests.ui.conftest import markdown_texts, open_page
from ui.text import md_escape


def done(
    store: Engine,
    name: str,
    *,
    kind: str = "monte_carlo_pi",
    params: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    metrics: Sequence[tuple[str, float, float]] = (),
) -> str:
    """A succeeded job with the given parameters, result and series."""
    public_id = intake.submit(store, kind, params or {"samples": 1000, "seed": 7}, name=name)
    [lease] = T.claim(store, seed.RUNNER)
    assert lease.public_id == public_id
    reports.report(store, lease, reports.Report(metrics=list(metrics)), lease_seconds=30)
    T.succeed(store, lease, result if result is not None else dict(seed.PI_RESULT))
    return public_id


def pi(store: Engine, name: str, samples: int, estimate: float) -> str:
    return done(
        store,
        name,
        params={"samples": samples, "seed": 7},
        result={**seed.PI_RESULT, "estimate": estimate, "samples": samples},
        metrics=[("estimate", samples / 2, estimate + 0.01), ("estimate", samples, estimate)],
    )


def compare_page(*ids: str, **query: str) -> AppTest:
    return open_page("pages/compare.py", ids=",".join(ids), **query)


def fields(at: AppTest) -> pd.DataFrame:
    return at.container("fields").dataframe[0].value


def headers(at: AppTest) -> list[str]:
    """The job columns' headers, as the table shows them."""
    config = json.loads(at.container("fields").dataframe[0].proto.columns)
    return [c["label"] for key, c in config.items() if key.startswith("job ")]


def row(at: AppTest, section: str, field: str) -> dict[str, Any]:
    table = fields(at)
    [match] = table[(table["section"] == section) & (table["field"] == field)].to_dict("records")
    return match


def job_links(at: AppTest) -> list[str]:
    return [p.proto.query_string for p in at.get("page_link") if p.proto.page == "job"]


def links_to_the_jobs(at: AppTest) -> bool:
    """The page's own link to /jobs, apart from the sidebar's."""
    return any(p.proto.page == "jobs" and p.label == "See all jobs" for p in at.get("page_link"))


def traces(at: AppTest) -> list[dict[str, Any]]:
    """The overlay chart's traces (the chart against a varied parameter is another)."""
    [chart] = [c for c in at.get("plotly_chart") if "compare-overlay" in c.proto.id]
    return json.loads(chart.proto.spec)["data"]


def test_jobs_are_shown_in_the_order_given_each_column_linked_to_its_page(store: Engine) -> None:
    seed.runner(store)
    small = pi(store, "small run", 1000, 3.1)
    large = pi(store, "large run", 4000, 3.14)

    at = compare_page(large, small)

    assert [t.value for t in at.title] == ["Compare 2 jobs"]
    assert headers(at) == [
        f"large run · {large[:SHORT_ID]} · Monte Carlo π · succeeded",
        f"small run · {small[:SHORT_ID]} · Monte Carlo π · succeeded",
    ]
    assert job_links(at) == [f"id={large}", f"id={small}"]
    samples = row(at, "parameter", "samples")
    assert (samples["job 1"], samples["job 2"], samples["differs"]) == ("4,000", "1,000", True)
    assert row(at, "parameter", "seed")["differs"] is False
    assert row(at, "result", "estimate")["differs"] is True
    sections = list(fields(at)["section"])
    assert sections == sorted(sections, key=["parameter", "result"].index)


def test_jobs_of_different_kinds_show_a_dash_where_a_job_has_no_such_field(
    store: Engine,
) -> None:
    seed.runner(store)
    p = pi(store, "pi", 1000, 3.1)
    d = done(
        store,
        "demo",
        kind="demo_stages",
        params={"stages": 2, "seconds_per_stage": 0},
        result={"stages": ["stage 1", "stage 2"]},
    )

    at = compare_page(p, d)

    assert headers(at)[1].endswith("Demo pipeline · succeeded")  # the kind by its title
    stages = row(at, "result", "stages")
    assert (stages["job 1"], stages["job 2"]) == ("—", '["stage 1", "stage 2"]')
    assert row(at, "parameter", "samples")["job 2"] == "—"


def test_only_differences_hides_the_equal_fields_and_lives_in_the_url(store: Engine) -> None:
    seed.runner(store)
    a = pi(store, "a", 1000, 3.1)
    b = pi(store, "b", 2000, 3.1)
    at = compare_page(a, b)
    assert "standard_error" in set(fields(at)["field"])

    at.toggle(key="diff").set_value(True).run()

    shown = fields(at)
    assert list(zip(shown["section"], shown["field"], strict=True)) == [
        ("parameter", "samples"),
        ("result", "samples"),
    ]
    assert shown["differs"].all()
    shared = compare_page(a, b, diff="true")
    assert shared.toggle(key="diff").value is True
    assert len(fields(shared)) == 2


def test_jobs_that_agree_on_everything_say_so_under_only_differences(store: Engine) -> None:
    seed.runner(store)
    a = pi(store, "same", 1000, 3.1)
    b = pi(store, "same", 1000, 3.1)

    at = compare_page(a, b, diff="true")

    assert [i.value for i in at.info] == ["These jobs have the same parameters and results."]
    assert not at.dataframe


def test_the_chart_overlays_one_trace_per_job_of_the_first_common_series(store: Engine) -> None:
    seed.runner(store)
    ids = [pi(store, f"run {i}", 1000 * (i + 1), 3.1 + i / 100) for i in range(3)]

    at = compare_page(*ids)

    assert at.multiselect(key="series").value == ["estimate"]
    data = traces(at)
    assert [t["name"] for t in data] == [f"run {i} · {j[:SHORT_ID]}" for i, j in enumerate(ids)]
    assert [t["x"] for t in data] == [[500.0, 1000.0], [1000.0, 2000.0], [1500.0, 3000.0]]
    assert len({t["line"]["color"] for t in data}) == 3


def test_the_series_in_the_url_is_drawn_in_a_panel_of_its_own(store: Engine) -> None:
    seed.runner(store)

    def job(name: str) -> str:
        return done(store, name, metrics=[("alpha", 1, 1.0), ("beta", 1, 2.0), ("beta", 2, 3.0)])

    a, b = job("a"), job("b")

    at = compare_page(a, b, series=["alpha", "beta"])

    assert at.multiselect(key="series").value == ["alpha", "beta"]
    data = traces(at)
    assert [(t["yaxis"], t["y"]) for t in data] == [
        ("y", [1.0]),
        ("y", [1.0]),
        ("y2", [2.0, 3.0]),
        ("y2", [2.0, 3.0]),
    ]
    assert [t["showlegend"] for t in data] == [True, True, False, False], "one legend entry each"


def test_a_job_without_the_series_is_named_under_the_chart(store: Engine) -> None:
    seed.runner(store)
    a = pi(store, "with", 1000, 3.1)
    b = done(store, "without")

    at = compare_page(a, b)

    assert [t["name"] for t in traces(at)] == [f"with · {a[:SHORT_ID]}"]
    assert any("without" in c.value and "estimate" in c.value for c in at.caption)


@pytest.mark.parametrize(
    ("ids", "says"),
    [
        ("onlyoneid123", "at least 2 jobs"),
        (",".join(f"job{i:09d}" for i in range(MAX_JOBS + 1)), "at most 10 jobs"),
    ],
)
def test_too_few_or_too_many_ids_get_a_message_and_a_link_to_the_jobs(
    store: Engine, ids: str, says: str
) -> None:
    at = open_page("pages/compare.py", ids=ids)

    [error] = at.error
    assert says in error.value
    assert links_to_the_jobs(at)
    assert not at.get("plotly_chart")


def test_a_page_without_ids_offers_a_search_to_pick_jobs_from(store: Engine) -> None:
    seed.runner(store)
    a = pi(store, "first", 1000, 3.1)
    b = pi(store, "second", 2000, 3.14)
    done(store, "a demo", kind="demo_stages", params={"stages": 1}, result={"stages": ["s"]})

    at = open_page("pages/compare.py")
    assert not at.error
    at.text_input(key="compare.search").input("kind:monte_carlo_pi").run()
    pick = at.multiselect(key="compare.pick")
    assert set(pick.options) == {
        f"first · {a[:8]} · monte_carlo_pi · succeeded",
        f"second · {b[:8]} · monte_carlo_pi · succeeded",
    }
    assert at.button(key="compare.go").disabled  # two at least
    pick.set_value([a, b]).run()
    at.button(key="compare.go").click().run()

    assert at.query_params["ids"] in (f"{a},{b}", [f"{a},{b}"])
    assert [t.value for t in at.title] == ["Compare 2 jobs"]


def test_jobs_that_differ_in_one_parameter_draw_each_headline_result_against_it(
    store: Engine,
) -> None:
    seed.runner(store)
    sigmas = [0.3, 0.1, 0.5, 0.2, 0.4]
    ids = [
        done(
            store,
            f"sigma {s}",
            kind="option_pricing",
            params={"sigma": s, "paths": 10_000},  # each draws its own seed
            result={"price": 10 + 20 * s, "standard_error": 0.05, "delta": 0.5 + s / 2},
            metrics=[("price", 5_000, 10 + 20 * s), ("price", 10_000, 10 + 20 * s)],
        )
        for s in sigmas
    ]

    at = compare_page(*ids)

    # The parameters in the form's order, and the headline as the default series.
    params = list(fields(at)[fields(at)["section"] == "parameter"]["field"])
    form = [i.name for i in registry.describe(registry.get("option_pricing").params)]
    assert params == [name for name in form if name in params]
    assert params[:5] == ["option_type", "S", "K", "r", "sigma"]
    assert at.multiselect(key="series").value == ["price"]
    charts = {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    [spec] = [v for k, v in charts.items() if "compare-against" in k]
    price, delta = spec["data"]
    assert price["x"] == sorted(sigmas)
    assert price["y"] == pytest.approx([10 + 20 * s for s in sorted(sigmas)])
    assert price["error_y"]["array"] == pytest.approx([1.96 * 0.05] * 5)
    assert delta["y"] == pytest.approx([0.5 + s / 2 for s in sorted(sigmas)])
    assert "error_y" not in delta or not delta["error_y"].get("array")
    assert spec["layout"]["xaxis"]["title"]["text"] == "Volatility σ (per year)"


def test_jobs_of_two_kinds_are_not_drawn_against_a_parameter(store: Engine) -> None:
    seed.runner(store)
    a = pi(store, "pi", 1000, 3.1)
    b = done(store, "demo", kind="demo_stages", params={"stages": 1}, result={"stages": ["s"]})
    at = compare_page(a, b)
    assert not [c for c in at.get("plotly_chart") if "compare-against" in c.proto.id]


def test_unknown_and_malformed_ids_are_named_and_the_page_links_to_the_jobs(
    store: Engine,
) -> None:
    seed.runner(store)
    a = pi(store, "real", 1000, 3.1)
    gone = enqueue.new_public_id()

    at = compare_page(a, gone, "<b>bad</b>")

    [error] = at.error
    assert md_escape(gone) in error.value and md_escape("<b>bad</b>") in error.value
    assert "fewer than 2" in error.value
    assert links_to_the_jobs(at)
    assert not at.dataframe and not at.get("plotly_chart")


def test_unknown_ids_are_left_out_when_two_jobs_remain(store: Engine) -> None:
    seed.runner(store)
    a = pi(store, "one", 1000, 3.1)
    b = pi(store, "two", 2000, 3.1)
    gone = enqueue.new_public_id()

    at = compare_page(a, gone, b)

    [warning] = at.warning
    assert md_escape(gone) in warning.value
    assert len(headers(at)) == 2
    assert job_links(at) == [f"id={a}", f"id={b}"]


def test_repeated_ids_collapse_to_one_column(store: Engine) -> None:
    seed.runner(store)
    a = pi(store, "one", 1000, 3.1)
    b = pi(store, "two", 2000, 3.1)

    at = compare_page(a, b, a, b)

    assert [t.value for t in at.title] == ["Compare 2 jobs"]
    assert job_links(at) == [f"id={a}", f"id={b}"]


def test_names_are_text_everywhere_never_markup(store: Engine) -> None:
    seed.runner(store)
    a = pi(store, "**bold** <img src=x onerror=alert(1)>", 1000, 3.1)
    b = pi(store, ":red[alarm] [link](http://x)", 2000, 3.1)

    at = compare_page(a, b)

    user_parts = [t for t in markdown_texts(at) if re.search("onerror|bold|alarm", t)]
    user_parts += [p.label for p in at.get("page_link") if re.search("onerror|bold|alarm", p.label)]
    assert len(user_parts) >= 2, "both names are shown"
    for text in user_parts:
        assert not re.search(r"(?<!\\)[<>*\[\]:]", text), text
    assert headers(at)[0].startswith("**bold** <img src=x onerror=alert(1)> · ")
    assert traces(at)[0]["name"].startswith("**bold** &lt;img src=x onerror=alert(1)&gt; · ")


def test_fields_read_as_the_form_and_the_headline_write_them(store: Engine) -> None:
    seed.runner(store)
    result = {"price": 10.44946287, "ci_low": 10.3912, "bs_price": 10.450583572185565}
    ids = [
        done(
            store,
            f"run {i}",
            kind="option_pricing",
            params={"sigma": 0.2, "paths": 10_000, "seed": 7},
            result=result,
        )
        for i in range(2)
    ]

    shown = fields(compare_page(*ids)).set_index("field")

    assert shown.loc["option_type", "label"] == "Option type"
    assert shown.loc["option_type", "job 1"] == "European call"  # the choice's label
    assert shown.loc["K", "label"] == "Strike K"
    assert shown.loc["r", "job 1"] == "0.05"  # a parameter as typed
    assert shown.loc["barrier", "job 1"] == "—"  # left empty: not "null"
    assert shown.loc["antithetic", "job 1"] == "yes"
    assert shown.loc["price", "job 1"] == "10.4495"  # a result to six significant digits
    assert shown.loc["ci_low", "label"] == "CI low"
    assert shown.loc["bs_price", "label"] == "Closed-form price"
    assert shown.loc["seed", "job 1"] == "7"
