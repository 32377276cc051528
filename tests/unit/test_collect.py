"""The collect kind: the rows a pipeline hands over, refused field by field when malformed; the
figures, chart and headline made from them, an empty collection included."""

from __future__ import annotations

import math
from typing import Any

import pytest

from compute import registry
from compute.kinds.collect import MAX_ROWS, TABLE_ROWS, CollectParams
from tests.unit.fake_context import FakeContext
from tests.unit.kind_params import accepted_or_refused, assert_refused_on

KIND = "collect"


class Context(FakeContext):
    """The stand-in context, with JobContext's cancellation check, which collect calls."""

    def __init__(self, *, cancelled: bool = False) -> None:
        super().__init__()
        self.cancelled = cancelled

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise RuntimeError("cancelled")


def sweep_and_single() -> dict[str, Any]:
    """A sweep over σ (its points out of order, its dicts' keys shuffled as JSONB may), a single
    job of the same kind, and a bootstrap step that failed and was continued without."""
    inputs = [
        {
            "step": "price",
            "kind": "option_pricing",
            "swept": ["sigma", "option_type"],
            "fields": ["price", "standard_error"],
            "status": "succeeded",
        },
        {
            "step": "reference",
            "kind": "option_pricing",
            "swept": [],
            "fields": ["price", "standard_error"],
            "status": "succeeded",
        },
        {
            "step": "vol",
            "kind": "bootstrap",
            "swept": [],
            "fields": ["estimate"],
            "status": "failed",
        },
    ]
    points = [(0.3, 14.2313), (0.1, 6.8050), (0.2, 10.4506)]
    rows = [
        {
            "step": "price",
            "job": f"p{i}",
            "point": {"option_type": "european_call", "sigma": sigma},
            "values": {"standard_error": 0.01, "price": price},
        }
        for i, (sigma, price) in enumerate(points)
    ]
    rows.append(
        {
            "step": "reference",
            "job": "r0",
            "point": {},
            "values": {"price": 9.5, "standard_error": 0},
        }
    )
    return {"inputs": inputs, "rows": rows}


def result_of(params: dict[str, Any]) -> dict[str, Any]:
    kind = registry.get(KIND)
    parsed, _ = registry.validated(KIND, params)
    return kind.run(Context(), parsed)


@pytest.fixture
def good() -> dict[str, Any]:
    return sweep_and_single()


# --- the parameters -----------------------------------------------------------------------------


def test_the_example_and_what_it_stores_validate_to_themselves() -> None:
    example = registry.get(KIND).example
    assert example is not None
    assert accepted_or_refused(KIND, example()) is None
    assert accepted_or_refused(KIND, sweep_and_single()) is None


def test_collect_is_registered_off_the_form_with_its_headline() -> None:
    kind = registry.get(KIND)
    assert kind.listed is False
    assert kind.headline == ("count", "min", "max", "mean")
    assert kind.params is CollectParams
    assert kind.stage_names(registry.validate(KIND, sweep_and_single())) == ["collect"]


def row_with(good: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**good, "rows": [{**good["rows"][0], **changes}, *good["rows"][1:]]}


def input_with(good: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**good, "inputs": [{**good["inputs"][0], **changes}, *good["inputs"][1:]]}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            lambda g: row_with(g, values={"price": math.nan, "standard_error": 0.1}),
            "rows",
            "row 1, values.price: must be a finite number",
        ),
        (
            lambda g: row_with(g, values={"price": math.inf, "standard_error": 0.1}),
            "rows",
            "row 1, values.price: must be a finite number",
        ),
        (
            lambda g: row_with(g, values={"price": "10", "standard_error": 0.1}),
            "rows",
            "row 1, values.price: must be a finite number",
        ),
        (
            lambda g: row_with(g, values={"price": True, "standard_error": 0.1}),
            "rows",
            "row 1, values.price: must be a finite number",
        ),
        (
            lambda g: row_with(g, point={"sigma": True, "option_type": "european_call"}),
            "rows",
            "row 1, point.sigma: must be a finite number, or a choice of at most 100 characters",
        ),
        (
            lambda g: row_with(g, point={"sigma": 0.1, "option_type": "x" * 101}),
            "rows",
            "row 1, point.option_type: must be a finite number, or a choice",
        ),
        (lambda g: row_with(g, job="j" * 33), "rows", "row 1, job: must be at most 32 characters"),
        (
            lambda g: row_with(g, step="s" * 41),
            "rows",
            "row 1, step: must be at most 40 characters",
        ),
        (lambda g: row_with(g, step="nope"), "rows", "row 1, step: 'nope' is not an input"),
        (
            lambda g: row_with(g, point={"sigma": 0.1}),
            "rows",
            "row 1, point: must give exactly price's swept parameters (sigma, option_type)",
        ),
        (
            lambda g: row_with(g, values={"price": 1.0, "delta": 0.5}),
            "rows",
            "row 1, values: must give only price's result fields (price, standard_error)",
        ),
        (
            lambda g: row_with(g, values={f"f{i}": 1.0 for i in range(21)}),
            "rows",
            "row 1, values: must hold at most 20 items",
        ),
        (lambda g: row_with(g, colour="red"), "rows", "row 1, colour: is not a field of a row"),
        (lambda g: {**g, "rows": "1, 2"}, "rows", "must be a list of rows"),
        (
            lambda g: {**g, "rows": [g["rows"][0]] * (MAX_ROWS + 1)},
            "rows",
            "must hold at most 20,000 rows",
        ),
        (
            lambda g: input_with(g, status="done"),
            "inputs",
            "input 1, status: must be one of 'succeeded', 'failed' or 'cancelled'",
        ),
        (lambda g: input_with(g, step=""), "inputs", "input 1, step: must not be empty"),
        (
            lambda g: input_with(g, swept=["sigma", "sigma"]),
            "inputs",
            "input 1, swept: 'sigma' is given twice",
        ),
        (
            lambda g: {**g, "inputs": [g["inputs"][0], g["inputs"][0]]},
            "inputs",
            "step 'price' is given twice",
        ),
        (lambda g: {**g, "inputs": []}, "inputs", "must not be empty"),
        (
            lambda g: {**g, "inputs": [g["inputs"][0]] * 51},
            "inputs",
            "must hold at most 50 inputs",
        ),
        (lambda g: {"inputs": g["inputs"]}, "rows", "is required"),
        (lambda g: {**g, "extra": 1}, "extra", "is not a parameter of this kind"),
    ],
)
def test_bad_params_are_refused_at_their_field_saying_where(
    good: dict[str, Any], change: Any, field: str, message: str
) -> None:
    assert_refused_on(KIND, change(good), field, message)


def test_many_bad_rows_give_one_message_with_a_count() -> None:
    good = sweep_and_single()
    bad = [{**r, "job": "j" * 40} for r in good["rows"]]
    assert_refused_on(KIND, {**good, "rows": bad}, "rows", "(and 3 more problems)")


# --- the result ---------------------------------------------------------------------------------


def test_the_result_gives_the_figures_over_a_sweep_and_a_single_job(good: dict[str, Any]) -> None:
    result = result_of(good)

    assert result["count"] == 4
    assert (result["x"], result["y"]) == ("sigma", "price")
    assert result["min"] == 6.8050 and result["max"] == 14.2313
    assert result["mean"] == pytest.approx((14.2313 + 6.8050 + 10.4506 + 9.5) / 4, rel=1e-15)
    assert result["steps"] == ["price", "reference", "vol"]
    assert result["missing"] == ["vol"]
    assert [r["job"] for r in result["rows"]] == ["p0", "p1", "p2", "r0"]
    assert [i["step"] for i in result["inputs"]] == result["steps"]


def test_a_single_job_first_has_no_x_and_ints_count_as_numbers(good: dict[str, Any]) -> None:
    params = {**good, "inputs": [good["inputs"][1], good["inputs"][0]]}
    params["rows"][3]["values"]["price"] = 9  # a JSON integer, as a result may hold one
    result = result_of(params)

    assert (result["x"], result["y"]) == (None, "price")
    assert result["min"] == 6.8050 and result["max"] == 14.2313


def test_no_rows_say_so_with_numbers_in_every_headline_field(good: dict[str, Any]) -> None:
    params = {"inputs": [{**i, "status": "failed"} for i in good["inputs"]], "rows": []}
    kind = registry.get(KIND)
    result = result_of(params)

    assert {k: result[k] for k in kind.headline} == {
        "count": 0,
        "min": 0.0,
        "max": 0.0,
        "mean": 0.0,
    }
    assert result["missing"] == ["price", "reference", "vol"] and result["rows"] == []
    assert kind.figure is not None and kind.figure(result, {}) is None
    headline = kind.summary(result, params)
    assert headline is not None
    assert [f.pair for f in headline.figures] == [("Results", "0")]
    assert headline.notes[0] == "No result was collected."
    assert headline.notes[1].startswith("Did not succeed: price (failed), reference (failed)")
    assert headline.tables == []


def test_headline_fields_are_numbers_in_every_result(good: dict[str, Any]) -> None:
    example = registry.get(KIND).example
    assert example is not None
    for params in (good, {**good, "rows": []}, example()):
        result = result_of(params)
        for name in registry.get(KIND).headline:
            assert isinstance(result[name], int | float) and not isinstance(result[name], bool)


def test_the_mean_of_huge_values_does_not_overflow() -> None:
    params = {
        "inputs": [{"step": "a", "kind": "x", "swept": [], "fields": ["v"], "status": "succeeded"}],
        "rows": [
            {"step": "a", "job": f"j{i}", "point": {}, "values": {"v": 1.5e308}} for i in range(3)
        ],
    }
    result = result_of(params)
    assert result["mean"] == 1.5e308


def test_the_driver_checks_for_a_cancel_in_its_one_stage(good: dict[str, Any]) -> None:
    kind = registry.get(KIND)
    ctx = Context(cancelled=True)
    with pytest.raises(RuntimeError, match="cancelled"):
        kind.run(ctx, kind.parse(good))
    assert ctx.stages == ["collect"]


# --- the chart ----------------------------------------------------------------------------------


def test_the_chart_has_a_trace_per_step_with_every_y_sorted_along_x(good: dict[str, Any]) -> None:
    kind = registry.get(KIND)
    result = result_of(good)
    assert kind.figure is not None
    fig = kind.figure(result, {})

    traces = {t.name: t for t in fig.data}
    assert list(traces) == ["price", "reference"]  # vol collected nothing
    price = traces["price"]
    assert (price.mode, list(price.x), list(price.y)) == (
        "lines+markers",
        [0.1, 0.2, 0.3],
        [6.8050, 10.4506, 14.2313],
    )
    # The single job, across the swept range: a reference to read the sweep against.
    reference = traces["reference"]
    assert (list(reference.x), list(reference.y)) == ([0.1, 0.3], [9.5, 9.5])
    assert fig.layout.xaxis.title.text == "Volatility σ (per year)"
    assert fig.layout.yaxis.title.text == "Price"


def test_without_an_x_the_chart_is_bars_of_y_per_row_labelled_by_step_and_point(
    good: dict[str, Any],
) -> None:
    kind = registry.get(KIND)
    params = {**good, "inputs": [good["inputs"][1], good["inputs"][0]]}
    assert kind.figure is not None
    fig = kind.figure(result_of(params), {})

    assert [(t.type, t.name) for t in fig.data] == [("bar", "reference"), ("bar", "price")]
    assert list(fig.data[0].x) == ["reference"] and list(fig.data[0].y) == [9.5]
    assert list(fig.data[1].x) == [
        "price: sigma=0.3, option_type=european_call",
        "price: sigma=0.1, option_type=european_call",
        "price: sigma=0.2, option_type=european_call",
    ]
    assert sorted(fig.data[1].y) == [6.8050, 10.4506, 14.2313]
    assert fig.layout.xaxis.title.text == "Step"


def test_a_kind_not_installed_here_titles_the_axis_with_the_parameter_name(
    good: dict[str, Any],
) -> None:
    kind = registry.get(KIND)
    params = input_with(good, kind="not_installed")
    assert kind.figure is not None
    assert kind.figure(result_of(params), {}).layout.xaxis.title.text == "sigma"


def test_the_examples_chart_has_both_sweeps() -> None:
    kind = registry.get(KIND)
    assert kind.example is not None and kind.figure is not None
    params = kind.example()
    fig = kind.figure(result_of(params), {})

    assert [t.name for t in fig.data] == ["european", "asian"]
    for trace in fig.data:
        expected = sorted(
            (r["point"]["sigma"], r["values"]["price"])
            for r in params["rows"]
            if r["step"] == trace.name
        )
        assert list(zip(trace.x, trace.y, strict=True)) == expected


# --- the headline -------------------------------------------------------------------------------


def test_the_headline_gives_the_count_range_mean_missing_steps_and_a_table(
    good: dict[str, Any],
) -> None:
    kind = registry.get(KIND)
    result = result_of(good)
    headline = kind.summary(result, good)
    assert headline is not None

    assert [f.pair for f in headline.figures] == [
        ("Results", "4"),
        ("Price range", "6.805 – 14.23"),
        ("Price mean", "10.25"),
    ]
    assert headline.notes == ["Did not succeed: vol (failed)."]
    [table] = headline.tables
    assert table.columns == ["Step", "Point", "price", "standard_error", "estimate"]
    assert table.rows[0] == [
        "price",
        "sigma=0.3, option_type=european_call",
        "14.23",
        "0.01000",
        "",
    ]
    assert table.rows[3] == ["reference", "", "9.500", "0", ""]


def test_the_table_is_cut_with_a_note_the_result_keeps_every_row() -> None:
    n = TABLE_ROWS + 5
    params = {
        "inputs": [
            {
                "step": "s",
                "kind": "option_pricing",
                "swept": ["K"],
                "fields": ["price"],
                "status": "succeeded",
            }
        ],
        "rows": [
            {"step": "s", "job": f"j{i}", "point": {"K": 50 + i}, "values": {"price": float(i)}}
            for i in range(n)
        ],
    }
    kind = registry.get(KIND)
    result = result_of(params)
    headline = kind.summary(result, params)
    assert headline is not None

    assert len(result["rows"]) == n and result["rows"][7]["point"] == {"K": 57}
    assert len(headline.tables[0].rows) == TABLE_ROWS
    assert headline.notes == [
        f"The table shows the first {TABLE_ROWS} of {n} results; the result holds them all."
    ]


def test_a_result_without_y_is_counted_and_tabled_but_not_in_the_range_or_chart(
    good: dict[str, Any],
) -> None:
    good["rows"][0]["values"] = {"standard_error": 0.02}  # the σ = 0.3 point gave no price
    kind = registry.get(KIND)
    result = result_of(good)
    headline = kind.summary(result, good)
    assert headline is not None and kind.figure is not None

    assert (result["count"], result["min"], result["max"]) == (4, 6.8050, 10.4506)
    assert headline.figures[1].help == "Over the 3 results that give price."
    assert headline.notes[0] == "1 result gives no price: it is in the table only."
    assert headline.tables[0].rows[0][2:4] == ["", "0.02000"]
    price = next(t for t in kind.figure(result, {}).data if t.name == "price")
    assert list(price.x) == [0.1, 0.2]
