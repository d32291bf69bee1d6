"""Click-to-dial calls in the CRM, over the real stack: the call from the
agent's phone to a customer's number gets an outbound interaction (the
customer found by the number), the desk's call events name it, it ends with
the call, and the agent wraps it up like any other."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.desk.conftest import DeskStack

ADA = "+15550100001"


async def request(
    desk: DeskStack, user: str, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {desk.tokens[user]}"}
    async with aiohttp.ClientSession() as http:
        async with http.request(
            method, desk.runtime.url + path, json=body, headers=headers
        ) as resp:
            return resp.status, await resp.json()


async def test_a_click_to_dial_call_is_an_outbound_interaction_the_agent_wraps_up(
    desk: DeskStack,
) -> None:
    ada = await desk.runtime.customers.create("Ada Lovelace", phones=[ADA])
    alice = await desk.connect("alice")
    status, body = await request(
        desk,
        "alice",
        "POST",
        "/api/calls",
        {"agent_device": "1001", "number": ADA, "idempotency_key": "dial-ada-1"},
    )
    assert status == 202, body

    bridged = await alice.next_event(
        "call", lambda d: d["event"] == "bridged" and d["interaction_id"] is not None
    )
    call_id = bridged["data"]["call"]["id"]
    interaction_id = bridged["data"]["interaction_id"]
    assert bridged["data"]["task_id"] is None
    stored = await desk.runtime.interactions.get(interaction_id)
    assert stored is not None
    assert (stored.channel, stored.direction, stored.call_id) == ("voice", "outbound", call_id)
    assert stored.customer_id == ada.id and stored.agent_id == int(desk.alice)
    assert stored.answered_at is not None and stored.ended_at is None

    status, body = await request(desk, "alice", "POST", f"/api/calls/{call_id}/hangup")
    assert status == 202, body
    ended = await alice.next_event("call", lambda d: d["event"] == "ended")
    assert ended["data"]["interaction_id"] == interaction_id
    stored = await desk.runtime.interactions.get(interaction_id)
    assert stored is not None and stored.ended_at is not None

    path = f"/api/interactions/{interaction_id}/disposition"
    status, body = await request(desk, "bob", "POST", path, {"disposition": "resolved"})
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await request(
        desk, "alice", "POST", path, {"disposition": "no_answer", "notes": "Voicemail"}
    )
    assert status == 200, body
    status, record = await request(desk, "alice", "GET", f"/api/customers/{ada.id}")
    assert status == 200
    (latest,) = record["recent_interactions"]
    assert (latest["id"], latest["direction"], latest["disposition"]) == (
        interaction_id,
        "outbound",
        "no_answer",
    )


async def test_a_routed_inbound_call_is_not_taken_for_a_click_to_dial_one(
    desk: DeskStack,
) -> None:
    alice = await desk.connect("alice")
    await alice.call("set_state", {"state": "available"})
    await desk.sim.inbound_call(ADA, "Ada")
    offer = (await alice.next_event("offer"))["data"]
    await alice.call("accept", {"reservation_id": offer["reservation_id"]})
    bridged = await alice.next_event("call", lambda d: d["event"] == "bridged")
    assert bridged["data"]["task_id"] == offer["task_id"]
    assert bridged["data"]["interaction_id"] is None
    (interaction,) = [
        i
        for i in [await desk.runtime.interactions.by_call_id(bridged["data"]["call"]["id"])]
        if i is not None
    ]
    assert interaction.direction == "inbound"


async def test_a_click_to_dial_call_nobody_answers_is_recorded_unanswered(
    desk: DeskStack,
) -> None:
    number = "+15550100002"
    desk.sim.set_device(number, auto_answer=False)  # the customer's phone just rings
    alice = await desk.connect("alice")
    status, body = await request(
        desk,
        "alice",
        "POST",
        "/api/calls",
        {"agent_device": "1001", "number": number, "idempotency_key": "dial-nobody"},
    )
    assert status == 202, body
    ringing = await alice.next_event("call", lambda d: d["interaction_id"] is not None)
    call_id = ringing["data"]["call"]["id"]
    assert not ringing["data"]["call"]["bridged"]
    interaction = await desk.runtime.interactions.get(ringing["data"]["interaction_id"])
    assert interaction is not None and interaction.customer_id is None
    assert interaction.answered_at is None

    await desk.sim.device_hangup("1001")  # Alice gives up and puts the phone down
    ended = await alice.next_event("call", lambda d: d["event"] == "ended")
    assert ended["data"]["call"]["id"] == call_id
    interaction = await desk.runtime.interactions.get(interaction.id)
    assert interaction is not None
    assert interaction.answered_at is None and interaction.ended_at is not None
    status, body = await request(
        desk,
        "alice",
        "POST",
        f"/api/interactions/{interaction.id}/disposition",
        {"disposition": "no_answer"},
    )
    assert status == 200, body
