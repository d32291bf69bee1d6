"""CallService.requested_queue over TCP against the PBX simulator: the queue a
transfer or the dialplan asked for comes from the call tracker (VarSet events)
with no AMI round trip; a Getvar is sent only when the tracker cannot know the
value (after a link drop and resync, or on a link that delivers no VarSet)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from cti.ami.messages import AmiAction, AmiEvent, AmiResponse
from cti.calls.model import QUEUE_VARIABLE, Call
from cti.calls.service import CallService
from cti.link import AmiLink, LinkSettings
from sim.pbx.model import AmiUser
from sim.pbx.server import CALLWRIGHT_WRITE, PbxSimulator

HOLD = "callwright-hold"


@dataclass
class Cti:
    sim: PbxSimulator
    link: AmiLink
    calls: CallService

    def actions(self, name: str) -> list[AmiAction]:
        return [a for a in self.sim.ami_actions_received if a.name == name]

    def queue_actions(self, name: str) -> list[tuple[str, str]]:
        """(Channel, Value) of the Getvar/Setvar actions on CALLWRIGHT_QUEUE."""
        return [
            (a.get("Channel") or "", a.get("Value") or "")
            for a in self.actions(name)
            if a.get("Variable") == QUEUE_VARIABLE
        ]

    async def until(self, check: Callable[[], object], what: str) -> None:
        async def poll() -> None:
            while not check():
                await asyncio.sleep(0.01)

        try:
            await asyncio.wait_for(poll(), 10)
        except TimeoutError:
            raise AssertionError(f"never happened: {what}") from None

    async def caller_at_hold(self, number: str) -> Call:
        """A customer calls in; returns the call once the tracker shows the
        customer waiting at the holding context (as voice routing sees it)."""
        await self.sim.inbound_call(number, "Ada")
        found: list[Call] = []

        def at_hold() -> bool:
            found[:] = [
                c for c in self.calls.calls() if c.caller.number == number and c.context == HOLD
            ]
            return bool(found)

        await self.until(at_hold, f"{number} at {HOLD} in the tracker")
        return found[0]

    def customer_queue(self, call_id: str) -> str | None:
        call = self.calls.get(call_id)
        return self.calls.customer_leg(call).variable(QUEUE_VARIABLE)


@contextlib.asynccontextmanager
async def running(sim: PbxSimulator) -> AsyncIterator[Cti]:
    """CallService on an AmiLink to ``sim``, wired as the runtime wires them."""
    holder: list[CallService] = []
    link = AmiLink(
        LinkSettings(
            host=sim.host,
            port=sim.port,
            username="callwright",
            secret="callwright-secret",
            reconnect_min=0.05,
            reconnect_max=0.2,
        ),
        on_event=lambda event: holder[0].on_ami_event(event),
        on_ready=lambda: holder[0].resync(),
    )
    calls = CallService(link, clock=lambda: 1000.0)
    holder.append(calls)
    calls.start()
    link.start()
    try:
        await link.wait_ready(10)
        yield Cti(sim, link, calls)
    finally:
        await link.close()
        await calls.stop()


@pytest.fixture
async def cti(sim: PbxSimulator) -> AsyncIterator[Cti]:
    async with running(sim) as cti:
        yield cti


async def test_an_ordinary_inbound_caller_costs_no_getvar(cti: Cti) -> None:
    call = await cti.caller_at_hold("+15550100001")
    assert cti.customer_queue(call.id) == ""  # known to be empty, from the events

    assert await cti.calls.requested_queue(call.id) is None
    assert cti.actions("Getvar") == []
    assert cti.actions("Setvar") == []  # nothing to clear either
    assert cti.calls.queue_getvars == 0


async def test_a_queue_set_by_the_dialplan_before_the_hold_is_honoured_without_getvar(
    sim: PbxSimulator, cti: Cti
) -> None:
    """The inbound dialplan's AGI (an IVR) sets the variable, then the caller
    goes on to the holding context."""

    async def ivr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():  # the agi_* block, up to its blank line
            pass
        writer.write(f"SET VARIABLE {QUEUE_VARIABLE} billing\n".encode())
        await writer.drain()
        await reader.readline()  # 200 result=1
        writer.close()

    server = await asyncio.start_server(ivr, "127.0.0.1", 0)
    try:
        sim.pbx.agi_url = f"agi://127.0.0.1:{server.sockets[0].getsockname()[1]}/support"
        call = await cti.caller_at_hold("+15550100002")
    finally:
        server.close()
    customer = cti.calls.customer_leg(call)
    assert sim.pbx.get_var(sim.pbx.find(customer.name), QUEUE_VARIABLE) == "billing"
    assert cti.customer_queue(call.id) == "billing"

    assert await cti.calls.requested_queue(call.id) == "billing"
    assert cti.actions("Getvar") == []
    # Read once: cleared on the PBX and in the tracker's view at once, so a
    # later return to the holding point is not taken for this queue again.
    assert cti.queue_actions("Setvar") == [(customer.name, "")]
    assert sim.pbx.get_var(sim.pbx.find(customer.name), QUEUE_VARIABLE) == ""
    assert cti.customer_queue(call.id) == ""
    assert await cti.calls.requested_queue(call.id) is None
    assert cti.actions("Getvar") == []
    assert len(cti.queue_actions("Setvar")) == 1


async def test_a_queue_set_with_setvar_is_read_from_the_events(cti: Cti) -> None:
    call = await cti.caller_at_hold("+15550100003")
    customer = cti.calls.customer_leg(call)
    await cti.link.send(
        AmiAction.build(
            "Setvar", {"Channel": customer.name, "Variable": QUEUE_VARIABLE, "Value": "support"}
        )
    )
    await cti.until(lambda: cti.customer_queue(call.id) == "support", "the VarSet folded")
    assert await cti.calls.requested_queue(call.id) == "support"
    assert cti.actions("Getvar") == []


async def test_an_invalid_queue_is_cleared_and_not_returned(sim: PbxSimulator, cti: Cti) -> None:
    call = await cti.caller_at_hold("+15550100004")
    customer = cti.calls.customer_leg(call)
    channel = sim.pbx.find(customer.name)
    sim.pbx.set_var(channel, QUEUE_VARIABLE, "no such queue!")
    await cti.until(lambda: cti.customer_queue(call.id) == "no such queue!", "the VarSet folded")
    assert await cti.calls.requested_queue(call.id) is None
    assert cti.actions("Getvar") == []
    assert sim.pbx.get_var(channel, QUEUE_VARIABLE) == ""


async def test_after_a_link_drop_and_resync_the_value_is_read_with_getvar(
    sim: PbxSimulator, cti: Cti
) -> None:
    call = await cti.caller_at_hold("+15550100005")
    customer = cti.calls.customer_leg(call)
    channel = sim.pbx.find(customer.name)
    assert cti.customer_queue(call.id) == ""

    # The link goes half-open: the VarSet of this transfer is lost.
    resyncs = cti.calls.resyncs
    sim.freeze_connections()
    sim.pbx.set_var(channel, QUEUE_VARIABLE, "billing")
    await sim.drop_connections()
    sim.freeze_connections(False)
    await cti.until(lambda: cti.calls.resyncs > resyncs, "a resync after the reconnect")
    assert cti.customer_queue(call.id) is None  # the tracker knows it may have missed some

    assert await cti.calls.requested_queue(call.id) == "billing"
    assert cti.queue_actions("Getvar") == [(customer.name, "")]
    assert cti.calls.queue_getvars == 1
    assert sim.pbx.get_var(channel, QUEUE_VARIABLE) == ""
    # Cleared by Callwright: known again, no second Getvar.
    assert await cti.calls.requested_queue(call.id) is None
    assert len(cti.actions("Getvar")) == 1


async def test_a_link_without_varset_events_falls_back_to_getvar() -> None:
    """An AMI user without the ``dialplan`` read class gets no VarSet: the
    tracker cannot know the variable is empty, so it is asked for."""
    user = AmiUser.with_classes("callwright-secret", {"system", "call"}, CALLWRIGHT_WRITE)
    sim = PbxSimulator(answer_delay=0.02, login_failure_delay=0, users={"callwright": user})
    await sim.start()
    try:
        async with running(sim) as cti:
            call = await cti.caller_at_hold("+15550100006")
            assert cti.customer_queue(call.id) is None
            channel = sim.pbx.find(cti.calls.customer_leg(call).name)
            sim.pbx.set_var(channel, QUEUE_VARIABLE, "billing")
            assert await cti.calls.requested_queue(call.id) == "billing"
            assert len(cti.actions("Getvar")) == 1
            assert sim.pbx.get_var(channel, QUEUE_VARIABLE) == ""
    finally:
        await sim.stop()


class ScriptedAmi:
    """An AMI client whose CoreShowChannels answer waits for the test, and
    which answers every other action with Success (Getvar: ``value``)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.sent: list[AmiAction] = []
        self.listing = asyncio.Event()

    async def send(self, action: AmiAction, *, timeout: float | None = None) -> AmiResponse:
        self.sent.append(action)
        headers = [("Response", "Success")]
        if action.name == "Getvar":
            headers += [("Variable", action.get("Variable") or ""), ("Value", self.value)]
        return AmiResponse(tuple(headers))

    async def send_list(
        self, action: AmiAction, *, timeout: float | None = None
    ) -> tuple[AmiResponse, list[AmiEvent]]:
        self.sent.append(action)
        await self.listing.wait()
        return AmiResponse((("Response", "Success"),)), []


async def test_while_a_resync_is_under_way_the_value_is_read_with_getvar() -> None:
    """Between a reconnect and the end of its resync the model is the one from
    before the drop: a VarSet may have been missed meanwhile."""
    ami = ScriptedAmi("billing")
    calls = CallService(ami, clock=lambda: 1000.0)
    channel = [
        ("Channel", "PJSIP/trunk-00000001"),
        ("ChannelStateDesc", "Up"),
        ("Context", HOLD),
        ("Exten", "s"),
        ("Uniqueid", "1.1"),
        ("Linkedid", "1.1"),
    ]
    calls.on_ami_event(AmiEvent.build("Newchannel", channel))
    calls.on_ami_event(
        AmiEvent.build("VarSet", [*channel, ("Variable", "CALLWRIGHT_DID"), ("Value", "5000")])
    )
    assert calls.customer_leg(calls.get("1.1")).variable(QUEUE_VARIABLE) == ""
    assert await calls.requested_queue("1.1") is None
    assert ami.sent == []

    resync = asyncio.create_task(calls.resync())
    await asyncio.sleep(0)  # waiting for the CoreShowChannels list
    assert await calls.requested_queue("1.1") == "billing"
    assert [a.name for a in ami.sent] == ["CoreShowChannels", "Getvar", "Setvar"]
    ami.listing.set()
    await resync
