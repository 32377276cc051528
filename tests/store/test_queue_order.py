"""The order a queue's jobs are claimed in, on both backends: aging raises a waiting job one
step per `aging_seconds` up to the top of its queue and no further, turns take owners in
rounds, and a limit caps a queue's running jobs whoever claims."""

from __future__ import annotations

from sqlalchemy import Engine, select, update

from compute import intake, registry
from jobstore import queues, transitions
from jobstore.engine import db_later
from jobstore.models import Job

PI = {"samples": 1000, "chunks": 2, "seed": 7}
STEP = 60.0


def _submit(engine: Engine, **options: object) -> str:
    registry.load()
    return intake.submit(engine, "monte_carlo_pi", PI, **options)  # type: ignore[arg-type]


def _waited(engine: Engine, public_id: str, steps: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Job).where(Job.public_id == public_id).values(run_after=db_later(-steps * STEP))
        )


def _eff(engine: Engine, public_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(Job.effective_priority).where(Job.public_id == public_id)
            ).scalar_one()
        )


def test_aging_raises_by_whole_steps_up_to_the_top_and_back_down(engine: Engine) -> None:
    low = _submit(engine, priority=0, owner="dan")
    high = _submit(engine, priority=10, owner="carol")
    assert queues.age(engine, STEP) == 0  # nobody has waited a step yet
    _waited(engine, low, 3.5)
    assert queues.age(engine, STEP) == 1
    assert (_eff(engine, low), _eff(engine, high)) == (3, 10)
    assert queues.age(engine, STEP) == 0  # nothing more is due: a read, no write
    _waited(engine, low, 25)
    queues.age(engine, STEP)
    assert _eff(engine, low) == 10  # the top of its queue, not 25
    [claimed] = transitions.claim(engine, "r")
    assert claimed.public_id == low  # at the top, older than the priority-10 job
    _waited(engine, high, 0)
    other = _submit(engine, priority=0, owner="erin")
    _waited(engine, other, 30)
    transitions.claim(engine, "r")  # the priority-10 job: the queue's top is 0 now
    queues.age(engine, STEP)
    assert _eff(engine, other) == 0


def test_turns_take_owners_in_rounds(engine: Engine) -> None:
    alice = [_submit(engine, owner="alice") for _ in range(4)]
    bob = [_submit(engine, owner="bob") for _ in range(2)]
    carol = _submit(engine, owner="carol")
    with engine.connect() as conn:
        turns = dict(conn.execute(select(Job.public_id, Job.turn)).all())
    assert [turns[p] for p in alice] == [0, 1, 2, 3]
    assert [turns[p] for p in bob] == [0, 1]
    assert turns[carol] == 0
    claimed = [lease.public_id for lease in transitions.claim(engine, "r", limit=3)]
    assert sorted(claimed) == sorted([alice[0], bob[0], carol])  # round 0 first


def test_a_limit_caps_a_queue_whoever_claims(engine: Engine) -> None:
    for _ in range(3):
        _submit(engine, queue="img")
    other = _submit(engine)
    full: set[str] = set()
    first = transitions.claim(engine, "r1", limit=5, limits={"img": 2}, full=full)
    assert full == {"img"}  # its jobs' ends will free a slot someone may wait for
    second = transitions.claim(engine, "r2", limit=5, limits={"img": 2})
    assert sorted(le.queue for le in first) == ["default", "img", "img"]
    assert second == []
    assert other in {le.public_id for le in first}
    assert transitions.claim(engine, "r3", limit=5, serve=["default"]) == []


def test_the_upgrade_puts_every_job_in_its_place(engine: Engine) -> None:
    from alembic import command

    from jobstore.engine import _config, migrate

    first = _submit(engine, priority=5, owner="ann")
    second = _submit(engine, owner="bob")
    cfg, _heads = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")  # as the store stood before queues had turns

    migrate(engine)

    with engine.connect() as conn:
        rows = {
            r.public_id: r
            for r in conn.execute(
                select(Job.public_id, Job.queue, Job.effective_priority, Job.turn)
            )
        }
    assert (rows[first].queue, rows[first].effective_priority, rows[first].turn) == (
        "default",
        5,
        0,
    )
    assert (rows[second].effective_priority, rows[second].turn) == (0, 0)
    assert [le.public_id for le in transitions.claim(engine, "r", limit=2)] == [first, second]
