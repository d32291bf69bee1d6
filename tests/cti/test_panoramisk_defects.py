"""Each measured defect of panoramisk 1.4 (../shared/PITFALLS.md), shown on the
real library and then the same scenario passed by Callwright's link.

Every test runs the scenario twice over real TCP against the same scriptable
AMI peer: first with panoramisk's Manager, asserting the defect is there (if a
future panoramisk fixes it, the test says so and our workaround can be
reconsidered), then with ``cti.link.AmiLink``, asserting what a user needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from panoramisk import Manager

from cti.ami.messages import AmiAction, AmiEvent
from cti.errors import ActionTimeout, LinkLost, LocalProtocolError
from cti.link import AmiLink, LinkSettings, LinkState
from tests.cti.ami_peer import AmiPeer, until


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer()
    await p.start()
    yield p
    await p.stop()


async def panoramisk(peer: AmiPeer, **config: Any) -> Manager:
    manager = Manager(
        host="127.0.0.1",
        port=peer.port,
        username=peer.username,
        secret=peer.secret,
        loop=asyncio.get_running_loop(),
        ping_delay=config.pop("ping_delay", 3600),
        reconnect_timeout=config.pop("reconnect_timeout", 3600),
        **config,
    )
    logins = peer.logins
    manager.connect()
    await peer.wait_login(logins + 1)
    await until(lambda: manager.authenticated)
    return manager


async def callwright(peer: AmiPeer, **overrides: Any) -> AmiLink:
    base: dict[str, Any] = dict(
        host="127.0.0.1",
        port=peer.port,
        username=peer.username,
        secret=peer.secret,
        reconnect_min=0.01,
        reconnect_max=0.05,
        ping_interval=3600,
    )
    on_event = overrides.pop("on_event", None)
    base.update(overrides)
    link = AmiLink(LinkSettings(**base), on_event=on_event)
    link.start()
    await link.wait_ready(10)
    return link


def split_inside(data: bytes, char: str) -> tuple[bytes, bytes]:
    """Cut ``data`` between the bytes of the UTF-8 encoding of ``char``."""
    at = data.index(char.encode("utf-8")) + 1
    return data[:at], data[at:]


async def send_in_two_reads(peer: AmiPeer, first: bytes, second: bytes) -> None:
    peer.broadcast(first)
    for session in peer.sessions:
        await session.writer.drain()
    # Two TCP writes far enough apart to reach the client as two reads.
    await asyncio.sleep(0.1)
    peer.broadcast(second)


# -- 1. A UTF-8 character split across two TCP reads ------------------------


async def test_utf8_character_split_across_reads_is_kept(peer: AmiPeer) -> None:
    event = peer.event("NewCallerid", Channel="PJSIP/trunk-00000001", CallerIDName="Jörg")
    first, second = split_inside(event, "ö")

    got: list[str] = []
    manager = await panoramisk(peer)
    manager.register_event("NewCallerid", lambda m, e: got.append(e["CallerIDName"]))
    await send_in_two_reads(peer, first, second)
    await until(lambda: len(got) == 1)
    manager.close()
    assert got == ["Jrg"], "panoramisk 1.4 drops a character split across reads"

    names: list[str | None] = []
    link = await callwright(
        peer,
        on_event=lambda e: names.append(e.get("CallerIDName")) if e.name == "NewCallerid" else None,
    )
    try:
        await send_in_two_reads(peer, first, second)
        await until(lambda: len(names) == 1)
        assert names == ["Jörg"]
    finally:
        await link.close()


# -- 2. CR LF in a header value injects a second action ----------------------


async def test_crlf_in_a_value_cannot_smuggle_an_action(peer: AmiPeer) -> None:
    evil = "Mallory\r\n\r\nAction: Hangup\r\nChannel: PJSIP/1001-00000001"

    manager = await panoramisk(peer)
    manager.send_action({"Action": "Setvar", "Variable": "NAME", "Value": evil})
    await until(lambda: any(a.name == "Hangup" for a in peer.received))
    manager.close()
    assert [a.name for a in peer.received if a.name in ("Setvar", "Hangup")] == [
        "Setvar",
        "Hangup",
    ], "panoramisk 1.4 writes values unescaped: the peer ran a Hangup"

    peer.received.clear()
    link = await callwright(peer)
    try:
        with pytest.raises(LocalProtocolError, match="'Value' holds CR or LF"):
            await link.send(AmiAction.build("Setvar", {"Variable": "NAME", "Value": evil}))
        await link.send(AmiAction.build("Ping"))  # the link is fine and nothing leaked
        assert [a.name for a in peer.received if a.name != "Challenge"] == ["Login", "Ping"]
    finally:
        await link.close()


# -- 3. An exception in an event callback kills the link ---------------------


async def test_a_failing_event_handler_does_not_take_the_link_down(
    peer: AmiPeer, caplog: pytest.LogCaptureFixture
) -> None:
    burst = peer.event("Newchannel", Channel="PJSIP/trunk-1") + peer.event(
        "Hangup", Channel="PJSIP/trunk-1", Cause="16"
    )

    def boom(*_: object) -> None:
        raise RuntimeError("subscriber bug")

    seen: list[str] = []
    manager = await panoramisk(peer)
    manager.register_event("Newchannel", boom)
    manager.register_event("Hangup", lambda m, e: seen.append(e["Event"]))
    caplog.set_level(logging.CRITICAL, logger="asyncio")
    peer.broadcast(burst)
    await until(lambda: manager.protocol.closed or not manager._connected or bool(seen), 2)
    await asyncio.sleep(0.2)
    lost = seen == []
    manager.close()
    assert lost, "panoramisk 1.4 drops the events after a failing callback"

    events: list[AmiEvent] = []

    def handler(event: AmiEvent) -> None:
        if event.name == "Newchannel":
            raise RuntimeError("subscriber bug")
        if event.name == "Hangup":
            events.append(event)

    link = await callwright(peer, on_event=handler)
    try:
        peer.broadcast(burst)
        await until(lambda: [e.name for e in events] == ["Hangup"])
        assert link.state is LinkState.READY
        assert link.stats.callback_errors == 1
    finally:
        await link.close()


# -- 4. Unanswered actions are re-sent after a reconnect ---------------------


async def test_an_originate_in_flight_at_a_drop_is_never_sent_twice(peer: AmiPeer) -> None:
    peer.silent.add("originate")
    originate = {"Action": "Originate", "Channel": "PJSIP/1001", "Exten": "5550100"}

    manager = await panoramisk(peer, reconnect_timeout=0)
    manager.send_action(dict(originate))
    await until(lambda: sum(a.name == "Originate" for a in peer.received) == 1)
    peer.drop()
    await until(lambda: sum(a.name == "Originate" for a in peer.received) == 2)
    manager.close()
    await asyncio.sleep(0.05)
    peer.drop()
    assert sum(a.name == "Originate" for a in peer.received) == 2, (
        "panoramisk 1.4 replays the Originate after re-login: a second call"
    )

    peer.received.clear()
    logins = peer.logins
    link = await callwright(peer)
    try:
        pending = asyncio.create_task(
            link.send(AmiAction.build("Originate", {"Channel": "PJSIP/1001", "Exten": "5550100"}))
        )
        await until(lambda: any(a.name == "Originate" for a in peer.received))
        peer.drop()
        with pytest.raises(LinkLost, match="not re-sent"):
            await pending
        await peer.wait_login(logins + 2)
        await link.wait_ready(10)
        await link.send(AmiAction.build("Ping"))
        assert sum(a.name == "Originate" for a in peer.received) == 1
    finally:
        await link.close()


# -- 5. No timeouts; wait_for around an action leaks it ----------------------


async def test_an_unanswered_action_times_out_without_leaking(peer: AmiPeer) -> None:
    peer.silent.add("getvar")

    manager = await panoramisk(peer)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(manager.send_action({"Action": "Getvar", "Variable": "X"}), 0.2)
    leaked = len(manager.protocol.responses)
    manager.close()
    assert leaked >= 1, "panoramisk 1.4 keeps a timed-out action in protocol.responses"

    link = await callwright(peer, action_timeout=0.2)
    try:
        with pytest.raises(ActionTimeout, match=r"Getvar within 0\.2s"):
            await link.send(AmiAction.build("Getvar", {"Variable": "X"}))
        assert link._pending == {}
    finally:
        await link.close()


# -- 6. A half-open connection goes unnoticed --------------------------------


async def test_a_half_open_connection_is_detected_and_replaced(peer: AmiPeer) -> None:
    manager = await panoramisk(peer, ping_delay=1, ping_interval=1)
    peer.frozen = True
    pings = sum(a.name == "Ping" for a in peer.received)
    await asyncio.sleep(2.5)  # two of panoramisk's pings go unanswered
    still_believes = manager._connected and not manager.protocol.closed
    manager.close()
    peer.drop()
    peer.frozen = False
    assert still_believes and peer.logins == 1, (
        "panoramisk 1.4 never checks for the Pong: a dead link looks alive"
    )
    assert pings == 0

    link = await callwright(peer, ping_interval=0.2, ping_timeout=0.2, connect_timeout=0.5)
    try:
        peer.frozen = True
        await until(lambda: link.stats.half_open_detected >= 1)
        assert link.state is not LinkState.READY
        peer.frozen = False
        await link.wait_ready(10)
        assert peer.logins >= 3
    finally:
        await link.close()
