"""The job's cost as `ui.cost` draws it, in a small script as the job page will call it, and the
byte sizes it is written in."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from jobstore.queries import get_job
from jobstore.views import Cost
from tests.ui import seed
from tests.ui.conftest import TIMEOUT, markdown_texts
from ui import format as fmt
from ui.cost import notes, stage_rows

MIB = 2**20


def _script() -> None:
    import streamlit as st

    from jobstore.queries import get_job
    from ui import cost, resources

    engine = resources.engine(resources.settings())
    cost.cost(get_job(engine, st.query_params["id"]))


def run(public_id: str) -> AppTest:
    at = AppTest.from_function(_script, default_timeout=TIMEOUT)
    at.query_params["id"] = public_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def with_cost(engine: Engine, *, outside: int = 0) -> str:
    """A running π job whose `plan` ran one task and whose `sample` ran four so far."""
    return seed.with_cost(
        engine,
        Cost(0.25, 0.5, 1, 90 * MIB, {"worker-1": 1}),
        Cost(3.0, 4.0, 4, 302 * MIB, {"worker-1": 1, "worker-2": 3}),
        outside=outside,
    )


def test_the_cost_shows_four_numbers_and_a_row_per_stage(store: Engine) -> None:
    job = with_cost(store)

    at = run(job)

    assert {m.label: m.value for m in at.metric} == {
        "CPU time": "3.2 s",
        "Task time": "4.5 s",
        "Tasks": "5",
        "Peak memory": "302.0 MiB",
    }
    table = at.dataframe[0].value
    assert list(table["Stage"]) == ["plan", "sample", "reduce"]
    assert list(table["Tasks"]) == ["1", "4", "0"]
    assert list(table["CPU time"]) == ["250 ms", "3.0 s", fmt.DASH]
    assert list(table["Peak memory"]) == ["90.0 MiB", "302.0 MiB", fmt.DASH]
    captions = [str(c.value) for c in at.caption]
    assert captions[0].startswith("The tasks used the CPU 72 % of their time")
    assert "Ran on the Dask worker hosts worker-2 (3 tasks), worker-1 (2 tasks)." in captions
    assert "So far: these grow as the tasks finish." in captions


def test_a_job_with_nothing_measured_says_so_instead_of_showing_zeros(store: Engine) -> None:
    queued = seed.queued(store)
    at = run(queued)
    assert not at.metric and not at.dataframe
    assert [str(c.value) for c in at.caption] == [
        "Nothing measured yet: the cost appears as the job's first tasks finish."
    ]


def test_the_notes_count_tasks_outside_stages_and_name_the_attempt(store: Engine) -> None:
    job = get_job(store, with_cost(store, outside=2))
    lines = notes(job)
    assert "2 of the tasks ran outside any stage." in lines
    assert not any(line.startswith("Attempt") for line in lines)  # the first attempt
    retried = notes(dataclasses.replace(job, attempt=3))
    assert "Attempt 3 alone: earlier attempts are not counted." in retried


def test_stage_names_are_shown_as_table_text_never_as_markdown(store: Engine) -> None:
    job = get_job(store, with_cost(store))
    assert job.cost is not None
    assert [r["Stage"] for r in stage_rows(job.cost)] == ["plan", "sample", "reduce"]
    at = run(job.id)
    assert not any("sample" in text for text in markdown_texts(at))


def test_byte_sizes_read_in_binary_units() -> None:
    assert fmt.size(None) == fmt.DASH
    assert fmt.size(0) == "0 B"
    assert fmt.size(1023) == "1023 B"
    assert fmt.size(1536) == "1.5 KiB"
    assert fmt.size(302 * MIB) == "302.0 MiB"
    assert fmt.size(3 * 2**30) == "3.0 GiB"
    assert fmt.size(5 * 2**40) == "5.0 TiB"
