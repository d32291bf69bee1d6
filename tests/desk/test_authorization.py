"""Every client event is checked on the server: an agent acts only on their
own state and their own offers; a supervisor may force any agent's state.
Refusals change nothing and are audited."""

from __future__ import annotations

from tests.desk.conftest import DeskStack


def state_of(desk: DeskStack, agent_id: str) -> str:
    assert desk.runtime.routing is not None
    return desk.runtime.routing.router.agent(agent_id).state.value


async def test_an_agent_cannot_accept_or_reject_another_agents_offer(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    bob = await desk.connect("bob")
    await alice.call("set_state", {"state": "available"})
    await desk.sim.inbound_call("+15550100041", "Caller")
    offer = (await alice.next_event("offer"))["data"]
    rid = offer["reservation_id"]

    for verb in ("accept", "reject"):
        ack = await bob.call(verb, {"reservation_id": rid})
        assert ack["ok"] is False and ack["error"] == "forbidden", ack
    assert desk.runtime.routing is not None
    assert desk.runtime.routing.router.reservation(rid).state.value == "pending"
    # Bob never saw the offer: it went to Alice's room only.
    assert not bob.of("offer")
    denied = await desk.runtime.audit.query(actor=desk.bob, outcome="denied")
    assert {(r.action, r.subject) for r in denied} == {
        ("reservations.accept", desk.alice),
        ("reservations.reject", desk.alice),
    }

    ack = await alice.call("accept", {"reservation_id": rid})
    assert ack["ok"] and ack["reservation"]["state"] == "accepted", ack


async def test_an_agent_cannot_set_another_agents_state(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    ack = await alice.call("set_state", {"state": "available", "agent_id": desk.bob})
    assert ack["ok"] is False and ack["error"] == "forbidden", ack
    assert state_of(desk, desk.bob) == "offline"
    ack = await alice.call("end_wrap_up", {"agent_id": desk.bob})
    assert ack["ok"] is False and ack["error"] == "forbidden", ack
    # Naming herself is fine.
    ack = await alice.call("set_state", {"state": "available", "agent_id": desk.alice})
    assert ack["ok"] and ack["agent"]["state"] == "available", ack


async def test_a_supervisor_forces_an_agents_state_and_the_agent_sees_it(desk: DeskStack) -> None:
    sue = await desk.connect("sue")
    bob = await desk.connect("bob")
    await bob.call("set_state", {"state": "available"})
    ack = await sue.call("set_state", {"state": "break", "reason": "meeting", "agent_id": desk.bob})
    assert ack["ok"] and ack["agent"]["state"] == "break", ack
    forced = await bob.next_event("agent_state", lambda d: d["state"] == "break")
    assert forced["data"]["reason"] == "meeting"
    allowed = await desk.runtime.audit.query(actor=sue.hello["principal"]["id"], outcome="allowed")
    assert [(r.action, r.subject) for r in allowed] == [("agents.state", desk.bob)]


async def test_a_supervisor_without_an_agent_id_sets_their_own_state_only(
    desk: DeskStack,
) -> None:
    sue = await desk.connect("sue")
    sue_id = sue.hello["principal"]["id"]
    ack = await sue.call("set_state", {"state": "break", "reason": "x"})
    assert ack["ok"] and ack["agent"]["agent_id"] == sue_id, ack
    assert state_of(desk, desk.alice) == "offline" and state_of(desk, desk.bob) == "offline"


async def test_every_role_may_search_customers(desk: DeskStack) -> None:
    await desk.runtime.customers.create("Ada Lovelace", phones=["+15550100001"])
    for user in ("alice", "sue"):
        client = await desk.connect(user)
        ack = await client.call("search_customers", {"text": "lovelace"})
        assert ack["ok"] and [c["name"] for c in ack["customers"]] == ["Ada Lovelace"], ack
