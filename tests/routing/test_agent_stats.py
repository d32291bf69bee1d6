"""Agents' time by state and occupancy (``routing.agent_stats``), folded over
the events a real router gives for a day: pure, the clock a fake."""

from __future__ import annotations

import pytest

from routing.agent_stats import AgentClock, agent_times
from routing.model import AgentState, QueueConfig
from tests.routing.helpers import T0, Desk

QUEUE = QueueConfig("billing", '"billing" in agent.skills', wrap_up_seconds=20)


def day() -> Desk:
    """Ann: available at +0, a 60 s call from +10, 20 s wrap-up, available
    until a break at +200. Bob: added, never available."""
    d = Desk(QUEUE)
    d.agent("ann", skills={"billing": 5})  # available at T0
    d.agent("bob", skills={"billing": 5}, available=False)
    d.clock.advance(10)
    d.submit("t1", "billing")
    d.do("accept", "r-1")  # busy from +10
    d.clock.advance(60)
    d.do("complete", "t1")  # wrap-up from +70
    d.wait(20)  # available again at +90
    d.clock.advance(110)
    d.do("set_agent_state", "ann", "break", reason="lunch")  # +200
    return d


def test_time_by_state_and_occupancy_over_a_period() -> None:
    d = day()
    times = agent_times(d.log, T0, T0 + 300)
    ann = times["ann"]
    assert ann.seconds == pytest.approx(
        {"available": 10 + 110, "busy": 60, "wrap_up": 20, "break": 100}
    )
    assert ann.occupancy == pytest.approx(100 * 80 / 200)
    assert times["bob"].seconds == {"offline": 300}
    assert times["bob"].occupancy is None  # never ready for work


def test_a_period_starting_mid_state_counts_from_its_start() -> None:
    d = day()
    # From +30 (Ann busy since +10) to +80 (in wrap-up since +70).
    ann = agent_times(d.log, T0 + 30, T0 + 80)["ann"]
    assert ann.seconds == pytest.approx({"busy": 40, "wrap_up": 10})
    assert ann.occupancy == pytest.approx(100.0)


def test_an_agent_without_a_change_in_the_period_is_as_now_or_left_out() -> None:
    d = day()
    later = T0 + 1000  # Ann has been on break since +200: no event in the period
    assert agent_times(d.log, later, later + 60) == {}  # the past: unknown
    now = {"ann": AgentState.BREAK, "bob": AgentState.OFFLINE}
    times = agent_times(d.log, later, later + 60, current=now)
    assert times["ann"].seconds == {"break": 60} and times["ann"].occupancy is None
    assert times["ann"].to_json() == {
        "agent_id": "ann",
        "seconds": {"break": 60.0},
        "occupancy": None,
    }


def test_the_live_clock_equals_the_fold_and_starts_afresh_each_day() -> None:
    d = day()
    live = AgentClock(T0)
    for event in d.log:
        live.apply(event)
    now = {"ann": AgentState.BREAK, "bob": AgentState.OFFLINE}
    assert live.read(T0 + 300, now) == agent_times(d.log, T0, T0 + 300, now)

    live.roll(T0 + 250)  # a new day at +250: Ann on break since +200, Bob offline
    times = live.read(T0 + 300, now)
    assert times["ann"].seconds == {"break": 50}
    assert times["bob"].seconds == {"offline": 50}
