"""Queue statistics from one event log: the live figures (folded as events
come) and the historical report (folded from the stored log) are the same."""

from __future__ import annotations

import pytest

from routing.model import AgentState, OfferCallback, Overflow, QueueConfig
from routing.stats import SERVICE_LEVEL_FORMULAS, QueueStats
from tests.routing.helpers import T0, Desk

QUEUES = (
    QueueConfig(
        "billing",
        '"billing" in agent.skills',
        service_level_seconds=20,
        wrap_up_seconds=10,
        steps=(OfferCallback(60), Overflow(100, "general")),
    ),
    QueueConfig("general", '"general" in agent.skills', service_level_seconds=30),
)


def day() -> tuple[Desk, QueueStats]:
    """A small day on the billing queue, folded live as it happens."""
    d = Desk(*QUEUES)
    live = QueueStats()
    d.agent("ann", skills={"billing": 5}, available=False)
    d.agent("bob", skills={"billing": 5, "general": 1}, available=False)
    d.submit("fast", "billing")  # answered after 10 s
    d.submit("slow", "billing")  # answered after 25 s
    d.submit("gone", "billing")  # abandoned after 40 s
    d.submit("blip", "billing")  # abandoned after 2 s (short)
    d.clock.advance(2)
    d.do("cancel", "blip")
    d.clock.advance(8)
    d.do("set_agent_state", "ann", "available")  # offered "fast" at +10
    d.do("accept", "r-1")
    d.clock.advance(15)
    d.do("set_agent_state", "bob", "available")  # offered "slow" at +25
    d.do("accept", "r-2")
    d.clock.advance(15)
    d.do("cancel", "gone")  # +40
    d.clock.advance(20)
    d.do("complete", "fast")  # talk 50 s (+10 -> +60), wrap 10 s
    d.wait(10)
    d.clock.advance(30)
    d.do("complete", "slow")  # talk 75 s (+25 -> +100), ends wrap-up early at +105
    d.clock.advance(5)
    d.do("end_wrap_up", "bob")
    d.submit("late", "billing")  # +105: waits, callback at +165, overflow at +205
    d.do("set_agent_state", "ann", "offline")
    d.do("set_agent_state", "bob", "break", reason="lunch")
    d.wait(100)
    live.apply_all(d.log)
    return d, live


def test_the_figures_supervisors_read() -> None:
    d, live = day()
    f = live.figures("billing", d.now)
    assert (f.offered, f.answered, f.answered_within_threshold) == (5, 2, 1)
    assert (f.abandoned, f.short_abandoned, f.abandoned_within_threshold) == (2, 1, 1)
    assert (f.overflowed, f.callbacks_offered, f.handled) == (1, 1, 2)
    assert f.average_speed_of_answer == pytest.approx((10 + 25) / 2)
    assert f.average_handle_time == pytest.approx((50 + 10 + 75 + 5) / 2)
    assert f.average_abandon_wait == pytest.approx((2 + 40) / 2)
    # within T / (answered + abandoned - short abandoned) = 1 / (2 + 1)
    assert f.service_level == pytest.approx(100 / 3)
    assert f.service_level_formula == "answered_and_abandoned"
    assert (f.waiting, f.longest_wait) == (0, 0.0)
    assert f.agents_by_state == {"offline": 1, "break": 1}


def test_waiting_and_longest_wait_are_live_at_now() -> None:
    d, live = day()
    g = live.figures("general", d.now)
    assert (g.offered, g.waiting) == (1, 1)
    assert g.longest_wait == pytest.approx(0.0)  # entered general at +205, now is +205
    assert live.figures("general", d.now + 12).longest_wait == pytest.approx(12.0)
    assert g.agents_by_state == {"break": 1}


def test_history_replayed_from_the_stored_log_equals_the_live_figures() -> None:
    d, live = day()
    stored = list(d.log)  # what the service persisted
    history = QueueStats.fold(stored)
    assert history.report(d.now) == live.report(d.now)
    # and folding event by event as they were emitted gives the same again
    incremental = QueueStats()
    for event in stored:
        incremental.apply(event)
    assert incremental.report(d.now) == live.report(d.now)


def test_service_level_formulas_are_configurable_and_named() -> None:
    d, _ = day()
    by_formula = {
        name: QueueStats.fold(d.log, formula=name).figures("billing", d.now)
        for name in SERVICE_LEVEL_FORMULAS
    }
    assert by_formula["answered_and_abandoned"].service_level == pytest.approx(100 / 3)
    # within T / (answered + abandoned after T) = 1 / (2 + 1)
    assert by_formula["answered_and_late_abandoned"].service_level == pytest.approx(100 / 3)
    # within T / offered = 1 / 5
    assert by_formula["offered"].service_level == pytest.approx(20.0)
    assert {f.service_level_formula for f in by_formula.values()} == set(SERVICE_LEVEL_FORMULAS)
    with pytest.raises(ValueError, match="unknown service level formula 'median'"):
        QueueStats(formula="median")


def test_short_abandon_threshold_is_configurable() -> None:
    d, _ = day()
    f = QueueStats.fold(d.log, short_abandon_seconds=0).figures("billing", d.now)
    assert (f.abandoned, f.short_abandoned) == (2, 0)
    assert f.service_level == pytest.approx(25.0)  # 1 / (2 + 2)


def test_empty_queues_have_no_ratios() -> None:
    stats = QueueStats(queues=["billing"])
    f = stats.figures("billing", T0)
    assert (f.offered, f.service_level, f.average_speed_of_answer, f.average_handle_time) == (
        0,
        None,
        None,
        None,
    )
    assert stats.figures("unknown", T0).offered == 0


def test_agents_are_counted_in_every_queue_their_attributes_admit() -> None:
    d = Desk(*QUEUES)
    d.agent("ann", skills={"billing": 5})
    d.agent("bob", skills={"billing": 5, "general": 1}, auto_accept=True)
    d.submit("t1", "general")
    stats = QueueStats.fold(d.log)
    assert stats.figures("billing", d.now).agents_by_state == {"available": 1, "busy": 1}
    assert stats.figures("general", d.now).agents_by_state == {"busy": 1}
    assert d.router.agent("bob").state is AgentState.BUSY


def test_a_requeued_task_is_not_answered_until_it_really_is() -> None:
    d = Desk(*QUEUES)
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    d.submit("t1", "billing")  # answered by ann at once...
    d.clock.advance(10)
    d.do("requeue", "t1", reason="agent_no_answer")  # ...but her phone never answered
    stats = QueueStats.fold(d.log)
    f = stats.figures("billing", d.now)
    assert (f.answered, f.requeued, f.waiting, f.service_level) == (0, 1, 1, None)
    assert f.longest_wait == pytest.approx(10.0)
    d.clock.advance(15)
    d.agent("bob", skills={"billing": 5}, auto_accept=True)
    f = QueueStats.fold(d.log).figures("billing", d.now)
    assert (f.answered, f.answered_within_threshold, f.waiting) == (1, 0, 0)
    assert f.average_speed_of_answer == pytest.approx(25.0)
    assert f.service_level == pytest.approx(0.0)
