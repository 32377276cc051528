"""The state machine's one checked path: every move outside ALLOWED is refused, on both backends,
and no module of the store writes a job's `status` any other way."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from compute.intake import submit
from jobstore import states
from jobstore.models import Job, Status, table_of
from runlab.errors import LostJob

jobs = table_of(Job)
STORE = Path(__file__).resolve().parents[2] / "jobstore"
REFUSED = [p for p in itertools.product(Status, Status) if p not in states.ALLOWED]


def test_the_table_leaves_out_self_moves_and_moves_out_of_a_terminal_state() -> None:
    assert len(REFUSED) == len(Status) ** 2 - len(states.ALLOWED)
    assert all((s, s) in REFUSED for s in Status)
    assert all((s, d) in REFUSED for s in Status if s.terminal for d in Status)


@pytest.mark.parametrize(("src", "dst"), REFUSED, ids=[f"{s}->{d}" for s, d in REFUSED])
def test_a_move_outside_allowed_is_refused_before_any_sql(src: Status, dst: Status) -> None:
    with pytest.raises(states.NotAllowed, match=f"no transition from {src} to {dst}"):
        states.move(src, dst, jobs.c.id == 1)


def test_every_refused_move_leaves_the_stored_job_as_it_was(engine: Engine) -> None:
    public_id = submit(engine, "demo_stages", {})
    for src, dst in REFUSED:
        with engine.begin() as conn:  # the job is put in `src` by hand, as no verb would
            conn.execute(update(jobs).where(jobs.c.public_id == public_id).values(status=src))
        with pytest.raises(states.NotAllowed), engine.begin() as conn:
            job_id = conn.execute(select(jobs.c.id).where(jobs.c.public_id == public_id))
            states.transition(conn, job_id.scalar_one(), 0, src, dst)
        with engine.connect() as conn:
            now = conn.execute(select(jobs.c.status).where(jobs.c.public_id == public_id))
            assert now.scalar_one() == src, (src, dst)


def test_an_allowed_move_is_fenced_by_its_source_state(engine: Engine) -> None:
    public_id = submit(engine, "demo_stages", {})
    with engine.begin() as conn:
        job_id = conn.execute(select(jobs.c.id).where(jobs.c.public_id == public_id)).scalar_one()
    with pytest.raises(LostJob), engine.begin() as conn:  # queued, not running
        states.transition(conn, job_id, 0, Status.RUNNING, Status.SUCCEEDED)
    with engine.begin() as conn:
        states.transition(conn, job_id, 0, Status.QUEUED, Status.CANCELLED)
    with engine.connect() as conn:
        status = conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()
    assert status == Status.CANCELLED


def _writes_status(call: ast.Call, table: str = "jobs") -> bool:
    """`….values(status=…)` or `….values({"status": …})` on a chain that starts
    `update(<table>)`."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "values"):
        return False
    keys = {k.arg for k in call.keywords}
    for arg in call.args:
        if isinstance(arg, ast.Dict):
            keys |= {k.value for k in arg.keys if isinstance(k, ast.Constant)}
    if "status" not in keys:
        return False
    node: ast.expr = call.func.value
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        node = node.func.value
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "update"
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id == table
    )


def test_only_the_state_machine_builds_a_statement_that_writes_status() -> None:
    writers = {
        f"{path.name}:{node.lineno}"
        for path in STORE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and _writes_status(node)
    }
    assert writers == {f"states.py:{_line_of_move()}"}


def _line_of_move() -> int:
    tree = ast.parse((STORE / "states.py").read_text())
    move = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "move")
    return next(n.lineno for n in ast.walk(move) if isinstance(n, ast.Call) and _writes_status(n))


def test_only_the_step_machine_builds_a_statement_that_writes_a_step_status() -> None:
    writers = {
        f"{path.name}:{node.lineno}"
        for path in STORE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and _writes_status(node, "steps_t")
    }
    tree = ast.parse((STORE / "states.py").read_text())
    move = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "move_step")
    line = next(
        n.lineno for n in ast.walk(move) if isinstance(n, ast.Call) and _writes_status(n, "steps_t")
    )
    assert writers == {f"states.py:{line}"}
