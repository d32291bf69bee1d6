"""The offer and its screen-pop: the caller's record reaches the agent before
any phone rings; accepting over Socket.IO connects the call, and the agent
follows it through ``call`` events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from crm.mail.parse import parse_email
from tests.desk.conftest import DeskStack

ADA = "+15550100001"


async def seed_ada(desk: DeskStack) -> tuple[int, int]:
    runtime = desk.runtime
    ada = await runtime.customers.create(
        "Ada Lovelace",
        phones=[ADA],
        emails=["ada@analytical.example"],
        account_number="AE-1843",
        notes="Prefers e-mail",
    )
    earlier = await runtime.interactions.create(
        channel="voice",
        direction="inbound",
        customer_id=ada.id,
        queue="support",
        started_at=datetime.now(UTC) - timedelta(days=2),
        disposition="resolved",
        notes="Asked about invoice 42",
    )
    return ada.id, earlier.id


def phone_rings(desk: DeskStack, extension: str) -> bool:
    return any(ch.name.startswith(f"PJSIP/{extension}-") for ch in desk.sim.channels())


async def test_the_offer_carries_the_callers_record_before_the_phone_rings(
    desk: DeskStack,
) -> None:
    ada_id, earlier_id = await seed_ada(desk)
    sue = await desk.connect("sue")  # a supervisor: in the queue's room
    alice = await desk.connect("alice")
    ringing_at_offer: list[bool] = []
    alice.probe = lambda env: (
        ringing_at_offer.append(phone_rings(desk, "1001")) if env["type"] == "offer" else None
    )
    ack = await alice.call("set_state", {"state": "available"})
    assert ack["ok"] and ack["agent"]["state"] == "available", ack

    caller = await desk.sim.inbound_call(ADA, "Ada Lovelace")
    envelope = await alice.next_event("offer")
    assert ringing_at_offer == [False]
    assert envelope["room"] == f"agent:{desk.alice}"
    offer = envelope["data"]
    assert offer["agent_id"] == desk.alice and offer["queue_id"] == "support"
    assert offer["channel"] == "voice" and offer["attributes"] == {"caller_number": ADA}
    assert offer["expires_at"] > offer["offered_at"]
    pop = offer["pop"]
    assert pop["task_id"] == offer["task_id"] and pop["caller_number"] == ADA
    assert pop["customer"]["id"] == ada_id and pop["customer"]["name"] == "Ada Lovelace"
    assert pop["customer"]["phones"] == [ADA]
    assert pop["customer"]["emails"] == ["ada@analytical.example"]
    assert pop["customer"]["account_number"] == "AE-1843"
    assert pop["customer"]["notes"] == "Prefers e-mail"
    # The history holds the earlier call with its disposition and notes, not this one.
    (past,) = pop["recent_interactions"]
    assert past["id"] == earlier_id and past["id"] != pop["interaction_id"]
    assert past["disposition"] == "resolved" and past["notes"] == "Asked about invoice 42"
    # The pop was made in the call path: the offer needed no store lookup.
    assert desk.runtime.desk.pops.store_builds == 0

    ack = await alice.call("accept", {"reservation_id": offer["reservation_id"]})
    assert ack["ok"] and ack["reservation"]["state"] == "accepted", ack
    await alice.next_event("reservation", lambda d: d["state"] == "accepted")
    mine = f"agent:{desk.alice}"
    assigned = await alice.next_event("task", lambda d: d["change"] == "assigned", room=mine)
    assert assigned["data"]["pop"]["customer"]["name"] == "Ada Lovelace"
    # The queue's room (the supervisors) hears of it too, without the customer's
    # record; the agent is not in it and gets the task only in its own room.
    queued = await sue.next_event("task", lambda d: d["change"] == "assigned", room="queue:support")
    assert "pop" not in queued["data"] and queued["data"]["agent_id"] == desk.alice
    assert {e["room"] for e in alice.envelopes if e["type"] == "task"} == {mine}

    def connected(data: dict[str, Any]) -> bool:
        devices = {ch["device"] for ch in data["call"]["channels"]}
        return data["call"]["bridged"] and devices == {"PJSIP/trunk", "PJSIP/1001"}

    bridged = await alice.next_event("call", connected, room=mine)
    assert bridged["data"]["task_id"] == offer["task_id"]
    assert bridged["data"]["agent_ids"] == [desk.alice]
    assert bridged["data"]["call"]["caller"]["number"] == ADA

    await desk.sim.customer_hangup(caller.name)
    ended = await alice.next_event("call", lambda d: d["event"] == "ended", room=mine)
    assert ended["data"]["call"]["id"] == bridged["data"]["call"]["id"]
    assert ended["data"]["task_id"] == offer["task_id"]
    assert ended["data"]["agent_ids"] == [desk.alice]
    await alice.next_event("task", lambda d: d["change"] == "wrapping", room=mine)
    await alice.next_event("task", lambda d: d["change"] == "completed", room=mine)


async def test_an_unknown_caller_pops_with_the_number_and_no_customer(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    await alice.call("set_state", {"state": "available"})
    await desk.sim.inbound_call("+15550199999", "Somebody")
    offer = (await alice.next_event("offer"))["data"]
    assert offer["pop"]["customer"] is None
    assert offer["pop"]["caller_number"] == "+15550199999"
    assert offer["pop"]["recent_interactions"] == []
    assert isinstance(offer["pop"]["interaction_id"], int)


async def test_an_agent_who_connects_while_offered_finds_the_offer_and_pop_in_the_hello(
    desk: DeskStack,
) -> None:
    await seed_ada(desk)
    first = await desk.connect("alice")
    await first.call("set_state", {"state": "available"})
    await desk.sim.inbound_call(ADA, "Ada Lovelace")
    offer = (await first.next_event("offer"))["data"]
    second = await desk.connect("alice")  # a second tab, or after a reload
    (pending,) = second.hello["snapshot"]["offers"]
    assert pending["reservation_id"] == offer["reservation_id"]
    assert pending["pop"] == offer["pop"]


async def test_an_email_task_pops_with_the_thread(desk: DeskStack) -> None:
    ada_id, _ = await seed_ada(desk)
    alice = await desk.connect("alice")
    await alice.call("set_state", {"state": "available"})
    message = EmailMessage()
    message["From"] = "Ada Lovelace <ada@analytical.example>"
    message["To"] = "help@support.example"
    message["Subject"] = "Invoice <b>42</b>"
    message["Message-ID"] = "<q1@analytical.example>"
    message.set_content("Hello,\n<script>alert(1)</script> is in my invoice.\n")
    raw = bytes(message)
    stored = await desk.runtime.mail_store.store_inbound(parse_email(raw), raw)
    assert desk.runtime.email is not None
    await desk.runtime.email.on_email(stored)

    offer = (await alice.next_event("offer", lambda d: d["channel"] == "email"))["data"]
    pop = offer["pop"]
    assert pop["customer"]["id"] == ada_id
    assert pop["interaction_id"] == stored.interaction_id
    (mail,) = pop["emails"]
    # Kept as sent: the page shows it as text.
    assert mail["subject"] == "Invoice <b>42</b>"
    assert "<script>alert(1)</script>" in mail["text"]
    assert offer["attributes"]["subject"] == "Invoice <b>42</b>"


async def test_an_auto_accepted_task_reaches_the_desk_with_its_pop_before_the_phone_rings(
    desk: DeskStack,
) -> None:
    await seed_ada(desk)
    routing = desk.runtime.routing
    assert routing is not None
    await routing.run(lambda r, now: r.update_agent(desk.alice, auto_accept=True, now=now))
    # Look at the simulator at the instant each envelope is published.
    rooms = desk.runtime.desk.rooms
    publish = rooms.publish
    ringing_when_sent: list[tuple[str, str, bool]] = []

    def watching(room: str, type: str, data: Any, at: float, **kwargs: Any) -> Any:
        ringing_when_sent.append((room, type, phone_rings(desk, "1001")))
        return publish(room, type, data, at, **kwargs)

    rooms.publish = watching  # type: ignore[method-assign]
    alice = await desk.connect("alice")
    await alice.call("set_state", {"state": "available"})
    await desk.sim.inbound_call(ADA, "Ada Lovelace")
    # No offer to answer: the task arrives assigned, with the pop.
    mine = f"agent:{desk.alice}"
    assigned = await alice.next_event("task", lambda d: d["change"] == "assigned", room=mine)
    assert assigned["data"]["pop"]["customer"]["name"] == "Ada Lovelace"
    await desk.sim.wait_for_channels(
        lambda chans: any(ch.name.startswith("PJSIP/1001-") for ch in chans)
    )
    assert (mine, "task", False) in ringing_when_sent
    assert not alice.of("offer")
