"""The Asterisk side of FastAGI: the simulator connects to an AGI server, as
Asterisk does for AGI(agi://...) in the dialplan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simtest_support import USERS, AmiClient

from sim.pbx import PbxSimulator
from sim.replay import LAB_SECRETS, AgiReplayServer, Replay, lab_simulator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"


async def test_fastagi_and_its_ami_events_match_transcripts_11() -> None:
    """Both sides at once: the recorded AGI server script answers the
    simulator's AGI sessions while the recorded AMI client originates the
    calls and hangs the second one up during WAIT FOR DIGIT."""
    sim = lab_simulator(time_scale=0.05)
    server = AgiReplayServer(FIXTURES / "11-fastagi.txt")
    await sim.start()
    await server.start()
    try:
        sim.pbx.agi_address = (server.host, server.port)
        result = await Replay(sim, secrets=LAB_SECRETS).run(FIXTURES / "11-fastagi-ami-events.txt")
        await asyncio.wait_for(server.done.wait(), 5)
        assert result.ok, result.report()
        assert server.compare() == []
        assert [len(r) for r in server.received] == [
            len(s.received().splitlines()) for s in server.sessions
        ]
    finally:
        await server.stop()
        await sim.stop()


class IvrServer:
    """A tiny FastAGI script: answer, ask for a digit, store it, return."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.replies: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.session, "127.0.0.1", 0)
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"agi://{host}:{port}/support"

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (line := (await reader.readline()).decode().rstrip("\n")) != "":
            key, _, value = line.partition(": ")
            self.env[key] = value

        async def command(text: str) -> str:
            writer.write(text.encode() + b"\n")
            reply = (await reader.readline()).decode().rstrip("\n")
            self.replies.append(reply)
            return reply

        await command("ANSWER")
        reply = await command("GET DATA ivr-menu 5000 1")
        digit = reply.split("result=", 1)[1].split()[0]
        await command(f'SET VARIABLE IVR_CHOICE "{digit}"')
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def ivr() -> AsyncIterator[IvrServer]:
    server = IvrServer()
    yield server
    await server.stop()


async def test_inbound_call_runs_the_ivr_before_the_holding_point(ivr: IvrServer) -> None:
    url = await ivr.start()
    sim = PbxSimulator(users=USERS, agi_url=url, answer_delay=0.0, login_failure_delay=0.0)
    await sim.start()
    try:
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        ami = AmiClient(reader, writer)
        await ami.wait_banner()
        await ami.request("Login", {"Username": "admin", "Secret": "admin-secret"})
        call = asyncio.create_task(sim.inbound_call("+15551230000", "Ann", "5000"))
        start = await ami.event("AGIExecStart", Command="GET DATA ivr-menu 5000 1")
        sim.send_dtmf(start["Channel"], "2")
        customer = await asyncio.wait_for(call, 5)
        assert ivr.env["agi_channel"] == customer.name
        assert ivr.env["agi_request"] == url
        assert (ivr.env["agi_context"], ivr.env["agi_extension"]) == ("callwright-inbound", "5000")
        assert ivr.env["agi_callerid"] == "+15551230000"
        assert ivr.replies == ["200 result=0", "200 result=2", "200 result=1"]
        choice = await ami.request("Getvar", {"Channel": customer.name, "Variable": "IVR_CHOICE"})
        assert choice["Value"] == "2"
        status = await ami.event("VarSet", Channel=customer.name, Variable="AGISTATUS")
        assert status["Value"] == "SUCCESS"
        newexten = ami.events("Newexten", Channel=customer.name, Application="AGI")
        assert [e["AppData"] for e in newexten] == [url]
        assert customer.context == "callwright-hold" and customer.moh_class == "default"
        await ami.close()
    finally:
        await sim.stop()


async def test_agi_server_down_continues_the_dialplan() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    sim = PbxSimulator(agi_url=f"agi://127.0.0.1:{port}/x", answer_delay=0.0)
    await sim.start()
    try:
        customer = await asyncio.wait_for(sim.inbound_call("5550001"), 10)
        assert customer.variables["AGISTATUS"] == "FAILURE"
        assert customer.context == "callwright-hold"
    finally:
        await sim.stop()
