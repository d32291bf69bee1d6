"""Listen, whisper and barge end to end: the call service and the REST API ->
AMI over TCP -> the PBX simulator's ChanSpy, on the agent's leg of a live
call; the refusals, the idempotency key, how a session ends, who may do it,
and the audit rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callwright.runtime import Runtime
from cti.errors import InvalidRequest, UnknownCall, WrongState
from routing.persistence import AgentRepository
from sim.pbx.server import PbxSimulator
from store import make_engine
from store.migrate import upgrade
from tests.integration.conftest import TOKEN, Stack, make_config
from tests.integration.test_call_control import connect_inbound_to_agent

SUPERVISOR_PHONE = "1003"


@dataclass
class SpyStack(Stack):
    tokens: dict[str, str]
    agent_ids: dict[str, str]

    async def as_user(
        self, username: str, path: str, body: Any = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.tokens[username]}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(self.url + path, json=body, headers=headers) as resp:
                return resp.status, await resp.json()

    def originates(self) -> list[Any]:
        return [a for a in self.sim.ami_actions_received if a.name == "Originate"]

    async def spying(self, count: int = 1, spy_id: str | None = None) -> list[Any]:
        """The simulator's ChanSpy sessions, once there are ``count`` (and one
        of them is ``spy_id``'s)."""

        def ready() -> bool:
            spies = self.sim.spies()
            return len(spies) == count and (
                spy_id is None or any(s.spyer.uniqueid == spy_id for s in spies)
            )

        await self.sim.pbx.wait_for(ready, 10)
        return self.sim.spies()


@pytest.fixture
async def spy_stack(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[SpyStack]:
    data = tmp_path / "data"
    url = f"sqlite+aiosqlite:///{data / 'callwright.db'}"
    await upgrade(url)
    engine = make_engine(url)
    repo = AgentRepository(engine)
    agents = {
        "alice": await repo.create("alice", "Alice", "1001", role="agent"),
        "sue": await repo.create("sue", "Sue", SUPERVISOR_PHONE, role="supervisor"),
    }
    await engine.dispose()
    runtime = Runtime(make_config(sim.port, data))
    await runtime.start()
    await runtime.link.wait_ready(10)
    tokens = {name: runtime.auth.issue(agent)[0] for name, agent in agents.items()}
    tokens["service"] = TOKEN  # the API token: an admin with no phone of its own
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        ids = {name: str(agent.id) for name, agent in agents.items()}
        ids["service"] = "api-token"
        yield SpyStack(sim, runtime, http, tokens, ids)
    finally:
        await http.close()
        await runtime.stop()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def agent_leg(call: dict[str, Any]) -> str:
    return str(next(ch["name"] for ch in call["channels"] if ch["device"] == "PJSIP/1001"))


async def test_each_mode_rings_the_supervisor_and_spies_on_the_agents_leg(
    spy_stack: SpyStack,
) -> None:
    call = await connect_inbound_to_agent(spy_stack, "1001")
    agent = agent_leg(call)
    service = spy_stack.runtime.calls
    for n, (mode, options) in enumerate(
        (("listen", "qESu"), ("whisper", "qESuw"), ("barge", "qESuB"))
    ):
        session = await service.spy(call["id"], SUPERVISOR_PHONE, mode, idempotency_key=f"k{n}")
        [spied] = await spy_stack.spying(spy_id=session.spy_id)
        assert spied.spyee.name == agent  # the agent's leg, never the customer's
        assert spied.mode == mode
        assert spied.spyer.name.startswith(f"PJSIP/{SUPERVISOR_PHONE}-")
        assert spied.spyer.uniqueid == session.spy_id
        originate = spy_stack.originates()[-1]
        assert (originate["Channel"], originate["Application"]) == ("PJSIP/1003", "ChanSpy")
        assert originate["Data"] == f"{agent},{options}"
        # The session as the service follows it (ChanSpyStart, over AMI).
        await until(
            lambda sid=session.spy_id: any(s.spy_id == sid and s.started for s in service.spies())
        )
        [followed] = service.spies(call["id"])
        assert (followed.mode, followed.device, followed.spied_channel) == (
            mode,
            SUPERVISOR_PHONE,
            agent,
        )
    # Each new mode replaced the supervisor's previous session: one at a time.
    assert len(spy_stack.originates()) == 3
    hangups = [a for a in spy_stack.sim.ami_actions_received if a.name == "Hangup"]
    assert len(hangups) == 2
    # The customer and the agent are still talking, undisturbed.
    calls = await spy_stack.calls()
    assert next(c for c in calls if c["id"] == call["id"])["bridged"]


async def test_the_session_ends_with_the_call(spy_stack: SpyStack) -> None:
    call = await connect_inbound_to_agent(spy_stack, "1001")
    session = await spy_stack.runtime.calls.spy(
        call["id"], SUPERVISOR_PHONE, "listen", idempotency_key="end-1"
    )
    await spy_stack.spying()
    customer = next(ch["name"] for ch in call["channels"] if ch["device"] == "PJSIP/trunk")
    await spy_stack.sim.customer_hangup(customer)
    await spy_stack.sim.wait_for_channels(lambda chans: not chans)
    assert spy_stack.sim.spies() == []
    # The spy channel's Hangup may still be on the wire when the simulator's
    # channels are gone (drain() covers only the events already read).
    await until(lambda: spy_stack.runtime.calls.spies() == [])
    await spy_stack.runtime.calls.drain()
    assert all(c["id"] != session.spy_id for c in await spy_stack.calls())


async def test_stopping_hangs_up_the_supervisors_phone_only(spy_stack: SpyStack) -> None:
    call = await connect_inbound_to_agent(spy_stack, "1001")
    service = spy_stack.runtime.calls
    await service.spy(call["id"], SUPERVISOR_PHONE, "whisper", idempotency_key="stop-1")
    await spy_stack.spying()
    stopped = await service.stop_spy(call["id"], SUPERVISOR_PHONE)
    assert len(stopped) == 1
    await spy_stack.spying(0)
    await spy_stack.sim.wait_for_channels(
        lambda chans: not any(c.name.startswith("PJSIP/1003-") for c in chans)
    )
    calls = await spy_stack.calls()
    assert next(c for c in calls if c["id"] == call["id"])["bridged"]
    with pytest.raises(WrongState, match="not listening"):
        await service.stop_spy(call["id"], SUPERVISOR_PHONE)


async def test_refusals_name_the_problem_and_send_nothing(spy_stack: SpyStack) -> None:
    service = spy_stack.runtime.calls
    with pytest.raises(UnknownCall):
        await service.spy("no-such-call", SUPERVISOR_PHONE, "listen", idempotency_key="r1")
    call = await connect_inbound_to_agent(spy_stack, "1001")
    # A caller still waiting in the queue: no agent on the call yet.
    await spy_stack.sim.inbound_call("+15550100009", "Waiting Caller")
    calls = await spy_stack.wait_calls(
        lambda cs: any(c["context"] == "callwright-hold" for c in cs)
    )
    waiting = next(c for c in calls if c["context"] == "callwright-hold")
    with pytest.raises(WrongState, match="no agent leg"):
        await service.spy(waiting["id"], SUPERVISOR_PHONE, "listen", idempotency_key="r2")
    with pytest.raises(InvalidRequest, match="mode: expected one of listen, whisper, barge"):
        await service.spy(call["id"], SUPERVISOR_PHONE, "eavesdrop", idempotency_key="r3")
    with pytest.raises(InvalidRequest, match="device"):
        await service.spy(call["id"], "PJSIP/1003", "listen", idempotency_key="r4")
    with pytest.raises(WrongState, match="agent's own phone"):
        await service.spy(call["id"], "1001", "listen", idempotency_key="r5")
    assert spy_stack.originates() == []
    # Nor on a listening session itself.
    session = await service.spy(call["id"], SUPERVISOR_PHONE, "listen", idempotency_key="r6")
    await spy_stack.spying()
    await spy_stack.wait_calls(lambda cs: any(c["id"] == session.spy_id for c in cs))
    with pytest.raises(WrongState, match="listening session"):
        await service.spy(session.spy_id, "1002", "listen", idempotency_key="r7")
    assert len(spy_stack.originates()) == 1


async def test_the_same_idempotency_key_rings_the_supervisor_once(spy_stack: SpyStack) -> None:
    call = await connect_inbound_to_agent(spy_stack, "1001")
    body = {"mode": "listen", "idempotency_key": "spy-once"}
    path = f"/api/calls/{call['id']}/spy"
    first = await spy_stack.as_user("sue", path, body)
    second = await spy_stack.as_user("sue", path, body)
    assert (first[0], first[1]["repeated"]) == (202, False)
    assert (second[0], second[1]["repeated"]) == (200, True)
    assert first[1]["spy_id"] == second[1]["spy_id"]
    await spy_stack.spying()
    assert len(spy_stack.originates()) == 1


async def test_supervisors_only_and_every_attempt_is_audited_with_its_mode(
    spy_stack: SpyStack,
) -> None:
    call = await connect_inbound_to_agent(spy_stack, "1001")
    path = f"/api/calls/{call['id']}/spy"

    # Alice is on this very call, and still may not listen in on it.
    status, body = await spy_stack.as_user("alice", path, {"mode": "barge", "idempotency_key": "a"})
    assert (status, body["error"], body["action"]) == (403, "forbidden", "calls.spy")
    assert "supervisors" in body["message"]
    assert spy_stack.originates() == []

    # Sue's own phone by default.
    status, body = await spy_stack.as_user("sue", path, {"mode": "barge", "idempotency_key": "s"})
    assert status == 202, body
    assert (body["status"], body["mode"], body["device"]) == ("connecting", "barge", "1003")
    [spied] = await spy_stack.spying()
    assert spied.mode == "barge" and spied.spyer.name.startswith("PJSIP/1003-")

    # The API token has no phone of its own: it must name one.
    status, body = await spy_stack.as_user(
        "service", path, {"mode": "listen", "idempotency_key": "r"}
    )
    assert (status, body["error"]) == (400, "invalid_request")
    assert "device: required" in body["message"]

    status, body = await spy_stack.as_user("sue", f"{path}/stop")
    assert status == 202, body
    await spy_stack.spying(0)

    rows = await spy_stack.runtime.audit.query(action="calls.spy", limit=10)
    seen = sorted(
        ((r.actor_id, r.outcome, r.detail.get("mode"), r.detail.get("device")) for r in rows),
        key=repr,
    )
    ids = spy_stack.agent_ids
    expected = [
        # Refused by the route guard before the body is read: no mode.
        (ids["alice"], "denied", None, None),
        (ids["sue"], "allowed", "barge", "1003"),
        (ids["service"], "failed", "listen", None),
        (ids["sue"], "allowed", None, "1003"),  # the stop
    ]
    assert seen == sorted(expected, key=repr)
    assert all(r.subject == call["id"] for r in rows)


async def test_a_restarted_callwright_finds_the_running_sessions_on_the_pbx(
    spy_stack: SpyStack, tmp_path: Path
) -> None:
    call = await connect_inbound_to_agent(spy_stack, "1001")
    session = await spy_stack.runtime.calls.spy(
        call["id"], SUPERVISOR_PHONE, "barge", idempotency_key="restart-1"
    )
    await spy_stack.spying(spy_id=session.spy_id)
    await spy_stack.runtime.stop()

    # A new process: it learns the calls and the ChanSpy channels from
    # CoreShowChannels (Application ChanSpy, its Data gives the mode).
    runtime = Runtime(make_config(spy_stack.sim.port, tmp_path / "data"))
    await runtime.start()
    try:
        await runtime.link.wait_ready(10)
        await until(lambda: bool(runtime.calls.spies()))
        [found] = runtime.calls.spies()
        assert (found.spy_id, found.mode, found.device, found.started) == (
            session.spy_id,
            "barge",
            SUPERVISOR_PHONE,
            True,
        )
        assert found.call_id == call["id"]
        # ... and can stop it.
        assert await runtime.calls.stop_spy(call["id"], SUPERVISOR_PHONE) == [session.spy_id]
        await spy_stack.spying(0)
    finally:
        await runtime.stop()
        spy_stack.runtime = runtime  # the fixture stops it again: harmless


async def test_a_supervisor_phone_that_does_not_answer_leaves_no_session(
    spy_stack: SpyStack,
) -> None:
    call = await connect_inbound_to_agent(spy_stack, "1001")
    service = spy_stack.runtime.calls
    # No such endpoint: Asterisk creates no channel, OriginateResponse Failure.
    await service.spy(call["id"], "1999", "listen", idempotency_key="nobody")
    spy_stack.sim.set_device("1003", reachable=False)
    await service.spy(call["id"], SUPERVISOR_PHONE, "listen", idempotency_key="unreachable")
    await until(
        lambda: len([e for e in spy_stack.sim.recent_events if e.name == "OriginateResponse"]) == 2
    )
    await until(lambda: service.spies() == [])
    assert spy_stack.sim.spies() == []


async def test_refusals_over_rest_are_json_with_their_status(spy_stack: SpyStack) -> None:
    body = {"mode": "listen", "idempotency_key": "rest-refusal"}
    status, answer = await spy_stack.as_user("sue", "/api/calls/no-such-call/spy", body)
    assert (status, answer["error"]) == (404, "unknown_call")
    await spy_stack.sim.inbound_call("+15550100010", "Still Waiting")
    [waiting] = await spy_stack.wait_calls(lambda cs: len(cs) == 1)
    status, answer = await spy_stack.as_user("sue", f"/api/calls/{waiting['id']}/spy", body)
    assert (status, answer["error"]) == (409, "wrong_state")
    assert "no agent leg" in answer["message"]
    status, answer = await spy_stack.as_user(
        "sue", f"/api/calls/{waiting['id']}/spy", {"mode": "shout", "idempotency_key": "x"}
    )
    assert (status, answer["error"]) == (400, "invalid_request")
    assert "mode: expected one of listen, whisper, barge" in answer["message"]
    status, answer = await spy_stack.as_user("sue", f"/api/calls/{waiting['id']}/spy/stop")
    assert (status, answer["error"]) == (409, "wrong_state")
    assert spy_stack.originates() == []
