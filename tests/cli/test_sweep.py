"""`runlab sweep`: the plan said before anything runs, one job per point, `show` of a sweep,
`--wait` until every child ends, and bad input refused at its field with nothing stored."""

from __future__ import annotations

import json
import threading

from compute import registry
from jobstore import queries, sweeps, transitions
from jobstore.engine import make_engine, migrate
from tests.cli.conftest import job_count, run


def test_a_grid_sweep_says_its_size_and_show_lists_its_plan(db: str) -> None:
    code, out, err = run(
        "sweep", "option_pricing", "-p", "sigma=0.1:0.35:0.05", "-p", "T=0.5,1,2,3,5,7,10,20",
        "-p", "paths=2000", "--name", "Vol grid",
    )  # fmt: skip
    assert code == 0, err
    assert "48 jobs: 6 sigma × 8 T" in err
    sweep_id = out.strip().splitlines()[-1]
    code, shown, _ = run("show", sweep_id)
    assert code == 0
    lines = shown.splitlines()
    assert lines[0] == f"Vol grid  (option_pricing sweep, {sweep_id})"
    assert lines[1] == "status    0 of 48 ended: 48 queued"
    assert "  swept   sigma = 0.1:0.35:0.05" in lines
    assert "  swept   T = 0.5,1,2,3,5,7,10,20" in lines
    code, as_json, _ = run("show", sweep_id, "--json")
    summary = json.loads(as_json)
    assert (summary["type"], summary["children"], summary["params"]["paths"]) == ("sweep", 48, 2000)
    assert job_count(db) == 48


def test_drawn_points_repeat_from_their_seed(db: str) -> None:
    args = ("sweep", "option_pricing", "-p", "sigma=0.1:0.5", "-p", "K=log:50:200", "--lhs", "12")
    code, out, err = run(*args, "--seed", "5")
    assert code == 0, err
    assert "12 jobs: 12 Latin-hypercube points of sigma, K" in err
    code, again, _ = run(*args, "--seed", "5")
    engine = make_engine(db)

    def points(sweep_id: str) -> list[tuple[float, float]]:
        kids = sweeps.children(engine, sweep_id)
        return [
            (queries.get_job(engine, k).params["sigma"], queries.get_job(engine, k).params["K"])
            for k in kids
        ]

    first, second = out.strip().splitlines()[-1], again.strip().splitlines()[-1]
    assert first != second and points(first) == points(second)
    assert all(0.1 <= s <= 0.5 and 50 <= k <= 200 for s, k in points(first))
    engine.dispose()


def test_wait_follows_every_child_to_its_end(db: str) -> None:
    engine = make_engine(db)
    migrate(engine)
    registry.load()
    done = threading.Event()

    def runner() -> None:
        stored = 0
        while stored < 4 and not done.wait(0.05):
            for lease in transitions.claim(engine, "test-runner", limit=4):
                transitions.succeed(engine, lease, {"price": 1.0})
                stored += 1

    worker = threading.Thread(target=runner, daemon=True)
    worker.start()
    try:
        code, out, err = run(
            "sweep", "option_pricing", "-p", "sigma=0.1,0.2", "-p", "T=1,2", "--wait", "--json"
        )
    finally:
        done.set()
        worker.join(10)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["ended"], summary["statuses"]) == (4, {"succeeded": 4})
    assert "4 of 4 ended: 4 succeeded" in err
    engine.dispose()


def test_bad_input_is_refused_at_its_field_and_nothing_is_stored(db: str) -> None:
    code, _, err = run("sweep", "option_pricing", "-p", "sigma=0.01:5:0.001", "-p", "T=1,2,3")
    assert code == 2
    assert "sweep: 14,973 jobs: 4,991 sigma × 3 T, more than the 10,000" in err
    code, _, err = run("sweep", "option_pricing", "-p", "sigma=0.1,abc")
    assert code == 2 and "sigma: 'abc' is not a number" in err
    code, _, err = run(
        "sweep", "option_pricing", "-p", "sigma=0.1:0.5", "--random", "5", "--lhs", "5"
    )
    assert code == 2 and "--random or --lhs, not both" in err
    code, _, err = run("sweep", "option_pricing", "-p", "paths=2000")
    assert code == 2 and "name at least one parameter to sweep" in err
    assert job_count(db) == 0


def test_cancel_of_a_sweep_ends_every_waiting_child(db: str) -> None:
    code, out, err = run("--as", "ana", "sweep", "option_pricing", "-p", "sigma=0.1,0.2,0.3")
    assert code == 0, err
    sweep_id = out.strip().splitlines()[-1]
    code, said, _ = run("--as", "ops", "cancel", sweep_id)  # the CLI acts as an operator
    assert code == 0
    assert said.strip() == f"{sweep_id}: 3 waiting job(s) cancelled, 0 running job(s) asked to stop"
    code, shown, _ = run("show", sweep_id)
    assert "status    3 of 3 ended: 3 cancelled" in shown
    engine = make_engine(db)
    child = queries.get_job(engine, sweeps.children(engine, sweep_id)[0])
    assert ("ops", "cancelled while queued") in [(a.actor, a.what) for a in child.actions]
    engine.dispose()
    code, _, err = run("cancel", "no-such-thing")
    assert code == 1 and "no such job: no-such-thing" in err


def test_extend_and_rerun_of_a_sweep(db: str) -> None:
    code, out, err = run("sweep", "option_pricing", "-p", "sigma=0.1,0.2", "-p", "T=1,2")
    assert code == 0, err
    sweep_id = out.strip().splitlines()[-1]
    code, added, err = run("extend", sweep_id, "-p", "sigma=0.1:0.3:0.1")
    assert code == 0, err
    assert "2 new job(s); the sweep has 6 points" in err and len(added.split()) == 2
    engine = make_engine(db)
    registry.load()
    (lease,) = transitions.claim(engine, "r1", limit=1)
    transitions.fail(engine, lease, "ValueError", "a forced failure")
    engine.dispose()
    code, again, err = run("rerun", sweep_id)
    assert code == 0 and "1 point(s) to run again" in err and len(again.split()) == 1
    code, _, err = run("extend", sweep_id, "-p", "sigma=0.1,oops")
    assert code == 2 and "sigma: 'oops' is not a number" in err
    assert job_count(db) == 7
