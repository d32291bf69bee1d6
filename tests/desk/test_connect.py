"""Connecting to /desk: a session token is required; each role gets its rooms
and a hello with a snapshot."""

from __future__ import annotations

import pytest
import socketio

from tests.desk.conftest import TOKEN, DeskStack


async def refused(desk: DeskStack, auth: object) -> str:
    client = desk.client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(auth)
    assert not client.hellos
    assert desk.runtime.desk.namespace is not None
    assert desk.runtime.desk.namespace.connections == {}
    (error,) = client.connect_errors
    return str(error["message"])


@pytest.mark.parametrize("auth", [None, {}, {"token": ""}, {"token": 42}, {"token": "forged"}])
async def test_a_connection_without_a_valid_token_is_refused(desk: DeskStack, auth: object) -> None:
    assert await refused(desk, auth) == "unauthorized"


async def test_a_token_of_another_signing_key_or_a_logged_out_agent_is_refused(
    desk: DeskStack,
) -> None:
    alice = desk.tokens["alice"]
    assert await refused(desk, {"token": alice[:-4] + "AAAA"}) == "unauthorized"
    await desk.runtime.agents.revoke_sessions(int(desk.alice))
    assert await refused(desk, {"token": alice}) == "unauthorized"


async def test_unknown_auth_fields_are_refused(desk: DeskStack) -> None:
    auth = {"token": desk.tokens["alice"], "role": "admin"}
    assert await refused(desk, auth) == "invalid_auth"


async def test_an_agent_unknown_to_routing_is_refused(desk: DeskStack) -> None:
    # Created after the start: the router has never heard of them.
    newcomer = await desk.runtime.agents.create("carol", "Carol", "1003", skills={"support": 5})
    token = await desk.token_for(str(newcomer.id))
    assert await refused(desk, {"token": token}) == "unknown_agent"


async def test_an_agent_enters_their_own_room_and_their_queues_figures(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    hello = alice.hello
    assert hello["principal"] == {"id": desk.alice, "role": "agent"}
    # Not the queue's room (every task change, for supervisors): its figures only.
    assert set(hello["rooms"]) == {f"agent:{desk.alice}", "figures:support"}
    snapshot = hello["snapshot"]
    assert snapshot["agent"]["agent_id"] == desk.alice
    assert snapshot["agent"]["state"] == "offline"
    assert snapshot["agent"]["name"] == "Alice" and snapshot["agent"]["extension"] == "1001"
    assert snapshot["offers"] == [] and snapshot["tasks"] == [] and snapshot["calls"] == []
    assert [q["queue_id"] for q in snapshot["queues"]] == ["support"]


async def test_a_supervisor_sees_every_queue_and_every_agent(desk: DeskStack) -> None:
    supervisor = await desk.connect("sue")
    hello = supervisor.hello
    assert hello["principal"]["role"] == "supervisor"
    assert set(hello["rooms"]) == {"supervisors", "queue:support"}
    snapshot = hello["snapshot"]
    agents = {a["agent_id"]: a for a in snapshot["agents"]}
    assert {desk.alice, desk.bob} <= set(agents)
    assert agents[desk.alice]["state"] == "offline" and agents[desk.alice]["since"] > 0
    assert snapshot["queues"][0]["figures"]["waiting"] == 0
    assert snapshot["waiting"] == [] and snapshot["calls"] == []


async def test_the_api_token_connects_as_an_admin_with_the_supervisor_view(
    desk: DeskStack,
) -> None:
    client = desk.client()
    await client.connect({"token": TOKEN})
    await client.wait(lambda: client.hellos)
    assert client.hello["principal"] == {"id": "api-token", "role": "admin"}
    assert "supervisors" in client.hello["rooms"]
