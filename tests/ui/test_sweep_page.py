"""A sweep on the pages: typed on /new, where its size is said before submit and a plan too
big is refused at its field, then read on /sweep (progress, table, best point, charts, CSV), and
told of once when its last job ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from compute import intake
from jobstore import sweeps
from jobstore import transitions as T
from jobstore.models import Status
from tests.ui.conftest import markdown_texts, open_page
from tests.ui.seed import RUNNER
from ui import sweep_view

KEY = "new.option_pricing.__sweep"


def shown(at) -> list[str]:
    """The page's Markdown as it reads, without the escapes that keep it plain text."""
    return [t.replace("\\", "") for t in markdown_texts(at)]


def swept_form(sigma: str, maturity: str):
    at = open_page("pages/new.py", kind="option_pricing")
    at.multiselect(key=KEY).set_value(["sigma", "T"]).run()
    at.text_input(key=f"{KEY}.sigma").set_value(sigma)
    at.text_input(key=f"{KEY}.T").set_value(maturity).run()
    return at


def test_the_form_says_the_sweeps_size_and_submits_it_as_one_sweep(store: Engine) -> None:
    at = swept_form("0.1:0.6:0.1", "0.25,0.5,1,2,3,4,5,6")
    assert [i.value.replace("\\", "") for i in at.info] == ["48 jobs: 6 sigma × 8 T"]
    labels = [b.label for b in at.button]
    assert "Submit 48 jobs" in labels
    # The swept fields are typed above the form, not in it.
    assert not any(t.key == "new.option_pricing.sigma" for t in at.text_input)
    at.text_input(key="new.option_pricing.paths").set_value("1000")
    next(b for b in at.button if b.label == "Submit 48 jobs").click()
    at.run()
    assert not at.exception
    [sweep_id] = [s for s in _sweep_ids(store)]
    stored = sweeps.get(store, sweep_id)
    assert stored.children == 48
    assert list(stored.axes.items()) == [("sigma", "0.1:0.6:0.1"), ("T", "0.25,0.5,1,2,3,4,5,6")]
    assert {p.params["paths"] for p in sweeps.points(store, sweep_id)} == {1000}


def test_a_sweep_of_a_hundred_million_jobs_is_refused_at_its_field(store: Engine) -> None:
    at = swept_form("log:0.01:1:10000", "log:0.1:10:10000")
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("100,000,000 jobs" in e and "10,000" in e for e in errors), errors
    assert not at.info
    next(b for b in at.button if b.label == "Submit").click()
    at.run()
    assert "Fix the sweep's values above first." in [e.value for e in at.error]
    assert _sweep_ids(store) == []


def test_a_bad_value_is_named_under_its_swept_field(store: Engine) -> None:
    at = swept_form("0.1,abc", "1")
    assert any("'abc' is not a number" in e.value.replace("\\", "") for e in at.error)
    assert _sweep_ids(store) == []


def _sweep_ids(store: Engine) -> list[str]:
    from sqlalchemy import select

    from jobstore.models import Sweep, table_of

    t = table_of(Sweep)
    with store.connect() as conn:
        return list(conn.execute(select(t.c.public_id)).scalars())


def _finish(store: Engine, prices: dict[float, float]) -> None:
    """Claim every queued job and end it: a price per σ, and σ = 0.3 failed."""
    leases = T.claim(store, RUNNER, limit=100, versions={"runlab": "0.1.0"})
    for lease in leases:
        sigma = lease.params["sigma"]
        if sigma == 0.3:
            T.fail(store, lease, "ValueError", "boom", "Traceback")
        else:
            T.succeed(store, lease, {"price": prices[sigma], "standard_error": 0.01}, None)


def test_the_sweep_page_shows_progress_the_table_the_best_point_and_charts(
    store: Engine,
) -> None:
    sweep_id = intake.submit_sweep(
        store,
        "option_pricing",
        {"paths": 1000},
        {"sigma": "0.1,0.2,0.3", "T": "1,2"},
        name="Vol grid",
    )
    at = open_page("pages/sweep.py", id=sweep_id)
    texts = shown(at)
    assert "Vol grid" in texts
    assert "0 of 6 jobs ended · 0 %" in texts
    assert any("6 jobs: 3 sigma × 2 T" in t for t in texts), texts
    assert "The result fields appear as the jobs succeed." in texts

    _finish(store, {0.1: 4.0, 0.2: 2.5})
    at = open_page("pages/sweep.py", id=sweep_id)
    texts = shown(at)
    assert "6 of 6 jobs ended · 100 %" in texts
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Succeeded": "4", "Running": "0", "Queued": "0", "Failed or cancelled": "2"}
    [df] = [d.value for d in at.dataframe]
    assert len(df) == 6 and list(df["param.sigma"]) == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
    assert df["result.price"].isna().sum() == 2
    best = next(t for t in texts if t.startswith("**Price"))
    assert "2.5" in best and "sigma=0.2" in best
    assert len(at.get("plotly_chart")) == 2  # the heatmap and the parallel coordinates

    at.segmented_control(key="best").set_value("highest").run()
    best = next(t for t in shown(at) if t.startswith("**Price"))
    assert "4" in best and "sigma=0.1" in best

    # Re-run failed: only the two points of σ = 0.3 get a new job.
    next(b for b in at.button if b.label == "Re-run failed").click()
    at.run()
    assert "Re-running 2 failed or cancelled jobs." in shown(at)
    points = sweeps.points(store, sweep_id)
    assert [p.status for p in points if p.params["sigma"] == 0.3] == [Status.QUEUED] * 2
    assert len(sweeps.children(store, sweep_id)) == 8


def test_an_unknown_sweep_says_so(store: Engine) -> None:
    at = open_page("pages/sweep.py", id="nope")
    assert "No such sweep" in shown(at)


def test_the_csv_holds_every_point_with_its_parameters_and_results(store: Engine) -> None:
    sweep_id = intake.submit_sweep(
        store, "option_pricing", {"paths": 1000}, {"sigma": "0.1,0.2,0.3"}, name="=cmd"
    )
    _finish(store, {0.1: 4.0, 0.2: 2.5})
    lines = sweep_view.points_csv(sweeps.points(store, sweep_id)).splitlines()
    header = lines[0].split(",")
    assert header[:6] == sweep_view.CSV_COLUMNS
    assert "param.sigma" in header and "result.price" in header
    assert len(lines) == 4
    assert lines[1].split(",")[2].startswith("'=cmd")  # not run as a formula


def test_a_sweep_that_ends_is_told_of_once_not_once_per_job(store: Engine) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    sweep_id = intake.submit_sweep(
        store, "option_pricing", {"paths": 1000}, {"sigma": "0.1,0.2"}, owner="ann"
    )
    assert sweeps.ended_since(store, "ann", since) == []
    leases = T.claim(store, RUNNER, limit=1, versions={"runlab": "0.1.0"})
    T.succeed(store, leases[0], {"price": 1.0, "standard_error": 0.1}, None)
    assert sweeps.ended_since(store, "ann", since) == []  # one point is still queued
    [lease] = T.claim(store, RUNNER, limit=1, versions={"runlab": "0.1.0"})
    T.fail(store, lease, "ValueError", "boom", "Traceback")
    [ended] = sweeps.ended_since(store, "ann", since)
    assert ended.public_id == sweep_id and ended.statuses == {"succeeded": 1, "failed": 1}
    assert sweeps.ended_since(store, "bob", since) == []
    from jobstore import queries

    _now, jobs = queries.finished_since(store, "ann", since)
    assert jobs == []  # its jobs are not told of one by one


def test_the_history_shows_a_sweep_as_one_row_that_opens_it(store: Engine) -> None:
    from tests.ui.test_jobs_page import table

    alone = intake.submit(store, "option_pricing", {"paths": 1000}, name="alone")
    sweep_id = intake.submit_sweep(
        store, "option_pricing", {"paths": 1000}, {"sigma": "0.1,0.2,0.3"}, name="Vol grid"
    )
    _finish(store, {0.1: 4.0, 0.2: 2.5})  # σ = 0.3 fails; `alone`, at σ = 0.2, succeeds
    df = table(open_page("pages/jobs.py"), "history")
    assert len(df) == 2
    row = df[df["id"] == sweep_id].iloc[0]
    assert row["job"] == f"sweep?id={sweep_id}#Vol%20grid%20%C2%B7%20sweep%20of%203"
    assert row["status"] == "3/3 ended"
    assert alone in set(df["id"])
    # Asked of each job's outcome, the history lists the jobs themselves.
    df = table(open_page("pages/jobs.py", status="succeeded"), "history")
    assert len(df) == 3 and sweep_id not in set(df["id"]) and alone in set(df["id"])


def test_a_plan_that_cannot_be_made_again_still_opens_its_page(store: Engine) -> None:
    """A kind whose parameters changed since: the page says the number of jobs instead."""
    from sqlalchemy import update

    from jobstore.models import Sweep, table_of

    sweep_id = intake.submit_sweep(
        store, "option_pricing", {"paths": 1000}, {"sigma": "0.1,0.2"}, name="Old grid"
    )
    t = table_of(Sweep)
    with store.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.public_id == sweep_id)
            .values(plan={"axes": [["volatility", "0.1,0.2"]], "method": None, "count": 0})
        )
    at = open_page("pages/sweep.py", id=sweep_id)
    assert any(t.startswith("Sweep of Option pricing · 2 jobs ·") for t in shown(at))


def test_random_points_from_the_form_keep_their_seed(store: Engine) -> None:
    at = open_page("pages/new.py", kind="option_pricing")
    at.multiselect(key=KEY).set_value(["sigma"]).run()
    at.segmented_control(key=f"{KEY}_method").set_value("random").run()
    at.text_input(key=f"{KEY}.sigma").set_value("0.1:0.5")
    at.number_input(key=f"{KEY}_count").set_value(12)
    at.text_input(key=f"{KEY}_seed").set_value("7").run()
    assert [i.value.replace("\\", "") for i in at.info] == ["12 jobs: 12 random points of sigma"]
    at.text_input(key="new.option_pricing.paths").set_value("1000")
    next(b for b in at.button if b.label == "Submit 12 jobs").click()
    at.run()
    [sweep_id] = _sweep_ids(store)
    stored = sweeps.get(store, sweep_id)
    assert (stored.plan["method"], stored.plan["count"], stored.plan["seed"]) == ("random", 12, 7)
    sigmas = [p.params["sigma"] for p in sweeps.points(store, sweep_id)]
    assert len(sigmas) == 12 and all(0.1 <= s <= 0.5 for s in sigmas)
    # The same seed draws the same points.
    again = intake.check_sweep(
        "option_pricing", {"paths": 1000}, {"sigma": "0.1:0.5"}, method="random", count=12, seed=7
    )
    assert [c.params["sigma"] for c in again.children] == sigmas


def test_the_expected_end_shares_the_points_left_among_the_jobs_running() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def point(i: int, status: Status, seconds: float | None = None) -> sweeps.Point:
        ended = None if seconds is None else start + timedelta(seconds=seconds)
        began = start if status is not Status.QUEUED else None
        return sweeps.Point(i, f"j{i}", f"p{i}", status, False, {}, None, began, ended, None)

    done = [point(0, Status.SUCCEEDED, 10.0), point(1, Status.FAILED, 20.0)]
    running = [point(2, Status.RUNNING), point(3, Status.RUNNING)]
    queued = [point(i, Status.QUEUED) for i in range(4, 10)]
    p = sweep_view.progress_of(done + running + queued)
    assert (p.total, p.ended) == (10, 2)
    # 8 points left, 15 s each on average, two at a time.
    assert p.remaining_seconds == 8 * 15.0 / 2
    assert sweep_view.progress_of(running + queued).remaining_seconds is None
