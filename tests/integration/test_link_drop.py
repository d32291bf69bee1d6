"""The AMI link dropped mid-call: Callwright reconnects, resyncs its model from
the PBX, and never re-sends an action that was in flight."""

from __future__ import annotations

import asyncio

from cti.link import LinkState
from tests.integration.conftest import Stack


def sim_channel_names(stack: Stack) -> set[str]:
    return {ch.name for ch in stack.sim.channels()}


def model_channel_names(stack: Stack) -> set[str]:
    return {ch.name for call in stack.runtime.calls.calls() for ch in call.channels}


async def test_after_a_drop_the_model_matches_the_pbx_and_the_originate_was_not_resent(
    stack: Stack,
) -> None:
    # Two calls up before the drop.
    first = await stack.sim.inbound_call("+15550100001", "Ada Lovelace")
    await stack.sim.inbound_call("+15550100002", "Alan Turing")
    await stack.wait_calls(lambda cs: len(cs) == 2)

    # The PBX stops answering; an originate goes out and gets no reply.
    stack.sim.freeze_connections()
    body = {"agent_device": "1001", "number": "5550100003", "idempotency_key": "in-flight"}
    pending = asyncio.create_task(stack.post("/api/calls", body))

    async def in_flight() -> None:
        while not stack.runtime.link._pending:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(in_flight(), 10)

    # While the link is down the world changes: one caller hangs up, a new one calls.
    await stack.sim.drop_connections()
    stack.sim.freeze_connections(False)
    status, result = await pending
    assert status == 502, result
    assert result["error"] == "pbx_link_lost"
    assert "not re-sent" in result["message"]

    await stack.sim.customer_hangup(first.name)
    await stack.sim.inbound_call("+15550100004", "Grace Hopper")

    await stack.runtime.link.wait_ready(10)
    await stack.runtime.calls.drain()
    assert model_channel_names(stack) == sim_channel_names(stack)
    callers = sorted(c.caller.number or "" for c in stack.runtime.calls.calls())
    assert callers == ["+15550100002", "+15550100004"]

    # A retry with the same key is refused rather than risking a second call.
    status, result = await stack.post("/api/calls", body)
    assert status == 409 and result["error"] == "outcome_unknown"
    assert sum(a.name == "Originate" for a in stack.sim.ami_actions_received) <= 1
    assert stack.runtime.link.stats.actions_lost >= 1


async def test_healthz_reports_the_link_state(stack: Stack) -> None:
    status, body = await stack.get("/healthz")
    assert status == 200
    assert body == {
        "status": "ok",
        "ami": "ready",
        "ami_connected": True,
        "resyncing": False,
        "store": "ok",
        "active_calls": 0,
    }
    states: list[LinkState] = []
    stack.runtime.link._on_state = states.append
    await stack.sim.drop_connections()

    async def back() -> None:
        while not (states and states[-1] is LinkState.READY):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(back(), 10)
    assert states[0] is LinkState.DISCONNECTED
    assert states[-2:] == [LinkState.RESYNCING, LinkState.READY]


async def test_healthz_says_degraded_while_the_pbx_is_gone(stack: Stack) -> None:
    await stack.sim.stop()

    async def down() -> dict:
        while True:
            _, body = await stack.get("/healthz")
            if body["ami"] != "ready":
                return body
            await asyncio.sleep(0.02)

    body = await asyncio.wait_for(down(), 10)
    assert body["status"] == "degraded"
    assert body["ami_connected"] is False
    status, result = await stack.post(
        "/api/calls", {"agent_device": "1001", "number": "5550100003", "idempotency_key": "k"}
    )
    assert status == 503 and result["error"] == "pbx_not_connected"
