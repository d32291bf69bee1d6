"""Voice routing end to end over the simulator: a call reaches the holding
point, becomes a task, is offered to an agent, accepted, connected to the
agent's phone, hung up, wrapped up; abandons, missed offers and restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from routing import model
from sim.pbx.server import PbxSimulator
from tests.integration.conftest import (
    TOKEN,
    offered_to,
    queue_stats,
    seed_agents,
    start_runtime,
)


async def test_a_call_is_offered_accepted_connected_and_wrapped_up(routed) -> None:
    stack, recorder, agents = routed
    alice = agents["1001"]
    status, body = await stack.post(f"/api/agents/{alice}/state", {"state": "available"})
    assert status == 200 and body["state"] == "available", body

    customer = await stack.sim.inbound_call("+15550100001", "Ada Lovelace")
    offer = await recorder.wait_for(offered_to(alice))
    assert isinstance(offer, model.ReservationOffered)
    # The offer goes out before any phone rings.
    assert not any(ch.name.startswith("PJSIP/1001-") for ch in stack.sim.channels())

    status, body = await stack.post(f"/api/reservations/{offer.reservation_id}/accept")
    assert status == 200 and body["state"] == "accepted", body
    calls = await stack.wait_calls(
        lambda cs: any(
            c["bridged"] and {ch["device"] for ch in c["channels"]} == {"PJSIP/trunk", "PJSIP/1001"}
            for c in cs
        )
    )
    call_id = calls[0]["id"]

    await stack.sim.customer_hangup(customer.name)
    await recorder.wait_for(lambda e: isinstance(e, model.TaskCompleted))
    stats = await queue_stats(stack)
    assert stats["offered"] == 1 and stats["answered"] == 1 and stats["handled"] == 1
    assert stats["abandoned"] == 0 and stats["waiting"] == 0
    interaction = await stack.runtime.interactions.by_call_id(call_id)
    assert interaction is not None
    assert interaction.agent_id == int(alice)
    assert interaction.answered_at is not None and interaction.ended_at is not None


async def test_a_caller_who_hangs_up_while_waiting_is_abandoned(routed) -> None:
    stack, recorder, _ = routed
    customer = await stack.sim.inbound_call("+15550100002", "Alan Turing")
    await recorder.wait_for(lambda e: isinstance(e, model.TaskQueued))
    assert (await queue_stats(stack))["waiting"] == 1
    await stack.sim.customer_hangup(customer.name)
    canceled = await recorder.wait_for(lambda e: isinstance(e, model.TaskCanceled))
    assert isinstance(canceled, model.TaskCanceled) and canceled.abandoned
    stats = await queue_stats(stack)
    assert stats["abandoned"] == 1 and stats["waiting"] == 0


async def test_an_agent_whose_phone_does_not_answer_loses_the_call_to_the_next(routed) -> None:
    stack, recorder, agents = routed
    alice, bob = agents["1001"], agents["1002"]
    stack.sim.set_device("1001", busy=True)
    await stack.post(f"/api/agents/{alice}/state", {"state": "available"})
    await stack.sim.inbound_call("+15550100003", "Grace Hopper")
    offer = await recorder.wait_for(offered_to(alice))
    await stack.post(f"/api/reservations/{offer.reservation_id}/accept")
    # Alice's phone is busy: the caller returns to the holding point and the
    # task waits again, never to be offered to Alice again.
    await recorder.wait_for(lambda e: isinstance(e, model.TaskRequeued))
    await stack.post(f"/api/agents/{bob}/state", {"state": "available"})
    second = await recorder.wait_for(offered_to(bob))
    await stack.post(f"/api/reservations/{second.reservation_id}/accept")
    await stack.wait_calls(
        lambda cs: any(
            c["bridged"] and "PJSIP/1002" in {ch["device"] for ch in c["channels"]} for c in cs
        )
    )
    assert not [e for e in recorder.events if offered_to(alice)(e) and e is not offer]


async def test_a_rejected_offer_goes_to_the_next_agent(routed) -> None:
    stack, recorder, agents = routed
    alice, bob = agents["1001"], agents["1002"]
    await stack.post(f"/api/agents/{alice}/state", {"state": "available"})
    await stack.sim.inbound_call("+15550100004", "Edsger Dijkstra")
    offer = await recorder.wait_for(offered_to(alice))
    status, body = await stack.post(f"/api/reservations/{offer.reservation_id}/reject")
    assert status == 200 and body["state"] == "rejected"
    await stack.post(f"/api/agents/{bob}/state", {"state": "available"})
    await recorder.wait_for(offered_to(bob))


async def test_an_agent_on_a_call_not_placed_by_routing_gets_no_voice_offer(routed) -> None:
    stack, recorder, agents = routed
    alice, bob = agents["1001"], agents["1002"]
    await stack.post(f"/api/agents/{alice}/state", {"state": "available"})
    # Alice dials out herself (click-to-dial): her phone is busy.
    await stack.post(
        "/api/calls", {"agent_device": "1001", "number": "5550199999", "idempotency_key": "out-1"}
    )
    await stack.wait_calls(lambda cs: any(c["bridged"] for c in cs))

    async def alice_busy() -> None:
        while True:
            _, body = await stack.get(f"/api/agents/{alice}")
            if body["external_busy"]:
                return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(alice_busy(), 10)
    await stack.sim.inbound_call("+15550100005", "Barbara Liskov")
    await recorder.wait_for(lambda e: isinstance(e, model.TaskQueued))
    await stack.post(f"/api/agents/{bob}/state", {"state": "available"})
    await recorder.wait_for(offered_to(bob))
    assert not any(offered_to(alice)(e) for e in recorder.events)


async def test_after_a_restart_waiting_tasks_and_open_offers_come_back(
    sim: PbxSimulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    agents = await seed_agents(f"sqlite+aiosqlite:///{data / 'callwright.db'}")
    alice = agents["1001"]
    runtime, recorder = await start_runtime(sim, data)
    try:
        assert runtime.routing is not None
        await runtime.routing.set_agent_state(alice, "available")
        await sim.inbound_call("+15550100006", "Ken Thompson")
        offer = await recorder.wait_for(offered_to(alice))
        await sim.inbound_call("+15550100007", "Dennis Ritchie")
        queued = [e for e in recorder.events if isinstance(e, model.TaskQueued)]
        await recorder.wait_for(lambda e: isinstance(e, model.TaskQueued) and e is not queued[0])
        before = {
            t: runtime.routing.router.task(t).arrived_at for t in runtime.routing.router.task_ids()
        }
    finally:
        await runtime.stop()

    runtime, recorder = await start_runtime(sim, data)
    try:
        assert runtime.routing is not None
        router = runtime.routing.router
        after = {t: router.task(t).arrived_at for t in router.task_ids()}
        assert after == before and len(after) == 2
        reoffered = router.reservation(router.task(offer.task_id).reservation_id or "")
        assert reoffered.agent_id == alice and reoffered.state.value == "pending"
        # The re-offered reservation is accepted and the caller reaches Alice.
        http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
        async with http:
            async with http.post(f"{runtime.url}/api/reservations/{reoffered.id}/accept") as resp:
                assert resp.status == 200
        await sim.wait_for_channels(
            lambda chans: any(ch.name.startswith("PJSIP/1001-") and ch.bridge_id for ch in chans)
        )
    finally:
        await runtime.stop()
