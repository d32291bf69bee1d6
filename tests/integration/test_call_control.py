"""Call control end to end: HTTP API -> Callwright -> AMI over TCP -> the PBX
simulator, and the PBX's events back into the call model and the store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from callwright.runtime import Runtime
from cti.keys import CallControlKeys
from sim.pbx.server import PbxSimulator
from tests.integration.conftest import TOKEN, Stack, make_config

CUSTOMER = "+15550100001"


def devices(call: dict[str, Any]) -> set[str]:
    return {ch["device"] for ch in call["channels"]}


async def connect_inbound_to_agent(stack: Stack, agent: str = "1001") -> dict[str, Any]:
    """A customer calls in and waits; then (as routing will) Callwright sends
    the caller to an agent's device. Returns the bridged call."""
    customer = await stack.sim.inbound_call(CUSTOMER, "Ada Lovelace")
    calls = await stack.wait_calls(lambda cs: any(c["context"] == "callwright-hold" for c in cs))
    call = next(c for c in calls if c["context"] == "callwright-hold")
    assert call["caller"] == {"number": CUSTOMER, "name": "Ada Lovelace"}
    assert [ch["name"] for ch in call["channels"]] == [customer.name]
    await stack.runtime.calls.redirect(call["id"], "callwright-agent", agent)
    calls = await stack.wait_calls(
        lambda cs: any(c["id"] == call["id"] and c["bridged"] for c in cs)
    )
    return next(c for c in calls if c["id"] == call["id"])


async def test_an_inbound_call_is_tracked_and_stored(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack)
    assert call["state"] == "up"
    assert devices(call) == {"PJSIP/trunk", "PJSIP/1001"}
    async with stack.runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT caller_num, answered_at FROM call_records WHERE id = :id"),
                {"id": call["id"]},
            )
        ).one()
    assert row.caller_num == CUSTOMER
    assert row.answered_at is not None


async def test_hangup_ends_the_call_with_its_cause(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack)
    status, body = await stack.post(f"/api/calls/{call['id']}/hangup")
    assert status == 202, body
    await stack.wait_calls(lambda cs: all(c["id"] != call["id"] for c in cs))
    await stack.sim.wait_for_channels(lambda chans: not chans)
    await stack.runtime.calls.drain()
    async with stack.runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT state, ended_at, hangup_cause FROM call_records WHERE id = :id"),
                {"id": call["id"]},
            )
        ).one()
    assert row.state == "ended"
    assert row.ended_at is not None
    assert row.hangup_cause == 16


async def test_click_to_dial_rings_the_agent_first_then_the_customer(stack: Stack) -> None:
    body = {"agent_device": "1002", "number": "5550100002", "idempotency_key": "c2d-1"}
    status, result = await stack.post("/api/calls", body)
    assert status == 202, result
    calls = await stack.wait_calls(
        lambda cs: any(c["bridged"] and "PJSIP/1002" in devices(c) for c in cs)
    )
    call = next(c for c in calls if "PJSIP/1002" in devices(c))
    # The agent's channel was created first: it is the call's first channel.
    assert call["channels"][0]["device"] == "PJSIP/1002"
    assert call["channels"][1]["device"] == "PJSIP/trunk"
    assert call["state"] == "up"


async def test_the_same_idempotency_key_places_one_call(stack: Stack) -> None:
    body = {"agent_device": "1001", "number": "5550100003", "idempotency_key": "dup-key"}
    first, second = await asyncio.gather(
        stack.post("/api/calls", body), stack.post("/api/calls", body)
    )
    statuses = sorted([first[0], second[0]])
    assert statuses == [200, 202]
    assert sorted([first[1]["repeated"], second[1]["repeated"]]) == [False, True]
    third = await stack.post("/api/calls", body)
    assert third[0] == 200 and third[1]["repeated"] is True
    await stack.wait_calls(lambda cs: any(c["bridged"] for c in cs))
    originates = [a for a in stack.sim.ami_actions_received if a.name == "Originate"]
    assert len(originates) == 1


async def test_hold_and_unhold(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack)
    status, body = await stack.post(f"/api/calls/{call['id']}/hold")
    assert status == 202, body
    held = await stack.wait_calls(lambda cs: any(c["id"] == call["id"] and c["held"] for c in cs))
    assert next(c for c in held if c["id"] == call["id"])["state"] == "held"
    status, body = await stack.post(f"/api/calls/{call['id']}/hold", {"hold": False})
    assert status == 202, body
    await stack.wait_calls(
        lambda cs: any(
            c["id"] == call["id"] and not c["held"] and c["bridged"] and c["state"] == "up"
            for c in cs
        )
    )


async def test_blind_transfer_moves_the_customer_to_another_agent(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack, "1001")
    status, body = await stack.post(
        f"/api/calls/{call['id']}/transfer",
        {"target": "1002", "kind": "blind", "idempotency_key": "bt-1"},
    )
    assert status == 202, body
    calls = await stack.wait_calls(
        lambda cs: any(
            c["id"] == call["id"] and c["bridged"] and devices(c) == {"PJSIP/trunk", "PJSIP/1002"}
            for c in cs
        )
    )
    after = next(c for c in calls if c["id"] == call["id"])
    assert after["transferred_to"] == "1002"


async def test_attended_transfer_completed(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack, "1001")
    status, body = await stack.post(
        f"/api/calls/{call['id']}/transfer",
        {"target": "1003", "kind": "attended", "idempotency_key": "at-1"},
    )
    assert status == 202, body
    # Agent 1001 consults 1003 (answered) while the customer is held.
    await stack.wait_calls(
        lambda cs: any(
            c["held"]
            and any(ch["device"] == "PJSIP/1003" and ch["bridge_id"] for ch in c["channels"])
            for c in cs
        )
    )
    atxfers = [a for a in stack.sim.ami_actions_received if a.name == "Atxfer"]
    assert [a.get("Exten") for a in atxfers] == ["1003#"]  # '#': dial without digit timeout
    status, body = await stack.post(f"/api/calls/{call['id']}/transfer/complete")
    assert status == 202, body
    await stack.wait_calls(
        lambda cs: any(c["bridged"] and devices(c) == {"PJSIP/trunk", "PJSIP/1003"} for c in cs)
    )
    await stack.sim.wait_for_channels(
        lambda chans: not any(ch.name.startswith("PJSIP/1001-") for ch in chans)
    )


async def test_attended_transfer_cancelled_returns_to_the_customer(stack: Stack) -> None:
    call = await connect_inbound_to_agent(stack, "1001")
    status, body = await stack.post(
        f"/api/calls/{call['id']}/transfer",
        {"target": "1003", "kind": "attended", "idempotency_key": "at-2"},
    )
    assert status == 202, body
    await stack.sim.wait_for_channels(
        lambda chans: any(ch.name.startswith("PJSIP/1003-") for ch in chans)
    )
    status, body = await stack.post(f"/api/calls/{call['id']}/transfer/cancel")
    assert status == 202, body
    await stack.sim.wait_for_channels(
        lambda chans: not any(ch.name.startswith("PJSIP/1003-") for ch in chans)
    )
    await stack.wait_calls(
        lambda cs: any(
            c["id"] == call["id"]
            and c["bridged"]
            and devices(c) == {"PJSIP/trunk", "PJSIP/1001"}
            and not c["held"]
            for c in cs
        )
    )


async def test_a_retry_after_a_restart_places_no_second_call(
    sim: PbxSimulator, tmp_path: Path
) -> None:
    """The keys are in the store: the same request after Callwright restarted
    gets the first outcome, and the PBX sees one Originate."""
    body = {"agent_device": "1001", "number": "5550100009", "idempotency_key": "c2d-restart"}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answers = []
    for _ in range(2):  # the first run of Callwright, then the restarted one
        runtime = Runtime(make_config(sim.port, tmp_path / "data"))
        await runtime.start()
        try:
            await runtime.link.wait_ready(10)
            async with aiohttp.ClientSession(headers=headers) as http:
                async with http.post(f"{runtime.url}/api/calls", json=body) as resp:
                    answers.append((resp.status, await resp.json()))
        finally:
            await runtime.stop()
    (first_status, first), (second_status, second) = answers
    assert (first_status, first["repeated"]) == (202, False), first
    assert (second_status, second["repeated"]) == (200, True), second
    assert {k: v for k, v in second.items() if k != "repeated"} == {
        k: v for k, v in first.items() if k != "repeated"
    }
    originates = [a for a in sim.ami_actions_received if a.name == "Originate"]
    assert len(originates) == 1


async def test_a_key_left_in_flight_by_a_crash_is_refused_not_sent_again(
    sim: PbxSimulator, tmp_path: Path
) -> None:
    """Callwright died after claiming a key and before storing the outcome: the
    PBX may or may not have the call. A retry is refused (409), not re-sent."""
    runtime = Runtime(make_config(sim.port, tmp_path / "data"))
    await runtime.start()
    try:
        await runtime.link.wait_ready(10)
        assert await CallControlKeys(runtime.engine).claim("c2d-crashed") is None
        body = {"agent_device": "1001", "number": "5550100010", "idempotency_key": "c2d-crashed"}
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(f"{runtime.url}/api/calls", json=body) as resp:
                status, answer = resp.status, await resp.json()
    finally:
        await runtime.stop()
    assert (status, answer["error"]) == (409, "outcome_unknown"), answer
    assert "c2d-crashed" in answer["message"] and "check the active calls" in answer["message"]
    assert not [a for a in sim.ami_actions_received if a.name == "Originate"]
