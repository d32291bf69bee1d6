"""Connecting to /desk: a token is required; each role gets its rooms and
a hello with a snapshot."""

from __future__ import annotations

import pytest
import socketio

from tests.desk.conftest import DeskStack


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        (None, "unauthorized"),
        ({}, "unauthorized"),
        ({"token": ""}, "unauthorized"),
        ({"token": 42}, "unauthorized"),
        ({"token": "forged"}, "unauthorized"),
        ({"token": "service-token"}, "forbidden"),
        ({"token": "stranger-token"}, "unknown_agent"),
        ({"token": "alice-token", "admin": True}, "invalid_auth"),
    ],
)
async def test_a_connection_without_a_valid_token_is_refused(
    desk: DeskStack, auth: object, reason: str
) -> None:
    client = desk.client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(auth)
    assert client.connect_errors == [{"message": reason}]
    assert not client.hellos
    assert desk.runtime.desk.namespace is not None
    assert desk.runtime.desk.namespace.connections == {}


async def test_an_agent_enters_their_own_room_and_their_queues(desk: DeskStack) -> None:
    alice = await desk.connect("alice-token")
    hello = alice.hello
    assert hello["principal"] == {"id": desk.alice, "role": "agent"}
    assert set(hello["rooms"]) == {f"agent:{desk.alice}", "queue:support"}
    snapshot = hello["snapshot"]
    assert snapshot["agent"]["agent_id"] == desk.alice
    assert snapshot["agent"]["state"] == "offline"
    assert snapshot["agent"]["name"] == "Alice" and snapshot["agent"]["extension"] == "1001"
    assert snapshot["offers"] == [] and snapshot["tasks"] == [] and snapshot["calls"] == []
    assert [q["queue_id"] for q in snapshot["queues"]] == ["support"]


async def test_a_supervisor_sees_every_queue_and_every_agent(desk: DeskStack) -> None:
    supervisor = await desk.connect("supervisor-token")
    hello = supervisor.hello
    assert set(hello["rooms"]) == {"supervisors", "queue:support"}
    snapshot = hello["snapshot"]
    agents = {a["agent_id"]: a for a in snapshot["agents"]}
    assert set(agents) == {desk.alice, desk.bob}
    assert agents[desk.alice]["state"] == "offline" and agents[desk.alice]["since"] > 0
    assert snapshot["queues"][0]["figures"]["waiting"] == 0
    assert snapshot["waiting"] == [] and snapshot["calls"] == []
