"""The rest of panoramisk 1.4's measured AMI defects (../shared/PITFALLS.md),
each shown on the real library and then the same scenario passed by
Callwright's link, in the shape of test_panoramisk_defects.py.

The peer here behaves like Asterisk 22 where these scenarios need it: it
closes the connection after a refused Login (tests/fixtures/ami/01-login.txt,
connection 2), and it can hold Login replies to show what a client does
between TCP connect and login. Where a scenario is about how often something
happens (login retries, a reconnect after ``close()``), panoramisk and the
link run side by side against the same peer so that they share one window,
and the window is set by panoramisk's own progress, never by a clock.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from panoramisk import Manager
from panoramisk.actions import Action

from cti.ami.framing import encode
from cti.ami.messages import AmiAction, AmiEvent, AmiResponse
from cti.errors import ActionFailed, ActionTimeout, LinkLost, NotConnected
from cti.link import AmiLink, LinkSettings, LinkState
from tests.cti.ami_peer import AmiPeer, PeerSession, list_reply
from tests.cti.test_panoramisk_defects import callwright, panoramisk, until

REPO = Path(__file__).resolve().parents[2]


@dataclass
class AsteriskPeer(AmiPeer):
    """``AmiPeer`` plus two Asterisk behaviours: a refused Login closes the
    connection, and Login replies can be held until ``release_logins()``."""

    hold_logins: bool = False
    held: list[tuple[PeerSession, AmiAction]] = field(default_factory=list)

    def release_logins(self) -> None:
        self.hold_logins = False
        held, self.held = self.held, []
        for session, action in held:
            reply = self._answer(session, action)
            if reply:
                session.write(reply)

    def _answer(self, session: PeerSession, action: AmiAction) -> bytes | None:
        if action.name.lower() != "login":
            return super()._answer(session, action)
        if self.hold_logins:
            self.held.append((session, action))
            return None
        reply = super()._answer(session, action)
        if not session.logged_in:
            # Asterisk answers "Authentication failed", then hangs up.
            asyncio.get_running_loop().call_soon(session.writer.close)
        return reply


@pytest.fixture
async def peer() -> AsyncIterator[AsteriskPeer]:
    p = AsteriskPeer()
    await p.start()
    yield p
    await p.stop()


def new_manager(peer: AmiPeer, **config: Any) -> Manager:
    """A panoramisk Manager that is not connected yet (``panoramisk()`` connects)."""
    return Manager(
        host="127.0.0.1",
        port=peer.port,
        username=config.pop("username", peer.username),
        secret=config.pop("secret", peer.secret),
        loop=asyncio.get_running_loop(),
        ping_delay=3600,
        reconnect_timeout=config.pop("reconnect_timeout", 3600),
        **config,
    )


def shut(manager: Manager) -> None:
    """Close a panoramisk Manager for good. ``close()`` leaves an armed reconnect
    timer running (test 3) and panoramisk keeps no handle on it, so it is found
    in the loop's timer heap and cancelled: nothing may reconnect into the next
    test."""
    manager.close()
    manager.reconnect_timeout = 3600
    loop = asyncio.get_running_loop()
    for handle in list(getattr(loop, "_scheduled", ())):
        if getattr(handle, "_callback", None) == manager.connect:
            handle.cancel()


def link_settings(peer: AmiPeer, **overrides: Any) -> LinkSettings:
    base: dict[str, Any] = dict(
        host="127.0.0.1",
        port=peer.port,
        username=peer.username,
        secret=peer.secret,
        reconnect_min=0.01,
        reconnect_max=0.05,
        ping_interval=3600,
    )
    base.update(overrides)
    return LinkSettings(**base)


def sent(peer: AmiPeer, name: str, *, ours: bool | None = None) -> int:
    """How many ``name`` actions reached the peer; ``ours`` picks the link's
    (ActionID ``cw...``) or panoramisk's (``action/...``)."""
    return sum(
        1
        for a in peer.received
        if a.name.lower() == name.lower()
        and (ours is None or (a.action_id or "").startswith("cw") == ours)
    )


async def ping_round_trip(manager: Manager) -> None:
    """AMI answers in order: once a Ping is answered, everything the peer
    wrote before it has been read and handled by panoramisk."""
    pong = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
    assert pong.ping == "Pong"


# -- 1. connect() returns at TCP connect, before login ----------------------


async def test_ready_means_logged_in_and_resynced_not_tcp_connected(peer: AsteriskPeer) -> None:
    peer.hold_logins = True

    manager = new_manager(peer)
    await asyncio.wait_for(manager.connect(), 5)
    returned_before_login = not manager.authenticated and not manager.authenticated_future.done()
    await until(lambda: len(peer.held) == 1)
    peer.release_logins()
    await until(lambda: manager.authenticated)
    shut(manager)
    assert returned_before_login, (
        "panoramisk 1.4's `await connect()` returns at TCP connect, before the login is answered"
    )

    peer.hold_logins = True
    resync_started = asyncio.Event()
    finish_resync = asyncio.Event()

    async def resync() -> None:
        resync_started.set()
        await finish_resync.wait()

    link = AmiLink(link_settings(peer), on_ready=resync)
    link.start()
    ready = asyncio.create_task(link.wait_ready(10))
    try:
        await until(lambda: len(peer.held) == 1)  # TCP up, Login sent, not answered
        assert link.state is LinkState.CONNECTING
        assert not link.connected
        with pytest.raises(NotConnected, match=r"not connected \(connecting\); Ping was not sent"):
            await link.send(AmiAction.build("Ping"))
        assert not ready.done()

        peer.release_logins()
        await asyncio.wait_for(resync_started.wait(), 10)
        assert link.state is LinkState.RESYNCING
        assert not ready.done()

        finish_resync.set()
        await asyncio.wait_for(ready, 10)
        assert link.state is LinkState.READY
    finally:
        ready.cancel()
        await link.close()


# -- 2. A wrong secret: no error raised, and login retried forever ----------


async def test_a_refused_login_is_reported_and_not_hammered(peer: AsteriskPeer) -> None:
    manager = new_manager(peer, secret="wrong", reconnect_timeout=1)
    await asyncio.wait_for(manager.connect(), 5)
    reply = await asyncio.wait_for(manager.authenticated_future, 5)
    link = AmiLink(link_settings(peer, secret="wrong", reconnect_max=30))
    link.start()
    try:
        await until(lambda: link.state is LinkState.AUTH_FAILED)
        # The window: panoramisk's next three attempts (about 3 s).
        theirs = sent(peer, "Login", ours=False)
        try:
            await until(lambda: sent(peer, "Login", ours=False) >= theirs + 3, 15)
            retried = True
        except TimeoutError:
            retried = False
        ours = sent(peer, "Login", ours=True)
        state, last_error, failures = link.state, link.last_error, link.stats.auth_failures
    finally:
        shut(manager)
        await link.close()

    assert reply.response == "Error" and reply.message == "Authentication failed", (
        "panoramisk 1.4 hands a refused login back as a plain Response: Error"
    )
    assert retried and not manager.authenticated and peer.logins == 0, (
        "panoramisk 1.4 retries a refused login forever, every reconnect_timeout"
    )

    assert state is LinkState.AUTH_FAILED
    assert last_error == "Authentication failed"
    assert 1 <= ours <= 2
    assert failures == ours


# -- 3. close() during the reconnect wait does not cancel it ----------------


async def test_close_during_the_reconnect_wait_stays_closed(peer: AsteriskPeer) -> None:
    manager = await panoramisk(peer, reconnect_timeout=1)

    waiting = asyncio.Event()
    link = AmiLink(
        link_settings(peer, reconnect_min=0.05, reconnect_max=0.05),
        # DISCONNECTED is set right before the supervisor sleeps until its reconnect.
        on_state=lambda state: waiting.set() if state is LinkState.DISCONNECTED else None,
    )
    link.start()
    try:
        await link.wait_ready(10)
        logins, challenges = peer.logins, sent(peer, "Challenge")
        peer.drop()
        await until(lambda: not manager._connected)
        manager.close()  # panoramisk is now waiting 1 s to reconnect
        await asyncio.wait_for(waiting.wait(), 10)
        await link.close()  # ours was waiting 25-50 ms to reconnect

        # The window: until panoramisk, closed, has logged in again (1 s).
        await peer.wait_login(logins + 1)
        await until(lambda: manager.authenticated)
        reconnected_after_close = manager._connected
        link_tasks = [t for t in asyncio.all_tasks() if t.get_name() in ("ami-link", "ami-reader")]
    finally:
        shut(manager)
        await link.close()
    assert reconnected_after_close, "panoramisk 1.4 reconnects after close()"

    assert link.state is LinkState.CLOSED
    assert link_tasks == []
    assert sent(peer, "Challenge") == challenges  # no connection attempt since close()
    assert peer.logins == logins + 1  # panoramisk's only


# -- 4. send_action before the first connect raises AttributeError ----------


async def test_sending_before_the_first_connect_says_not_connected(peer: AsteriskPeer) -> None:
    manager = new_manager(peer)
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'send'"):
        manager.send_action({"Action": "Originate", "Channel": "PJSIP/1001", "Exten": "100"})
    # (panoramisk 1.4: its protocol is None until connect(); the message names neither AMI
    # nor the action)

    link = AmiLink(link_settings(peer))  # never started
    with pytest.raises(NotConnected) as info:
        await link.send(AmiAction.build("Originate", {"Channel": "PJSIP/1001", "Exten": "100"}))
    assert str(info.value) == "AMI is not connected (disconnected); Originate was not sent"
    assert peer.received == []


# -- 5. Actions sent while down, and an EventList cut by a drop ---------------


def half_a_channel_list(session: PeerSession, action: AmiAction) -> bytes:
    """The EventList start and the first item; the rest never comes (the test drops)."""
    aid = action.action_id or ""
    return encode(
        AmiResponse.build(
            "Success", aid, [("EventList", "start"), ("Message", "Channels will follow")]
        )
    ) + encode(
        AmiEvent(
            (("Event", "CoreShowChannel"), ("ActionID", aid), ("Channel", "PJSIP/1001-00000001"))
        )
    )


def getvar(session: PeerSession, action: AmiAction) -> bytes:
    return encode(
        AmiResponse.build(
            "Success", action.action_id, [("Variable", "QUEUE"), ("Value", "support")]
        )
    )


async def test_actions_cut_by_a_drop_or_sent_while_down_fail_at_once(
    peer: AsteriskPeer,
) -> None:
    peer.handlers["coreshowchannels"] = half_a_channel_list
    peer.handlers["getvar"] = getvar

    manager = await panoramisk(peer, reconnect_timeout=1)
    listing = Action({"Action": "CoreShowChannels"})
    listed = manager.send_action(listing)
    await until(lambda: sent(peer, "CoreShowChannels") == 1)
    peer.hold_logins = True
    peer.drop()
    await until(lambda: not manager._connected)
    half_received = [m.event or m.response for m in listing.responses]
    while_down = manager.send_action({"Action": "Getvar", "Variable": "QUEUE"})
    silent_while_down = not while_down.done() and sent(peer, "Getvar") == 0
    await until(lambda: len(peer.held) == 1)  # panoramisk reconnected, login held
    peer.release_logins()
    await until(lambda: manager.authenticated)
    await asyncio.wait_for(asyncio.shield(while_down), 5)
    await ping_round_trip(manager)
    list_never_resolved = not listed.done()
    listed.cancel()
    shut(manager)
    assert half_received == ["Success", "CoreShowChannel"]
    assert list_never_resolved, (
        "panoramisk 1.4 never resolves an EventList cut by a drop, even once the link is back"
    )
    assert silent_while_down, "panoramisk 1.4 neither sends nor fails an action while down"
    assert sent(peer, "Getvar") == 1, (
        "panoramisk 1.4 runs an action sent while down whenever the link returns"
    )

    peer.received.clear()
    link = await callwright(peer)
    try:
        listing_task = asyncio.create_task(link.send_list(AmiAction.build("CoreShowChannels")))
        await until(lambda: sent(peer, "CoreShowChannels") == 1)
        logins = peer.logins
        peer.hold_logins = True
        peer.drop()
        with pytest.raises(LinkLost, match="CoreShowChannels; it was not re-sent"):
            await asyncio.wait_for(listing_task, 10)
        await until(lambda: len(peer.held) == 1)  # reconnected, login held: still down
        assert not link.connected
        with pytest.raises(NotConnected, match="Getvar was not sent"):
            await link.send(AmiAction.build("Getvar", {"Variable": "QUEUE"}))

        peer.release_logins()
        await peer.wait_login(logins + 1)
        await link.wait_ready(10)
        await link.send(AmiAction.build("Ping"))
        assert sent(peer, "Getvar") == 0  # not sent late either
        assert link._pending == {}
    finally:
        await link.close()


# -- 6. Response: Fail is mis-parsed ----------------------------------------


def redirect_fails(session: PeerSession, action: AmiAction) -> bytes:
    return encode(AmiResponse.build("Fail", action.action_id, [("Message", "Redirect failed")]))


async def test_a_fail_response_keeps_all_its_headers(peer: AsteriskPeer) -> None:
    peer.handlers["redirect"] = redirect_fails
    redirect = {"Channel": "PJSIP/1001-00000001", "Context": "inbound", "Exten": "200"}

    manager = await panoramisk(peer)
    reply = await asyncio.wait_for(manager.send_action({"Action": "Redirect", **redirect}), 5)
    shut(manager)
    assert reply.response == "Fail"
    assert "Message" not in reply and reply.content == "Message: Redirect failed", (
        "panoramisk 1.4 moves the last header of a Response: Fail into .content"
    )

    link = await callwright(peer)
    try:
        with pytest.raises(ActionFailed) as info:
            await link.send(AmiAction.build("Redirect", redirect))
        assert info.value.action == "Redirect"
        assert info.value.message == "Redirect failed"
        assert str(info.value) == "Asterisk refused Redirect: Redirect failed"
    finally:
        await link.close()


# -- 7. as_list=True on an action answered without a "...Complete" event ------


def status_no_such_channel(session: PeerSession, action: AmiAction) -> bytes:
    # Asterisk 22, tests/fixtures/ami/09-errors.txt ("status-nosuch").
    return encode(AmiResponse.build("Error", action.action_id, [("Message", "No such channel")]))


def endless_channel_list(session: PeerSession, action: AmiAction) -> bytes:
    complete = list_reply(
        action.action_id,
        "CoreShowChannel",
        "CoreShowChannelsComplete",
        [[("Channel", "PJSIP/1001-00000001")]],
    )
    return complete[: complete.index(b"Event: CoreShowChannelsComplete")]


async def test_a_list_action_always_ends(peer: AsteriskPeer) -> None:
    peer.handlers["status"] = status_no_such_channel
    peer.handlers["getvar"] = getvar
    peer.handlers["coreshowchannels"] = endless_channel_list
    gone = {"Channel": "PJSIP/1001-0000000a"}

    manager = await panoramisk(peer)
    status = Action({"Action": "Status", **gone})
    refused = manager.send_action(status, as_list=True)
    value = Action({"Action": "Getvar", "Variable": "QUEUE"})
    answered = manager.send_action(value, as_list=True)
    await ping_round_trip(manager)  # both complete answers have been read
    stuck = (refused.done(), answered.done())
    got = [m.response for m in status.responses + value.responses]
    refused.cancel()
    answered.cancel()
    shut(manager)
    assert got == ["Error", "Success"]
    assert stuck == (False, False), (
        "panoramisk 1.4 never resolves as_list=True when no ...Complete event comes"
    )

    link = await callwright(peer)
    try:
        with pytest.raises(ActionFailed, match="No such channel"):
            await link.send_list(AmiAction.build("Status", gone))
        response, items = await link.send_list(AmiAction.build("Getvar", {"Variable": "QUEUE"}))
        assert (response.get("Value"), items) == ("support", [])
        with pytest.raises(ActionTimeout, match="CoreShowChannels"):
            await link.send_list(AmiAction.build("CoreShowChannels"), timeout=0.3)
        assert link._pending == {}
        assert link.state is LinkState.READY
    finally:
        await link.close()


# -- 8. Events carrying an in-flight ActionID are taken by that action ---------


def originate_answer(event_first: bool) -> Callable[[PeerSession, AmiAction], bytes]:
    def answer(session: PeerSession, action: AmiAction) -> bytes:
        # Asterisk 22, tests/fixtures/ami/03-originate-hold.txt ("orig-fail").
        response = encode(
            AmiResponse.build(
                "Success", action.action_id, [("Message", "Originate successfully queued")]
            )
        )
        event = encode(
            AmiEvent.build(
                "OriginateResponse",
                [
                    ("Privilege", "call,all"),
                    ("ActionID", action.action_id or ""),
                    ("Response", "Failure"),
                    ("Channel", "Local/999@inbound"),
                    ("Context", "caller"),
                    ("Exten", "s"),
                    ("Reason", "0"),
                    ("Uniqueid", "<unknown>"),
                ],
            )
        )
        return event + response if event_first else response + event

    return answer


@pytest.mark.parametrize("event_first", [False, True], ids=["recorded-order", "event-first"])
async def test_an_event_with_an_in_flight_action_id_still_reaches_subscribers(
    peer: AsteriskPeer, event_first: bool
) -> None:
    peer.handlers["originate"] = originate_answer(event_first)
    originate = {
        "Channel": "Local/999@inbound",
        "Context": "caller",
        "Exten": "s",
        "Priority": "1",
        "Async": "true",
    }

    subscribers: list[str] = []
    manager = await panoramisk(peer)
    manager.register_event("OriginateResponse", lambda m, e: subscribers.append(e.response))
    result = await asyncio.wait_for(manager.send_action({"Action": "Originate", **originate}), 5)
    await ping_round_trip(manager)
    shut(manager)
    taken = result if isinstance(result, list) else [result]
    assert "OriginateResponse" in [m.event for m in taken]
    assert subscribers == [], (
        "panoramisk 1.4 hands an event carrying an in-flight ActionID to that action, "
        "never to the callbacks"
    )

    events: list[AmiEvent] = []
    link = await callwright(peer, on_event=events.append)
    try:
        response = await link.send(AmiAction.build("Originate", originate))
        assert response.message == "Originate successfully queued"
        await until(lambda: any(e.name == "OriginateResponse" for e in events))
        [event] = [e for e in events if e.name == "OriginateResponse"]
        assert event.get("Response") == "Failure"
        assert event.action_id == response.action_id
    finally:
        await link.close()


# -- 9. panoramisk.testing switches the line ending to LF process-wide ------------

POISONED_PROCESS = """
import asyncio, json, sys

import panoramisk.testing
from panoramisk import Manager, utils
from panoramisk.actions import Action

from cti.ami.framing import encode
from cti.ami.messages import AmiAction
from cti.link import AmiLink, LinkSettings


async def main(port, username, secret):
    # The import alone leaves utils.EOL alone; building panoramisk.testing's Manager,
    # as any test suite using it does, sets it to "\\n" for the whole process.
    panoramisk.testing.Manager(loop=asyncio.get_running_loop())
    out = {"eol": utils.EOL}
    out["panoramisk_ping"] = str(Action({"Action": "Ping", "ActionID": "1"}))
    out["callwright_ping"] = encode(AmiAction.build("Ping", action_id="1")).decode()

    # A real Manager in the same process, against a real (CRLF) AMI peer.
    manager = Manager(host="127.0.0.1", port=port, username=username, secret=secret,
                      loop=asyncio.get_running_loop(), ping_delay=3600, reconnect_timeout=3600)
    _, protocol = await manager.connect()

    async def answer_buffered():
        while "Authentication accepted" not in "".join(protocol.queue):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(answer_buffered(), 10)
    out["panoramisk_logged_in"] = manager.authenticated
    manager.close()

    link = AmiLink(LinkSettings(host="127.0.0.1", port=port, username=username,
                                secret=secret, ping_interval=3600))
    link.start()
    await link.wait_ready(10)
    out["callwright_pong"] = (await link.send(AmiAction.build("Ping"))).get("Ping")
    await link.close()
    print(json.dumps(out))


asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""


async def test_our_line_endings_survive_panoramisk_testing(peer: AsteriskPeer) -> None:
    # Only ever in a child process: in this one it would break every later test.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        POISONED_PROCESS,
        str(peer.port),
        peer.username,
        peer.secret,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    out = json.loads(stdout)

    assert out["eol"] == "\n", "panoramisk.testing sets panoramisk.utils.EOL to LF"
    assert out["panoramisk_ping"] == "Action: Ping\nActionID: 1\n\n"
    assert out["panoramisk_logged_in"] is False, (
        "after panoramisk.testing, a real Manager cannot parse Asterisk's CRLF replies: "
        "the login answer sits unparsed in its buffer"
    )
    assert peer.logins == 2  # the peer did accept both logins

    assert out["callwright_ping"] == "Action: Ping\r\nActionID: 1\r\n\r\n"
    assert out["callwright_pong"] == "Pong"
    wire = encode(AmiAction.build("Setvar", {"Variable": "A", "Value": "b"}, action_id="7"))
    assert wire.count(b"\n") == wire.count(b"\r\n") == 5
