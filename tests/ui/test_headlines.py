"""Each kind's headline on the Result tab: its answer in rounded figures and tables, from a
result that the kind's own driver made (run in this process on the stand-in context)."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from compute import registry
from compute.results import clean_result
from jobstore import transitions as T
from tests.ui import seed
from tests.ui.conftest import open_page
from tests.unit.fake_context import FakeContext

MEASURED = re.compile(r"^(?P<value>[\d,]+\.(?P<d>\d+)) ± (?P<se>\d+\.(?P<e>\d+))$")


def finished(store: Engine, kind: str, params: dict[str, Any]) -> str:
    """A job of `kind` whose result is what its driver computes for `params`."""
    k = registry.get(kind)
    result = clean_result(k.run(FakeContext(), k.parse(params)))
    seed.runner(store)
    public_id, lease = seed.running_kind(store, kind, params)
    T.succeed(store, lease, result)
    return public_id


def result_tab(public_id: str) -> AppTest:
    return open_page("pages/job.py", id=public_id)


def metrics(at: AppTest) -> dict[str, str]:
    """Each metric by its label as the page shows it (the Markdown escapes taken out)."""
    return {m.label.replace("\\", ""): m.value for m in at.metric}


def table(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_an_option_shows_its_price_to_its_errors_digits_and_the_closed_forms_z_score(
    store: Engine,
) -> None:
    job = finished(store, "option_pricing", {"paths": 20_000, "seed": 5})
    shown = metrics(result_tab(job))

    price = MEASURED.match(shown["Price"])
    assert price, shown["Price"]
    assert len(price["d"]) == len(price["e"])  # the price to the error's last digit
    assert 0.001 <= float(price["se"]) < 1  # two significant digits of the error
    assert re.fullmatch(r"[+-]\d+\.\d\d", shown["z-score against it"])
    assert abs(float(shown["z-score against it"])) < 4
    assert re.fullmatch(r"\d+\.\d{4}", shown["Black–Scholes price"])
    assert " – " in shown["95 % interval"] and shown["Paths"] == "20,000"


def test_portfolio_risk_shows_a_var_and_cvar_row_per_level_beside_the_closed_form(
    store: Engine,
) -> None:
    job = finished(
        store, "portfolio_risk", {"scenarios": 20_000, "levels": [0.95, 0.99], "seed": 2}
    )
    rows = table(result_tab(job), "CVaR (expected shortfall)")

    assert list(rows["Level"]) == ["95 %", "99 %"]
    assert list(rows.columns) == [
        "Level",
        "VaR",
        "VaR 95 % interval",
        "CVaR (expected shortfall)",
        "VaR, closed form",
        "CVaR, closed form",
    ]
    var = [float(v.replace(",", "")) for v in rows["VaR"]]
    cvar = [float(v.replace(",", "")) for v in rows["CVaR (expected shortfall)"]]
    assert var[0] < var[1] and all(c > v for c, v in zip(cvar, var, strict=True))
    assert all(re.fullmatch(r"[\d,]+", v) for v in rows["VaR"])  # whole money units


def test_optimize_shows_its_best_point_the_minima_found_and_a_row_per_start(
    store: Engine,
) -> None:
    job = finished(store, "optimize", {"objective": "himmelblau", "starts": 32, "seed": 4})
    at = result_tab(job)
    shown = metrics(at)

    assert shown["Minima found"] == "4 of 4"
    assert re.fullmatch(r"\d+ of 32 starts", shown["Converged"])
    assert re.fullmatch(r"\(-?\d\.\d{4}, -?\d\.\d{4}\)", shown["Best x"])
    starts = table(at, "Iterations")
    assert list(starts["Start"]) == [str(i) for i in range(1, 33)]
    assert set(starts["Converged"]) <= {"yes", "no"}
    # The result's JSON is folded: no start's path is laid out on the page.
    assert all("path" not in j.value for j in at.json)
