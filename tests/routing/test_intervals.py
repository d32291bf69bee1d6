"""Queue figures per 15-minute interval: the same fold as the live figures,
one per interval, so the intervals add up to the day and each interval is
what the report of its own time range says."""

from __future__ import annotations

import pytest

from routing.intervals import IntervalStats, interval_json
from routing.model import QueueConfig, TaskAssigned, TaskRequeued
from routing.stats import QueueStats
from tests.routing.helpers import T0, Desk, one
from tests.routing.test_stats import day

QUARTER = 900


def test_each_interval_is_the_report_of_its_own_time_range() -> None:
    d, live = day()
    intervals = IntervalStats.fold(d.log)
    since = T0 - T0 % QUARTER
    series = intervals.series("billing", since, d.now + QUARTER)
    # T0 is 100 s before a quarter: the small day spans two intervals.
    assert [start for start, _ in series] == [since, since + QUARTER, since + 2 * QUARTER][
        : len(series)
    ]
    assert len(series) >= 2
    for start, figures in series:
        report = QueueStats.fold(e for e in d.log if start <= e.at < start + QUARTER)
        expected = report.figures("billing", start + QUARTER)
        assert (figures.offered, figures.answered, figures.abandoned) == (
            expected.offered,
            expected.answered,
            expected.abandoned,
        )
        assert figures.service_level == expected.service_level
        assert figures.average_speed_of_answer == expected.average_speed_of_answer
        assert figures.average_handle_time == expected.average_handle_time
    # ... and they add up to the day's live figures.
    total = live.figures("billing", d.now)
    assert sum(f.offered for _, f in series) == total.offered == 5
    assert sum(f.answered for _, f in series) == total.answered == 2
    assert sum(f.abandoned for _, f in series) == total.abandoned == 2
    assert sum(f.answered_within_threshold for _, f in series) == 1


def test_calls_count_in_the_interval_they_entered_and_were_answered_in() -> None:
    d = Desk(QueueConfig("q", '"q" in agent.skills', service_level_seconds=20))
    d.agent("ann", skills={"q": 5}, available=False)
    d.submit("a", "q")  # T0: 100 s before the next quarter
    d.clock.advance(150)
    d.do("set_agent_state", "ann", "available")  # answered in the next quarter, late
    d.do("accept", "r-1")
    stats = IntervalStats.fold(d.log)
    first = T0 - T0 % QUARTER
    before, after = stats.series("q", first, first + 2 * QUARTER)
    assert (before[1].offered, before[1].answered) == (1, 0)
    assert (after[1].offered, after[1].answered, after[1].service_level) == (0, 1, 0.0)
    assert after[1].average_speed_of_answer == 150.0


def test_a_requeue_undoes_the_answer_in_its_own_interval() -> None:
    d = Desk(QueueConfig("q", '"q" in agent.skills'))
    d.agent("ann", skills={"q": 5})
    d.submit("a", "q")
    d.do("accept", "r-1")
    answered = one(d.log, TaskAssigned)
    d.clock.advance(QUARTER)  # the caller never reached Ann; noticed a quarter later
    d.do("requeue", "a", reason="agent_unreachable")
    assert any(isinstance(e, TaskRequeued) for e in d.log)
    stats = IntervalStats.fold(d.log)
    figures = stats.figures("q", answered.at)
    assert (figures.answered, figures.requeued) == (0, 1)
    assert stats.figures("q", d.now).answered == 0


def test_intervals_without_calls_are_zeros_with_no_service_level() -> None:
    stats = IntervalStats(queues=["q"])
    series = stats.series("q", 0.0, 3 * QUARTER)
    assert [start for start, _ in series] == [0.0, 900.0, 1800.0]
    assert all(f.offered == 0 and f.service_level is None for _, f in series)
    data = interval_json(900.0, QUARTER, series[1][1])
    assert (data["start"], data["end"], data["offered"]) == (900.0, 1800.0, 0)
    assert "waiting" not in data and "longest_wait" not in data  # live-only figures


def test_forgetting_old_intervals_keeps_the_recent_ones() -> None:
    d, _ = day()
    stats = IntervalStats.fold(d.log)
    last = stats.start_of(d.now)
    kept = stats.figures("billing", last)
    stats.forget_before(last)
    assert stats.figures("billing", last) == kept
    assert stats.figures("billing", last - QUARTER).offered == 0


def test_a_requeue_after_its_answers_interval_was_forgotten_counts_nowhere() -> None:
    stats = IntervalStats(queues=["q"])
    answered = TaskAssigned(
        at=10.0,
        task_id="t1",
        agent_id="a1",
        reservation_id="r1",
        queue_id="q",
        channel="voice",
        waited=4.0,
        waited_total=4.0,
        within_threshold=True,
        auto_accepted=False,
    )
    assert stats.apply(answered) == 0.0
    stats.forget_before(QUARTER / 2)  # the interval is still going: kept
    assert stats.figures("q", 0.0).answered == 1
    stats.forget_before(2 * QUARTER)  # ended: forgotten, with its answers
    requeued = TaskRequeued(
        at=2 * QUARTER + 5,
        task_id="t1",
        agent_id="a1",
        queue_id="q",
        reservation_id="r1",
        reason="agent_no_answer",
    )
    assert stats.apply(requeued) is None
    assert stats.figures("q", 0.0).answered == 0


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="interval seconds: expected one of 300, 900"):
        IntervalStats(seconds=60)
    with pytest.raises(ValueError, match="unknown service level formula 'median'"):
        IntervalStats(formula="median")
