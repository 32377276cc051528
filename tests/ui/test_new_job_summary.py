"""/new says what an uploaded file holds, under its field, and before Submit the job's size and
how long past runs of its kind and size took."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from compute import datasets, intake
from jobstore.models import Status
from runlab.artifacts import ArtifactStore
from tests.bulk import PastJob, copy_jobs
from tests.ui.conftest import open_page
from tests.ui.test_new_job import submit
from ui.text import md_escape

BOOT = "new.bootstrap"
PI = "new.monte_carlo_pi"
# Six rows: a whole column, a column of numbers with one missing, a column of text with one.
PRICES = b"day,price,ticker\n1,10.5,A\n2,,B\n3,12.25,C\n4,11.0,\n5,13.75,A\n6,9.5,B\n"
PRICES_COLUMNS = [
    ["day", "6", "0", "1", "3.5", "6"],
    ["price", "5", "1", "9.5", "11.4", "13.75"],
    ["ticker", "5", "1", "", "", ""],
]
DEFAULT_SAMPLES = 1_000_000_000  # the π form's default
# Ten runs of 120 to 390 s: median 255 s (4 min), 10 % 147 s (2 min), 90 % 363 s (6 min).
TEN_RUNS = [120.0 + 30 * i for i in range(10)]


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The artifact store the pages keep uploads in, found through RUNLAB_ARTIFACTS."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("RUNLAB_ARTIFACTS", str(root))
    return root


def summary_boxes(at: AppTest) -> list[Any]:
    """The expanders that sum up an upload: all but the form's own for presets."""
    return [e for e in at.expander if e.label != "Save these values as a preset"]


def summary_tables(at: AppTest) -> tuple[list[list[str]], list[list[object]]]:
    """The per-column table and the first rows, as the page shows them."""
    columns, head = (d.value for d in at.dataframe)
    assert list(columns.columns) == ["Column", "Count", "Missing", "Min", "Mean", "Max"]
    return columns.values.tolist(), head.values.tolist()


def test_an_upload_shows_its_shape_columns_and_first_rows(store: Engine, artifacts: Path) -> None:
    at = open_page("pages/new.py", kind="bootstrap")
    at.file_uploader(key=f"{BOOT}.data").set_value(("prices.csv", PRICES, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]

    [box] = summary_boxes(at)
    assert box.label == md_escape("prices.csv: 6 rows × 3 columns")
    assert box.proto.expanded  # open at first: the file is what an analyst checks next
    columns, head = summary_tables(at)
    assert columns == PRICES_COLUMNS
    assert [row[0] for row in head] == [1, 2, 3, 4, 5]  # the first five rows, in order
    assert head[0][1:] == [10.5, "A"]
    assert "The first 5 rows:" in [c.value for c in at.caption]


def test_no_summary_before_a_file_or_for_a_refused_one(store: Engine, artifacts: Path) -> None:
    at = open_page("pages/new.py", kind="bootstrap")
    assert not summary_boxes(at) and not at.dataframe
    at.file_uploader(key=f"{BOOT}.data").set_value(("t.csv", b"a,b\nx,y\n", "text/csv")).run()
    assert [e.value for e in at.error] == [md_escape("no numeric column: every column holds text")]
    assert not summary_boxes(at) and not at.dataframe


def test_a_cloned_jobs_file_is_summed_up_without_a_new_upload(
    store: Engine, artifacts: Path
) -> None:
    name = "q1_*prices*.csv"  # shown literally, not as Markdown
    ref = datasets.store(ArtifactStore(str(artifacts)), name, PRICES).model_dump()
    source = intake.submit(
        store, "bootstrap", {"data": ref, "column": "price", "resamples": 2000, "seed": 1}
    )
    at = open_page("pages/new.py", clone=source)
    [box] = summary_boxes(at)
    assert box.label == md_escape(f"{name}: 6 rows × 3 columns")
    assert summary_tables(at)[0] == PRICES_COLUMNS


def past(engine: Engine, seconds: Sequence[float], samples: int = DEFAULT_SAMPLES) -> None:
    """Succeeded π jobs of `samples` that ran for `seconds` each, an hour ago."""
    base = datetime.now(UTC) - timedelta(hours=1)
    copy_jobs(
        engine,
        [
            PastJob(
                kind="monte_carlo_pi",
                name="past",
                owner="t",
                params={"samples": samples, "chunks": None, "seed": 1},
                status=Status.SUCCEEDED,
                created_at=base,
                started_at=base,
                finished_at=base + timedelta(seconds=s),
                result={"estimate": 3.14},
                stages=["plan", "sample", "reduce"],
            )
            for s in seconds
        ],
    )


def run_time_caption(at: AppTest) -> str:
    [line] = [c.value for c in at.caption if "run time" in c.value]
    return str(line)


def test_with_no_past_runs_the_form_says_so_above_submit(store: Engine) -> None:
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    assert run_time_caption(at) == md_escape(
        "Size: 1,000,000,000 samples · expected run time unknown: no past runs of this size yet."
    )


def test_past_runs_of_a_similar_size_give_the_expected_run_time(store: Engine) -> None:
    past(store, TEN_RUNS)
    past(store, [5.0] * 3, samples=10_000_000)  # a hundred times smaller: no guide

    at = open_page("pages/new.py", kind="monte_carlo_pi")
    assert run_time_caption(at) == md_escape(
        "Size: 1,000,000,000 samples · expected run time about 4 min (2–6 min), "
        "from 10 past runs of a similar size."
    )


def test_the_estimate_follows_the_values_the_form_last_read(store: Engine) -> None:
    """Runs of twice the size count, halved; the form's values are read on each submit."""
    past(store, [600.0, 720.0], samples=2 * DEFAULT_SAMPLES)
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    assert run_time_caption(at) == md_escape(
        "Size: 1,000,000,000 samples · expected run time about 6 min, "
        "from 2 past runs of a similar size."
    )

    at.text_input(key=f"{PI}.samples").input("1e7")
    at.text_input(key=f"{PI}.chunks").input("0")  # refused, so the form stays
    submit(at)
    assert run_time_caption(at) == md_escape(
        "Size: 10,000,000 samples · expected run time unknown: no past runs of this size yet."
    )

    at.text_input(key=f"{PI}.samples").input("lots")
    submit(at)
    assert md_escape("Size and expected run time: shown once the values above are valid.") in [
        c.value for c in at.caption
    ]


def test_the_caption_sits_just_above_submit(store: Engine) -> None:
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    form = next(b for b in at.main.children.values() if b.type == "form")
    flat = list(form.children.values())
    submit_at = next(i for i, el in enumerate(flat) if getattr(el, "label", None) == "Submit")
    assert flat[submit_at - 1].type == "caption"
    assert "expected run time" in flat[submit_at - 1].value
