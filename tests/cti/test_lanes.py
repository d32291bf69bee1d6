"""cti.calls.lanes: callers' events first, each call's events in order, and
the other lane never starved for longer than max_defer."""

from __future__ import annotations

import pytest

from cti.calls.lanes import Lanes


def drain(lanes: Lanes[str], now: float) -> list[str]:
    out = []
    while (taken := lanes.take(now)) is not None:
        out.append(taken[0])
    return out


def test_a_callers_event_goes_ahead_of_older_events_of_calls_with_an_agent() -> None:
    lanes: Lanes[str] = Lanes(max_defer=0.25)
    lanes.put("a", "a:bridged", first=False, now=10.0)
    lanes.put("b", "b:hangup", first=False, now=10.0)
    lanes.put("c", "c:at-hold", first=True, now=10.01)
    assert lanes.take(10.02) == ("c:at-hold", True)
    assert drain(lanes, 10.02) == ["a:bridged", "b:hangup"]
    assert len(lanes) == 0


def test_a_call_keeps_its_order_when_its_next_event_would_go_first() -> None:
    # The agent's leg hung up, the caller is alone again (first lane), but
    # the call's earlier event still waits in the second lane: it follows it.
    lanes: Lanes[str] = Lanes(max_defer=0.25)
    lanes.put("a", "a:unbridged", first=False, now=10.0)
    lanes.put("b", "b:started", first=True, now=10.0)
    lanes.put("a", "a:back-at-hold", first=True, now=10.0)
    assert drain(lanes, 10.0) == ["b:started", "a:unbridged", "a:back-at-hold"]


def test_a_call_with_events_in_the_first_lane_keeps_them_together() -> None:
    lanes: Lanes[str] = Lanes(max_defer=0.25)
    lanes.put("a", "a:started", first=True, now=10.0)
    lanes.put("a", "a:ended", first=False, now=10.0)  # an abandon: follows its call
    lanes.put("b", "b:hangup", first=False, now=10.0)
    assert drain(lanes, 10.0) == ["a:started", "a:ended", "b:hangup"]


def test_the_second_lane_goes_first_once_its_oldest_event_waited_max_defer() -> None:
    lanes: Lanes[str] = Lanes(max_defer=0.25)
    lanes.put("a", "a:hangup", first=False, now=10.0)
    lanes.put("b", "b:started", first=True, now=10.1)
    lanes.put("c", "c:started", first=True, now=10.2)
    assert lanes.take(10.2) == ("b:started", True)  # a waited 0.2 s: not yet
    assert lanes.take(10.25) == ("a:hangup", False)  # 0.25 s: its turn
    assert lanes.take(10.25) == ("c:started", True)
    assert lanes.take(10.25) is None


def test_each_lane_is_first_in_first_out() -> None:
    lanes: Lanes[str] = Lanes(max_defer=1.0)
    for i in range(5):
        lanes.put(f"s{i}", f"s{i}", first=False, now=0.0)
        lanes.put(f"f{i}", f"f{i}", first=True, now=0.0)
    assert drain(lanes, 0.0) == [f"f{i}" for i in range(5)] + [f"s{i}" for i in range(5)]


def test_max_defer_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_defer must not be negative, got -1"):
        Lanes(max_defer=-1)
