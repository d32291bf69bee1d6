"""Transfers from the desk's point of view, over TCP against the PBX
simulator: a blind transfer into another routing queue (the caller waits
again, a new task in that queue reaches its agents, the first agent wraps
up), a blind transfer to an agent (the transferring agent is free again while
the caller talks on), and the refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callwright.config import RoutingConfig
from callwright.runtime import Runtime
from cti.calls.model import Call
from routing import model
from routing.model import QueueConfig
from routing.persistence import AgentRepository
from sim.pbx.server import PbxSimulator
from store import make_engine
from store.migrate import upgrade
from tests.integration.conftest import TOKEN, Recorder, make_config

SUPPORT = QueueConfig(
    id="support",
    target='"support" in agent.skills',
    reservation_timeout_seconds=30.0,
    wrap_up_seconds=0.2,
)
BILLING = QueueConfig(
    id="billing",
    target='"billing" in agent.skills',
    reservation_timeout_seconds=30.0,
    wrap_up_seconds=0.2,
)
CALLER = "+15550100321"


@dataclass
class World:
    sim: PbxSimulator
    runtime: Runtime
    recorder: Recorder
    http: aiohttp.ClientSession
    agents: dict[str, str]  # username -> agent id
    tokens: dict[str, str]

    async def post(self, user: str, path: str, body: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        async with self.http.post(self.runtime.url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    def state(self, user: str) -> str:
        routing = self.runtime.routing
        assert routing is not None
        return routing.router.agent(self.agents[user]).state.value

    def call(self, call_id: str) -> Call | None:
        return next((c for c in self.runtime.calls.calls() if c.id == call_id), None)

    async def until(self, check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
        async def poll() -> Any:
            while not (result := check()):
                await asyncio.sleep(0.02)
            return result

        try:
            return await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            raise AssertionError(f"never happened: {what}") from None


@pytest.fixture
async def world(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[World]:
    """Alice (1001) takes support, Bob (1002) billing, Carol (1003) support."""
    data = tmp_path / "data"
    url = f"sqlite+aiosqlite:///{data / 'callwright.db'}"
    await upgrade(url)
    engine = make_engine(url)
    repo = AgentRepository(engine)
    agents = {}
    for username, ext, skills in (
        ("alice", "1001", {"support": 5}),
        ("bob", "1002", {"billing": 5}),
        ("carol", "1003", {"support": 1}),
    ):
        agent = await repo.create(username, username.title(), ext, skills=skills)
        agents[username] = str(agent.id)
    await engine.dispose()
    config = replace(
        make_config(sim.port, data),
        routing=RoutingConfig(queues=(SUPPORT, BILLING), voice_queue="support"),
    )
    runtime = Runtime(config)
    await runtime.start()
    http = aiohttp.ClientSession()
    try:
        await runtime.link.wait_ready(10)
        recorder = Recorder()
        assert runtime.routing is not None
        runtime.routing.subscribe(recorder)
        tokens = {}
        for username, agent_id in agents.items():
            found = await runtime.agents.get(int(agent_id))
            assert found is not None
            tokens[username] = runtime.auth.issue(found)[0]
        yield World(sim, runtime, recorder, http, agents, tokens)
    finally:
        await http.close()
        await runtime.stop()


async def answered_by(w: World, user: str, caller: str = CALLER) -> tuple[Call, str]:
    """A call from ``caller`` offered to ``user``, accepted, and bridged; its task."""
    routing = w.runtime.routing
    assert routing is not None
    await routing.set_agent_state(w.agents[user], "available")
    await w.sim.inbound_call(caller, "Caller")
    offer = await w.recorder.wait_for(
        lambda e: isinstance(e, model.ReservationOffered) and e.agent_id == w.agents[user]
    )
    assert isinstance(offer, model.ReservationOffered)
    await routing.accept(offer.reservation_id)
    device = f"PJSIP/{w.runtime.voice.extensions[w.agents[user]]}" if w.runtime.voice else ""
    call = await w.until(
        lambda: next(
            (
                c
                for c in w.runtime.calls.calls()
                if c.caller.number == caller
                and c.bridged
                and device in {ch.device for ch in c.channels}
            ),
            None,
        ),
        f"the caller bridged with {user}",
    )
    return call, offer.task_id


async def test_a_blind_transfer_to_a_queue_requeues_the_caller_there(world: World) -> None:
    w = world
    routing = w.runtime.routing
    assert routing is not None
    await routing.set_agent_state(w.agents["bob"], "available")
    call, first_task = await answered_by(w, "alice")
    first = await w.runtime.interactions.by_call_id(call.id)
    assert first is not None and first.queue == "support"

    status, body = await w.post(
        "alice",
        f"/api/calls/{call.id}/transfer",
        {"target": "billing", "to": "queue", "idempotency_key": "to-billing-1"},
    )
    assert status == 202, body
    assert (body["kind"], body["target"]) == ("blind", "billing")

    # A new task in billing, offered to Bob (the only billing agent).
    offer = await w.recorder.wait_for(
        lambda e: (
            isinstance(e, model.ReservationOffered)
            and e.queue_id == "billing"
            and e.agent_id == w.agents["bob"]
        )
    )
    assert isinstance(offer, model.ReservationOffered)
    assert offer.task_id != first_task
    # Alice's own task is over: she wraps up and is free again.
    await w.recorder.wait_for(
        lambda e: isinstance(e, model.TaskCompleted) and e.task_id == first_task
    )
    await w.until(lambda: w.state("alice") == "available", "Alice available after wrap-up")
    assert not any(ch.name.startswith("PJSIP/1001-") for ch in w.sim.channels() if not ch.hungup)

    await routing.accept(offer.reservation_id)
    await w.until(
        lambda: (
            (c := w.call(call.id)) is not None
            and c.bridged
            and "PJSIP/1002" in {ch.device for ch in c.channels}
        ),
        "the caller bridged with Bob",
    )
    # Two interactions for the one call: Alice's in support (ended), Bob's in billing.
    second = await w.runtime.interactions.by_call_id(call.id)
    assert second is not None and second.id != first.id
    assert second.queue == "billing" and second.customer_id == first.customer_id
    done = await w.runtime.interactions.get(first.id)
    assert done is not None and done.ended_at is not None
    assert done.agent_id == int(w.agents["alice"])


async def test_a_blind_transfer_to_an_agent_frees_the_transferring_agent(world: World) -> None:
    w = world
    call, task_id = await answered_by(w, "alice")
    status, body = await w.post(
        "alice",
        f"/api/calls/{call.id}/transfer",
        {"target": "1003", "to": "agent", "idempotency_key": "to-carol-1"},
    )
    assert status == 202, body
    await w.until(
        lambda: (
            (c := w.call(call.id)) is not None
            and c.bridged
            and "PJSIP/1003" in {ch.device for ch in c.channels}
        ),
        "the caller bridged with Carol",
    )
    # Alice left a call that goes on: her task completes, she is offered work again.
    await w.recorder.wait_for(lambda e: isinstance(e, model.TaskCompleted) and e.task_id == task_id)
    await w.until(lambda: w.state("alice") == "available", "Alice available again")
    # Carol talks to the caller outside any task of hers: no voice is offered to her.
    routing = w.runtime.routing
    assert routing is not None
    await w.until(lambda: routing.router.agent(w.agents["carol"]).external_busy, "Carol busy")
    interaction = await w.runtime.interactions.by_call_id(call.id)
    assert interaction is not None and interaction.agent_id == int(w.agents["alice"])
    assert interaction.ended_at is None  # the call goes on


async def test_a_transfer_to_a_queue_or_the_payment_line_is_refused_when_malformed(
    world: World,
) -> None:
    w = world
    call, task_id = await answered_by(w, "alice")
    path = f"/api/calls/{call.id}/transfer"
    for body, field in (
        ({"target": "nowhere", "to": "queue"}, "target: no queue 'nowhere'"),
        ({"target": "bil ling", "to": "queue"}, "target: expected a queue id"),
        ({"target": "billing", "to": "queue", "kind": "attended"}, "kind:"),
        ({"target": "billing", "to": "moon"}, "to: expected"),
        ({"to": "payment", "kind": "attended"}, "kind: a transfer to the payment line is blind"),
        ({"to": "payment", "target": "1002"}, "target: a transfer to the payment line takes no"),
        ({"to": "agent"}, "target: required"),
    ):
        status, answer = await w.post("alice", path, {**body, "idempotency_key": "refused-1"})
        assert (status, answer["error"]) == (400, "invalid_request"), answer
        assert answer["message"].startswith(field), answer
    # Nothing moved: the caller still talks to Alice, her task is hers.
    now = w.call(call.id)
    assert now is not None and now.bridged
    assert "PJSIP/1001" in {ch.device for ch in now.channels}
    assert routing_state(w, task_id) == "assigned"
    # A PBX without a payment line ([pbx] payment_context = ""): refused, naming the key.
    w.runtime.calls.dialplan = replace(w.runtime.calls.dialplan, payment_context="")
    status, answer = await w.post("alice", path, {"to": "payment", "idempotency_key": "pay-1"})
    assert (status, answer["error"]) == (400, "invalid_request"), answer
    assert "[pbx] payment_context" in answer["message"], answer
    assert routing_state(w, task_id) == "assigned"
    # Bob, on nobody's call, may not transfer it.
    status, answer = await w.post(
        "bob", path, {"target": "billing", "to": "queue", "idempotency_key": "bob-1"}
    )
    assert (status, answer["error"]) == (403, "forbidden")


def routing_state(w: World, task_id: str) -> str:
    routing = w.runtime.routing
    assert routing is not None
    return routing.router.task(task_id).state.value


async def test_an_agent_lists_only_the_calls_they_are_on(world: World) -> None:
    w = world
    call, _ = await answered_by(w, "alice")
    other = await w.runtime.calls.originate("1003", "5550100999", idempotency_key="carol-out")
    assert other.agent_device == "1003"
    await w.until(lambda: len(w.runtime.calls.calls()) == 2, "Carol's own call up")

    async def listed(token: str) -> list[str]:
        headers = {"Authorization": f"Bearer {token}"}
        async with w.http.get(w.runtime.url + "/api/calls", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            return sorted(c["id"] for c in (await resp.json())["calls"])

    assert await listed(w.tokens["alice"]) == [call.id]
    assert await listed(w.tokens["bob"]) == []
    carol = await listed(w.tokens["carol"])
    assert len(carol) == 1 and carol != [call.id]
    assert await listed(TOKEN) == sorted(c.id for c in w.runtime.calls.calls())


async def test_an_attended_transfer_keeps_the_task_until_the_agent_leaves(world: World) -> None:
    w = world
    call, task_id = await answered_by(w, "alice")
    path = f"/api/calls/{call.id}/transfer"

    # Alice consults Carol and changes her mind: the caller is hers again.
    status, body = await w.post(
        "alice", path, {"target": "1003", "kind": "attended", "idempotency_key": "consult-1"}
    )
    assert status == 202, body
    await w.until(
        lambda: any(
            ch.state == "Up" and ch.bridge
            for ch in w.sim.channels()
            if ch.name.startswith("PJSIP/1003-") and not ch.hungup
        ),
        "Carol answered the consultation",
    )
    assert routing_state(w, task_id) == "assigned"
    status, body = await w.post("alice", f"/api/calls/{call.id}/transfer/cancel", None)
    assert status == 202, body
    await w.until(
        lambda: (
            (c := w.call(call.id)) is not None
            and c.bridged
            and {ch.device for ch in c.channels} == {"PJSIP/trunk", "PJSIP/1001"}
        ),
        "the caller back with Alice alone",
    )
    assert routing_state(w, task_id) == "assigned"

    # Again, and this time she completes it: her task is done, Carol has the caller.
    status, body = await w.post(
        "alice", path, {"target": "1003", "kind": "attended", "idempotency_key": "consult-2"}
    )
    assert status == 202, body
    await w.until(
        lambda: any(
            ch.state == "Up" and ch.bridge
            for ch in w.sim.channels()
            if ch.name.startswith("PJSIP/1003-") and not ch.hungup
        ),
        "Carol answered the second consultation",
    )
    assert routing_state(w, task_id) == "assigned"
    status, body = await w.post("alice", f"/api/calls/{call.id}/transfer/complete", None)
    assert status == 202, body
    await w.recorder.wait_for(lambda e: isinstance(e, model.TaskCompleted) and e.task_id == task_id)
    await w.until(lambda: w.state("alice") == "available", "Alice available again")
    await w.until(
        lambda: any(
            c.bridged and {ch.device for ch in c.channels} == {"PJSIP/trunk", "PJSIP/1003"}
            for c in w.runtime.calls.calls()
        ),
        "the caller talking to Carol",
    )


async def test_a_blind_transfer_to_a_number_frees_the_agent(world: World) -> None:
    w = world
    call, task_id = await answered_by(w, "alice")
    status, body = await w.post(
        "alice",
        f"/api/calls/{call.id}/transfer",
        {"target": "+15550100555", "to": "number", "idempotency_key": "out-1"},
    )
    assert status == 202, body
    await w.recorder.wait_for(lambda e: isinstance(e, model.TaskCompleted) and e.task_id == task_id)
    await w.until(lambda: w.state("alice") == "available", "Alice available again")
    await w.until(
        lambda: (
            (c := w.call(call.id)) is not None
            and c.bridged
            and "PJSIP/1001" not in {ch.device for ch in c.channels}
            and len(c.channels) == 2
        ),
        "the caller bridged with the outside number",
    )


async def test_a_caller_transferred_to_an_unreachable_agent_waits_again_as_a_new_task(
    world: World,
) -> None:
    w = world
    w.sim.set_device("1003", reachable=False)
    call, task_id = await answered_by(w, "alice")
    first = await w.runtime.interactions.by_call_id(call.id)
    assert first is not None
    status, body = await w.post(
        "alice",
        f"/api/calls/{call.id}/transfer",
        {"target": "1003", "to": "agent", "idempotency_key": "to-nobody"},
    )
    assert status == 202, body
    # Alice is done with it; the caller, back at the holding point, is queued again.
    await w.recorder.wait_for(lambda e: isinstance(e, model.TaskCompleted) and e.task_id == task_id)
    queued = await w.recorder.wait_for(
        lambda e: isinstance(e, model.TaskQueued) and e.task_id != task_id
    )
    assert isinstance(queued, model.TaskQueued) and queued.queue_id == "support"
    voice = w.runtime.voice
    assert voice is not None and voice.task_for_call(call.id) == queued.task_id
    second = await w.runtime.interactions.by_call_id(call.id)
    assert second is not None and second.id != first.id
    ended = await w.runtime.interactions.get(first.id)
    assert ended is not None and ended.ended_at is not None
