"""Malformed, oversized or unknown client events get an error ack and change
nothing; a flooding client is throttled while others carry on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_desk.schemas import MAX_PAYLOAD_BYTES
from tests.desk.conftest import DeskClient, DeskStack


def state_of(desk: DeskStack, agent_id: str) -> str:
    assert desk.runtime.routing is not None
    return desk.runtime.routing.router.agent(agent_id).state.value


async def offered(desk: DeskStack, client: DeskClient) -> dict[str, Any]:
    await client.call("set_state", {"state": "available"})
    await desk.sim.inbound_call("+15550100031", "Caller")
    return dict((await client.next_event("offer"))["data"])


BAD: list[tuple[str, Any, str]] = [
    ("set_state", {"state": 1}, "state: expected a string"),
    ("set_state", {"state": "asleep"}, "state: expected one of available, break, offline"),
    ("set_state", {"state": "available", "colour": "red"}, "unknown field(s): colour"),
    ("set_state", ["available"], "payload: expected exactly one JSON object"),
    ("set_state", "available", "payload: expected exactly one JSON object"),
    ("set_state", None, "payload: expected exactly one JSON object"),
    ("accept", {"reservation_id": 7}, "reservation_id: expected a string"),
    ("accept", {}, "reservation_id: required"),
    ("accept", {"reservation_id": "x" * 65}, "reservation_id: at most 64 characters"),
    ("reject", {"reservation_id": "r", "why": "busy"}, "unknown field(s): why"),
    ("resync", {"rooms": {"queue:support": "3"}}, "sequence number"),
    ("search_customers", {"text": ""}, "text: at least 1 characters"),
]


@pytest.mark.parametrize(("event", "payload", "message"), BAD)
async def test_a_malformed_event_gets_an_error_ack_and_changes_nothing(
    desk: DeskStack, event: str, payload: Any, message: str
) -> None:
    alice = await desk.connect("alice")
    offer = await offered(desk, alice)
    seqs = desk.runtime.desk.rooms.seqs(list(alice.hello["rooms"]))
    ack = await alice.call(event, payload)
    assert ack["ok"] is False and ack["error"] == "invalid_payload", ack
    assert message in ack["message"]
    assert state_of(desk, desk.alice) == "busy"
    assert desk.runtime.routing is not None
    reservation = desk.runtime.routing.router.reservation(offer["reservation_id"])
    assert reservation.state.value == "pending"
    assert desk.runtime.desk.rooms.seqs(list(seqs)) == seqs


async def test_an_oversized_event_is_refused_unread(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    ack = await alice.call(
        "set_state", {"state": "available", "reason": "x" * (MAX_PAYLOAD_BYTES + 1)}
    )
    assert ack["ok"] is False and ack["error"] == "payload_too_large", ack
    assert state_of(desk, desk.alice) == "offline"


async def test_a_message_beyond_the_transport_limit_closes_only_that_connection(
    desk: DeskStack,
) -> None:
    alice = await desk.connect("alice")
    bob = await desk.connect("bob")
    await alice.sio.emit(
        "set_state", {"state": "available", "reason": "x" * 100_000}, namespace="/desk"
    )
    await alice.wait(lambda: alice.disconnects)
    assert state_of(desk, desk.alice) == "offline"
    ack = await bob.call("set_state", {"state": "available"})
    assert ack["ok"], ack


async def test_an_unknown_event_gets_an_error_ack(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    ack = await alice.call("hangup_everyone", {})
    assert ack == {
        "ok": False,
        "error": "unknown_event",
        "message": "no client event 'hangup_everyone'",
    }


async def test_acting_on_what_does_not_exist_is_refused(desk: DeskStack) -> None:
    sue = await desk.connect("sue")
    ack = await sue.call("accept", {"reservation_id": "r-does-not-exist"})
    assert ack["ok"] is False and ack["error"] == "not_found", ack
    ack = await sue.call("set_state", {"state": "available", "agent_id": "424242"})
    assert ack["ok"] is False and ack["error"] == "not_found", ack


async def test_a_flooding_client_is_throttled_and_another_clients_events_still_flow(
    desk: DeskStack,
) -> None:
    namespace = desk.runtime.desk.namespace
    assert namespace is not None
    namespace.rate_clock = lambda: 1000.0  # time stands still: no bucket refills
    flooder = await desk.connect("bob")
    alice = await desk.connect("alice")
    states = ["available", "offline"] * 100
    acks = await asyncio.gather(*(flooder.call("set_state", {"state": s}) for s in states))
    ok = [a for a in acks if a["ok"]]
    limited = [a for a in acks if not a["ok"]]
    assert len(ok) == namespace.burst == 40
    assert {a["error"] for a in limited} == {"rate_limited"} and len(limited) == 160
    # The refused events never reached the services: one audit row per event run.
    rows = await desk.runtime.audit.query(actor=desk.bob, action="agents.state", limit=500)
    assert len(rows) == len(ok)

    # Alice has her own budget: her event runs and its room event reaches her.
    ack = await alice.call("set_state", {"state": "break", "reason": "coffee"})
    assert ack["ok"], ack
    await alice.next_event("agent_state", lambda d: d["state"] == "break")
