"""No lost work: a snapshot taken before a stop restores every task with its
original arrival, priority, queue and step, and re-offers open reservations."""

from __future__ import annotations

import pytest

from routing.engine import Router
from routing.errors import RoutingConfigError
from routing.model import (
    AgentState,
    QueueConfig,
    ReservationOffered,
    TaskAssigned,
    TaskCompleted,
    TaskOverflowed,
    TaskQueued,
    TaskRecord,
    TaskState,
    TaskTargetChanged,
)
from tests.routing.helpers import BILLING_AND_GENERAL, T0, Desk, of, one

QUEUES = BILLING_AND_GENERAL


def running_desk() -> Desk:
    d = Desk(*QUEUES)
    d.agent("ann", skills={"billing": 6})
    d.agent("bob", skills={"billing": 6}, auto_accept=True)
    d.agent("cid", skills={"billing": 3}, available=False)
    d.submit("offered", "billing", priority=1, customer_id="c1")  # -> ann, pending
    d.submit("talking", "billing", customer_id="c2")  # -> bob, assigned
    d.clock.advance(5)
    d.submit("low", "billing", priority=0, language="fr", attributes={"vip": True})
    d.clock.advance(5)
    d.submit("high", "billing", priority=7)
    return d


def test_restore_keeps_waiting_tasks_with_their_arrival_priority_and_queue() -> None:
    d = running_desk()
    before = d.router.tasks_in("billing")
    snap = d.router.snapshot()
    router, events = Router.restore(QUEUES, snap, T0 + 12)
    after = router.tasks_in("billing")
    assert [(t.id, t.arrived_at, t.priority, t.queued_at, t.state) for t in after] == [
        (t.id, t.arrived_at, t.priority, t.queued_at, t.state) for t in before
    ]
    low = router.task("low")
    assert (low.language, low.attributes, low.arrived_at) == ("fr", {"vip": True}, T0 + 5)
    assert of(events, TaskQueued) == []  # not offered twice to the statistics
    assert router.task("talking").state is TaskState.ASSIGNED
    assert router.agent("bob").load == {"voice": 1}


def test_restore_re_offers_open_reservations_to_the_same_agent() -> None:
    d = running_desk()
    rid = d.router.task("offered").reservation_id
    assert rid is not None
    router, events = Router.restore(QUEUES, d.router.snapshot(), T0 + 100)
    offer = one(events, ReservationOffered)
    assert (offer.reservation_id, offer.agent_id, offer.task_id, offer.reoffer) == (
        rid,
        "ann",
        "offered",
        True,
    )
    assert offer.expires_at == T0 + 120
    assigned = one(router.accept(rid, T0 + 101), TaskAssigned)
    assert assigned.waited == 101.0  # the wait counts from the original arrival
    assert router.next_deadline() is not None


def test_reservation_ids_continue_after_a_restore() -> None:
    d = running_desk()
    router, _ = Router.restore(QUEUES, d.router.snapshot(), T0 + 12)
    router.reject("r-1", T0 + 13)
    router.set_agent_state("cid", "available", T0 + 40)
    new_ids = {
        e.reservation_id for e in router.advance(T0 + 40) if isinstance(e, ReservationOffered)
    }
    assert new_ids and "r-1" not in new_ids and "r-2" not in new_ids


def test_steps_that_fell_due_while_stopped_apply_at_restore() -> None:
    d = running_desk()
    router, events = Router.restore(QUEUES, d.router.snapshot(), T0 + 200)
    widened = {e.task_id for e in of(events, TaskTargetChanged)}
    overflowed = {e.task_id for e in of(events, TaskOverflowed)}
    assert {"low", "high"} <= widened
    assert {"low", "high"} <= overflowed
    assert {e.at for e in of(events, TaskOverflowed)} == {T0 + 200}
    assert [t.id for t in router.tasks_in("general")] == ["high", "low"]
    assert router.task("high").arrived_at == T0 + 10


def test_wrap_up_that_ended_while_stopped_completes_at_restore() -> None:
    d = running_desk()
    d.do("complete", "talking")  # wrap-up until +40
    router, events = Router.restore(QUEUES, d.router.snapshot(), T0 + 100)
    done = one(events, TaskCompleted)
    assert (done.task_id, done.agent_id, done.wrap_time, done.at) == (
        "talking",
        "bob",
        30.0,
        T0 + 40,
    )
    assert events.index(done) == 0  # events stay in time order
    assert router.agent("bob").state is not AgentState.WRAP_UP


def test_exclusions_and_sticky_waits_survive_a_restore() -> None:
    d = running_desk()
    d.do("reject", "r-1")  # ann rejected "offered"; it goes to nobody free
    d.do("complete", "talking")
    d.do("end_wrap_up", "bob")  # bob takes "high", the best waiting
    d.submit("back", "billing", customer_id="c2")  # bob served c2: sticky wait for bob
    assert d.router.task("back").sticky_agent_id == "bob"
    snap = d.router.snapshot()
    router, _ = Router.restore(QUEUES, snap, d.now + 1)
    assert router.task("offered").excluded_agents == {"ann"}
    assert router.task("back").sticky_agent_id == "bob"
    assert [_where(t) for t in router.snapshot().tasks] == [_where(t) for t in snap.tasks]


def _where(rec: TaskRecord) -> tuple[object, ...]:
    res = None if rec.reservation is None else rec.reservation.id
    return (
        rec.spec,
        rec.queue_id,
        rec.queued_at,
        rec.state,
        rec.step,
        rec.excluded_agents,
        rec.agent_id,
        res,
        rec.sticky_agent_id,
        rec.sticky_until,
    )


def test_a_quiet_router_restores_to_the_same_snapshot() -> None:
    d = Desk(*QUEUES)
    d.agent("cid", skills={"billing": 3}, available=False)
    d.submit("t1", "billing", priority=2)
    d.submit("t2", "general")
    snap = d.router.snapshot()
    router, events = Router.restore(QUEUES, snap, d.now)
    assert router.snapshot() == snap
    assert [e.agent_id for e in events if hasattr(e, "agent_id")] == ["cid"]


def test_restoring_into_a_configuration_without_the_task_queue_is_refused() -> None:
    d = running_desk()
    with pytest.raises(
        RoutingConfigError,
        match="snapshot task 'offered' is in queue 'billing', which the configuration no "
        "longer has",
    ):
        Router.restore([QueueConfig("general", "true")], d.router.snapshot(), T0 + 12)


def test_a_snapshot_is_made_of_records_a_shell_can_store_as_they_change() -> None:
    d = running_desk()
    snap = d.router.snapshot()
    assert snap.tasks == tuple(d.router.task_record(t) for t in d.router.task_ids())
    assert snap.agents == tuple(d.router.agent_record(a) for a in d.router.agent_ids())
    assert snap.next_reservation == d.router.next_reservation_number() == 3
    assert snap.last_agent_of_customer == d.router.last_agent_of_customer() == (("c2", "bob"),)
