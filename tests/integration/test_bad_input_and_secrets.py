"""Garbage from the PBX is counted and survives; secrets never reach the logs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callwright.runtime import Runtime
from cti.ami.messages import AmiAction
from cti.calls.service import CallService
from cti.link import AmiLink, LinkSettings, LinkState
from sim.pbx.server import PbxSimulator
from tests.cti.ami_peer import AmiPeer
from tests.integration.conftest import TOKEN, make_config


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer()
    await p.start()
    yield p
    await p.stop()


def newchannel(peer: AmiPeer, name: str, uniqueid: str, num: str) -> bytes:
    return peer.event(
        "Newchannel",
        Channel=name,
        ChannelState="6",
        ChannelStateDesc="Up",
        CallerIDNum=num,
        CallerIDName="Ada",
        ConnectedLineNum="<unknown>",
        ConnectedLineName="<unknown>",
        Language="en",
        AccountCode="",
        Context="callwright-hold",
        Exten="s",
        Priority="1",
        Uniqueid=uniqueid,
        Linkedid=uniqueid,
    )


async def test_garbage_from_the_pbx_is_counted_and_other_calls_are_untouched(
    peer: AmiPeer,
) -> None:
    link: AmiLink
    service: CallService

    link = AmiLink(
        LinkSettings(
            host="127.0.0.1",
            port=peer.port,
            username=peer.username,
            secret=peer.secret,
            reconnect_min=0.01,
            reconnect_max=0.05,
        ),
        on_event=lambda e: service.on_ami_event(e),
        on_ready=lambda: service.resync(),
    )
    service = CallService(link, clock=time.time)
    service.start()
    link.start()
    try:
        await link.wait_ready(10)
        peer.broadcast(newchannel(peer, "PJSIP/trunk-00000001", "1700000000.1", "+15550100001"))
        garbage = (
            b"this is not AMI at all\r\n\r\n"
            + b"Event: Newchannel\r\nCallerIDName: "
            + b"x" * 1_000_000
            + b"\r\n\r\n"
            + b"Event: NewCallerid\r\nChannel: PJSIP/trunk-00000001\r\nUniqueid: 1700000000.1\r\n"
            + b"CallerIDNum: +15550100001\r\nCallerIDName: J\xf6rg\r\n\r\n"
            + peer.event("FrobnicateEvent", Channel="PJSIP/trunk-00000001")
            + peer.event("Hangup", Channel="PJSIP/ghost-00000009", Uniqueid="1.9", Cause="16")
            + peer.event("Newstate", Channel="PJSIP/trunk-00000001")  # no Uniqueid
        )
        peer.broadcast(garbage)
        await link.send(AmiAction.build("Ping"))  # all before the Pong has been read
        await service.drain()
        (call,) = service.calls()
        assert call.caller.number == "+15550100001"
        assert call.caller.name == "J\ufffdrg"
        assert call.state.value == "up"
        assert link.state is LinkState.READY
        assert link.framing_stats.oversized == 1
        assert link.framing_stats.invalid_utf8 == 1
        assert link.framing_stats.malformed_lines == 1
        stats = service.tracker.stats
        assert stats.orphans >= 1 and stats.ignored >= 1
    finally:
        await link.close()
        await service.stop()


async def test_secrets_never_reach_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = PbxSimulator(answer_delay=0.02, login_failure_delay=0)
    await sim.start()
    runtime = Runtime(make_config(sim.port, tmp_path / "data"))
    try:
        await runtime.start()
        await runtime.link.wait_ready(10)
        await sim.inbound_call("+15550100001", "Ada Lovelace")
        await runtime.calls.originate("1001", "5550100002", idempotency_key="log-check")
        await asyncio.sleep(0.2)
        await runtime.calls.drain()
    finally:
        await runtime.stop()
        await sim.stop()
    logged = caplog.text + repr(runtime.config) + repr(runtime.link.settings)
    assert "callwright-secret" not in logged
    assert TOKEN not in logged
    assert "AMI link ready" in caplog.text
