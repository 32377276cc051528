"""/new: a form built from each kind's model; bad values are shown at their field, unstored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from compute import intake, registry
from jobstore import queries
from tests.ui.conftest import open_page
from ui.text import md_escape

PI = "new.monte_carlo_pi"


def leaves(node: Any) -> Iterator[Any]:
    """The page's elements in the order the browser shows them."""
    children = getattr(node, "children", None)
    if children is None:
        yield node
        return
    for key in sorted(children):
        yield from leaves(children[key])


def after(at: AppTest, key: str) -> Any:
    """The element drawn right below the widget with `key`: where its message goes."""
    flat = list(leaves(at.main))
    index = next(i for i, el in enumerate(flat) if getattr(el, "key", None) == key)
    return flat[index + 1]


def submit(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "Submit").click()
    return at.run()


def test_chunks_above_samples_is_shown_under_chunks_and_nothing_is_stored(store: Engine) -> None:
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    at.text_input(key=f"{PI}.samples").input("10")
    at.text_input(key=f"{PI}.chunks").input("20")
    submit(at)

    below = after(at, f"{PI}.chunks")
    assert (below.type, below.value) == ("error", md_escape("must not exceed samples (10)"))
    assert len(at.error) == 1
    assert queries.list_jobs(store).total == 0
    # The form keeps what was typed, so it can be corrected.
    assert at.text_input(key=f"{PI}.chunks").value == "20"


def test_errors_without_a_field_go_above_the_form_and_field_errors_below_their_field(
    store: Engine,
) -> None:
    def script() -> None:
        from compute import registry
        from ui import forms, resources

        form = forms.job_form(registry.get("monte_carlo_pi"), resources.artifacts())
        if form is not None:
            form.show_errors({"budget": "too much work", "seed": "must be at least 0"})

    at = AppTest.from_function(script, default_timeout=15).run()
    next(b for b in at.button if b.label == "Submit").click()
    at.run()

    flat = list(leaves(at.main))
    first_widget = next(i for i, el in enumerate(flat) if getattr(el, "key", None))
    assert [el.value for el in flat[:first_widget] if el.type == "error"] == [
        "Budget: too much work"
    ]
    below = after(at, f"{PI}.seed")
    assert (below.type, below.value) == ("error", md_escape("must be at least 0"))
    assert len(at.error) == 2


def test_form_carries_the_model_bounds_defaults_and_rules(store: Engine) -> None:
    at = open_page("pages/new.py", kind="demo_stages")

    stages = at.text_input(key="new.demo_stages.stages")
    assert stages.value == "3"
    assert "must be an integer between 1 and 20" in stages.help
    assert "How many stages" in stages.help
    seconds = at.text_input(key="new.demo_stages.seconds_per_stage")
    assert seconds.value == "2"
    assert "must be a number between 0 and 600" in seconds.help


def test_out_of_bounds_value_cannot_reach_the_store(store: Engine) -> None:
    at = open_page("pages/new.py", kind="demo_stages")
    at.text_input(key="new.demo_stages.stages").input("50")
    submit(at)

    below = after(at, "new.demo_stages.stages")
    assert (below.type, below.value) == ("error", "must be an integer between 1 and 20")
    assert queries.list_jobs(store).total == 0


def test_numbers_typed_as_analysts_type_them_are_read_exactly(store: Engine) -> None:
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    at.text_input(key=f"{PI}.samples").input("2.5e6")
    at.text_input(key=f"{PI}.chunks").input("1,000")
    at.text_input(key=f"{PI}.seed").input("1_234")
    submit(at)

    [row] = queries.list_jobs(store).rows
    assert queries.get_job(store, row.id).params == {
        "samples": 2_500_000,
        "chunks": 1000,
        "seed": 1234,
    }


def test_a_fraction_or_a_negative_count_is_refused_under_its_field_and_nothing_is_stored(
    store: Engine,
) -> None:
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    at.text_input(key=f"{PI}.samples").input("-5")
    at.text_input(key=f"{PI}.chunks").input("2.5")
    submit(at)

    rule = "must be an integer between 1 and 100,000,000,000"
    assert (after(at, f"{PI}.samples").type, after(at, f"{PI}.samples").value) == ("error", rule)
    below = after(at, f"{PI}.chunks")
    assert (below.type, below.value) == ("error", "must be an integer between 1 and 100,000")
    assert queries.list_jobs(store).total == 0
    # What was typed stays, to be corrected.
    assert at.text_input(key=f"{PI}.chunks").value == "2.5"


def test_a_number_typed_with_an_exponent_is_shown_back_in_full(store: Engine) -> None:
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    at.text_input(key=f"{PI}.samples").input("1e9")
    at.text_input(key=f"{PI}.chunks").input("0")  # refused, so the form stays
    submit(at)

    shown_back = [c.value for c in at.caption if c.value.startswith(md_escape("= "))]
    assert shown_back == [md_escape("= 1,000,000,000")]
    assert queries.list_jobs(store).total == 0


def test_optional_fields_start_empty_and_mean_automatic(store: Engine) -> None:
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    assert at.text_input(key=f"{PI}.chunks").value == ""
    assert at.text_input(key=f"{PI}.seed").value == ""
    assert "Leave empty for automatic" in at.text_input(key=f"{PI}.seed").help

    at.text_input(key=f"{PI}.samples").input("1000")
    submit(at)

    [row] = queries.list_jobs(store).rows
    params = queries.get_job(store, row.id).params
    assert params["samples"] == 1000
    assert params["chunks"] >= 1
    assert isinstance(params["seed"], int)


def test_good_submit_stores_one_job_and_opens_its_page(store: Engine) -> None:
    at = open_page("pages/new.py", kind="monte_carlo_pi")
    at.text_input(key=f"{PI}.__name").input("first run")
    at.text_input(key=f"{PI}.__tags").input("paper, draft")
    at.text_input(key=f"{PI}.samples").input("5000")
    at.text_input(key=f"{PI}.chunks").input("5")
    at.text_input(key=f"{PI}.seed").input("42")
    submit(at)

    page = queries.list_jobs(store)
    assert page.total == 1
    job = queries.get_job(store, page.rows[0].id)
    assert (job.kind, job.name, job.tags) == ("monte_carlo_pi", "first run", ["paper", "draft"])
    assert job.params == {"samples": 5000, "chunks": 5, "seed": 42}
    assert at.query_params["id"] in (job.id, [job.id])
    assert [t.value for t in at.title] == ["first run"]


def test_kind_in_the_url_opens_its_form(store: Engine) -> None:
    at = open_page("pages/new.py", kind="demo_stages")
    assert at.selectbox(key="new.kind").value == "demo_stages"
    assert {n.key for n in at.text_input} >= {
        "new.demo_stages.stages",
        "new.demo_stages.seconds_per_stage",
    }
    assert not [n.key for n in at.text_input if n.key.startswith(PI)]

    at.selectbox(key="new.kind").select("monte_carlo_pi").run()
    assert f"{PI}.samples" in {n.key for n in at.text_input}
    assert at.query_params["kind"] in ("monte_carlo_pi", ["monte_carlo_pi"])


def test_only_listed_kinds_are_offered_and_a_collect_job_has_no_form_to_clone_into(
    store: Engine,
) -> None:
    collect = registry.get("collect")
    assert collect.example is not None
    source = intake.submit(store, "collect", collect.example())

    at = open_page("pages/new.py", kind="collect", clone=source)
    offered = at.selectbox(key="new.kind").options
    assert collect.title not in offered
    assert sorted(offered) == sorted(k.title for k in registry.all_kinds() if k.listed)
    assert at.selectbox(key="new.kind").value == "monte_carlo_pi"
    [error] = at.error
    assert "no form to clone into" in error.value and md_escape(source) in error.value


OPT = "new.option_pricing"


def test_fields_that_do_not_apply_are_hidden_until_the_option_type_needs_them(
    store: Engine,
) -> None:
    at = open_page("pages/new.py", kind="option_pricing")
    keys = {getattr(w, "key", None) for w in at.text_input}
    assert f"{OPT}.barrier" not in keys and f"{OPT}.steps" not in keys

    at.selectbox(key=f"{OPT}.option_type").set_value("barrier_up_out_call").run()
    keys = {getattr(w, "key", None) for w in at.text_input}
    assert {f"{OPT}.barrier", f"{OPT}.steps"} <= keys
    submit(at)  # no barrier given
    below = after(at, f"{OPT}.barrier")
    assert (below.type, below.value) == ("error", md_escape("is required for the barrier option"))
    assert queries.list_jobs(store).total == 0

    at.text_input(key=f"{OPT}.barrier").input("130.0")
    submit(at)
    (job,) = queries.list_jobs(store).rows
    detail = queries.get_job(store, job.id)
    assert detail.params["barrier"] == 130.0 and detail.params["steps"] == 252
