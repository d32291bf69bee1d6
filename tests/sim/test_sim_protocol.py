"""The AMI protocol side of the simulator, against Asterisk 22's texts
(tests/fixtures/ami/01-login.txt, 02-core-status.txt, 09-errors.txt,
10-events-filter.txt)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from simtest_support import AmiClient, Connect

from cti.ami.messages import AmiAction, AmiEvent, AmiResponse
from sim.pbx import PbxSimulator


async def test_banner_is_the_asterisk_22_line(connect: Connect) -> None:
    client = await connect(None)
    banner = await client.wait_banner()
    assert banner.text == "Asterisk Call Manager/11.0.0"


async def test_plain_login_sends_fully_booted_then_successful_auth(connect: Connect) -> None:
    client = await connect(None)
    response = await client.request("Login", {"Username": "admin", "Secret": "admin-secret"})
    assert response.headers[0] == ("Response", "Success")
    assert response.message == "Authentication accepted"
    booted = await client.event("FullyBooted")
    auth = await client.event("SuccessfulAuth")
    assert [k for k, _ in booted.headers] == [
        "Event",
        "Privilege",
        "Uptime",
        "LastReload",
        "Status",
    ]
    assert booted["Privilege"] == "system,all" and booted["Status"] == "Fully Booted"
    assert [k for k, _ in auth.headers] == [
        "Event",
        "Privilege",
        "EventTV",
        "Severity",
        "Service",
        "EventVersion",
        "AccountID",
        "SessionID",
        "LocalAddress",
        "RemoteAddress",
        "UsingPassword",
        "SessionTV",
    ]
    assert client.messages.index(booted) < client.messages.index(auth)


async def test_callwright_user_does_not_read_security_events(ami: AmiClient) -> None:
    await ami.event("FullyBooted")
    await ami.request("Ping")
    assert not ami.events("SuccessfulAuth")


async def test_md5_challenge_login(connect: Connect) -> None:
    client = await connect(None)
    challenge = await client.request("Challenge", {"AuthType": "MD5"})
    key = hashlib.md5((challenge["Challenge"] + "callwright-secret").encode()).hexdigest()
    response = await client.request(
        "Login", {"AuthType": "MD5", "Username": "callwright", "Key": key, "Events": "off"}
    )
    assert response.ok and response.message == "Authentication accepted"
    pong = await client.request("Ping")
    assert pong["Ping"] == "Pong"
    assert not client.events("FullyBooted")  # Events: off


async def test_md5_login_with_a_wrong_key_fails_and_closes(connect: Connect) -> None:
    client = await connect(None)
    await client.request("Challenge", {"AuthType": "MD5"})
    response = await client.request(
        "Login", {"AuthType": "MD5", "Username": "callwright", "Key": "0" * 32}
    )
    assert (response.response, response.message) == ("Error", "Authentication failed")
    await asyncio.wait_for(client.closed.wait(), 5)


@pytest.mark.parametrize("username", ["callwright", "nosuchuser"])
async def test_failed_login_answers_error_then_closes(connect: Connect, username: str) -> None:
    client = await connect(None)
    response = await client.request("Login", {"Username": username, "Secret": "wrong"})
    assert response.headers == (
        ("Response", "Error"),
        ("ActionID", response.action_id),
        ("Message", "Authentication failed"),
    )
    await asyncio.wait_for(client.closed.wait(), 5)


async def test_failed_login_is_answered_only_after_the_configured_delay(
    sim: PbxSimulator, connect: Connect
) -> None:
    sim.login_failure_delay = 3600.0  # Asterisk: 1 s
    client = await connect(None)
    client.send(
        AmiAction.build("Login", {"Username": "callwright", "Secret": "x"}, action_id="slow")
    )
    client.send(AmiAction.build("Ping", action_id="queued"))
    await sim.pbx.wait_for(lambda: len(sim.ami_actions_received) >= 1, timeout=5)
    await asyncio.sleep(0.05)
    assert not client.messages  # still sleeping on the failed Login


async def test_actions_before_login_are_denied_but_challenge_is_not(connect: Connect) -> None:
    client = await connect(None)
    for name in ("Ping", "CoreStatus", "Originate"):
        response = await client.request(name)
        assert (response.response, response.message) == ("Error", "Permission denied")
    response = await client.request("Challenge", {"AuthType": "SHA1"})
    assert response.message == "Must specify AuthType"


async def test_second_login_is_already_authenticated(ami: AmiClient) -> None:
    response = await ami.request("Login", {"Username": "callwright", "Secret": "callwright-secret"})
    assert response.ok and response.message == "Already authenticated"


async def test_logoff_says_goodbye_and_closes(ami: AmiClient) -> None:
    response = await ami.request("Logoff")
    assert response.response == "Goodbye"
    assert response.message == "Thanks for all the fish."
    await asyncio.wait_for(ami.closed.wait(), 5)


async def test_ping_without_action_id(ami: AmiClient) -> None:
    ami.send(AmiAction.build("Ping"))

    def pong() -> AmiResponse | None:
        return next((m for m in ami.messages if isinstance(m, AmiResponse) and "Ping" in m), None)

    response = await ami._wait(pong)
    assert [k for k, _ in response.headers] == ["Response", "Ping", "Timestamp"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"Action: Frobnicate\r\nActionID: x\r\n\r\n",
            (
                "Error",
                "Invalid/unknown command: Frobnicate."
                " Use Action: ListCommands to show available commands.",
            ),
        ),
        (b"ActionID: x\r\n\r\n", ("Error", "Missing action in request")),
        (b"action: ping\r\nactionid: x\r\n\r\n", ("Success", None)),
        (b"ACTION: PING\r\nActionID: x\r\n\r\n", ("Success", None)),
        (b"Action: Ping\nActionID: x\n\n", ("Success", None)),
        (b"Action:Ping\r\nActionID:x\r\n\r\n", ("Success", None)),
        (b"Action: Ping\r\nthis line has no colon\r\nActionID: x\r\n\r\n", ("Success", None)),
        (
            b"Action: Monitor\r\nChannel: X\r\nActionID: x\r\n\r\n",
            (
                "Error",
                "Invalid/unknown command: Monitor."
                " Use Action: ListCommands to show available commands.",
            ),
        ),
    ],
)
async def test_framing_and_unknown_actions_as_asterisk_answers_them(
    ami: AmiClient, raw: bytes, expected: tuple[str, str | None]
) -> None:
    ami.send_raw(raw)
    response = await ami.response("x")
    assert (response.response, response.get("Message")) == expected


async def test_duplicate_action_id_first_wins(ami: AmiClient) -> None:
    ami.send_raw(b"Action: Ping\r\nActionID: dup-1\r\nActionID: dup-2\r\n\r\n")
    response = await ami.response("dup-1")
    assert response.get_all("ActionID") == ["dup-1"]


# The error texts of 09-errors.txt (and 05, 06, 08), action by action.
ERRORS = [
    ("Originate", {"Exten": "100", "Context": "inbound", "Priority": "1"}, "Channel not specified"),
    (
        "Originate",
        {"Channel": "Local/100@inbound"},
        "Originate with 'Exten' requires 'Context' and 'Priority'",
    ),
    (
        "Originate",
        {"Channel": "Local/100@inbound", "Context": "caller", "Exten": "s", "Priority": "abc"},
        "Invalid priority",
    ),
    (
        "Originate",
        {"Channel": "NoSuchTech/foo", "Context": "callwright-hold", "Exten": "s", "Priority": "1"},
        "Originate failed",
    ),
    (
        "Redirect",
        {
            "Channel": "PJSIP/nosuch-00000000",
            "Context": "callwright-agent",
            "Exten": "1001",
            "Priority": "1",
        },
        "Channel does not exist: PJSIP/nosuch-00000000",
    ),
    (
        "Redirect",
        {"Context": "callwright-agent", "Exten": "1001", "Priority": "1"},
        "Channel not specified",
    ),
    (
        "Redirect",
        {"Channel": "PJSIP/nosuch-00000000", "Context": "callwright-agent"},
        "Exten not specified",
    ),
    ("Hangup", {"Channel": "PJSIP/nosuch-00000000"}, "No such channel"),
    ("Hangup", {}, "No channel specified"),
    ("Getvar", {"Channel": "PJSIP/nosuch-00000000", "Variable": "X"}, "No such channel"),
    ("Getvar", {"Channel": "PJSIP/nosuch-00000000"}, "No variable specified"),
    ("Setvar", {"Value": "1"}, "No variable specified"),
    (
        "Setvar",
        {"Channel": "PJSIP/nosuch-00000000", "Variable": "X", "Value": "1"},
        "No such channel",
    ),
    ("Status", {"Channel": "PJSIP/nosuch-00000000"}, "No such channel"),
    ("Filter", {"Operation": "Frobnicate", "Filter": "Event: Hangup"}, "Unknown operation"),
    ("Filter", {"Filter": "Event: Newchannel"}, "Unknown operation"),
    (
        "Filter",
        {"Operation": "Add", "Filter": "Event: ([unclosed"},
        "Filter did not compile.  Check the syntax of the filter given.",
    ),
    ("Command", {}, "No command provided"),
    (
        "BridgeInfo",
        {"BridgeUniqueid": "00000000-0000-0000-0000-000000000000"},
        "Specified BridgeUniqueid not found",
    ),
    (
        "BlindTransfer",
        {"Channel": "PJSIP/nosuch-00000000", "Context": "c", "Exten": "1"},
        "Channel specified does not exist",
    ),
    (
        "BlindTransfer",
        {"Channel": "PJSIP/nosuch-00000000", "Context": "c"},
        "No extension specified",
    ),
    (
        "Atxfer",
        {"Channel": "PJSIP/nosuch-00000000", "Exten": "1"},
        "Channel specified does not exist",
    ),
    ("Atxfer", {"Channel": "PJSIP/nosuch-00000000"}, "No extension specified"),
    ("CancelAtxfer", {"Channel": "PJSIP/nosuch-00000000"}, "Channel specified does not exist"),
    ("MixMonitor", {"Channel": "PJSIP/nosuch-00000000", "File": "x.wav"}, "No such channel"),
    ("MixMonitor", {"File": "x.wav"}, "No channel specified"),
    ("StopMixMonitor", {"Channel": "PJSIP/nosuch-00000000"}, "No such channel"),
    ("Bridge", {"Channel1": "PJSIP/trunk"}, "Missing channel parameter in request"),
    (
        "Bridge",
        {"Channel1": "PJSIP/nosuch", "Channel2": "PJSIP/x"},
        "Channel1 does not exist: PJSIP/nosuch",
    ),
]


@pytest.mark.parametrize(("name", "fields", "message"), ERRORS)
async def test_errors_carry_asterisks_exact_texts(
    connect: Connect, name: str, fields: dict[str, str], message: str
) -> None:
    client = await connect("admin", events="off")
    response = await client.request(name, fields)
    assert response.headers == (
        ("Response", "Error"),
        ("ActionID", response.action_id),
        ("Message", message),
    )


async def test_read_only_user_is_denied_write_actions(connect: Connect) -> None:
    client = await connect("viewer", events="off")
    for name, fields in (
        ("Originate", {"Channel": "PJSIP/1001", "Context": "c", "Exten": "s", "Priority": "1"}),
        ("Hangup", {"Channel": "PJSIP/x-00000000"}),
        ("Redirect", {"Channel": "PJSIP/x-00000000"}),
        ("MixMonitor", {"Channel": "PJSIP/x-00000000"}),
    ):
        response = await client.request(name, fields)
        assert (response.response, response.message) == ("Error", "Permission denied")
    assert (await client.request("Ping")).ok


async def test_callwright_user_may_record_and_originate_but_not_run_cli_commands(
    ami: AmiClient,
) -> None:
    denied = await ami.request("Command", {"Command": "core show version"})
    assert denied.message == "Permission denied"
    missing = await ami.request("MixMonitor", {"Channel": "PJSIP/x-00000000", "File": "a.wav"})
    assert missing.message == "No such channel"  # allowed (write class system)


async def test_command_output_and_unknown_cli_command(connect: Connect) -> None:
    client = await connect("admin", events="off")
    ok = await client.request("Command", {"Command": "core show version"})
    assert ok.ok and ok.message == "Command output follows"
    assert ok["Output"].startswith("Asterisk 22.10.1")
    bad = await client.request("Command", {"Command": "no such cli command"})
    assert bad.response == "Error" and bad.message == "Command output follows"
    assert bad.get_all("Output") == [
        "No such command 'no such cli command'"
        " (type 'core show help no such' for other possible commands)"
    ]


async def test_core_settings_and_core_status_header_order(connect: Connect) -> None:
    client = await connect("admin", events="off")
    settings = await client.request("CoreSettings")
    assert [k for k, _ in settings.headers] == [
        "Response",
        "ActionID",
        "AMIversion",
        "AsteriskVersion",
        "SystemName",
        "CoreMaxCalls",
        "CoreMaxLoadAvg",
        "CoreRunUser",
        "CoreRunGroup",
        "CoreMaxFilehandles",
        "CoreRealTimeEnabled",
        "CoreCDRenabled",
        "CoreHTTPenabled",
        "SoundsSearchCustomDir",
    ]
    assert settings["AsteriskVersion"] == "22.10.1"
    status = await client.request("CoreStatus")
    assert [k for k, _ in status.headers][2:] == [
        "CoreStartupDate",
        "CoreStartupTime",
        "CoreReloadDate",
        "CoreReloadTime",
        "CoreCurrentCalls",
        "CoreProcessedCalls",
    ]


async def test_events_action_masks_what_arrives(sim: PbxSimulator, connect: Connect) -> None:
    client = await connect("callwright", events="off")
    await sim.inbound_call("5551000")
    assert not [m for m in client.messages if isinstance(m, AmiEvent)]
    on = await client.request("Events", {"EventMask": "call"})
    assert on["Events"] == "On"
    await sim.inbound_call("5551001")
    await client.event("MusicOnHoldStart")
    names = {e.name for e in client.events()}
    assert "Newchannel" in names and "MusicOnHoldStart" in names
    assert "Newexten" not in names  # dialplan class not asked for
    off = await client.request("Events", {"EventMask": "off"})
    assert off["Events"] == "Off"
    invalid = await client.request("Events", {})
    assert invalid.message == "Invalid event mask"


async def test_filter_lets_only_matching_events_through(
    sim: PbxSimulator, connect: Connect
) -> None:
    client = await connect("admin")
    added = await client.request("Filter", {"Operation": "Add", "Filter": "Event: Hangup"})
    assert added.message == "Success"
    ch = await sim.inbound_call("5551000")
    await sim.customer_hangup(ch.name)
    await client.event("Hangup", Channel=ch.name)
    # "Event: Hangup" also matches HangupRequest, as in Asterisk; the events
    # before the filter was added (login) are the only others.
    after = client.messages[client.messages.index(added) + 1 :]
    assert {m.get("Event") for m in after} == {"Hangup", "HangupRequest"}
