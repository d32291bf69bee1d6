from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami.framing import CLOSED, NEED_DATA, AmiConnection, Role, encode
from cti.ami.messages import AmiAction, AmiEvent, AmiResponse, Banner
from cti.errors import LocalProtocolError
from sim.transcripts import read_transcript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
AMI_TRANSCRIPTS = sorted(p for p in FIXTURES.glob("*.txt") if p.name != "11-fastagi.txt")


def drain(conn: AmiConnection) -> list[object]:
    out: list[object] = []
    while (message := conn.next_message()) not in (NEED_DATA, CLOSED):
        out.append(message)
    return out


def parse(data: bytes, role: Role = Role.CLIENT, chunk: int | None = None) -> list[object]:
    conn = AmiConnection(role)
    if chunk is None:
        conn.receive_data(data)
        return drain(conn)
    out: list[object] = []
    for i in range(0, len(data), chunk):
        conn.receive_data(data[i : i + chunk])
        out.extend(drain(conn))
    return out


@pytest.mark.parametrize("path", AMI_TRANSCRIPTS, ids=lambda p: p.name)
def test_every_recorded_asterisk_message_round_trips_byte_for_byte(path: Path) -> None:
    for conn in read_transcript(path):
        received = conn.received()
        messages = parse(received)
        assert isinstance(messages[0], Banner)
        assert messages[0].text == "Asterisk Call Manager/11.0.0"
        rebuilt = AmiConnection(Role.SERVER).send(messages[0]) + b"".join(
            encode(m)
            for m in messages[1:]  # type: ignore[arg-type]
        )
        if rebuilt != received:
            # Only 10-events-filter has a message garbled by Asterisk itself
            # (two threads writing one socket): it is dropped and counted.
            codec = AmiConnection(Role.CLIENT)
            codec.receive_data(received)
            drain(codec)
            assert path.name == "10-events-filter.txt"
            assert codec.stats.unclassified == 1


@pytest.mark.parametrize("path", AMI_TRANSCRIPTS[:4], ids=lambda p: p.name)
def test_client_actions_parse_on_the_server_side(path: Path) -> None:
    for conn in read_transcript(path):
        actions = parse(conn.sent(), Role.SERVER)
        assert actions and all(isinstance(a, AmiAction) for a in actions)
        assert any(a.name == "Login" for a in actions)  # type: ignore[attr-defined]


def test_responses_and_events_are_told_apart_even_with_a_response_header() -> None:
    data = (
        b"Asterisk Call Manager/11.0.0\r\n"
        b"Response: Success\r\nActionID: 1\r\nMessage: Originate successfully queued\r\n\r\n"
        b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: 1\r\n"
        b"Response: Failure\r\nChannel: Local/999@inbound\r\nReason: 0\r\n\r\n"
    )
    _, response, event = parse(data)
    assert isinstance(response, AmiResponse) and response.ok
    assert isinstance(event, AmiEvent) and event.name == "OriginateResponse"
    assert event["Response"] == "Failure"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40))
def test_any_split_of_the_stream_yields_the_same_messages(cuts: list[int]) -> None:
    data = read_transcript(FIXTURES / "04-redirect-bridge.txt")[0].received()
    whole = parse(data)
    conn = AmiConnection(Role.CLIENT)
    out: list[object] = []
    pos = 0
    for cut in cuts:
        conn.receive_data(data[pos : pos + cut])
        out.extend(drain(conn))
        pos += cut
    conn.receive_data(data[pos:])
    out.extend(drain(conn))
    assert out == whole


def test_a_utf8_character_split_between_reads_survives() -> None:
    data = b"Asterisk Call Manager/11.0.0\r\n" + encode(
        AmiEvent.build("NewCallerid", [("CallerIDName", "Jörg Müller")])
    )
    split = data.index("ö".encode()) + 1
    conn = AmiConnection(Role.CLIENT)
    conn.receive_data(data[:split])
    first = drain(conn)
    conn.receive_data(data[split:])
    (event,) = drain(conn)
    assert len(first) == 1  # just the banner
    assert isinstance(event, AmiEvent) and event["CallerIDName"] == "Jörg Müller"


def test_bytes_that_are_not_utf8_are_replaced_and_counted() -> None:
    data = b"Banner\r\nEvent: Newchannel\r\nCallerIDName: J\xf6rg\r\n\r\nEvent: Hangup\r\n\r\n"
    conn = AmiConnection(Role.CLIENT)
    conn.receive_data(data)
    _, first, second = drain(conn)
    assert first.get("CallerIDName") == "J\ufffdrg"  # type: ignore[attr-defined]
    assert second.name == "Hangup"  # type: ignore[attr-defined]
    assert conn.stats.invalid_utf8 == 1


def test_a_1mb_header_is_discarded_and_the_next_message_still_parses() -> None:
    huge = b"Event: Newchannel\r\nCallerIDName: " + b"x" * 1_000_000 + b"\r\n\r\n"
    after = b"Event: Hangup\r\nChannel: PJSIP/trunk-00000001\r\n\r\n"
    conn = AmiConnection(Role.CLIENT)
    conn.receive_data(b"Asterisk Call Manager/11.0.0\r\n")
    drain(conn)
    out: list[object] = []
    data = huge + after
    for i in range(0, len(data), 65536):
        conn.receive_data(data[i : i + 65536])
        out.extend(drain(conn))
        assert conn.buffered <= conn.max_message_bytes + 65536
    assert [m.name for m in out] == ["Hangup"]  # type: ignore[attr-defined]
    assert conn.stats.oversized == 1


def test_junk_lines_are_counted_and_lf_only_input_is_accepted() -> None:
    data = b"Action: Ping\nthis line has no colon\nActionID: lf\n\n"
    conn = AmiConnection(Role.SERVER)
    conn.receive_data(data)
    (action,) = drain(conn)
    assert isinstance(action, AmiAction)
    assert action.name == "Ping" and action.action_id == "lf"
    assert conn.stats.malformed_lines == 1


def test_the_server_side_skips_blanks_after_the_colon_like_asterisk() -> None:
    (action,) = parse(b"Action:Ping\r\nActionID:   no-space\r\n\r\n", Role.SERVER)
    assert action.headers == (("Action", "Ping"), ("ActionID", "no-space"))  # type: ignore[attr-defined]


def test_the_client_side_keeps_indentation_asterisk_sends() -> None:
    (_, response) = parse(
        b"Banner\r\nResponse: Success\r\nOutput:    Members: \r\n\r\n", Role.CLIENT
    )
    assert response.get_all("Output") == ["   Members: "]  # type: ignore[attr-defined]


def test_a_message_without_event_or_response_is_dropped_and_counted() -> None:
    conn = AmiConnection(Role.CLIENT)
    conn.receive_data(b"Banner\r\nAccountCode: \r\nContext: caller\r\n\r\nEvent: Hangup\r\n\r\n")
    messages = drain(conn)
    assert [type(m).__name__ for m in messages] == ["Banner", "AmiEvent"]
    assert conn.stats.unclassified == 1


def test_eof_is_reported_once_the_buffer_is_empty() -> None:
    conn = AmiConnection(Role.CLIENT)
    conn.receive_data(b"Banner\r\nEvent: Hangup\r\n\r\nEvent: Trunc")
    conn.receive_data(b"")
    assert isinstance(conn.next_message(), Banner)
    assert isinstance(conn.next_message(), AmiEvent)
    assert conn.next_message() is CLOSED


@pytest.mark.parametrize(
    "headers",
    [
        (("Action", "Setvar"), ("Value", "a\r\n\r\nAction: Hangup")),
        (("Action", "Setvar"), ("Value", "line\nbreak")),
        (("Action", "Setvar"), ("Value", "carriage\rreturn")),
        (("Action", "Setvar"), ("Bad: Name", "x")),
        (("Action", "Setvar"), ("", "x")),
    ],
)
def test_sending_refuses_anything_that_could_inject_a_header(
    headers: tuple[tuple[str, str], ...],
) -> None:
    with pytest.raises(LocalProtocolError):
        AmiConnection(Role.CLIENT).send(AmiAction(headers))


def test_actions_encode_as_asterisk_expects() -> None:
    action = AmiAction.build(
        "Originate",
        {"Channel": "PJSIP/1001", "Exten": "5550100", "Timeout": 30000, "CallerID": None},
        action_id="o-1",
        variables={"CALLWRIGHT_KEY": "k1", "B": "2"},
    )
    assert AmiConnection(Role.CLIENT).send(action) == (
        b"Action: Originate\r\nActionID: o-1\r\nChannel: PJSIP/1001\r\nExten: 5550100\r\n"
        b"Timeout: 30000\r\nVariable: CALLWRIGHT_KEY=k1\r\nVariable: B=2\r\n\r\n"
    )
