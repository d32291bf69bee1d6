"""One flow, two edges: the shipped support flow walked with the same keys by an
Asterisk caller (the simulator runs AGI() against Callwright's FastAGI server,
then parks the caller at the holding point, where voice routing makes the
task) and by a Twilio caller (signed webhooks, TwiML), in the same runtime.
Both reach the same queue with the same routing task: priority, language,
skills, customer and every attribute (only the IVR session's id differs)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from callwright.config import Secret, TwilioConfig, load_config
from callwright.runtime import Runtime
from routing import model
from routing.model import TaskView
from sim.pbx.model import SimChannel
from sim.pbx.server import PbxSimulator
from sim.twilio import TwilioCaller
from tests.integration.conftest import Recorder, make_config

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "twilio-parity-token-0123456789"
OPEN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # a Wednesday, 12:00 in Paris
CALLER = "+33612345678"
DID = "5000"


async def caller_channel(sim: PbxSimulator, number: str) -> SimChannel:
    async def find() -> SimChannel:
        while True:
            for channel in sim.channels():
                if channel.caller_num == number and channel.application == "AGI":
                    return channel
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(find(), 10)


def comparable(view: TaskView) -> dict[str, object]:
    attributes = dict(view.attributes)
    session = attributes.pop("ivr_session")
    assert isinstance(session, str) and session
    return {
        "queue": view.queue_id,
        "channel": view.channel,
        "priority": view.priority,
        "language": view.language,
        "skills": dict(view.required_skills),
        "customer": view.customer_id,
        "attributes": attributes,
    }


async def test_the_same_keys_through_fastagi_and_twilio_make_the_same_task(
    tmp_path: Path,
) -> None:
    shipped = load_config(ROOT / "config.toml", env={})
    sim = PbxSimulator(
        answer_delay=0.02,
        login_failure_delay=0,
        agi_url="agi://callwright.example:4573/support",
    )
    await sim.start()
    config = replace(
        make_config(sim.port, tmp_path / "data"),
        routing=shipped.routing,
        ivr=replace(shipped.ivr, agi_port=0),
        twilio=TwilioConfig(auth_token=Secret(TOKEN)),
    )
    runtime = Runtime(config)
    runtime.ivr.clock = lambda: OPEN
    await runtime.start()
    try:
        await runtime.link.wait_ready(10)
        assert runtime.agi is not None and runtime.routing is not None
        sim.pbx.agi_address = (runtime.agi.host, runtime.agi.port)
        customer = await runtime.customers.create(
            "Ann Vip", account_number="1234567", notes="Key account #VIP"
        )
        recorder = Recorder()
        runtime.routing.subscribe(recorder)

        # English, billing, an account number: the same keys on both edges.
        entering = asyncio.create_task(sim.inbound_call(CALLER, did=DID))
        channel = await caller_channel(sim, CALLER)
        sim.send_dtmf(channel.name, "111234567#")
        await asyncio.wait_for(entering, 20)
        queued = await recorder.wait_for(lambda e: isinstance(e, model.TaskQueued))
        assert isinstance(queued, model.TaskQueued)
        agi_task = runtime.routing.router.task(queued.task_id)

        async with aiohttp.ClientSession() as http:
            twilio = TwilioCaller(
                runtime.url,
                TOKEN,
                flow="support",
                caller=CALLER,
                dialed=DID,
                keys=["1", "1", "1234567#"],
            )
            await twilio.run(http)
        assert twilio.queued == "billing"
        row = await runtime.ivr_sessions.latest_for_call_ref(twilio.sid)
        assert row is not None and row.task_id is not None
        twilio_task = runtime.routing.router.task(row.task_id)

        assert comparable(agi_task) == comparable(twilio_task)
        expected = comparable(twilio_task)
        assert expected["queue"] == "billing"
        assert expected["priority"] == 10
        assert expected["customer"] == str(customer.id)
        assert expected["skills"] == {"billing": 1}
        attributes = expected["attributes"]
        assert isinstance(attributes, dict)
        assert attributes["intent"] == "billing"
        assert attributes["account_number"] == "1234567"
        assert attributes["caller_id"] == CALLER
    finally:
        await runtime.stop()
        await sim.stop()
