"""Issues 5 and 6 meet: a card payment in the middle of a recorded call.

Over TCP with the PBX simulator (callwright dialplan, Callwright's FastAGI
server): Ann goes through the support flow to billing, Alice answers, the call
is recorded (MixMonitor on Ann's channel); Alice blind-transfers Ann to the
callwright-payment context. The payment flow pauses the recording (the
simulator's MixMonitor muted both ways while Ann types the card number),
resumes it, and sends Ann back to billing, where the queue's sticky agent
offers her to Alice again. The pause is stored with its times and source
``ivr``; the card number is nowhere in the store and in no log line."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from callwright.config import IvrConfig, RecordingPolicy, RecordingsConfig, RoutingConfig
from callwright.runtime import Runtime
from crm.repository import CustomerRepository
from ivr import load_flow
from routing import model
from routing.persistence import AgentRepository
from sim.pbx.model import MixMonitorRec
from sim.pbx.server import PbxSimulator
from store import make_engine
from store.migrate import upgrade
from tests.recordings.test_control import until

from .conftest import QUEUE, Recorder, make_config, offered_to
from .test_ivr_fastagi import ANN, OPEN, IvrStack

FLOWS = Path(__file__).resolve().parents[2] / "flows"
CARD = "4111111111111111"  # Luhn-valid
BILLING = replace(
    QUEUE, id="billing", target='"billing" in agent.skills', sticky_agent_seconds=30.0
)


@dataclass
class PayStack(IvrStack):
    db: Path = Path()


@pytest.fixture
async def pay(tmp_path: Path) -> AsyncIterator[PayStack]:
    data = tmp_path / "data"
    db = data / "callwright.db"
    url = f"sqlite+aiosqlite:///{db}"
    await upgrade(url)
    engine = make_engine(url)
    repo = AgentRepository(engine)
    agents = {}
    for username, ext in (("alice", "1001"), ("bob", "1002")):
        agent = await repo.create(
            username,
            username.title(),
            ext,
            skills={"support": 5, "billing": 5},
            capacity={"voice": 1, "callback": 1},
        )
        agents[ext] = str(agent.id)
    ann = await CustomerRepository(engine).create(
        "Ann Vip", phones=[ANN], account_number="1234567", notes="Key account #VIP"
    )
    await engine.dispose()
    spool = tmp_path / "spool"
    sim = PbxSimulator(answer_delay=0.02, login_failure_delay=0, spool_dir=str(spool))
    await sim.start()
    config = replace(
        make_config(sim.port, data),
        routing=RoutingConfig(queues=(QUEUE, BILLING), voice_queue="support"),
        ivr=IvrConfig(
            flows={
                "support": load_flow(FLOWS / "support.toml"),
                "payment": load_flow(FLOWS / "payment.toml"),
            },
            agi_host="127.0.0.1",
            agi_port=0,
        ),
        recordings=RecordingsConfig(
            enabled=True,
            dir=tmp_path / "store",
            spool_dir=spool / "monitor",
            default=RecordingPolicy(record="all"),
        ),
    )
    runtime = Runtime(config)
    runtime.ivr.clock = lambda: OPEN  # the support line is open
    await runtime.start()
    try:
        await runtime.link.wait_ready(10)
        assert runtime.agi is not None and runtime.routing is not None
        sim.pbx.agi_url = f"{runtime.agi.url}/support"  # inbound; payment keeps its path
        recorder = Recorder()
        runtime.routing.subscribe(recorder)
        yield PayStack(sim, runtime, recorder, agents, ann.id, db)
    finally:
        await runtime.stop()
        await sim.stop()


def _dump(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return "\n".join(conn.iterdump())


@dataclass
class Answered:
    call_id: str
    caller: str  # Ann's channel
    recording_id: str
    mixmon: MixMonitorRec
    first: model.ReservationOffered


async def answered_and_recorded(pay: PayStack, keys: str = "11") -> Answered:
    """Ann: English (``keys`` "21": French), billing (the support flow); Alice
    answers; recorded."""
    routing = pay.runtime.routing
    assert routing is not None
    alice = pay.agents["1001"]
    await routing.set_agent_state(alice, "available")
    call = asyncio.create_task(pay.sim.inbound_call(ANN, "Ann", "5000"))
    caller = await pay.caller(ANN)
    pay.sim.send_dtmf(caller.name, keys)
    await asyncio.wait_for(call, 10)
    first = await pay.recorder.wait_for(offered_to(alice))
    assert isinstance(first, model.ReservationOffered)
    assert routing.router.task(first.task_id).queue_id == "billing"
    await routing.accept(first.reservation_id)
    bridged = await until(
        lambda: [c for c in pay.runtime.calls.calls() if c.bridged and c.ended_at is None],
        "call bridged",
    )
    call_id = bridged[0].id
    control = pay.runtime.recording_control
    recording_id = await until(
        lambda: _recording_id(control, call_id), "the call is being recorded"
    )
    channel = pay.sim.pbx.find(caller.name)
    assert channel is not None
    mixmon = channel.mixmonitors[0]
    assert not mixmon.muted_read and not mixmon.muted_write
    return Answered(call_id, caller.name, recording_id, mixmon, first)


async def transfer_to_payment(pay: PayStack, call_id: str) -> None:
    """Alice sends Ann to the payment line, as the desk's "Card payment" button
    does: the API sends a BlindTransfer of Alice's leg to callwright-payment."""
    alice = await pay.runtime.agents.get(int(pay.agents["1001"]))
    assert alice is not None
    token, _ = pay.runtime.auth.issue(alice)
    agent_leg = pay.runtime.calls.agent_leg(pay.runtime.calls.get(call_id))
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(
            f"{pay.runtime.url}/api/calls/{call_id}/transfer",
            json={"to": "payment", "idempotency_key": f"pay-{call_id}"},
        ) as resp:
            assert resp.status == 202, await resp.text()
            assert (await resp.json())["target"] == "payment"
    sent = [a for a in pay.sim.ami_actions_received if a.name == "BlindTransfer"]
    assert [(a["Channel"], a["Context"], a["Exten"]) for a in sent] == [
        (agent_leg.name, "callwright-payment", "s")
    ]


async def test_a_card_payment_mid_call_pauses_the_recording_and_returns_to_the_agent(
    pay: PayStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    routing = pay.runtime.routing
    assert routing is not None
    alice, bob = pay.agents["1001"], pay.agents["1002"]
    ans = await answered_and_recorded(pay)
    call_id, recording_id, mixmon, first = ans.call_id, ans.recording_id, ans.mixmon, ans.first
    control = pay.runtime.recording_control
    await routing.set_agent_state(bob, "available")  # bob is free: only stickiness picks Alice

    await transfer_to_payment(pay, call_id)
    row = await pay.wait_row(lambda r: r.flow == "payment" and r.node == "card")
    assert row.session.origin_queue == "billing"
    await until(lambda: mixmon.muted_read and mixmon.muted_write, "MixMonitor muted both ways")
    state = await until(lambda: _paused(control, call_id), "the pause stored")
    assert state["recording_id"] == recording_id and state["paused_since"] is not None

    pay.sim.send_dtmf(ans.caller, CARD + "#")  # typed while the recording is muted
    await pay.wait_row(lambda r: r.flow == "payment" and r.node == "after")
    await until(lambda: not mixmon.muted_read and not mixmon.muted_write, "MixMonitor unmuted")
    assert mixmon.writer is not None
    assert [(r, w) for _, r, w in mixmon.writer.marks] == [(True, True), (False, False)]
    pay.sim.send_dtmf(ans.caller, "1")  # back to my agent

    done = await pay.wait_row(lambda r: r.flow == "payment" and r.outcome == "queued")
    assert done.queue == "billing" and done.session.attributes["card"] == "************1111"
    assert done.session.path == ("pause", "card", "thanks", "resume", "after", "back")

    # Back in billing: the new task waits for Alice (sticky), though Bob is free.
    again = await pay.recorder.wait_for(
        lambda e: isinstance(e, model.ReservationOffered) and e.task_id != first.task_id
    )
    assert isinstance(again, model.ReservationOffered) and again.agent_id == alice
    task = routing.router.task(again.task_id)
    assert task.queue_id == "billing" and task.customer_id == str(pay.ann_id)

    # The pause is stored with its times, source and actor; the first recording
    # ended when Ann reached the holding point (a new interaction follows).
    pauses = await pay.runtime.recordings.pauses(recording_id)
    assert [(p.source, p.actor_id) for p in pauses] == [("ivr", "ivr")]
    assert pauses[0].resumed_at is not None and pauses[0].paused_at <= pauses[0].resumed_at
    ended = await until(
        lambda: _ended(pay.runtime, recording_id), "the first recording ended at the hold"
    )
    assert ended.state in ("ended", "stored")

    # The card number: nowhere in the store, in no log line.
    dump = await asyncio.to_thread(_dump, pay.db)
    assert "************1111" in dump  # the mask is there: the dump is the real store
    assert CARD not in dump
    assert not [r for r in caplog.records if CARD in r.getMessage()]

    # Alice takes Ann again and hangs up: Ann is asked the support flow's
    # survey (the payment line has none), which rates what Alice just handled.
    await routing.accept(again.reservation_id)
    await pay.sim.wait_for_channels(
        lambda chs: any(c.name == ans.caller and c.bridge is not None for c in chs)
    )
    support = await pay.wait_row(lambda r: r.flow == "support" and r.outcome == "queued")
    back = await pay.runtime.interactions.by_call_id(call_id)  # Alice's second
    assert back is not None and back.id != support.interaction_id
    await pay.sim.device_hangup("1001")
    await pay.wait_row(lambda r: r.phase == "survey")
    pay.sim.send_dtmf(ans.caller, "5")
    survey = await pay.wait_row(lambda r: r.phase == "survey" and r.outcome == "completed")
    assert (survey.flow, survey.survey_score, survey.origin_id) == ("support", 5, support.id)
    assert survey.interaction_id == back.id


async def _recording_id(control: object, call_id: str) -> str | None:
    from recordings.control import RecordingControl

    assert isinstance(control, RecordingControl)
    state = await control.state(call_id)
    return state["recording_id"] if state["state"] == "recording" else None


async def _paused(control: object, call_id: str) -> dict[str, object] | None:
    from recordings.control import RecordingControl

    assert isinstance(control, RecordingControl)
    state = await control.state(call_id)
    return state if state["state"] == "paused" else None


async def _ended(runtime: Runtime, recording_id: str) -> object:
    row = await runtime.recordings.get(recording_id)
    return row if row is not None and row.state in ("ended", "stored") else None


async def test_a_caller_who_chose_french_is_asked_for_the_card_in_french(pay: PayStack) -> None:
    ans = await answered_and_recorded(pay, keys="21")
    await transfer_to_payment(pay, ans.call_id)
    row = await pay.wait_row(lambda r: r.flow == "payment" and r.node == "card")
    assert row.session.language == "fr"
    said = [
        e.get("Command") or ""
        for e in pay.sim.recent_events
        if e.name == "AGIExecEnd" and e.get("Channel") == ans.caller
    ]
    assert any("Veuillez taper le num" in command for command in said), said
    assert not any("Please type your card number" in command for command in said), said


async def test_the_payment_flow_on_a_call_not_recorded_goes_on_to_its_own_queue(
    pay: PayStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.fastagi")
    assert pay.runtime.agi is not None
    pay.sim.pbx.agi_url = f"{pay.runtime.agi.url}/payment"  # straight into the payment line
    call = asyncio.create_task(pay.sim.inbound_call("+15550004444", "", "5000"))
    caller = await pay.caller("+15550004444")
    pay.sim.send_dtmf(caller.name, CARD + "#1")
    await asyncio.wait_for(call, 10)
    done = await pay.wait_row(lambda r: r.flow == "payment" and r.outcome == "queued")
    assert done.session.origin_queue == "" and done.queue == "support"  # no queue before
    assert done.session.attributes["card"] == "************1111"
    notes = [r.getMessage() for r in caplog.records if r.name == "ivr.fastagi"]
    assert any("not paused" in n and "is not being recorded" in n for n in notes), notes
    assert any("not resumed" in n for n in notes), notes
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "ivr.fastagi")


async def test_asterisk_refusing_the_mute_is_a_warning_and_the_caller_still_goes_back(
    pay: PayStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.fastagi")
    ans = await answered_and_recorded(pay)
    ans.mixmon.id = "gone"  # Asterisk no longer knows this MixMonitorID: "Cannot set mute flag"
    await transfer_to_payment(pay, ans.call_id)
    await pay.wait_row(lambda r: r.flow == "payment" and r.node == "card")
    pay.sim.send_dtmf(ans.caller, CARD + "#1")
    done = await pay.wait_row(lambda r: r.flow == "payment" and r.outcome == "queued")
    assert done.queue == "billing"
    assert not ans.mixmon.muted_read and await pay.runtime.recordings.pauses(ans.recording_id) == []
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "ivr.fastagi" and r.levelno == logging.WARNING
    ]
    assert any("not paused" in w and "Cannot set mute flag" in w for w in warnings), warnings
