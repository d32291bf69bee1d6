from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cti.ami.messages import AmiAction, AmiEvent
from cti.errors import ActionFailed, ActionTimeout, LinkLost, NotConnected
from cti.link import AmiLink, LinkSettings, LinkState
from tests.cti.ami_peer import AmiPeer, until


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer()
    await p.start()
    yield p
    await p.stop()


def settings(peer: AmiPeer, **overrides: object) -> LinkSettings:
    base: dict[str, object] = dict(
        host="127.0.0.1",
        port=peer.port,
        username=peer.username,
        secret=peer.secret,
        action_timeout=5.0,
        ping_interval=30.0,
        ping_timeout=5.0,
        reconnect_min=0.01,
        reconnect_max=0.05,
    )
    base.update(overrides)
    return LinkSettings(**base)  # type: ignore[arg-type]


async def test_md5_login_reaches_ready_without_sending_the_secret(peer: AmiPeer) -> None:
    link = AmiLink(settings(peer, auth="md5"))
    link.start()
    try:
        await link.wait_ready(10)
        assert link.state is LinkState.READY
        assert link.banner == "Asterisk Call Manager/11.0.0"
        login = next(a for a in peer.received if a.name == "Login")
        assert login.get("Secret") is None and login.get("Key")
    finally:
        await link.close()
    assert link.state is LinkState.CLOSED


async def test_plain_login_and_a_ping_round_trip(peer: AmiPeer) -> None:
    link = AmiLink(settings(peer, auth="plain"))
    link.start()
    try:
        await link.wait_ready(10)
        response = await link.send(AmiAction.build("Ping"))
        assert response.get("Ping") == "Pong"
    finally:
        await link.close()


async def test_a_wrong_secret_is_reported_as_auth_failed(peer: AmiPeer) -> None:
    states: list[LinkState] = []
    link = AmiLink(settings(peer, secret="wrong"), on_state=states.append)
    link.start()
    try:
        await until(lambda: link.state is LinkState.AUTH_FAILED)
        assert link.last_error == "Authentication failed"
        assert not link.connected
        with pytest.raises(NotConnected):
            await link.send(AmiAction.build("Ping"))
    finally:
        await link.close()
    assert LinkState.READY not in states


async def test_send_before_connecting_says_not_connected() -> None:
    link = AmiLink(LinkSettings(host="127.0.0.1", port=1, username="u", secret="s"))
    with pytest.raises(NotConnected, match="Originate was not sent"):
        await link.send(AmiAction.build("Originate", {"Channel": "PJSIP/1001"}))


async def test_asterisk_refusal_carries_its_own_text(peer: AmiPeer) -> None:
    link = AmiLink(settings(peer))
    link.start()
    try:
        await link.wait_ready(10)
        with pytest.raises(ActionFailed) as info:
            await link.send(AmiAction.build("Frobnicate"))
        assert info.value.message.startswith("Invalid/unknown command: Frobnicate.")
    finally:
        await link.close()


async def test_resync_runs_after_every_login_and_state_shows_resyncing(peer: AmiPeer) -> None:
    seen: list[LinkState] = []
    gate = asyncio.Event()
    resyncs = 0

    async def on_ready() -> None:
        nonlocal resyncs
        resyncs += 1
        seen.append(link.state)
        _, items = await link.send_list(AmiAction.build("CoreShowChannels"))
        assert items == []
        if resyncs == 1:
            await gate.wait()

    link = AmiLink(settings(peer), on_ready=on_ready)
    link.start()
    try:
        await until(lambda: resyncs == 1)
        assert link.state is LinkState.RESYNCING
        gate.set()
        await link.wait_ready(10)
        peer.drop()
        await until(lambda: resyncs == 2 and link.state is LinkState.READY)
        assert seen == [LinkState.RESYNCING, LinkState.RESYNCING]
    finally:
        await link.close()


async def test_an_action_timeout_leaves_nothing_pending(peer: AmiPeer) -> None:
    peer.silent.add("originate")
    link = AmiLink(settings(peer))
    link.start()
    try:
        await link.wait_ready(10)
        with pytest.raises(ActionTimeout, match="Originate"):
            await link.send(AmiAction.build("Originate", {"Channel": "PJSIP/1001"}), timeout=0.2)
        assert link._pending == {}
        assert link.stats.actions_timed_out == 1
    finally:
        await link.close()


async def test_list_actions_collect_their_items_and_other_events_still_flow(peer: AmiPeer) -> None:
    from tests.cti.ami_peer import list_reply

    def channels(session, action):  # type: ignore[no-untyped-def]
        # An unrelated event lands between the items: it must reach on_event.
        body = list_reply(
            action.action_id,
            "CoreShowChannel",
            "CoreShowChannelsComplete",
            [[("Channel", "PJSIP/1001-00000001")], [("Channel", "PJSIP/trunk-00000002")]],
        )
        cut = body.index(b"Event: CoreShowChannel\r\nActionID")
        return body[:cut] + peer.event("Newchannel", Channel="PJSIP/1003-00000009") + body[cut:]

    peer.handlers["coreshowchannels"] = channels
    events: list[AmiEvent] = []
    link = AmiLink(settings(peer), on_event=events.append)
    link.start()
    try:
        await link.wait_ready(10)
        response, items = await link.send_list(AmiAction.build("CoreShowChannels"))
        assert response.ok
        assert [i.get("Channel") for i in items] == ["PJSIP/1001-00000001", "PJSIP/trunk-00000002"]
        assert [e.name for e in events if e.name == "Newchannel"] == ["Newchannel"]
    finally:
        await link.close()


async def test_close_during_the_reconnect_wait_stops_the_link() -> None:
    peer = AmiPeer()
    await peer.start()
    port = peer.port
    await peer.stop()  # nothing listens: the link keeps retrying
    link = AmiLink(
        LinkSettings(
            host="127.0.0.1",
            port=port,
            username="u",
            secret="s",
            reconnect_min=5,
            reconnect_max=5,
        )
    )
    link.start()
    await until(lambda: link.state is LinkState.DISCONNECTED)
    await asyncio.wait_for(link.close(), 2)
    assert link.state is LinkState.CLOSED
    assert link._supervisor is None


async def test_in_flight_action_fails_clearly_when_the_link_drops(peer: AmiPeer) -> None:
    peer.silent.add("redirect")
    link = AmiLink(settings(peer))
    link.start()
    try:
        await link.wait_ready(10)
        pending = asyncio.create_task(
            link.send(AmiAction.build("Redirect", {"Channel": "PJSIP/1001-00000001"}))
        )
        await until(lambda: any(a.name == "Redirect" for a in peer.received))
        peer.drop()
        with pytest.raises(LinkLost, match="Redirect; it was not re-sent"):
            await pending
    finally:
        await link.close()
