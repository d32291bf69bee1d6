"""The reservation lifecycle: offered -> accepted | rejected | timed out ->
assigned -> wrap-up -> completed; canceled when the caller hangs up."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from routing.errors import (
    DuplicateAgent,
    DuplicateTask,
    InvalidRequest,
    InvalidTransition,
    UnknownAgent,
    UnknownQueue,
    UnknownReservation,
    UnknownTask,
)
from routing.model import (
    AgentConfig,
    AgentState,
    AgentStateChanged,
    QueueConfig,
    ReservationCanceled,
    ReservationOffered,
    ReservationRejected,
    ReservationState,
    ReservationTimedOut,
    TaskAssigned,
    TaskCanceled,
    TaskCompleted,
    TaskQueued,
    TaskRequeued,
    TaskSpec,
    TaskState,
    TaskWrapping,
)
from tests.routing.helpers import T0, Desk, names, of, one

BILLING = QueueConfig(
    "billing",
    '"billing" in agent.skills',
    reservation_timeout_seconds=30,
    wrap_up_seconds=10,
    service_level_seconds=20,
)


def desk(**queue: Any) -> Desk:
    return Desk(replace(BILLING, **queue))


def test_task_is_offered_at_once_to_a_matching_available_agent() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5})
    events = d.submit("t1", "billing")
    assert names(events) == ["TaskQueued", "ReservationOffered", "AgentStateChanged"]
    offer = one(events, ReservationOffered)
    assert (offer.task_id, offer.agent_id, offer.queue_id) == ("t1", "ann", "billing")
    assert offer.expires_at == T0 + 30
    assert d.router.task("t1").state is TaskState.RESERVED
    assert d.router.reservation(offer.reservation_id).state is ReservationState.PENDING
    assert one(events, AgentStateChanged).state is AgentState.BUSY


def test_accepting_the_offer_assigns_the_task() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5})
    rid = one(d.submit("t1", "billing"), ReservationOffered).reservation_id
    d.clock.advance(4)
    assigned = one(d.do("accept", rid), TaskAssigned)
    assert (assigned.agent_id, assigned.waited, assigned.within_threshold) == ("ann", 4.0, True)
    assert not assigned.auto_accepted
    view = d.router.task("t1")
    assert (view.state, view.agent_id, view.assigned_at) == (TaskState.ASSIGNED, "ann", T0 + 4)
    assert d.router.reservation(rid).state is ReservationState.ACCEPTED
    assert d.router.tasks_in("billing") == []


def test_auto_accept_agent_is_assigned_without_an_offer() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    events = d.submit("t1", "billing")
    assert names(events) == ["TaskQueued", "TaskAssigned", "AgentStateChanged"]
    assert one(events, TaskAssigned).auto_accepted
    assert d.router.task("t1").state is TaskState.ASSIGNED


def test_task_waits_when_no_agent_matches_and_goes_to_the_first_who_does() -> None:
    d = desk()
    d.agent("sam", skills={"sales": 9})
    events = d.submit("t1", "billing")
    assert names(events) == ["TaskQueued"]
    assert [t.id for t in d.router.tasks_in("billing")] == ["t1"]
    d.clock.advance(5)
    events = d.agent("ann", skills={"billing": 2})
    assert one(events, ReservationOffered).agent_id == "ann"


def test_rejected_task_goes_to_the_next_agent_and_never_back() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5})
    rid = one(d.submit("t1", "billing"), ReservationOffered).reservation_id
    d.agent("bob", skills={"billing": 5})
    events = d.do("reject", rid)
    assert isinstance(events[0], ReservationRejected)
    assert one(events, ReservationOffered).agent_id == "bob"
    assert d.router.task("t1").excluded_agents == {"ann"}
    rid2 = one(events, ReservationOffered).reservation_id
    events = d.do("reject", rid2)
    assert of(events, ReservationOffered) == []
    assert d.router.task("t1").state is TaskState.WAITING
    # ann goes away and comes back: still never offered t1 again
    d.do("set_agent_state", "ann", "offline")
    assert of(d.do("set_agent_state", "ann", "available"), ReservationOffered) == []
    assert of(d.wait(200), ReservationOffered) == []


def test_offer_times_out_and_goes_to_the_next_agent() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5})
    rid = one(d.submit("t1", "billing"), ReservationOffered).reservation_id
    d.agent("bob", skills={"billing": 5})
    assert d.router.next_deadline() == T0 + 30
    assert d.wait(29.9) == []
    events = d.wait(0.1)
    timed_out = one(events, ReservationTimedOut)
    assert (timed_out.reservation_id, timed_out.at) == (rid, T0 + 30)
    offer = one(events, ReservationOffered)
    assert (offer.agent_id, offer.at) == ("bob", T0 + 30)
    assert d.router.task("t1").excluded_agents == {"ann"}


def test_deadlines_fire_at_their_own_time_when_advance_comes_late() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5})
    rid = one(d.submit("t1", "billing"), ReservationOffered).reservation_id
    d.agent("bob", skills={"billing": 5})
    events = d.wait(45)
    assert one(events, ReservationTimedOut).at == T0 + 30
    offer = one(events, ReservationOffered)
    assert (offer.at, offer.expires_at) == (T0 + 30, T0 + 60)
    assert rid != offer.reservation_id


def test_accepting_a_timed_out_reservation_is_refused_and_changes_nothing() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5})
    rid = one(d.submit("t1", "billing"), ReservationOffered).reservation_id
    d.wait(31)
    before = d.router.snapshot()
    with pytest.raises(InvalidTransition) as error:
        d.do("accept", rid)
    assert str(error.value) == (
        f"reservation 'r-1' was timed out at {T0 + 30:.3f}; it can no longer be accepted"
    )
    assert d.router.snapshot() == before
    with pytest.raises(InvalidTransition, match="can no longer be rejected"):
        d.do("reject", rid)


def test_hangup_while_waiting_counts_as_abandoned_with_the_wait() -> None:
    d = desk()
    d.submit("t1", "billing")
    d.clock.advance(12)
    canceled = one(d.do("cancel", "t1"), TaskCanceled)
    assert (canceled.queue_id, canceled.waited, canceled.abandoned) == ("billing", 12.0, True)
    assert canceled.within_threshold and not canceled.was_offered
    assert d.router.task_state("t1") is TaskState.CANCELED
    assert d.router.tasks_in("billing") == []


def test_hangup_while_offered_withdraws_the_offer_and_frees_the_agent() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5})
    rid = one(d.submit("t1", "billing"), ReservationOffered).reservation_id
    d.submit("t2", "billing")
    d.clock.advance(3)
    events = d.do("cancel", "t1")
    assert names(events)[:2] == ["ReservationCanceled", "TaskCanceled"]
    assert one(events, ReservationCanceled).reason == "caller_hangup"
    assert one(events, TaskCanceled).was_offered
    assert one(events, ReservationOffered).task_id == "t2"  # ann is free again
    assert d.router.reservation(rid).state is ReservationState.CANCELED
    with pytest.raises(InvalidTransition, match="was canceled"):
        d.do("accept", rid)


def test_a_canceled_task_is_never_assigned() -> None:
    d = desk()
    d.submit("t1", "billing")
    d.do("cancel", "t1")
    events = d.agent("ann", skills={"billing": 5})
    assert of(events, ReservationOffered) == []
    with pytest.raises(InvalidTransition, match="task 't1' is already canceled"):
        d.do("cancel", "t1")


def test_complete_starts_wrap_up_which_holds_the_agent_then_completes() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    d.submit("t1", "billing")
    d.submit("t2", "billing")
    d.clock.advance(60)
    events = d.do("complete", "t1")
    wrapping = one(events, TaskWrapping)
    assert (wrapping.talk_time, wrapping.wrap_up_until) == (60.0, T0 + 70)
    assert one(events, AgentStateChanged).state is AgentState.WRAP_UP
    assert of(events, TaskAssigned) == []  # the voice slot is held during wrap-up
    assert d.router.next_deadline() == T0 + 70
    events = d.wait(10)
    done = one(events, TaskCompleted)
    assert (done.talk_time, done.wrap_time, done.queue_id) == (60.0, 10.0, "billing")
    assert one(events, TaskAssigned).task_id == "t2"
    assert d.router.agent("ann").last_ended == {"voice": T0 + 70}


def test_ending_wrap_up_early_frees_the_agent() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    d.submit("t1", "billing")
    d.do("complete", "t1")
    d.submit("t2", "billing")
    d.clock.advance(2)
    events = d.do("end_wrap_up", "ann")
    assert one(events, TaskCompleted).wrap_time == 2.0
    assert one(events, TaskAssigned).task_id == "t2"
    assert d.wait(30) == []  # the old wrap-up timer is gone
    with pytest.raises(InvalidTransition, match="agent 'ann' is not in wrap-up"):
        d.do("end_wrap_up", "ann")


def test_zero_wrap_up_completes_at_once() -> None:
    d = desk(wrap_up_seconds=0)
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    d.submit("t1", "billing")
    events = d.do("complete", "t1")
    assert names(events) == ["TaskCompleted", "AgentStateChanged"]
    assert d.router.agent("ann").state is AgentState.AVAILABLE
    assert d.router.task_state("t1") is TaskState.COMPLETED


def test_only_assigned_tasks_complete_and_only_waiting_or_offered_tasks_cancel() -> None:
    d = desk()
    d.submit("t1", "billing")
    with pytest.raises(InvalidTransition, match="task 't1' is waiting; only an assigned"):
        d.do("complete", "t1")
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    with pytest.raises(InvalidTransition, match="task 't1' is assigned; only a waiting"):
        d.do("cancel", "t1")


def test_unknown_ids_are_not_found() -> None:
    d = desk()
    with pytest.raises(UnknownReservation, match="unknown reservation 'nope'"):
        d.do("accept", "nope")
    with pytest.raises(UnknownTask, match="unknown task 'nope'"):
        d.do("cancel", "nope")
    with pytest.raises(UnknownAgent, match="unknown agent 'nope'"):
        d.do("set_agent_state", "nope", "available")
    with pytest.raises(UnknownQueue, match="unknown queue 'sales'"):
        d.submit("t1", "sales")
    with pytest.raises(UnknownTask):
        d.router.task("nope")


def test_duplicates_are_refused() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    with pytest.raises(DuplicateAgent, match="agent 'ann' already exists"):
        d.agent("ann")
    d.submit("t1", "billing")
    with pytest.raises(DuplicateTask, match="task 't1' already exists"):
        d.submit("t1", "billing")
    d.router.complete("t1", d.now)
    d.router.end_wrap_up("ann", d.now)
    with pytest.raises(DuplicateTask):
        d.submit("t1", "billing")


def test_bad_requests_are_refused_and_change_nothing() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5})
    before = d.router.snapshot()
    bad = [
        (TaskSpec("t1", "billing", "fax"), "task 't1': unknown channel 'fax'"),  # type: ignore[arg-type]
        (TaskSpec("t1", "billing", "voice", priority=1.5), "priority must be a whole number"),  # type: ignore[arg-type]
        (
            TaskSpec("t1", "billing", "voice", attributes={"vip": [1]}),  # type: ignore[dict-item]
            "attribute 'vip' has value [1]",
        ),
        (
            TaskSpec("t1", "billing", "voice", required_skills={"billing": 11}),
            "skill 'billing' has level 11 (levels are 1-10)",
        ),
        (TaskSpec("t1", "billing", "voice", arrived_at=T0 + 5), "arrived_at is in the future"),
    ]
    for spec, message in bad:
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            d.router.submit(spec, d.now)
    with pytest.raises(InvalidRequest, match="busy follows the agent's tasks"):
        d.do("set_agent_state", "ann", "busy")
    with pytest.raises(InvalidRequest, match="unknown state 'lunch'"):
        d.do("set_agent_state", "ann", "lunch")
    with pytest.raises(InvalidRequest, match="a reason code goes with break only"):
        d.do("set_agent_state", "ann", "available", reason="lunch")
    with pytest.raises(InvalidRequest, match="now must be a finite number"):
        d.router.advance(float("nan"))
    assert d.router.snapshot() == before


def test_break_withdraws_a_pending_offer_without_excluding_the_agent() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5})
    rid = one(d.submit("t1", "billing"), ReservationOffered).reservation_id
    events = d.do("set_agent_state", "ann", "break", reason="lunch")
    withdrawn = one(events, ReservationCanceled)
    assert (withdrawn.reservation_id, withdrawn.reason) == (rid, "agent_break")
    assert d.router.task("t1").state is TaskState.WAITING
    view = d.router.agent("ann")
    assert (view.state, view.reason) == (AgentState.BREAK, "lunch")
    offer = one(d.do("set_agent_state", "ann", "available"), ReservationOffered)
    assert offer.task_id == "t1"


def test_going_offline_mid_call_keeps_the_call() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    d.submit("t1", "billing")
    d.do("set_agent_state", "ann", "offline")
    assert d.router.task("t1").state is TaskState.ASSIGNED
    assert d.router.agent("ann").state is AgentState.BUSY  # busy wins while on a task
    d.do("complete", "t1")
    d.wait(10)
    assert d.router.agent("ann").state is AgentState.OFFLINE


def test_agent_states_follow_their_tasks_and_carry_their_queues() -> None:
    d = desk()
    events = d.agent("ann", skills={"billing": 5})
    changes = of(events, AgentStateChanged)
    assert [(c.previous, c.state) for c in changes] == [
        (None, AgentState.OFFLINE),
        (AgentState.OFFLINE, AgentState.AVAILABLE),
    ]
    assert changes[0].queues == ("billing",)
    d.clock.advance(5)
    d.submit("t1", "billing")
    view = d.router.agent("ann")
    assert (view.state, view.state_since, view.load) == (AgentState.BUSY, T0 + 5, {"voice": 1})


def test_next_deadline_is_the_earliest_pending_timer() -> None:
    d = Desk(
        QueueConfig("q", "true", reservation_timeout_seconds=15, wrap_up_seconds=5),
    )
    assert d.router.next_deadline() is None
    d.agent("ann")
    d.submit("t1", "q")
    assert d.router.next_deadline() == T0 + 15
    d.do("accept", "r-1")
    assert d.router.next_deadline() is None
    d.do("complete", "t1")
    assert d.router.next_deadline() == T0 + 5


def test_logical_time_never_goes_back() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    d.clock.advance(10)
    d.submit("t1", "billing")
    events = d.router.complete("t1", T0)  # an earlier clock reading
    assert one(events, TaskWrapping).at == T0 + 10


def test_an_email_that_arrived_earlier_counts_its_wait() -> None:
    d = desk()
    d.clock.advance(100)
    events = d.router.submit(TaskSpec("m1", "billing", "email", arrived_at=T0), d.now)
    queued = one(events, TaskQueued)
    assert (queued.arrived_at, queued.queued_at, queued.at) == (T0, T0, T0 + 100)
    d.agent("ann", skills={"billing": 5}, capacity={"email": 1}, auto_accept=True)
    assert one(d.log, TaskAssigned).waited == 100.0


def test_reservation_ids_use_the_configured_prefix() -> None:
    d = Desk(QueueConfig("q", "true"), reservation_prefix="res:")
    d.router.add_agent(AgentConfig("ann"), d.now)
    d.router.set_agent_state("ann", "available", d.now)
    assert one(d.submit("t1", "q"), ReservationOffered).reservation_id == "res:1"


def test_finished_tasks_are_remembered_for_a_bounded_while() -> None:
    d = Desk(QueueConfig("q", "true"), closed_memory=2)
    for n in range(3):
        d.submit(f"t{n}", "q")
        d.do("cancel", f"t{n}")
    assert d.router.task_state("t2") is TaskState.CANCELED
    assert d.router.task_state("t1") is TaskState.CANCELED
    with pytest.raises(UnknownTask):
        d.router.task_state("t0")


def test_requeue_puts_an_assigned_task_back_and_never_offers_it_to_that_agent() -> None:
    d = desk()
    d.agent("ann", skills={"billing": 5}, auto_accept=True)
    d.submit("t1", "billing")
    d.clock.advance(8)
    d.agent("bob", skills={"billing": 5})
    events = d.do("requeue", "t1", reason="agent_no_answer")
    requeued = one(events, TaskRequeued)
    assert (requeued.agent_id, requeued.reason, requeued.reservation_id) == (
        "ann",
        "agent_no_answer",
        "r-1",
    )
    offer = one(events, ReservationOffered)
    assert offer.agent_id == "bob"
    view = d.router.task("t1")
    assert (view.excluded_agents, view.queued_at, view.arrived_at) == ({"ann"}, T0, T0)
    assert d.router.agent("ann").state is AgentState.AVAILABLE
    d.do("reject", offer.reservation_id)
    assert d.router.task("t1").state is TaskState.WAITING  # ann is never asked again


def test_only_an_assigned_task_can_be_requeued() -> None:
    d = desk()
    d.submit("t1", "billing")
    with pytest.raises(InvalidTransition, match="task 't1' is waiting; only an assigned"):
        d.do("requeue", "t1", reason="connect_failed")
    d.agent("ann", skills={"billing": 5})
    with pytest.raises(InvalidTransition, match=r"reject the reservation instead"):
        d.do("requeue", "t1", reason="connect_failed")
