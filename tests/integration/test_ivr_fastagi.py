"""The sample flow through FastAGI on the whole stack: the PBX simulator runs
the callwright dialplan (AGI to Callwright's FastAGI server, then the holding
point), callers press keys, Callwright stores the session, routes the call
with what the IVR collected, pops the customer the IVR found, makes callback
and voicemail tasks, and asks the post-call survey after the agent hangs up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from callwright.config import IvrConfig, RoutingConfig
from callwright.runtime import Runtime
from crm.repository import CustomerRepository
from ivr import load_flow
from ivr.repository import IvrSessionRow
from routing import model
from routing.persistence import AgentRepository
from sim.pbx.model import SimChannel
from sim.pbx.server import PbxSimulator
from store import make_engine
from store.migrate import upgrade

from .conftest import QUEUE, TOKEN, Recorder, make_config

FLOW = load_flow(Path(__file__).resolve().parents[2] / "flows" / "support.toml")
OPEN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # Wednesday 12:00 in Paris
CLOSED = datetime(2026, 6, 3, 20, 0, tzinfo=UTC)
BILLING = replace(QUEUE, id="billing", target='"billing" in agent.skills')
ANN = "+33612345678"  # a VIP customer in the CRM


@dataclass
class IvrStack:
    sim: PbxSimulator
    runtime: Runtime
    recorder: Recorder
    agents: dict[str, str]
    ann_id: int

    async def rows(self) -> list[IvrSessionRow]:
        from sqlalchemy import select

        from ivr.persistence import ivr_sessions

        async with self.runtime.engine.connect() as conn:
            ids = [r.id for r in (await conn.execute(select(ivr_sessions.c.id))).all()]
        found = [await self.runtime.ivr_sessions.get(i) for i in ids]
        return [r for r in found if r is not None]

    async def wait_row(
        self, predicate: Callable[[IvrSessionRow], bool], timeout: float = 10.0
    ) -> IvrSessionRow:
        async def wait() -> IvrSessionRow:
            while True:
                for row in await self.rows():
                    if predicate(row):
                        return row
                await asyncio.sleep(0.02)

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"no such IVR session; rows: {await self.rows()}") from None

    async def caller(self, number: str) -> SimChannel:
        """The caller's channel once it is in the IVR (the AGI connected)."""

        def in_ivr(channels: list[SimChannel]) -> bool:
            return any(c.caller_num == number and c.application == "AGI" for c in channels)

        channels = await self.sim.wait_for_channels(in_ivr, timeout=10)
        return next(c for c in channels if c.caller_num == number and c.application == "AGI")


async def _stack(tmp_path: Path, now: datetime) -> AsyncIterator[IvrStack]:
    data = tmp_path / "data"
    url = f"sqlite+aiosqlite:///{data / 'callwright.db'}"
    await upgrade(url)
    engine = make_engine(url)
    repo = AgentRepository(engine)
    agents = {}
    for username, ext, skills in (
        ("alice", "1001", {"support": 5, "billing": 5}),
        ("bob", "1002", {"support": 5}),
    ):
        agent = await repo.create(
            username, username.title(), ext, skills=skills, capacity={"voice": 1, "callback": 1}
        )
        agents[ext] = str(agent.id)
    ann = await CustomerRepository(engine).create(
        "Ann Vip", phones=[ANN], account_number="1234567", notes="Key account #VIP"
    )
    await engine.dispose()
    sim = PbxSimulator(answer_delay=0.02, login_failure_delay=0)
    await sim.start()
    config = make_config(sim.port, data)
    config = replace(
        config,
        routing=RoutingConfig(queues=(QUEUE, BILLING), voice_queue="support"),
        ivr=IvrConfig(flows={"support": FLOW}, agi_host="127.0.0.1", agi_port=0),
    )
    runtime = Runtime(config)
    runtime.ivr.clock = lambda: now  # business hours as the test needs them
    await runtime.start()
    try:
        await runtime.link.wait_ready(10)
        assert runtime.agi is not None and runtime.routing is not None
        sim.pbx.agi_url = f"{runtime.agi.url}/support"  # the dialplan's AGI() target
        recorder = Recorder()
        runtime.routing.subscribe(recorder)
        yield IvrStack(sim, runtime, recorder, agents, ann.id)
    finally:
        await runtime.stop()
        await sim.stop()


@pytest.fixture
async def open_stack(tmp_path: Path) -> AsyncIterator[IvrStack]:
    async for stack in _stack(tmp_path, OPEN):
        yield stack


@pytest.fixture
async def closed_stack(tmp_path: Path) -> AsyncIterator[IvrStack]:
    async for stack in _stack(tmp_path, CLOSED):
        yield stack


def queued(event: model.RoutingEvent) -> bool:
    return isinstance(event, model.TaskQueued)


async def test_known_vip_caller_is_routed_to_billing_with_the_ivr_data_on_the_pop(
    open_stack: IvrStack,
) -> None:
    stack = open_stack
    call = asyncio.create_task(stack.sim.inbound_call(ANN, "Ann", "5000"))
    caller = await stack.caller(ANN)
    stack.sim.send_dtmf(caller.name, "1")  # English
    stack.sim.send_dtmf(caller.name, "1")  # billing
    customer = await asyncio.wait_for(call, 10)
    assert customer.context == "callwright-hold"
    assert stack.sim.pbx.get_var(customer, "CALLWRIGHT_IVR") == "queued"

    event = await stack.recorder.wait_for(queued)
    assert isinstance(event, model.TaskQueued)
    routing = stack.runtime.routing
    assert routing is not None
    task = routing.router.task(event.task_id)
    assert task.queue_id == "billing" and task.priority == 10
    assert task.customer_id == str(stack.ann_id) and task.language == "en"
    assert task.required_skills == {"billing": 1}
    assert task.attributes["intent"] == "billing" and task.attributes["segment"] == "vip"
    assert task.attributes["caller_number"] == ANN

    pop = await stack.runtime.desk.pops.for_task(task)
    assert pop["customer"]["id"] == stack.ann_id and pop["customer"]["name"] == "Ann Vip"
    assert pop["ivr"]["flow"] == "support" and pop["ivr"]["language"] == "en"
    assert pop["ivr"]["data"]["intent"] == "billing" and pop["ivr"]["data"]["vip"] is True
    assert stack.runtime.desk.pops.store_builds == 0  # prepared in the call path

    row = await stack.wait_row(lambda r: r.task_id == event.task_id)
    assert row.outcome == "queued" and row.queue == "billing" and row.call_id is not None
    assert row.interaction_id is not None and row.customer_id == stack.ann_id
    # The queue variable was read and cleared: a later return to the holding
    # point is not taken for a transfer to billing.
    assert stack.sim.pbx.get_var(customer, "CALLWRIGHT_QUEUE") == ""


async def test_garbage_keys_then_timeouts_end_with_the_operator(open_stack: IvrStack) -> None:
    stack = open_stack
    stack.sim.pbx.time_scale = 0.02  # AGI digit timeouts pass quickly
    call = asyncio.create_task(stack.sim.inbound_call("+15550007777", "", "5000"))
    caller = await stack.caller("+15550007777")
    stack.sim.send_dtmf(caller.name, "2")  # français
    stack.sim.send_dtmf(caller.name, "9*")  # not a choice, twice; then no key at all
    await asyncio.wait_for(call, 20)
    event = await stack.recorder.wait_for(queued)
    assert isinstance(event, model.TaskQueued)
    routing = stack.runtime.routing
    assert routing is not None
    task = routing.router.task(event.task_id)
    assert task.queue_id == "support" and task.language == "fr"
    assert task.attributes["operator"] is True and task.customer_id is None
    row = await stack.wait_row(lambda r: r.task_id == event.task_id)
    # Two wrong keys and a silence at the menu: its failure branch, no choice made.
    assert row.session.path[-2:] == ("main_menu", "operator")
    assert "intent" not in row.session.attributes


async def test_caller_hanging_up_in_the_menu_is_abandoned_at_that_node(
    open_stack: IvrStack,
) -> None:
    stack = open_stack
    call = asyncio.create_task(stack.sim.inbound_call("+15550008888", "", "5000"))
    caller = await stack.caller("+15550008888")
    stack.sim.send_dtmf(caller.name, "1")
    await stack.wait_row(lambda r: r.node == "main_menu")
    await stack.sim.customer_hangup(caller.name)
    await asyncio.wait_for(call, 10)
    row = await stack.wait_row(lambda r: r.outcome == "abandoned")
    assert row.abandoned_node == "main_menu" and row.ended_at is not None
    assert row.session.language == "en"
    assert not [e for e in stack.recorder.events if queued(e)]


async def test_unknown_flow_sends_the_caller_to_the_default_queue(open_stack: IvrStack) -> None:
    stack = open_stack
    assert stack.runtime.agi is not None
    stack.sim.pbx.agi_url = f"{stack.runtime.agi.url}/no-such-flow"
    customer = await asyncio.wait_for(stack.sim.inbound_call("+15550006666", "", "5000"), 10)
    assert stack.sim.pbx.get_var(customer, "CALLWRIGHT_IVR") == "failed"
    event = await stack.recorder.wait_for(queued)
    assert isinstance(event, model.TaskQueued)
    routing = stack.runtime.routing
    assert routing is not None
    assert routing.router.task(event.task_id).queue_id == "support"
    assert await stack.rows() == []


async def test_callback_request_when_closed_becomes_a_callback_task(
    closed_stack: IvrStack,
) -> None:
    stack = closed_stack
    call = asyncio.create_task(stack.sim.inbound_call(ANN, "Ann", "5000"))
    caller = await stack.caller(ANN)
    stack.sim.send_dtmf(caller.name, "12")  # English; closed menu: call me back
    ended = await asyncio.wait_for(call, 10)
    assert ended.hungup  # the flow said goodbye and hung up
    event = await stack.recorder.wait_for(queued)
    assert isinstance(event, model.TaskQueued)
    routing = stack.runtime.routing
    assert routing is not None
    task = routing.router.task(event.task_id)
    assert task.channel == "callback" and task.queue_id == "support"
    assert task.attributes["callback_number"] == ANN
    assert task.customer_id == str(stack.ann_id)
    row = await stack.wait_row(lambda r: r.outcome == "callback")
    assert row.task_id == task.id and row.interaction_id is not None
    link = await routing.journal.task(task.id)
    assert link is not None and link.interaction_id == row.interaction_id


async def test_voicemail_when_closed_becomes_a_task_with_the_recording(
    closed_stack: IvrStack,
) -> None:
    stack = closed_stack
    stack.sim.pbx.time_scale = 0.05
    call = asyncio.create_task(stack.sim.inbound_call("+15550005555", "", "5000"))
    caller = await stack.caller("+15550005555")
    stack.sim.send_dtmf(caller.name, "11")  # English; closed menu: leave a message

    def recording(channels: list[SimChannel]) -> bool:
        return any(c.name == caller.name and "RECORD FILE" in _last_agi(stack, c) for c in channels)

    await stack.sim.wait_for_channels(recording, timeout=10)
    await asyncio.sleep(0.1)  # the caller speaks (2 s at this time scale)
    stack.sim.send_dtmf(caller.name, "#")
    await asyncio.wait_for(call, 10)
    event = await stack.recorder.wait_for(queued)
    assert isinstance(event, model.TaskQueued)
    routing = stack.runtime.routing
    assert routing is not None
    task = routing.router.task(event.task_id)
    assert task.channel == "callback" and task.attributes["voicemail"] is True
    row = await stack.wait_row(lambda r: r.outcome == "voicemail")
    assert task.attributes["recording"] == f"callwright/voicemail/{row.id}.wav"
    seconds = task.attributes["recording_seconds"]
    assert isinstance(seconds, float) and seconds >= 1
    assert task.attributes["callback_number"] == "+15550005555"


def _last_agi(stack: IvrStack, channel: SimChannel) -> str:
    for event in reversed(stack.sim.recent_events):
        if event.name == "AGIExecStart" and event.get("Channel") == channel.name:
            return event.get("Command") or ""
    return ""


async def test_post_call_survey_after_the_agent_hangs_up_is_stored(
    open_stack: IvrStack,
) -> None:
    stack = open_stack
    routing = stack.runtime.routing
    assert routing is not None
    alice = stack.agents["1001"]
    await routing.set_agent_state(alice, "available")
    call = asyncio.create_task(stack.sim.inbound_call(ANN, "Ann", "5000"))
    caller = await stack.caller(ANN)
    stack.sim.send_dtmf(caller.name, "11")
    await asyncio.wait_for(call, 10)
    offer = await stack.recorder.wait_for(
        lambda e: isinstance(e, model.ReservationOffered) and e.agent_id == alice
    )
    assert isinstance(offer, model.ReservationOffered)
    await routing.accept(offer.reservation_id)
    await stack.sim.wait_for_channels(
        lambda chs: any(c.name == caller.name and c.bridge is not None for c in chs)
    )
    row = await stack.wait_row(lambda r: r.outcome == "queued" and r.interaction_id is not None)
    await stack.sim.device_hangup("1001")
    await stack.wait_row(lambda r: r.phase == "survey")
    stack.sim.send_dtmf(caller.name, "4")
    survey = await stack.wait_row(lambda r: r.phase == "survey" and r.outcome == "completed")
    assert survey.origin_id == row.id and survey.survey_score == 4, (
        survey.session,
        _agi_log(stack, caller),
    )
    assert row.interaction_id is not None
    assert await stack.runtime.ivr_sessions.survey_for_interaction(row.interaction_id) == 4
    # The supervisors' queue report counts the answer in the interaction's queue.
    interaction = await stack.runtime.interactions.get(row.interaction_id)
    assert interaction is not None and interaction.queue is not None
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with http.get(f"{stack.runtime.url}/api/reports/queues?since=0") as resp:
            assert resp.status == 200
            report = await resp.json()
        async with http.get(f"{stack.runtime.url}/api/reports/surveys?since=0") as resp:
            assert resp.status == 200
            alone = await resp.json()
    surveys = {q: figures["survey"] for q, figures in report["queues"].items()}
    assert alone["queues"] == surveys  # the survey report alone says the same
    assert surveys.pop(interaction.queue) == {"count": 1, "average": 4.0}
    assert surveys and all(s == {"count": 0, "average": None} for s in surveys.values())


def _agi_log(stack: IvrStack, channel: SimChannel) -> list[tuple[str, str]]:
    return [
        (e.name, (e.get("Command") or "") + " " + (e.get("Result") or ""))
        for e in stack.sim.recent_events
        if e.name in ("AGIExecEnd", "DTMFEnd") and e.get("Channel") == channel.name
    ]


PARTNER = "+15555550100"  # flows/support.toml: the hardware partner's number


async def test_a_transfer_that_finds_the_line_busy_takes_the_flows_failure_branch(
    open_stack: IvrStack,
) -> None:
    """Option 3 transfers to the partner; the partner is busy: the caller hears
    the failure branch's prompt and waits in support, as the flow says."""
    stack = open_stack
    stack.sim.set_device(PARTNER, busy=True)
    call = asyncio.create_task(stack.sim.inbound_call(ANN, "Ann", "5000"))
    caller = await stack.caller(ANN)
    stack.sim.send_dtmf(caller.name, "13")  # English, the hardware partner
    await asyncio.wait_for(call, 10)
    row = await stack.wait_row(lambda r: r.outcome == "queued")
    assert row.session.path[-4:] == ("main_menu", "partner", "partner_busy", "to_support")
    assert row.queue == "support"
    task = await stack.recorder.wait_for(queued)
    assert isinstance(task, model.TaskQueued) and task.queue_id == "support"
    said = [
        e.get("Command") or ""
        for e in stack.sim.recent_events
        if e.name == "AGIExecEnd" and e.get("Channel") == caller.name
    ]
    assert any("Our partner cannot answer right now" in command for command in said), said
    dial_ends = [e.get("DialStatus") for e in stack.sim.recent_events if e.name == "DialEnd"]
    assert "BUSY" in dial_ends


async def test_a_transfer_that_connects_ends_the_flow_transferred(open_stack: IvrStack) -> None:
    stack = open_stack
    call = asyncio.create_task(stack.sim.inbound_call(ANN, "Ann", "5000"))
    caller = await stack.caller(ANN)
    stack.sim.send_dtmf(caller.name, "13")
    row = await stack.wait_row(lambda r: r.outcome == "transferred")
    assert row.session.node == "partner"
    await stack.sim.wait_for_channels(
        lambda chs: any(c.name == caller.name and c.bridge is not None for c in chs)
    )
    call.cancel()  # it waits for the caller on hold, who never goes there
    # Connected: no task, and no second flow run after the Dial.
    assert not [e for e in stack.recorder.events if isinstance(e, model.TaskQueued)]
    assert [r.outcome for r in await stack.rows()] == ["transferred"]
