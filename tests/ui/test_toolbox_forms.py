"""/new with uploads, presets, clones and list fields: each message at its field, nothing stored
that should not be."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text
from streamlit.testing.v1 import AppTest

from compute import datasets, intake
from compute.param_text import number_text
from jobstore import presets, queries
from tests.s3 import Place
from tests.ui.conftest import open_page
from tests.ui.test_new_job import after, submit
from ui.text import md_escape

BOOT = "new.bootstrap"
DATA = f"{BOOT}.data"


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The artifact store the pages keep uploads in, found through RUNLAB_ARTIFACTS."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("RUNLAB_ARTIFACTS", str(root))
    yield root


@pytest.fixture
def any_artifacts(artifact_place: Place, monkeypatch: pytest.MonkeyPatch) -> Place:
    """The pages' artifact store as a folder, then as an S3 bucket, through its settings."""
    for name, value in artifact_place.env.items():
        monkeypatch.setenv(name, value)
    return artifact_place


def kept_uploads(root: Path) -> list[Path]:
    folder = root / "uploads"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def upload(at: AppTest, name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    at.file_uploader(key=DATA).set_value((name, data, mime))
    return at.run()


def rows_csv(n: int = 20) -> bytes:
    lines = ["day,price,ticker,volume"]
    lines += [f"{i},{100 + (i * 7) % 13 + i / 10},T{i % 3},{1000 + i * 17}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def message_under(at: AppTest, key: str) -> str:
    below = after(at, key)
    assert below.type == "error", (below.type, getattr(below, "value", None))
    return str(below.value)


def assert_refused_under(at: AppTest, store: Engine, key: str, message: str) -> None:
    """The form shows `message` under `key`, the page's only error, and stored no job."""
    assert message_under(at, key) == md_escape(message)
    assert len(at.error) == 1
    assert queries.list_jobs(store).total == 0


MB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"


def over_50_mb() -> bytes:
    """Valid CSV (a header, then one number a line), one byte over the limit."""
    data = b"a\n" + b"1\n" * (25 * MB - 1) + b"7"
    assert len(data) == 50 * MB + 1
    return data


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"  \n\n", "the file is empty"),
        ("image.csv", PNG, "not a CSV file: it holds binary data"),
        (
            "words.csv",
            b"name,city\nann,paris\nbob,rome\n",
            "no numeric column: every column holds text",
        ),
        (
            "bomb.csv",
            b"a,b\n" + b"1" * 199_998 + b",2\n",
            "a line is 200,000 characters long; the limit is 100,000",
        ),
    ],
    ids=["empty", "blank", "png", "no-numeric-column", "long-line"],
)
def test_a_refused_file_says_why_under_the_upload_and_keeps_nothing(
    store: Engine, artifacts: Path, name: str, data: bytes, message: str
) -> None:
    at = open_page("pages/new.py", kind="bootstrap")
    upload(at, name, data)
    assert not at.exception, [e.value for e in at.exception]
    assert message_under(at, DATA) == md_escape(message)
    submit(at)
    assert_refused_under(at, store, DATA, message)
    assert kept_uploads(artifacts) == []


def test_a_file_over_50_mb_is_refused_for_its_size(store: Engine, artifacts: Path) -> None:
    at = open_page("pages/new.py", kind="bootstrap")
    upload(at, "big.csv", over_50_mb())
    assert not at.exception, [e.value for e in at.exception]
    shown = message_under(at, DATA)
    size = len(over_50_mb())
    assert shown == md_escape(
        f"the file is {size:,} bytes; the limit is {50 * 1024 * 1024:,} bytes (50 MB)"
    ), shown
    submit(at)
    assert queries.list_jobs(store).total == 0
    assert kept_uploads(artifacts) == []


def test_missing_values_in_the_chosen_column_are_shown_under_the_column(
    store: Engine, artifacts: Path
) -> None:
    data = b"x,y\n" + b"".join(f"{i},{i * i}\n".encode() for i in range(12))
    data = data.replace(b"5,25\n", b"5,\n").replace(b"9,81\n", b"9,\n")
    at = open_page("pages/new.py", kind="bootstrap")
    upload(at, "gaps.csv", data)
    assert at.selectbox(key=f"{BOOT}.column").options == ["x", "y"]
    at.selectbox(key=f"{BOOT}.column").set_value("y")
    submit(at)

    assert_refused_under(
        at, store, f"{BOOT}.column", "column 'y' has 2 missing or non-finite value(s) (line 7, 11)"
    )
    assert at.selectbox(key=f"{BOOT}.column").value == "y"


def test_a_good_upload_offers_its_numeric_columns_and_the_job_keeps_the_file(
    store: Engine, any_artifacts: Place
) -> None:
    data = rows_csv(40)
    at = open_page("pages/new.py", kind="bootstrap")
    upload(at, "prices.csv", data)
    assert not at.error
    column = at.selectbox(key=f"{BOOT}.column")
    assert column.options == ["day", "price", "volume"]
    assert column.help.endswith("Rule: must be a numeric column of the uploaded Data.")
    column.set_value("price")
    at.text_input(key=f"{BOOT}.resamples").input("2000")
    at.text_input(key=f"{BOOT}.seed").input("11")
    submit(at)
    assert not at.exception, [e.value for e in at.exception]

    (row,) = queries.list_jobs(store).rows
    job = queries.get_job(store, row.id)
    digest = hashlib.sha256(data).hexdigest()
    assert job.kind == "bootstrap"
    assert job.params["data"] == {"name": "prices.csv", "size": len(data), "sha256": digest}
    assert (job.params["column"], job.params["resamples"], job.params["seed"]) == (
        "price",
        2000,
        11,
    )
    assert any_artifacts.files("uploads") == [f"uploads/{digest}"]
    assert any_artifacts.store().get_upload(digest) == data
    assert at.query_params["id"] in (job.id, [job.id])


OPT = "new.option_pricing"


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def desk_values(at: AppTest) -> None:
    at.selectbox(key=f"{OPT}.option_type").set_value("asian_call").run()
    at.text_input(key=f"{OPT}.paths").input("40000")
    at.text_input(key=f"{OPT}.sigma").input("0.35")
    at.text_input(key=f"{OPT}.steps").input("12")
    at.checkbox(key=f"{OPT}.antithetic").uncheck()


def test_a_saved_preset_loads_back_into_a_fresh_form(store: Engine, artifacts: Path) -> None:
    at = open_page("pages/new.py", kind="option_pricing")
    desk_values(at)
    at.text_input(key=f"{OPT}.__preset_name").input("desk")
    button(at, "Save preset").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]

    (saved,) = presets.list_presets(store, "option_pricing")
    assert saved.name == "desk"
    assert saved.params == {
        "option_type": "asian_call",
        "S": 100.0,
        "K": 100.0,
        "r": 0.05,
        "sigma": 0.35,
        "T": 1.0,
        "paths": 40_000,
        "steps": 12,
        "antithetic": False,
    }
    assert queries.list_jobs(store).total == 0
    assert [t.value for t in at.toast] == [md_escape("Saved preset desk.")]

    fresh = open_page("pages/new.py", kind="option_pricing")
    assert fresh.selectbox(key=f"{OPT}.option_type").value == "european_call"
    fresh.selectbox(key=f"{OPT}.__preset").set_value("desk")
    button(fresh, "Load").click()
    fresh.run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert fresh.selectbox(key=f"{OPT}.option_type").value == "asian_call"
    assert fresh.text_input(key=f"{OPT}.paths").value == "40,000"
    assert fresh.text_input(key=f"{OPT}.sigma").value == "0.35"
    assert fresh.text_input(key=f"{OPT}.steps").value == "12"
    assert fresh.checkbox(key=f"{OPT}.antithetic").value is False
    assert fresh.text_input(key=f"{OPT}.seed").value == ""
    assert [s.value for s in fresh.success] == [md_escape("Loaded preset desk.")]
    assert not fresh.warning, [w.value for w in fresh.warning]

    submit(fresh)
    (row,) = queries.list_jobs(store).rows
    params = queries.get_job(store, row.id).params
    assert (params["option_type"], params["paths"], params["sigma"], params["steps"]) == (
        "asian_call",
        40_000,
        0.35,
        12,
    )


def test_a_preset_needs_a_name(store: Engine, artifacts: Path) -> None:
    at = open_page("pages/new.py", kind="option_pricing")
    at.text_input(key=f"{OPT}.__preset_name").input("   ")
    button(at, "Save preset").click()
    at.run()

    assert message_under(at, f"{OPT}.__preset_name") == md_escape("give the preset a name")
    assert len(at.error) == 1
    assert presets.list_presets(store, "option_pricing") == []


def test_a_preset_of_invalid_values_is_not_saved(store: Engine, artifacts: Path) -> None:
    at = open_page("pages/new.py", kind="option_pricing")
    at.selectbox(key=f"{OPT}.option_type").set_value("barrier_up_out_call").run()
    at.text_input(key=f"{OPT}.barrier").input("90.0")  # below the spot
    at.text_input(key=f"{OPT}.__preset_name").input("knocked out")
    button(at, "Save preset").click()
    at.run()

    below = message_under(at, f"{OPT}.barrier")
    assert "above the spot" in below.replace("\\", ""), below
    assert presets.list_presets(store, "option_pricing") == []
    assert queries.list_jobs(store).total == 0


def test_a_clone_opens_the_form_of_its_kind_with_every_value(
    store: Engine, artifacts: Path
) -> None:
    params = {
        "option_type": "barrier_up_out_call",
        "S": 95.5,
        "K": 101.25,
        "r": 0.031,
        "sigma": 0.27,
        "T": 2.5,
        "paths": 123_456,
        "steps": 50,
        "barrier": 130.0,
        "antithetic": False,
        "seed": 2**62 + 5,  # beyond what a browser's number field holds exactly
    }
    source = intake.submit(store, "option_pricing", params, name="**barrier** desk")

    at = open_page("pages/new.py", clone=source)
    assert at.selectbox(key="new.kind").value == "option_pricing"
    assert at.query_params["kind"] in ("option_pricing", ["option_pricing"])
    assert at.selectbox(key=f"{OPT}.option_type").value == "barrier_up_out_call"
    for name in ("S", "K", "r", "sigma", "T", "paths", "steps", "barrier", "seed"):
        assert at.text_input(key=f"{OPT}.{name}").value == number_text(params[name]), name
    assert at.checkbox(key=f"{OPT}.antithetic").value is False
    assert [i.value for i in at.info] == [
        md_escape(f"Cloned from **barrier** desk ({source}).")
        + " Change what you like, then submit."
    ]
    assert not at.warning, [w.value for w in at.warning]

    submit(at)
    assert queries.list_jobs(store).total == 2
    new_id = next(r.id for r in queries.list_jobs(store).rows if r.id != source)
    assert queries.get_job(store, new_id).params == queries.get_job(store, source).params


def test_a_clone_of_a_drawn_63_bit_seed_keeps_the_seed_exactly(
    store: Engine, artifacts: Path
) -> None:
    """A browser's number field would have rounded it; the form's text keeps every digit."""
    big = 2**62 + 5
    source = intake.submit(store, "monte_carlo_pi", {"samples": 5000, "seed": big})

    at = open_page("pages/new.py", clone=source)
    assert at.text_input(key="new.monte_carlo_pi.samples").value == "5,000"
    assert at.text_input(key="new.monte_carlo_pi.seed").value == f"{big:,}"
    (note,) = [i.value for i in at.info]
    assert note.startswith("Cloned from") and "beyond" not in note, note

    submit(at)
    new_id = next(r.id for r in queries.list_jobs(store).rows if r.id != source)
    assert queries.get_job(store, new_id).params == queries.get_job(store, source).params


PORT = "new.portfolio_risk"
TWO_ASSETS = {
    "weights": [0.6, 0.4],
    "expected_returns": [0.07, 0.03],
    "volatilities": [0.2, 0.06],
    "correlation": [[1.0, 0.25], [0.25, 1.0]],
    "portfolio_value": 2_500_000.0,
    "horizon_days": 5,
    "levels": [0.975],
    "scenarios": 20_000,
    "distribution": "student_t",
    "dof": 4.5,
    "seed": 99,
}


def test_a_clone_of_a_portfolio_shows_its_lists_as_text(store: Engine, artifacts: Path) -> None:
    source = intake.submit(store, "portfolio_risk", TWO_ASSETS)

    at = open_page("pages/new.py", clone=source)
    assert at.selectbox(key="new.kind").value == "portfolio_risk"
    assert at.text_input(key=f"{PORT}.weights").value == "0.6, 0.4"
    assert at.text_input(key=f"{PORT}.expected_returns").value == "0.07, 0.03"
    assert at.text_input(key=f"{PORT}.volatilities").value == "0.2, 0.06"
    assert at.text_area(key=f"{PORT}.correlation").value == "1.0, 0.25\n0.25, 1.0"
    assert at.text_input(key=f"{PORT}.levels").value == "0.975"
    assert at.selectbox(key=f"{PORT}.distribution").value == "student_t"
    for name in ("portfolio_value", "horizon_days", "scenarios", "dof", "seed"):
        assert at.text_input(key=f"{PORT}.{name}").value == number_text(TWO_ASSETS[name]), name

    submit(at)
    assert not at.exception, [e.value for e in at.exception]
    new_id = next(r.id for r in queries.list_jobs(store).rows if r.id != source)
    assert queries.get_job(store, new_id).params == queries.get_job(store, source).params


def test_a_clone_of_a_bootstrap_job_keeps_its_file_without_a_new_upload(
    store: Engine, any_artifacts: Place
) -> None:
    data = rows_csv(30)
    name = "q1_*prices*_[desk].csv"  # shown literally, not as Markdown
    ref = datasets.store(any_artifacts.store(), name, data).model_dump()
    params = {
        "data": ref,
        "statistic": "median",
        "column": "volume",
        "resamples": 3000,
        "confidence": 0.9,
        "method": "percentile",
        "seed": 5,
    }
    source = intake.submit(store, "bootstrap", params)

    at = open_page("pages/new.py", clone=source)
    assert at.selectbox(key="new.kind").value == "bootstrap"
    assert at.file_uploader(key=DATA).value is None  # nothing uploaded here: the job's file
    shown = f"Using {md_escape(name)} ({len(data):,} bytes, SHA-256 {ref['sha256'][:12]}…)"
    assert shown in [c.value.split("; ")[0] for c in at.caption]
    assert at.selectbox(key=f"{BOOT}.column").options == ["day", "price", "volume"]
    assert at.selectbox(key=f"{BOOT}.column").value == "volume"
    assert at.selectbox(key=f"{BOOT}.statistic").value == "median"
    assert at.selectbox(key=f"{BOOT}.method").value == "percentile"
    assert at.text_input(key=f"{BOOT}.resamples").value == "3,000"
    assert at.text_input(key=f"{BOOT}.confidence").value == "0.9"
    assert not at.warning, [w.value for w in at.warning]

    submit(at)
    assert not at.exception, [e.value for e in at.exception]
    new_id = next(r.id for r in queries.list_jobs(store).rows if r.id != source)
    assert queries.get_job(store, new_id).params == queries.get_job(store, source).params
    assert any_artifacts.files("uploads") == [f"uploads/{ref['sha256']}"]


def test_clone_on_the_job_page_opens_the_form_filled_in(store: Engine, artifacts: Path) -> None:
    source = intake.submit(store, "portfolio_risk", TWO_ASSETS, name="two assets")

    at = open_page("pages/job.py", id=source)
    button(at, "Clone").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    assert at.selectbox(key="new.kind").value == "portfolio_risk"
    assert at.query_params["clone"] in (source, [source])
    assert at.text_input(key=f"{PORT}.weights").value == "0.6, 0.4"
    assert at.text_area(key=f"{PORT}.correlation").value == "1.0, 0.25\n0.25, 1.0"
    assert at.text_input(key=f"{PORT}.scenarios").value == "20,000"


def test_weights_that_are_not_numbers_get_the_rule_under_weights(
    store: Engine, artifacts: Path
) -> None:
    at = open_page("pages/new.py", kind="portfolio_risk")
    assert at.text_input(key=f"{PORT}.weights").value == "0.5, 0.3, 0.2"
    at.text_input(key=f"{PORT}.weights").input("half, 0.3, 0.2")
    submit(at)

    assert_refused_under(
        at, store, f"{PORT}.weights", "must be a list of numbers, separated by commas"
    )
    assert at.text_input(key=f"{PORT}.weights").value == "half, 0.3, 0.2"


def test_a_correlation_that_is_not_psd_is_refused_under_correlation(
    store: Engine, artifacts: Path
) -> None:
    rows = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]
    smallest = float(np.linalg.eigvalsh(np.array(rows))[0])
    assert smallest < -0.5  # symmetric, ones on the diagonal, entries in [-1, 1]: only not PSD
    at = open_page("pages/new.py", kind="portfolio_risk")
    at.text_area(key=f"{PORT}.correlation").input(
        "\n".join(", ".join(str(x) for x in r) for r in rows)
    )
    submit(at)

    assert_refused_under(
        at,
        store,
        f"{PORT}.correlation",
        f"is not positive semi-definite (smallest eigenvalue {smallest:.3g}): no joint "
        "distribution has these correlations",
    )


PORTFOLIO_CSV = b"""asset,weight,expected_return,volatility,stocks,bonds
stocks,0.6,0.07,0.2,1,0.2
bonds,0.4,0.03,0.06,0.2,1
"""


def test_a_portfolio_csv_fills_the_list_fields(store: Engine, artifacts: Path) -> None:
    at = open_page("pages/new.py", kind="portfolio_risk")
    at.text_input(key=f"{PORT}.horizon_days").input("3")
    at.text_input(key=f"{PORT}.weights").input("0.6, 0.4")  # three returns: refused
    submit(at)
    assert queries.list_jobs(store).total == 0
    at.file_uploader(key=f"{PORT}.__from_csv").set_value(("two.csv", PORTFOLIO_CSV, "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]

    assert at.text_input(key=f"{PORT}.weights").value == "0.6, 0.4"
    assert at.text_input(key=f"{PORT}.expected_returns").value == "0.07, 0.03"
    assert at.text_input(key=f"{PORT}.volatilities").value == "0.2, 0.06"
    assert at.text_area(key=f"{PORT}.correlation").value == "1.0, 0.2\n0.2, 1.0"
    assert at.text_input(key=f"{PORT}.horizon_days").value == "3"  # what the CSV has not
    (done,) = [s.value for s in at.success]
    assert md_escape("two.csv") in done, done

    at.text_input(key=f"{PORT}.scenarios").input("5000")
    submit(at)
    (row,) = queries.list_jobs(store).rows
    params = queries.get_job(store, row.id).params
    assert params["weights"] == [0.6, 0.4]
    assert params["expected_returns"] == [0.07, 0.03]
    assert params["volatilities"] == [0.2, 0.06]
    assert params["correlation"] == [[1.0, 0.2], [0.2, 1.0]]
    assert (params["horizon_days"], params["scenarios"]) == (3, 5000)


def test_a_bad_portfolio_csv_says_why_and_changes_nothing(store: Engine, artifacts: Path) -> None:
    at = open_page("pages/new.py", kind="portfolio_risk")
    bad = PORTFOLIO_CSV.replace(b"0.03", b"three")
    at.file_uploader(key=f"{PORT}.__from_csv").set_value(("bad.csv", bad, "text/csv"))
    at.run()

    assert message_under(at, f"{PORT}.__from_csv") == md_escape(
        "line 3, column 'expected_return': 'three' is not a number"
    )
    assert at.text_input(key=f"{PORT}.weights").value == "0.5, 0.3, 0.2"


def test_removing_the_uploaded_file_removes_it_from_the_form(
    store: Engine, artifacts: Path
) -> None:
    at = open_page("pages/new.py", kind="bootstrap")
    upload(at, "prices.csv", rows_csv())
    assert at.selectbox(key=f"{BOOT}.column").options == ["day", "price", "volume"]

    at.file_uploader(key=DATA).clear()
    at.run()
    assert not any("prices.csv" in c.value for c in at.caption), [c.value for c in at.caption]
    assert at.selectbox(key=f"{BOOT}.column").options == []
    submit(at)
    assert message_under(at, DATA) == md_escape("is required")
    assert queries.list_jobs(store).total == 0


def test_an_upload_field_of_any_name_shows_its_own_refusal(store: Engine, artifacts: Path) -> None:
    """A plugin's upload field need not be called `data`."""

    def script() -> None:
        from pydantic import BaseModel, ConfigDict, Field

        from compute.datasets import Upload
        from compute.registry import Kind
        from ui import forms, resources

        class Params(BaseModel):
            model_config = ConfigDict(strict=True, extra="forbid")
            prices: Upload = Field(description="A table.")
            column: str = Field(json_schema_extra={"column_of": "prices"}, description="One.")

        kind = Kind("probe", "Probe", "", Params, lambda _p: ["run"], lambda _c, _p: {})
        forms.job_form(kind, resources.artifacts())

    at = AppTest.from_function(script, default_timeout=15).run()
    at.file_uploader(key="new.probe.prices").set_value(("empty.csv", b"", "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert message_under(at, "new.probe.prices") == md_escape("the file is empty")

    at.file_uploader(key="new.probe.prices").set_value(("p.csv", rows_csv(), "text/csv"))
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="new.probe.column").options == ["day", "price", "volume"]


def test_the_same_job_cloned_twice_fills_the_form_both_times(
    store: Engine, artifacts: Path
) -> None:
    source = intake.submit(store, "portfolio_risk", TWO_ASSETS, name="two assets")

    at = open_page("pages/job.py", id=source)
    button(at, "Clone").click()
    at.run()
    at.switch_page("pages/new.py")  # where the browser now is; AppTest stays on the job page
    at.text_input(key=f"{PORT}.weights").input("0.7, 0.3")
    submit(at)
    assert not at.error, [e.value for e in at.error]
    assert queries.list_jobs(store).total == 2
    at.switch_page("pages/job.py")
    at.query_params.clear()
    at.query_params["id"] = source
    at.run()
    button(at, "Clone").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    assert at.text_input(key=f"{PORT}.weights").value == "0.6, 0.4"
    assert at.text_input(key=f"{PORT}.scenarios").value == "20,000"


def test_a_clone_of_nothing_or_of_a_kind_not_installed_says_so(store: Engine) -> None:
    at = open_page("pages/new.py", clone="no-such-job")
    assert [e.value for e in at.error] == [md_escape("No job no-such-job to clone.")]
    assert at.selectbox(key="new.kind").value == "monte_carlo_pi"

    source = intake.submit(store, "monte_carlo_pi", {"samples": 5000})
    with store.begin() as conn:
        conn.execute(
            text("UPDATE jobs SET kind = 'retired_kind' WHERE public_id = :id"), {"id": source}
        )
    at = open_page("pages/new.py", clone=source)
    assert [e.value for e in at.error] == [
        md_escape(f"Job {source} is of kind retired_kind, which is not installed here.")
    ]


def test_the_column_picker_shows_the_first_numeric_column_of_a_new_file(
    store: Engine, artifacts: Path
) -> None:
    """The browser sends back the empty picker it drew before the upload; the form must still
    show, and submit, a column of the file."""
    at = open_page("pages/new.py", kind="bootstrap")
    at.selectbox(key=f"{BOOT}.column").set_value(None)  # what the browser holds and sends
    upload(at, "prices.csv", rows_csv())
    column = at.selectbox(key=f"{BOOT}.column")
    assert column.value == "day"
    assert column.proto.set_value and column.proto.raw_value == "day"  # told to the browser
