"""Queue steps over time (widen, overflow, callback offer) and the sticky agent."""

from __future__ import annotations

from routing.model import (
    CallbackOffered,
    OfferCallback,
    Overflow,
    QueueConfig,
    ReservationOffered,
    ReservationTimedOut,
    TaskAssigned,
    TaskOverflowed,
    TaskQueued,
    TaskState,
    TaskTargetChanged,
    Widen,
)
from tests.routing.helpers import T0, Desk, names, of, one

BILLING = QueueConfig(
    "billing",
    "agent.skills.billing >= 5",
    steps=(
        Widen(30, "agent.skills.billing >= 3"),
        OfferCallback(90),
        Overflow(120, "general"),
    ),
    reservation_timeout_seconds=20,
)
GENERAL = QueueConfig("general", '"general" in agent.skills')


def test_widening_after_30_s_reaches_lower_level_agents() -> None:
    d = Desk(BILLING, GENERAL)
    d.agent("junior", skills={"billing": 3}, auto_accept=True)
    d.submit("t1", "billing")
    assert d.router.next_deadline() == T0 + 30
    assert d.wait(29.9) == []
    events = d.wait(0.1)
    widened = one(events, TaskTargetChanged)
    assert (widened.step, widened.target, widened.at) == (1, "agent.skills.billing >= 3", T0 + 30)
    assert one(events, TaskAssigned).agent_id == "junior"
    assert one(events, TaskAssigned).waited == 30.0


def test_a_widened_task_waits_for_a_level_that_the_first_target_refused() -> None:
    d = Desk(BILLING, GENERAL)
    d.submit("t1", "billing")
    d.wait(45)
    assert d.router.task("t1").target == "agent.skills.billing >= 3"
    assert d.router.task("t1").step == 1
    events = d.agent("junior", skills={"billing": 3}, auto_accept=True)
    assert one(events, TaskAssigned).task_id == "t1"


def test_callback_offer_step_emits_an_event_and_the_task_keeps_waiting() -> None:
    d = Desk(BILLING, GENERAL)
    d.submit("t1", "billing", customer_id="c42")
    events = d.wait(90)
    offer = one(events, CallbackOffered)
    assert (offer.task_id, offer.queue_id, offer.waited, offer.customer_id) == (
        "t1",
        "billing",
        90.0,
        "c42",
    )
    assert d.router.task("t1").state is TaskState.WAITING


def test_overflow_after_120_s_moves_the_task_keeping_arrival_and_priority() -> None:
    d = Desk(BILLING, GENERAL)
    d.submit("t1", "billing", priority=3)
    d.agent("gen", skills={"general": 1}, available=False)
    events = d.wait(120)
    assert names(events)[-2:] == ["TaskOverflowed", "TaskQueued"]
    moved = one(events, TaskOverflowed)
    assert (moved.from_queue, moved.to_queue, moved.waited) == ("billing", "general", 120.0)
    queued = of(events, TaskQueued)[-1]
    assert (queued.via, queued.arrived_at, queued.queued_at, queued.priority) == (
        "overflow",
        T0,
        T0 + 120,
        3,
    )
    view = d.router.task("t1")
    assert (view.queue_id, view.step, view.arrived_at) == ("general", 0, T0)
    assert d.router.tasks_in("billing") == []
    events = d.do("set_agent_state", "gen", "available")
    assert one(events, ReservationOffered).queue_id == "general"


def test_an_overflowed_task_is_answered_within_the_new_queue_wait() -> None:
    d = Desk(BILLING, GENERAL)
    d.submit("t1", "billing")
    d.wait(125)
    events = d.agent("gen", skills={"general": 1}, auto_accept=True)
    assigned = one(events, TaskAssigned)
    assert (assigned.queue_id, assigned.waited, assigned.waited_total) == ("general", 5.0, 125.0)


def test_steps_pause_while_the_task_is_offered_and_catch_up_after() -> None:
    d = Desk(BILLING, GENERAL)
    d.submit("t1", "billing")
    d.wait(110)
    d.agent("slow", skills={"billing": 6})  # offered at 110, times out at 130
    assert d.router.task("t1").state is TaskState.RESERVED
    events = d.wait(15)  # 125: the overflow is due but the offer is open
    assert of(events, TaskOverflowed) == []
    events = d.wait(5)  # 130: timeout, then the overdue overflow
    assert names(events)[:3] == ["ReservationTimedOut", "TaskOverflowed", "TaskQueued"]
    assert d.router.task("t1").queue_id == "general"


def test_excluded_agents_stay_excluded_after_an_overflow() -> None:
    d = Desk(
        QueueConfig("a", "true", steps=(Overflow(60, "b"),)),
        QueueConfig("b", "true"),
    )
    d.agent("ann")
    d.submit("t1", "a")
    d.do("reject", "r-1")
    events = d.wait(60)
    assert of(events, ReservationOffered) == []
    assert d.router.task("t1").excluded_agents == {"ann"}


STICKY = QueueConfig("q", "true", sticky_agent_seconds=10, wrap_up_seconds=0)


def served_once(d: Desk, agent: str, customer: str) -> None:
    d.submit(f"first-{customer}", "q", customer_id=customer)
    task = one(d.log, TaskAssigned)
    assert task.agent_id == agent
    d.do("complete", task.task_id)


def test_sticky_agent_gets_the_returning_customer_when_free_in_time() -> None:
    d = Desk(STICKY)
    d.agent("ann", auto_accept=True)
    served_once(d, "ann", "c1")
    d.submit("busy", "q")  # ann is on another call now
    d.agent("bob", auto_accept=True)  # idle, would take anything
    events = d.submit("again", "q", customer_id="c1")
    assert of(events, TaskAssigned) == []
    view = d.router.task("again")
    assert (view.sticky_agent_id, view.sticky_until) == ("ann", T0 + 10)
    d.clock.advance(4)
    events = d.do("complete", "busy")
    assert one(events, TaskAssigned).agent_id == "ann"
    assert one(events, TaskAssigned).task_id == "again"


def test_sticky_wait_falls_back_to_any_agent_after_its_seconds() -> None:
    d = Desk(STICKY)
    d.agent("ann", auto_accept=True)
    served_once(d, "ann", "c1")
    d.submit("busy", "q")
    d.agent("bob", auto_accept=True)
    d.submit("again", "q", customer_id="c1")
    assert d.router.next_deadline() == T0 + 10
    events = d.wait(10)
    assert one(events, TaskAssigned).agent_id == "bob"


def test_no_sticky_wait_when_the_last_agent_is_signed_out() -> None:
    d = Desk(STICKY)
    d.agent("ann", auto_accept=True)
    served_once(d, "ann", "c1")
    d.do("set_agent_state", "ann", "offline")
    d.agent("bob", auto_accept=True)
    assert one(d.submit("again", "q", customer_id="c1"), TaskAssigned).agent_id == "bob"


def test_sticky_agent_signing_out_releases_the_waiting_customer() -> None:
    d = Desk(STICKY)
    d.agent("ann", auto_accept=True)
    served_once(d, "ann", "c1")
    d.do("set_agent_state", "ann", "break", reason="coffee")
    d.agent("bob", auto_accept=True)
    d.submit("again", "q", customer_id="c1")
    assert d.router.task("again").sticky_agent_id == "ann"  # on break, still signed in
    events = d.do("set_agent_state", "ann", "offline")
    assert one(events, TaskAssigned).agent_id == "bob"


def test_sticky_agent_who_rejects_lets_others_take_the_customer() -> None:
    d = Desk(STICKY)
    d.agent("ann")
    d.submit("first", "q", customer_id="c1")
    d.do("accept", "r-1")
    d.do("complete", "first")
    d.agent("bob")
    d.do("set_agent_state", "bob", "break")
    rid = one(d.submit("again", "q", customer_id="c1"), ReservationOffered).reservation_id
    d.do("set_agent_state", "bob", "available")
    events = d.do("reject", rid)
    assert one(events, ReservationOffered).agent_id == "bob"


def test_timeouts_in_advance_come_in_time_order() -> None:
    d = Desk(QueueConfig("q", "true", reservation_timeout_seconds=5))
    d.agent("ann")
    d.submit("t1", "q")
    d.clock.advance(1)
    d.agent("bob")
    d.submit("t2", "q")
    events = d.wait(60)
    timeouts = of(events, ReservationTimedOut)
    assert [(e.task_id, e.at) for e in timeouts][:2] == [("t1", T0 + 5), ("t2", T0 + 6)]
