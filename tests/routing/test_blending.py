"""Capacity per channel and blending: a phone task blocks every other offer;
email does not block voice unless its queue says so; calls placed outside
Callwright block phone offers."""

from __future__ import annotations

from routing.model import (
    QueueConfig,
    ReservationCanceled,
    ReservationOffered,
    TaskAssigned,
    TaskState,
)
from tests.routing.helpers import Desk, of, one

BLENDED = {"voice": 1, "email": 3}


def desk(**options: bool) -> Desk:
    return Desk(
        QueueConfig("calls", "true", wrap_up_seconds=0),
        QueueConfig(
            "mail",
            "true",
            wrap_up_seconds=0,
            email_blocks_voice=options.get("email_blocks_voice", False),
        ),
    )


def test_a_voice_task_blocks_every_other_offer_while_reserved_or_assigned() -> None:
    d = desk()
    d.agent("ann", capacity=BLENDED)
    d.submit("call", "calls", "voice")
    assert d.router.task("call").state is TaskState.RESERVED
    assert of(d.submit("m1", "mail", "email"), ReservationOffered) == []
    d.do("accept", "r-1")
    assert of(d.submit("m2", "mail", "email"), ReservationOffered) == []
    events = d.do("complete", "call")
    offered = [e.task_id for e in of(events, ReservationOffered)]
    assert offered == ["m1", "m2"]


def test_email_does_not_block_voice_by_default() -> None:
    d = desk()
    d.agent("ann", capacity=BLENDED, auto_accept=True)
    d.submit("m1", "mail", "email")
    assert one(d.submit("call", "calls", "voice"), TaskAssigned).agent_id == "ann"


def test_email_blocks_voice_when_its_queue_says_so() -> None:
    d = desk(email_blocks_voice=True)
    d.agent("ann", capacity=BLENDED, auto_accept=True)
    d.submit("m1", "mail", "email")
    assert of(d.submit("call", "calls", "voice"), TaskAssigned) == []
    assert one(d.submit("m2", "mail", "email"), TaskAssigned).agent_id == "ann"
    d.do("complete", "m1")
    assert d.router.task("call").state is TaskState.WAITING  # m2 still blocks
    events = d.do("complete", "m2")
    assert one(events, TaskAssigned).task_id == "call"


def test_an_agent_never_exceeds_its_capacity_per_channel() -> None:
    d = desk()
    d.agent("ann", capacity={"email": 2}, auto_accept=True)
    results = [of(d.submit(f"m{n}", "mail", "email"), TaskAssigned) for n in range(3)]
    assert [len(r) for r in results] == [1, 1, 0]
    assert d.router.agent("ann").load == {"email": 2}
    events = d.do("complete", "m0")
    assert one(events, TaskAssigned).task_id == "m2"


def test_a_channel_left_out_of_capacity_is_zero() -> None:
    d = desk()
    d.agent("ann", capacity={"voice": 1}, auto_accept=True)
    assert of(d.submit("m1", "mail", "email"), TaskAssigned) == []
    assert of(d.submit("chat", "mail", "chat"), TaskAssigned) == []


def test_a_callback_task_uses_the_phone_and_blocks_like_voice() -> None:
    d = desk()
    d.agent("ann", capacity={"callback": 1, "email": 2}, auto_accept=True)
    d.submit("cb", "calls", "callback")
    assert of(d.submit("m1", "mail", "email"), TaskAssigned) == []


def test_voice_wrap_up_holds_the_voice_slot_but_lets_email_in() -> None:
    d = Desk(
        QueueConfig("calls", "true", wrap_up_seconds=30),
        QueueConfig("mail", "true"),
    )
    d.agent("ann", capacity=BLENDED, auto_accept=True)
    d.submit("call", "calls", "voice")
    d.do("complete", "call")
    assert of(d.submit("call2", "calls", "voice"), TaskAssigned) == []
    assert one(d.submit("m1", "mail", "email"), TaskAssigned).agent_id == "ann"


def test_a_call_outside_callwright_blocks_phone_offers_but_not_email() -> None:
    d = desk()
    d.agent("ann", capacity=BLENDED)
    d.submit("call", "calls", "voice")
    events = d.do("set_external_busy", "ann", True)
    withdrawn = one(events, ReservationCanceled)
    assert (withdrawn.task_id, withdrawn.reason) == ("call", "external_busy")
    assert d.router.agent("ann").external_busy
    assert one(d.submit("m1", "mail", "email"), ReservationOffered).agent_id == "ann"
    events = d.do("set_external_busy", "ann", False)
    assert one(events, ReservationOffered).task_id == "call"


def test_external_busy_set_twice_changes_nothing() -> None:
    d = desk()
    d.agent("ann")
    d.do("set_external_busy", "ann", True)
    assert d.do("set_external_busy", "ann", True) == []


def test_capacity_raised_at_run_time_takes_waiting_work_at_once() -> None:
    d = desk()
    d.agent("ann", capacity={"email": 1}, auto_accept=True)
    d.submit("m1", "mail", "email")
    d.submit("m2", "mail", "email")
    events = d.do("update_agent", "ann", capacity={"email": 2})
    assert one(events, TaskAssigned).task_id == "m2"


def test_capacity_lowered_below_the_load_keeps_the_tasks_and_offers_nothing_more() -> None:
    d = desk()
    d.agent("ann", capacity={"email": 3}, auto_accept=True)
    d.submit("m1", "mail", "email")
    d.submit("m2", "mail", "email")
    d.do("update_agent", "ann", capacity={"email": 1})
    assert d.router.agent("ann").load == {"email": 2}
    assert of(d.submit("m3", "mail", "email"), TaskAssigned) == []
    d.do("complete", "m1")
    assert d.router.task("m3").state is TaskState.WAITING
    events = d.do("complete", "m2")
    assert one(events, TaskAssigned).task_id == "m3"


def test_skills_changed_at_run_time_move_the_agent_between_queues() -> None:
    d = Desk(QueueConfig("billing", '"billing" in agent.skills'))
    d.agent("ann", skills={"sales": 5}, auto_accept=True)
    d.submit("t1", "billing")
    events = d.do("update_agent", "ann", skills={"billing": 5})
    assert one(events, TaskAssigned).task_id == "t1"
    assert d.router.agent("ann").queues == ("billing",)
