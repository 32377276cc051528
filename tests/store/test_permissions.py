"""Who may do what, as the store's verbs enforce it on both backends: a job's owner or an admin
may cancel, stop, tag or delete it; anyone may re-run it as a job of their own; every request's
event names who asked."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from compute import intake, registry
from jobstore import labels, presets, queries, retention, transitions
from jobstore.models import Status
from runlab.errors import Forbidden, InvalidParams
from runlab.identity import Actor, signed_in

ALICE = Actor("alice@example.com")
BOB = Actor("bob@example.com")
ADMIN = Actor("root@example.com", admin=True)
PI = {"samples": 1000, "chunks": 2, "seed": 7}


@pytest.fixture(autouse=True)
def _kinds() -> None:
    registry.load()


def _events(engine: Engine, public_id: str) -> list[tuple[str, str]]:
    """Who asked what of the job, as its page lists it."""
    return [(a.actor, a.what) for a in queries.get_job(engine, public_id).actions]


def test_only_the_owner_or_an_admin_cancels(engine: Engine) -> None:
    job = intake.submit(engine, "monte_carlo_pi", PI, owner=ALICE.name)
    with pytest.raises(Forbidden, match=r"only the owner of job .* \(alice@example.com\)"):
        transitions.request_cancel(engine, job, actor=BOB)
    assert queries.get_job(engine, job).status is Status.QUEUED
    assert _events(engine, job) == [(ALICE.name, "submitted")]

    assert (
        transitions.request_cancel(engine, job, actor=ADMIN) is transitions.CancelOutcome.CANCELLED
    )
    assert _events(engine, job)[-1] == (ADMIN.name, "cancelled while queued")


def test_a_running_job_is_asked_to_stop_only_by_its_owner(engine: Engine) -> None:
    job = intake.submit(engine, "monte_carlo_pi", PI, owner=ALICE.name)
    [lease] = transitions.claim(engine, "runner-a")
    with pytest.raises(Forbidden):
        transitions.request_cancel(engine, job, actor=BOB)
    with pytest.raises(Forbidden):
        transitions.request_stop(engine, job, ["monte_carlo_pi"], actor=BOB)
    detail = queries.get_job(engine, job)
    assert not detail.cancel_requested and not detail.stop_requested
    outcome = transitions.request_cancel(engine, job, actor=ALICE)
    assert outcome is transitions.CancelOutcome.REQUESTED
    assert (ALICE.name, "cancel requested") in _events(engine, job)
    assert lease.public_id == job


def test_bulk_tags_and_deletes_skip_other_peoples_jobs(engine: Engine) -> None:
    mine = intake.submit(engine, "monte_carlo_pi", PI, owner=BOB.name)
    hers = intake.submit(engine, "monte_carlo_pi", PI, owner=ALICE.name)
    assert labels.add_tag(engine, [mine, hers], "q3", actor=BOB) == 1
    assert queries.get_job(engine, hers).tags == []
    assert queries.get_job(engine, mine).tags == ["q3"]
    assert _events(engine, mine)[-1] == (BOB.name, "tagged q3")
    for job in (mine, hers):
        transitions.request_cancel(engine, job, actor=ADMIN)
    report, kept = retention.delete_jobs(engine, None, [mine, hers], actor=BOB)
    assert report.jobs == 1 and kept == [hers]
    assert queries.owners(engine, [mine, hers]) == {hers: ALICE.name}


def test_anyone_reruns_as_a_job_of_their_own(engine: Engine) -> None:
    job = intake.submit(engine, "monte_carlo_pi", PI, owner=ALICE.name, queue="default")
    again = intake.rerun(engine, job, owner=BOB.name)
    new = queries.get_job(engine, again)
    assert new.owner == BOB.name and new.params == queries.get_job(engine, job).params
    assert _events(engine, again) == [(BOB.name, f"submitted as a re-run of {job}")]


def test_a_preset_is_changed_only_by_who_saved_it(engine: Engine) -> None:
    presets.save(engine, "monte_carlo_pi", "big", {"samples": 10**9}, actor=ALICE)
    with pytest.raises(InvalidParams) as refused:
        presets.save(engine, "monte_carlo_pi", "big", {"samples": 1}, actor=BOB)
    assert "alice@example.com's preset" in refused.value.errors["preset"]
    assert not presets.remove(engine, "monte_carlo_pi", "big", actor=BOB)
    assert presets.load(engine, "monte_carlo_pi", "big") == {"samples": 10**9}
    presets.save(engine, "monte_carlo_pi", "big", {"samples": 5}, actor=ALICE)
    assert presets.remove(engine, "monte_carlo_pi", "big", actor=ADMIN)


def test_a_signed_in_identity_is_its_email_or_sub_and_admin_by_name_or_group() -> None:
    assert signed_in({"email": "A@x.org", "sub": "1"}, admins=["a@x.org"]) == Actor(
        "A@x.org", admin=True
    )
    assert signed_in({"sub": "svc-7"}) == Actor("svc-7")
    assert signed_in({"email": "b@x.org", "groups": ["ops", "lab"]}, admin_groups=["lab"]).admin
    assert not signed_in({"email": "b@x.org", "groups": "ops"}, admin_groups=["lab"]).admin
    assert not signed_in({"email": "b@x.org", "roles": ["lab"]}, admin_groups=["lab"]).admin
    assert signed_in(
        {"email": "b@x.org", "roles": ["lab"]}, admin_groups=["lab"], groups_claim="roles"
    ).admin
