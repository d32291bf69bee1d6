"""Bad requests get a JSON error with a fitting status and change nothing."""

from __future__ import annotations

import aiohttp

from tests.integration.conftest import Stack


def originates(stack: Stack) -> int:
    return sum(a.name == "Originate" for a in stack.sim.ami_actions_received)


async def test_the_api_needs_a_valid_token(stack: Stack) -> None:
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(stack.url + "/api/calls") as resp:
            assert resp.status == 401
            assert (await resp.json())["error"] == "unauthenticated"
        async with anonymous.get(
            stack.url + "/api/calls", headers={"Authorization": "Bearer wrong"}
        ) as resp:
            assert resp.status == 401
        async with anonymous.post(
            stack.url + "/api/calls",
            json={"agent_device": "1001", "number": "5550100001", "idempotency_key": "x"},
        ) as resp:
            assert resp.status == 401
        async with anonymous.get(stack.url + "/healthz") as resp:
            assert resp.status == 200
    assert originates(stack) == 0


async def test_bad_json_is_a_400_naming_the_problem(stack: Stack) -> None:
    async with stack.http.post(
        stack.url + "/api/calls",
        data=b'{"agent_device": "1001",',
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"] == "invalid_request"
    assert body["message"].startswith("body: expected JSON")
    status, body = await stack.post("/api/calls", ["not", "an", "object"])
    assert status == 400 and body["message"] == "body: expected a JSON object"
    assert originates(stack) == 0


async def test_missing_and_malformed_fields_are_named(stack: Stack) -> None:
    status, body = await stack.post("/api/calls", {"number": "5550100001", "idempotency_key": "a"})
    assert status == 400 and body["message"] == "agent_device: required"
    status, body = await stack.post("/api/calls", {"agent_device": "1001", "number": "5550100001"})
    assert status == 400 and body["message"].startswith("idempotency_key: required")
    status, body = await stack.post(
        "/api/calls",
        {"agent_device": "1001", "number": "555\r\n\r\nAction: Hangup", "idempotency_key": "b"},
    )
    assert status == 400 and body["message"].startswith("number: expected a phone number")
    status, body = await stack.post(
        "/api/calls", {"agent_device": "../1001", "number": "5550100001", "idempotency_key": "c"}
    )
    assert status == 400 and body["message"].startswith("agent_device: expected a device name")
    assert originates(stack) == 0


async def test_an_unknown_call_is_a_404(stack: Stack) -> None:
    for path in ("/api/calls/nope", "/api/calls/nope/hangup", "/api/calls/nope/hold"):
        method = stack.get if path.count("/") == 3 else stack.post
        status, body = await method(path)
        assert status == 404, path
        assert body["error"] == "unknown_call"
        assert body["message"] == "no active call 'nope'"


async def test_unknown_routes_and_methods_answer_json(stack: Stack) -> None:
    status, body = await stack.get("/api/nothing-here")
    assert status == 404 and body["error"] == "not_found"
    async with stack.http.delete(stack.url + "/api/calls") as resp:
        assert resp.status == 405
        assert (await resp.json())["error"] == "method_not_allowed"


async def test_an_oversized_body_is_refused(stack: Stack) -> None:
    huge = {"agent_device": "1001", "number": "5550100001", "idempotency_key": "x" * 100_000}
    status, body = await stack.post("/api/calls", huge)
    assert status == 413 and body["error"] == "request_body_too_large"
    assert originates(stack) == 0


async def test_a_transfer_with_a_bad_kind_is_refused_before_anything_is_sent(stack: Stack) -> None:
    await stack.sim.inbound_call("+15550100001", "Ada Lovelace")
    calls = await stack.wait_calls(lambda cs: len(cs) == 1)
    sent = len(stack.sim.ami_actions_received)
    status, body = await stack.post(
        f"/api/calls/{calls[0]['id']}/transfer",
        {"target": "1002", "kind": "sideways", "idempotency_key": "t"},
    )
    assert status == 400 and body["message"] == "kind: expected 'blind' or 'attended'"
    # Nothing of a transfer reached the PBX (voice routing may still be reading the new
    # caller's variables meanwhile: a Getvar is not the transfer's).
    after = [a.name for a in stack.sim.ami_actions_received[sent:]]
    assert not set(after) & {"BlindTransfer", "Atxfer", "Redirect", "Setvar", "Bridge"}, after
