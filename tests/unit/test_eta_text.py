"""How an estimate reads: times in the viewer's zone, waits in coarse words, ranges once known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobstore.estimates import Estimate, Unknown, Window
from jobstore.models import Status
from ui.eta import lines, until, why

NOW = datetime(2025, 3, 4, 14, 26, 30, tzinfo=UTC)  # a Tuesday


def later(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def test_a_running_job_reads_as_a_time_a_wait_a_range_and_its_sources() -> None:
    e = Estimate(
        NOW,
        Status.RUNNING,
        finish=Window(later(6), later(3), later(14)),
        stage=Window(later(2)),
        stage_name="sample_*x*",
        past_runs=12,
        from_progress=True,
    )

    assert lines(e, UTC, NOW) == [
        "Expected to finish about 14:32, in 6 min (between 14:29 and 14:40), "
        "from its progress and 12 past runs.",
        r"Stage sample\_\*x\*: about 14:28, in 2 min.",
    ]


def test_times_are_in_the_viewers_zone_and_name_the_day_when_not_today() -> None:
    paris = ZoneInfo("Europe/Paris")
    e = Estimate(NOW, Status.RUNNING, finish=Window(later(60 * 19)), past_runs=1)

    assert lines(e, paris, NOW) == [
        "Expected to finish about Wed 5 Mar 10:26, in 19 h 00 min, from 1 past run."
    ]


def test_without_a_spread_there_is_no_range() -> None:
    e = Estimate(NOW, Status.RUNNING, finish=Window(later(30)), from_progress=True)

    assert lines(e, UTC, NOW) == ["Expected to finish about 14:56, in 30 min, from its progress."]


def test_a_queued_job_reads_its_start_its_place_and_the_slots() -> None:
    e = Estimate(
        NOW,
        Status.QUEUED,
        start=Window(later(10), later(8), later(13)),
        finish=Window(later(20)),
        past_runs=5,
        ahead=3,
        slots=2,
    )

    assert lines(e, UTC, NOW) == [
        "Expected to start about 14:36, in 10 min (between 14:34 and 14:39); 3 jobs ahead, "
        "2 job slots on the runners alive.",
        "Expected to finish about 14:46, in 20 min, from 5 past runs.",
    ]


def test_first_in_line_with_a_free_slot_starts_any_moment_now() -> None:
    e = Estimate(NOW, Status.QUEUED, start=Window(NOW), slots=1)

    assert lines(e, UTC, NOW) == [
        "Expected to start any moment now; first in line, 1 job slot on the runners alive."
    ]


def test_unknown_times_say_why() -> None:
    queued = Estimate(NOW, Status.QUEUED, unknown=Unknown.NO_RUNNER)
    stalled = Estimate(NOW, Status.RUNNING, unknown=Unknown.STALLED, stalled_for=12 * 60 + 9)

    assert lines(queued, UTC, NOW) == ["Start time unknown: no runner is alive."]
    assert lines(stalled, UTC, NOW) == ["End time unknown: no progress for 12 min."]
    assert lines(Estimate(NOW, Status.SUCCEEDED), UTC, NOW) == []


@pytest.mark.parametrize(
    ("estimate", "words"),
    [
        (
            Estimate(NOW, Status.RUNNING, unknown=Unknown.RUNNER_SILENT),
            "its runner has gone silent; the job will be handed on",
        ),
        (
            Estimate(NOW, Status.RUNNING, unknown=Unknown.STALLED, stalled_for=1080),
            "no progress for 18 min",
        ),
        (
            Estimate(NOW, Status.RUNNING, unknown=Unknown.OUTRAN_PAST_RUNS, past_runs=10),
            "it has run longer than its 10 past runs of this size",
        ),
        (
            Estimate(NOW, Status.RUNNING, unknown=Unknown.NOTHING_TO_GO_BY),
            "no progress yet, and no past runs of this kind and size",
        ),
        (Estimate(NOW, Status.QUEUED, unknown=Unknown.NO_RUNNER), "no runner is alive"),
        (
            Estimate(NOW, Status.QUEUED, unknown=Unknown.AHEAD_NEVER_RAN),
            "jobs ahead of it are of a kind with no past runs",
        ),
        (
            Estimate(NOW, Status.QUEUED, unknown=Unknown.WAITS_ON_UNKNOWN),
            "it waits on a job whose end cannot be estimated",
        ),
        (Estimate(NOW, Status.RUNNING), "not enough to go by"),
    ],
)
def test_the_store_gives_the_reason_and_the_page_words_it(estimate: Estimate, words: str) -> None:
    assert why(estimate) == words


def test_waits_are_coarse() -> None:
    assert until(40) == "in under a minute"
    assert until(6 * 60 + 20) == "in 6 min"
    assert until(125 * 60) == "in 2 h 05 min"
    assert until(76 * 3600) == "in 3 d 4 h"
