"""Recording control end to end over the simulator: a routed call answered by
its agent is recorded by the queue's policy (MixMonitor on the customer's
channel, a real WAV file in the spool), paused and resumed over the API (the
simulator's MixMonitor muted, the pauses stored with their times and actor),
stopped at hangup and stored with its hash, size and duration."""

from __future__ import annotations

import array
import asyncio
import hashlib
import io
import sys
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from agent_desk.audit import audit_events
from callwright.config import RecordingPolicy, RecordingsConfig, RoutingConfig
from callwright.runtime import Runtime
from cti.calls.model import Call, CallState, ChannelInfo, Party
from recordings.control import RecordingControl, should_record, spool_name_for
from recordings.repository import Recording
from routing import model
from sim.pbx.server import PbxSimulator
from tests.desk.conftest import seed_supervisor
from tests.integration.conftest import (
    QUEUE,
    TOKEN,
    Recorder,
    make_config,
    offered_to,
    seed_agents,
)

TIMEOUT = 10.0


async def until(predicate: Callable[[], Any], what: str = "condition") -> Any:
    async def loop() -> Any:
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.02)

    try:
        return await asyncio.wait_for(loop(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"{what} not met") from None


@dataclass
class RecStack:
    sim: PbxSimulator
    runtime: Runtime
    recorder: Recorder
    agents: dict[str, str]
    tokens: dict[str, str]
    http: aiohttp.ClientSession
    spool: Path

    async def request(
        self, method: str, path: str, *, user: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        token = TOKEN if user is None else self.tokens[user]
        async with self.http.request(
            method,
            self.runtime.url + path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            return resp.status, await resp.json()

    async def answered_call(self, number: str = "+15550100001") -> tuple[str, str]:
        """A caller routed to Alice, who accepts: (call id, customer channel)."""
        alice = self.agents["1001"]
        status, body = await self.request(
            "POST", f"/api/agents/{alice}/state", body={"state": "available"}
        )
        assert status == 200, body
        customer = await self.sim.inbound_call(number, "Ada Lovelace")
        offer = await self.recorder.wait_for(offered_to(alice))
        assert isinstance(offer, model.ReservationOffered)
        status, body = await self.request(
            "POST", f"/api/reservations/{offer.reservation_id}/accept", user="alice"
        )
        assert status == 200, body
        calls = await until(
            lambda: [c for c in self.runtime.calls.calls() if c.bridged], "call bridged"
        )
        return calls[0].id, customer.name

    async def recording_row(self, call_id: str) -> Recording:
        async def row() -> Recording | None:
            state = await self.runtime.recording_control.state(call_id)
            if state["recording_id"] is None:
                return None
            return await self.runtime.recordings.get(state["recording_id"])

        found: Recording = await until(row, "recording row")
        return found


def policy_config(record: str = "all", percent: int = 100) -> RecordingPolicy:
    return RecordingPolicy(record=record, percent=percent, retention_days=30)


async def make_stack(
    tmp_path: Path, policy: RecordingPolicy
) -> tuple[PbxSimulator, Runtime, Recorder, dict[str, str], str]:
    spool = tmp_path / "spool"
    sim = PbxSimulator(answer_delay=0.02, login_failure_delay=0, spool_dir=str(spool))
    await sim.start()
    data = tmp_path / "data"
    url = f"sqlite+aiosqlite:///{data / 'callwright.db'}"
    agents = await seed_agents(url, capacity={"voice": 1, "email": 3})
    sue = await seed_supervisor(url)
    config = make_config(sim.port, data)
    config = replace(
        config,
        routing=RoutingConfig(queues=(QUEUE,), voice_queue="support"),
        recordings=RecordingsConfig(
            enabled=True,
            dir=tmp_path / "store",
            spool_dir=spool / "monitor",
            default=RecordingPolicy(record="none"),
            queues={"support": policy},
        ),
    )
    runtime = Runtime(config)
    await runtime.start()
    await runtime.link.wait_ready(10)
    recorder = Recorder()
    assert runtime.routing is not None
    runtime.routing.subscribe(recorder)
    return sim, runtime, recorder, agents, sue


@pytest.fixture
async def rec(tmp_path: Path) -> AsyncIterator[RecStack]:
    sim, runtime, recorder, agents, sue = await make_stack(tmp_path, policy_config("all"))
    http = aiohttp.ClientSession()
    tokens = {}
    for user, agent_id in (("alice", agents["1001"]), ("bob", agents["1002"]), ("sue", sue)):
        agent = await runtime.agents.get(int(agent_id))
        assert agent is not None
        tokens[user], _ = runtime.auth.issue(agent)
    try:
        yield RecStack(sim, runtime, recorder, agents, tokens, http, tmp_path / "spool")
    finally:
        await http.close()
        await runtime.stop()
        await sim.stop()


def pcm(data: bytes) -> array.array[int]:
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


async def stored_bytes(runtime: Runtime, row: Recording) -> bytes:
    assert row.storage_key is not None and row.size_bytes is not None
    chunks = [
        c
        async for c in runtime.recording_storage.read_range(row.storage_key, 0, row.size_bytes - 1)
    ]
    return b"".join(chunks)


async def audit_rows(runtime: Runtime, action: str) -> list[Any]:
    async with runtime.engine.connect() as conn:
        result = await conn.execute(
            select(audit_events).where(audit_events.c.action == action).order_by(audit_events.c.id)
        )
        return list(result)


# -- pure --------------------------------------------------------------------------


def test_the_percent_policy_is_deterministic_per_interaction() -> None:
    half = policy_config("percent", 30)
    picks = [should_record(half, i) for i in range(1, 2001)]
    assert picks == [should_record(half, i) for i in range(1, 2001)]  # same answer again
    assert 500 <= sum(picks) <= 700  # about 30 % of 2000
    assert all(should_record(policy_config("all"), i) for i in range(50))
    assert not any(should_record(policy_config("none"), i) for i in range(50))
    assert not any(should_record(policy_config("percent", 0), i) for i in range(50))
    assert all(should_record(policy_config("percent", 100), i) for i in range(50))
    assert spool_name_for(7, "ab" * 16) == f"callwright-7-{'ab' * 16}.wav"


# -- over the simulator ----------------------------------------------------------------


async def test_an_answered_call_is_recorded_paused_resumed_and_stored(rec: RecStack) -> None:
    call_id, channel = await rec.answered_call()
    row = await rec.recording_row(call_id)
    interaction = await rec.runtime.interactions.by_call_id(call_id)
    assert interaction is not None
    assert row.state == "recording" and row.source == "asterisk"
    assert row.interaction_id == interaction.id and row.agent_id == int(rec.agents["1001"])
    assert row.queue == "support" and row.call_id == call_id
    assert row.spool_name == f"callwright-{interaction.id}-{row.id}.wav"
    # MixMonitor on the customer's channel, recording both directions, with its id
    (action,) = [a for a in rec.sim.ami_actions_received if a.name == "MixMonitor"]
    assert action.get("Channel") == channel and action.get("File") == row.spool_name
    assert action.get("Options") == "bi(CALLWRIGHT_MIXMON_ID)"
    mixmon = rec.sim.pbx.find(channel).mixmonitors[0]  # type: ignore[union-attr]

    async def with_id() -> Recording | None:
        fresh = await rec.runtime.recordings.get(row.id)
        return fresh if fresh is not None and fresh.external_id is not None else None

    row = await until(with_id, "MixMonitorID stored")
    assert row.external_id == mixmon.id
    spool_file = rec.spool / "monitor" / row.spool_name
    writer = mixmon.writer
    assert writer is not None and writer.path == spool_file
    await until(lambda: writer.frames_written > 800, "audio in the spool file")

    status, state = await rec.request("GET", f"/api/calls/{call_id}/recording", user="alice")
    assert status == 200 and state["state"] == "recording" and state["recording_id"] == row.id

    before = writer.frames_written
    status, paused = await rec.request(
        "POST", f"/api/calls/{call_id}/recording/pause", user="alice", body={"source": "desk"}
    )
    assert status == 200, paused
    assert paused["state"] == "paused" and paused["paused_since"] is not None
    assert mixmon.muted_read and mixmon.muted_write  # the simulator's MixMonitor is muted
    status, again = await rec.request("POST", f"/api/calls/{call_id}/recording/pause", user="alice")
    assert status == 409 and again["error"] == "already_paused"
    await until(lambda: writer.frames_written > before + 800, "muted audio written")

    status, resumed = await rec.request(
        "POST", f"/api/calls/{call_id}/recording/resume", user="alice"
    )
    assert status == 200 and resumed["state"] == "recording", resumed
    assert not mixmon.muted_read and not mixmon.muted_write
    status, again = await rec.request(
        "POST", f"/api/calls/{call_id}/recording/resume", user="alice"
    )
    assert status == 409 and again["error"] == "not_paused"
    (pause,) = resumed["pauses"]
    assert pause["source"] == "desk" and pause["actor_id"] == rec.agents["1001"]
    assert pause["paused_at"] <= pause["resumed_at"]
    resumed_at_frame = writer.frames_written
    await until(lambda: writer.frames_written > resumed_at_frame + 800, "audio after resume")

    customer = rec.sim.pbx.find(channel)
    assert customer is not None
    await rec.sim.customer_hangup(channel)

    async def is_stored() -> Recording | None:
        found = await rec.runtime.recordings.get(row.id)
        return found if found is not None and found.state == "stored" else None

    stored = await until(is_stored, "recording stored")
    assert stored.ended_at is not None and stored.storage_key is not None
    data = await stored_bytes(rec.runtime, stored)
    assert stored.size_bytes == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    audio = pcm(data)
    assert stored.duration_ms == len(audio) * 1000 // 8000
    (mute_at, *_), (unmute_at, *_) = writer.marks
    assert any(audio[:mute_at]) and any(audio[unmute_at:])
    assert not any(audio[mute_at:unmute_at])  # the paused stretch is silence
    assert not await asyncio.to_thread(spool_file.exists)  # moved out of the spool
    pauses = await rec.runtime.recordings.pauses(row.id)
    assert [(p.source, p.actor_id) for p in pauses] == [("desk", rec.agents["1001"])]
    assert pauses[0].resumed_at is not None and pauses[0].paused_at <= pauses[0].resumed_at
    # both changes audited with who did them
    for action_name in ("recordings.control",):
        rows = await audit_rows(rec.runtime, action_name)
        allowed = [r for r in rows if r.outcome == "allowed"]
        assert [r.actor_id for r in allowed] == [rec.agents["1001"]] * 2
        assert {r.detail["path"] for r in allowed} == {
            f"/api/calls/{call_id}/recording/pause",
            f"/api/calls/{call_id}/recording/resume",
        }
    status, after = await rec.request("GET", f"/api/calls/{call_id}/recording", user="sue")
    assert status == 200 and after["state"] == "stored"


async def test_another_agent_may_not_pause_and_nothing_changes(rec: RecStack) -> None:
    call_id, channel = await rec.answered_call("+15550100002")
    row = await rec.recording_row(call_id)
    status, body = await rec.request("POST", f"/api/calls/{call_id}/recording/pause", user="bob")
    assert status == 403 and body["error"] == "forbidden"
    mixmon = rec.sim.pbx.find(channel).mixmonitors[0]  # type: ignore[union-attr]
    assert not mixmon.muted_read and not mixmon.muted_write
    assert (await rec.runtime.recordings.pauses(row.id)) == []
    denied = [
        r for r in await audit_rows(rec.runtime, "recordings.control") if r.outcome == "denied"
    ]
    assert [r.actor_id for r in denied] == [rec.agents["1002"]]
    # a supervisor may
    status, body = await rec.request("POST", f"/api/calls/{call_id}/recording/pause", user="sue")
    assert status == 200 and body["state"] == "paused"
    status, body = await rec.request(
        "POST", f"/api/calls/{call_id}/recording/pause", user="sue", body={"source": "ivr"}
    )
    assert status == 400  # the IVR pauses through RecordingControl.pause_for only


async def test_the_ivr_hook_pauses_and_resumes_and_is_audited(rec: RecStack) -> None:
    call_id, channel = await rec.answered_call("+15550100003")
    row = await rec.recording_row(call_id)
    control = rec.runtime.recording_control
    paused = await control.pause_for(call_id)
    assert paused["state"] == "paused"
    mixmon = rec.sim.pbx.find(channel).mixmonitors[0]  # type: ignore[union-attr]
    assert mixmon.muted_read and mixmon.muted_write
    resumed = await control.resume_for(call_id)
    assert resumed["state"] == "recording"
    pauses = await rec.runtime.recordings.pauses(row.id)
    assert [(p.source, p.actor_id) for p in pauses] == [("ivr", "ivr")]
    actions = [r.action for r in await audit_rows(rec.runtime, "recordings.pause")] + [
        r.action for r in await audit_rows(rec.runtime, "recordings.resume")
    ]
    assert actions == ["recordings.pause", "recordings.resume"]


async def test_a_call_that_is_not_recorded_has_no_pause(rec: RecStack) -> None:
    status, body = await rec.request("POST", "/api/calls/nosuch/recording/pause")
    assert status == 409 and body["error"] == "not_recording"
    status, body = await rec.request("GET", "/api/calls/nosuch/recording")
    assert status == 200 and body["state"] == "not_recorded"


async def test_a_queue_whose_policy_is_none_records_nothing(tmp_path: Path) -> None:
    sim, runtime, recorder, agents, _ = await make_stack(tmp_path, policy_config("none"))
    try:
        http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
        stack = RecStack(sim, runtime, recorder, agents, {"alice": ""}, http, tmp_path / "spool")
        agent = await runtime.agents.get(int(agents["1001"]))
        assert agent is not None
        stack.tokens["alice"], _ = runtime.auth.issue(agent)
        call_id, _ = await stack.answered_call()
        state = await until(
            lambda: call_id in runtime.recording_control._not_recorded, "policy decided"
        )
        assert state
        status, body = await stack.request("GET", f"/api/calls/{call_id}/recording")
        assert status == 200 and body["state"] == "not_recorded"
        assert not [a for a in sim.ami_actions_received if a.name == "MixMonitor"]
        status, body = await stack.request(
            "POST", f"/api/calls/{call_id}/recording/pause", user="alice"
        )
        assert status == 409 and body["error"] == "not_recording"
        await http.close()
    finally:
        await runtime.stop()
        await sim.stop()


async def test_a_refused_mixmonitor_leaves_a_failed_row_and_the_reason_audited(
    rec: RecStack,
) -> None:
    """The row exists before MixMonitor is sent; Asterisk's refusal ("No such
    channel", from the simulator) turns it failed, with the reason audited."""
    runtime = rec.runtime
    interaction = await runtime.interactions.create(
        channel="voice",
        direction="inbound",
        call_id="gone-1",
        queue="support",
        started_at=datetime.now(UTC),
    )
    ghost = ChannelInfo(
        "PJSIP/trunk-0000ffff",
        "1.1",
        "1.1",
        "Up",
        Party(None, None),
        Party(None, None),
        "callwright-agent",
        "1001",
        None,
        False,
        0.0,
        "PJSIP/trunk",
    )
    call = Call(
        "gone-1",
        CallState.UP,
        (ghost,),
        Party(None, None),
        Party(None, None),
        0.0,
        None,
        0.0,
        None,
        None,
        None,
        True,
        False,
        False,
        None,
        None,
        None,
        None,
    )

    class GhostCalls:
        def get(self, call_id: str) -> Call:
            return call

        def customer_leg(self, call_: Call) -> ChannelInfo:
            return ghost

    published: list[dict[str, Any]] = []

    async def publish(data: dict[str, Any], agent_id: str | None) -> None:
        published.append(data)

    control = RecordingControl(
        runtime.recordings,
        calls=GhostCalls(),
        ami=runtime.link,
        interactions=runtime.interactions,
        policies=runtime.config.recordings,
        spool_dir=runtime.config.recordings.spool_dir,
        publish=publish,
        audit=runtime.audit,
    )
    await control.call_answered(interaction.id, rec.agents["1001"])
    (row,) = await runtime.recordings.list_for_interaction(interaction.id)
    assert row.state == "failed" and row.ended_at is not None
    (audit,) = await audit_rows(runtime, "recordings.start")
    assert audit.outcome == "failed" and audit.subject == row.id and audit.actor_id == "system"
    assert "No such channel" in audit.detail["reason"]
    assert published[-1]["state"] == "failed"
    await control.call_answered(interaction.id, rec.agents["1001"])  # decided once
    assert len(await runtime.recordings.list_for_interaction(interaction.id)) == 1


async def test_recording_states_reach_the_agents_desk_and_the_supervisors_in_order(
    rec: RecStack,
) -> None:
    from tests.desk.conftest import DeskClient

    clients = {}
    for user in ("alice", "bob", "sue"):
        client = DeskClient(rec.runtime.url)
        await client.connect({"token": rec.tokens[user]})
        await client.wait(lambda c=client: c.hellos)  # type: ignore[misc]
        clients[user] = client
    try:
        call_id, channel = await rec.answered_call("+15550100007")
        alice, sue = clients["alice"], clients["sue"]
        await alice.next_event("recording", lambda d: d["state"] == "recording")
        status, _ = await rec.request("POST", f"/api/calls/{call_id}/recording/pause", user="alice")
        assert status == 200
        paused = await alice.next_event("recording", lambda d: d["state"] == "paused")
        assert paused["room"] == f"agent:{rec.agents['1001']}"
        assert paused["data"]["call_id"] == call_id and paused["data"]["paused_since"]
        await rec.request("POST", f"/api/calls/{call_id}/recording/resume", user="alice")
        await rec.sim.customer_hangup(channel)
        for client in (alice, sue):
            await client.next_event("recording", lambda d: d["state"] == "stored")
            states = [d["state"] for d in client.of("recording")]
            assert states == ["recording", "paused", "recording", "ended", "stored"]
        supervisors = await sue.next_event("recording", lambda d: d["state"] == "paused")
        assert supervisors["room"] == "supervisors"
        # every room's envelopes arrived without a gap (no resync needed)
        for client in (alice, sue):
            for room in {e["room"] for e in client.envelopes}:
                seqs = [e["seq"] for e in client.envelopes if e["room"] == room]
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), room
        assert clients["bob"].of("recording") == []  # not his call
    finally:
        for client in clients.values():
            await client.close()


async def test_after_a_restart_a_running_recording_is_adopted_not_started_again(
    rec: RecStack,
) -> None:
    call_id, channel = await rec.answered_call("+15550100008")
    row = await rec.recording_row(call_id)
    runtime = rec.runtime

    async def has_id() -> bool:
        fresh = await runtime.recordings.get(row.id)
        return fresh is not None and fresh.external_id is not None

    await until(has_id, "MixMonitorID stored")
    # a new control knows nothing in memory, as after a restart of Callwright
    control = RecordingControl(
        runtime.recordings,
        calls=runtime.calls,
        ami=runtime.link,
        interactions=runtime.interactions,
        policies=runtime.config.recordings,
        spool_dir=runtime.config.recordings.spool_dir,
    )
    await control.call_answered(row.interaction_id, rec.agents["1001"])
    assert len([a for a in rec.sim.ami_actions_received if a.name == "MixMonitor"]) == 1
    paused = await control.pause(call_id, source="api", actor_id="api-token")
    assert paused["recording_id"] == row.id and paused["state"] == "paused"
    mute = [a for a in rec.sim.ami_actions_received if a.name == "MixMonitorMute"][-1]
    assert mute.get("MixMonitorID") == (await runtime.recordings.get(row.id)).external_id  # type: ignore[union-attr]
    mixmon = rec.sim.pbx.find(channel).mixmonitors[0]  # type: ignore[union-attr]
    assert mixmon.muted_read and mixmon.muted_write


async def test_after_a_transfer_to_another_agent_their_desk_follows_the_recording(
    rec: RecStack,
) -> None:
    from tests.desk.conftest import DeskClient

    clients = {}
    for user in ("alice", "bob"):
        client = DeskClient(rec.runtime.url)
        await client.connect({"token": rec.tokens[user]})
        await client.wait(lambda c=client: c.hellos)  # type: ignore[misc]
        clients[user] = client
    alice, bob = clients["alice"], clients["bob"]
    try:
        call_id, channel = await rec.answered_call("+15550100008")
        await alice.next_event("recording", lambda d: d["state"] == "recording")
        status, body = await rec.request(
            "POST",
            f"/api/calls/{call_id}/transfer",
            user="alice",
            body={"target": "1002", "to": "agent", "idempotency_key": "rec-to-bob"},
        )
        assert status == 202, body
        await until(
            lambda: any(
                c.id == call_id and c.bridged and "PJSIP/1002" in {ch.device for ch in c.channels}
                for c in rec.runtime.calls.calls()
            ),
            "the caller bridged with Bob",
        )
        # Bob now talks to the caller: the card payment is his to pause, and his
        # desk shows it as it happens.
        status, body = await rec.request(
            "POST", f"/api/calls/{call_id}/recording/pause", user="bob"
        )
        assert status == 200, body
        paused = await bob.next_event("recording", lambda d: d["state"] == "paused")
        assert paused["room"] == f"agent:{rec.agents['1002']}"
        assert paused["data"]["call_id"] == call_id
        await rec.request("POST", f"/api/calls/{call_id}/recording/resume", user="bob")
        await bob.next_event("recording", lambda d: d["state"] == "recording")
        assert [d["state"] for d in bob.of("recording")] == ["paused", "recording"]
        await rec.sim.customer_hangup(channel)
    finally:
        for client in clients.values():
            await client.close()
