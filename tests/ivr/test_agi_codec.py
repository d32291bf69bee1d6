"""The sans-I/O FastAGI codec against the recorded Asterisk 22 sessions."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.agi.codec import (
    CLOSED,
    NEED_DATA,
    AgiReply,
    AgiRequest,
    AgiSession,
    AgiState,
    Event,
    HangupNotice,
    encode_command,
    parse_reply,
    split_command,
)
from ivr.agi.errors import LocalProtocolError, RemoteProtocolError
from sim.transcripts import FROM_PBX, Connection, read_transcript

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ami" / "11-fastagi.txt"
SESSIONS = read_transcript(FIXTURE)


def as_call(line: str) -> tuple[str, list[str]]:
    """A recorded command line as (command, args): the leading upper-case words
    are the command. Any split encodes to the same bytes; this one reads well."""
    words = split_command(line)
    n = 0
    while n < len(words) and words[n].isalpha() and words[n].isupper():
        n += 1
    return " ".join(words[:n]), words[n:]


def recorded_commands(conn: Connection) -> list[str]:
    return conn.sent().decode().splitlines()


def replay(conn: Connection, chunks: list[bytes] | None = None) -> tuple[list[Event], list[bytes]]:
    """Feed what Asterisk sent (in ``chunks``, default one per segment), sending
    the next recorded command whenever the session is idle. Returns the events
    and the bytes the codec produced for the commands."""
    commands = recorded_commands(conn)
    if chunks is None:
        chunks = [s.data for s in conn.segments if s.direction == FROM_PBX]
    session = AgiSession()
    events: list[Event] = []
    wire: list[bytes] = []
    for chunk in [*chunks, b""]:
        session.receive_data(chunk)
        while True:
            if session.state is AgiState.IDLE and len(wire) < len(commands):
                command, args = as_call(commands[len(wire)])
                wire.append(session.send_command(command, *args))
            event = session.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
            if event is CLOSED:
                break
    return events, wire


def test_transcript_holds_two_fastagi_sessions() -> None:
    assert len(SESSIONS) == 2


def test_session_1_request_carries_script_query_and_channel_env() -> None:
    events, _ = replay(SESSIONS[0])
    request = events[0]
    assert isinstance(request, AgiRequest)
    assert request.script == "ivr"
    assert request.query == {"lang": "en"}
    assert request.args == ()
    assert request.channel == "Local/102@inbound-0000001e;2"
    assert request.uniqueid == "1796007019.61"
    assert request.callerid == "5553000"
    assert request.calleridname == "IVR Caller"
    assert (request.context, request.extension) == ("inbound", "102")
    assert request.env["request"] == "agi://127.0.0.1:4573/ivr?lang=en"
    assert request.env["network"] == "yes"
    assert request.env["accountcode"] == ""
    assert request.env["version"] == "22.10.1"
    assert request.env["threadid"] == "140156419802816"
    assert len(request.env) == 22


def test_session_1_commands_encode_to_the_recorded_bytes() -> None:
    _, wire = replay(SESSIONS[0])
    recorded = SESSIONS[0].sent().splitlines(keepends=True)
    assert [split_command(w.decode()) for w in wire] == [
        split_command(r.decode()) for r in recorded
    ]
    # Byte for byte too, but for one line the recorder quoted where Asterisk
    # needs no quotes.
    differ = [(ours, theirs) for ours, theirs in zip(wire, recorded, strict=True) if ours != theirs]
    assert differ == [
        (
            b"STREAM FILE no-such-sound-file 0123456789*#\n",
            b'STREAM FILE no-such-sound-file "0123456789*#"\n',
        )
    ]


def test_session_1_replies_parse_as_asterisk_meant_them() -> None:
    events, _ = replay(SESSIONS[0])
    replies = [(e.code, e.result, e.data, e.endpos) for e in events if isinstance(e, AgiReply)]
    assert replies == [
        (200, "0", None, None),  # ANSWER
        (200, "6", None, None),  # CHANNEL STATUS: up
        (200, "1", "5553000", None),  # GET VARIABLE CALLERID(num)
        (200, "1", "IVR Caller-102", None),  # GET FULL VARIABLE
        (200, "1", None, None),  # SET VARIABLE
        (200, "1", "hello world", None),
        (200, "0", None, None),  # GET VARIABLE NO_SUCH_VARIABLE
        (200, "-1", None, 0),  # STREAM FILE of a missing file
        (200, "-1", None, 0),
        (200, "-1", None, None),  # GET DATA of a missing file
        (200, "0", None, None),  # SAY DIGITS
        (200, "1", None, None),  # VERBOSE
        (200, "0", None, None),  # EXEC Wait 1
        (200, "-2", None, None),  # EXEC of an unknown application
        (200, "0", None, None),  # EXEC Set
        (200, "1", "yes", None),
        (200, "0", None, None),  # NOOP
        (510, None, None, None),  # FROBNICATE THE CHANNEL
        (520, None, None, None),  # GET DATA without arguments
        (200, "0", None, None),  # WAIT FOR DIGIT: timeout
        (200, "1", None, None),  # HANGUP
        (200, "1", "hello world", None),  # GET VARIABLE on the dead channel
        (511, None, None, None),  # STREAM FILE on the dead channel
        (200, "-1", None, None),  # EXEC Wait on the dead channel
        (200, "0", None, None),  # NOOP
    ]


def test_session_1_hangup_line_is_a_notice_before_the_next_reply() -> None:
    events, _ = replay(SESSIONS[0])
    at = events.index(HangupNotice())
    after = events[at + 1]
    assert isinstance(after, AgiReply)
    assert after.text == "200 result=1 (hello world)"
    assert events.count(HangupNotice()) == 1
    assert events[-1] is CLOSED


def test_session_1_error_replies_keep_asterisk_text() -> None:
    events, _ = replay(SESSIONS[0])
    texts = {e.code: e.text for e in events if isinstance(e, AgiReply) and e.code != 200}
    assert texts == {
        510: "510 Invalid or unknown command",
        511: "511 Command Not Permitted on a dead channel or intercept routine",
        520: "520 Invalid command syntax.  Proper usage not available.",
    }


def test_session_2_caller_hangup_during_wait_for_digit() -> None:
    events, wire = replay(SESSIONS[1])
    assert b"".join(wire) == SESSIONS[1].sent()
    assert isinstance(events[0], AgiRequest)
    assert events[0].uniqueid == "1796007025.63"
    rest = [e.text if isinstance(e, AgiReply) else e for e in events[1:] if e is not CLOSED]
    assert rest == [
        "200 result=0",  # ANSWER
        "200 result=-1",  # WAIT FOR DIGIT 10000: the caller hung up
        HangupNotice(),  # ... which Asterisk says before the NOOP reply
        "200 result=0",  # NOOP
        "200 result=1 (Local/102@inbound-0000001f;2)",  # GET VARIABLE CHANNEL
        "511 Command Not Permitted on a dead channel or intercept routine",
        "511 Command Not Permitted on a dead channel or intercept routine",
    ]
    dead = [e for e in events if isinstance(e, AgiReply) and e.hungup]
    assert len(dead) == 2


@pytest.mark.parametrize("index", [0, 1])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_split_of_the_bytes_yields_the_same_events(index: int, data: st.DataObject) -> None:
    conn = SESSIONS[index]
    stream = conn.received()
    cuts = sorted(
        data.draw(st.lists(st.integers(0, len(stream)), max_size=40, unique=True), label="cuts")
    )
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    assert replay(conn, chunks) == replay(conn)


def test_byte_at_a_time_yields_the_same_events() -> None:
    stream = SESSIONS[0].received()
    chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert replay(SESSIONS[0], chunks) == replay(SESSIONS[0])


# -- request block -------------------------------------------------------------


def request_from(block: bytes) -> AgiRequest:
    session = AgiSession()
    session.receive_data(block)
    event = session.next_event()
    assert isinstance(event, AgiRequest)
    return event


def test_arguments_come_in_order_and_query_may_be_absent() -> None:
    block = (
        b"agi_network: yes\nagi_network_script: menu/main\nagi_request: agi://h/menu/main\n"
        b"agi_channel: PJSIP/100-00000001\nagi_arg_2: second\nagi_arg_1: first, with: colon\n"
        b"agi_arg_10: tenth\n\n"
    )
    request = request_from(block)
    assert request.script == "menu/main"
    assert request.query == {}
    assert request.args == ("first, with: colon", "second", "tenth")


def test_request_without_script_has_empty_script() -> None:
    request = request_from(b"agi_network: yes\nagi_request: agi://h\nagi_channel: X/1\n\n")
    assert request.script == ""
    assert request.query == {}


def test_crlf_line_endings_are_accepted() -> None:
    request = request_from(b"agi_network_script: ivr?a=1&b=\r\nagi_channel: X/1\r\n\r\n")
    assert request.script == "ivr"
    assert request.query == {"a": "1", "b": ""}
    assert request.channel == "X/1"


def test_utf8_split_across_reads_survives() -> None:
    block = "agi_calleridname: Jörg Ærø\n\n".encode()
    session = AgiSession()
    cut = block.index("ö".encode()) + 1
    session.receive_data(block[:cut])
    assert session.next_event() is NEED_DATA
    session.receive_data(block[cut:])
    event = session.next_event()
    assert isinstance(event, AgiRequest)
    assert event.calleridname == "Jörg Ærø"


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",  # a TLS hello, then an LF
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\n",  # an empty block
    ],
)
def test_garbage_instead_of_an_agi_block_is_refused_at_the_first_line(garbage: bytes) -> None:
    session = AgiSession()
    session.receive_data(garbage)
    with pytest.raises(RemoteProtocolError):
        session.next_event()
    assert session.state is AgiState.ERROR
    with pytest.raises(RemoteProtocolError):  # sticky
        session.next_event()


def test_oversized_agi_block_is_refused_without_waiting_for_its_end() -> None:
    session = AgiSession(max_env_bytes=1024)
    session.receive_data(b"agi_channel: " + b"x" * 2000)
    with pytest.raises(RemoteProtocolError, match="limit"):
        session.next_event()


def test_many_lines_adding_up_past_the_limit_are_refused() -> None:
    session = AgiSession(max_env_bytes=1024)
    session.receive_data(b"".join(b"agi_arg_%d: %s\n" % (i, b"y" * 40) for i in range(60)))
    with pytest.raises(RemoteProtocolError, match="limit"):
        session.next_event()


def test_eof_before_any_byte_is_closed_and_eof_mid_block_is_an_error() -> None:
    silent = AgiSession()
    silent.receive_data(b"")
    assert silent.next_event() is CLOSED

    half = AgiSession()
    half.receive_data(b"agi_network: yes\nagi_netw")
    assert half.next_event() is NEED_DATA
    half.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="closed inside"):
        half.next_event()


# -- replies ---------------------------------------------------------------------


def ready_session() -> AgiSession:
    session = AgiSession()
    session.receive_data(b"agi_network: yes\nagi_channel: X/1\n\n")
    assert isinstance(session.next_event(), AgiRequest)
    return session


def test_usage_block_is_one_reply() -> None:
    session = ready_session()
    session.send_command("GET DATA")
    session.receive_data(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
        b"\n"
        b"520 End of proper usage.\n"
    )
    reply = session.next_event()
    assert isinstance(reply, AgiReply)
    assert reply.code == 520
    assert reply.text.startswith("520-Invalid command syntax.")
    assert reply.text.endswith("\n520 End of proper usage.")
    assert "Usage: GET DATA" in reply.text
    assert session.state is AgiState.IDLE
    assert session.next_event() is NEED_DATA


def test_provisional_100_keeps_the_command_in_flight() -> None:
    session = ready_session()
    session.send_command("RECORD FILE", "msg", "wav", "#", "5000")
    session.receive_data(b"100 result=0 Trying...\n200 result=0 (timeout) endpos=4000\n")
    trying = session.next_event()
    assert isinstance(trying, AgiReply) and trying.code == 100
    assert session.state is AgiState.AWAITING_REPLY
    final = session.next_event()
    assert isinstance(final, AgiReply)
    assert (final.result, final.data, final.endpos) == ("0", "timeout", 4000)
    assert session.state is AgiState.IDLE


def test_reply_nobody_asked_for_is_a_protocol_error() -> None:
    session = ready_session()
    session.receive_data(b"200 result=0\n")
    with pytest.raises(RemoteProtocolError, match="no command in flight"):
        session.next_event()


def test_hangup_line_may_arrive_while_idle() -> None:
    session = ready_session()
    session.receive_data(b"HANGUP\n")
    assert session.next_event() == HangupNotice()
    assert session.state is AgiState.IDLE


def test_oversized_reply_is_refused() -> None:
    session = AgiSession(max_reply_bytes=100)
    session.receive_data(b"agi_channel: X/1\n\n")
    session.next_event()
    session.send_command("GET VARIABLE", "BIG")
    session.receive_data(b"200 result=1 (" + b"z" * 200)
    with pytest.raises(RemoteProtocolError, match="limit"):
        session.next_event()


def test_partial_reply_at_eof_is_dropped_and_the_session_closes() -> None:
    session = ready_session()
    session.send_command("NOOP")
    session.receive_data(b"200 res")
    session.receive_data(b"")
    assert session.next_event() is CLOSED
    assert session.state is AgiState.CLOSED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("200 result=0", ("0", None, None, False)),
        ("200 result= (timeout)", ("", "timeout", None, False)),
        ("200 result=12 (timeout)", ("12", "timeout", None, False)),
        ("200 result=1 (a (nested) value)", ("1", "a (nested) value", None, False)),
        ("200 result=-1 endpos=0", ("-1", None, 0, False)),
        ("200 result=0 (hangup) endpos=1234", ("0", "hangup", 1234, True)),
        ("200 result=1 (digit) digit=5 endpos=0", ("1", "digit", None, False)),
        ("503 result=-2 Memory allocation failure", ("-2", None, None, False)),
        ("511 Command Not Permitted on a dead channel", (None, None, None, True)),
    ],
)
def test_reply_fields(text: str, expected: tuple[object, ...]) -> None:
    reply = parse_reply(text)
    assert (reply.result, reply.data, reply.endpos, reply.hungup) == expected
    assert reply.text == text


@given(st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=["Cs"])))
def test_reply_data_is_everything_inside_the_outer_parentheses(value: str) -> None:
    reply = parse_reply(f"200 result=1 ({value})")
    assert reply.data == value


# -- sending ---------------------------------------------------------------------


def test_arguments_are_quoted_only_when_asterisk_needs_it() -> None:
    assert encode_command("SET VARIABLE", "IVR_RESULT", "hello world") == (
        b'SET VARIABLE IVR_RESULT "hello world"\n'
    )
    assert encode_command("STREAM FILE", "welcome", "") == b'STREAM FILE welcome ""\n'
    assert encode_command("EXEC", "Set", 'X="a\\b"') == b'EXEC Set X=\\"a\\\\b\\"\n'
    assert encode_command("answer") == b"answer\n"


@pytest.mark.parametrize("bad", ["a\nHANGUP", "a\r", "nul\0"])
def test_cr_lf_and_nul_in_an_argument_are_refused(bad: str) -> None:
    session = ready_session()
    with pytest.raises(LocalProtocolError):
        session.send_command("SET VARIABLE", "X", bad)
    assert session.state is AgiState.IDLE  # nothing went out: still usable


@pytest.mark.parametrize("bad", ["", "GET\nDATA", 'EXEC "x"', "SET-VARIABLE"])
def test_command_names_are_plain_words(bad: str) -> None:
    with pytest.raises(LocalProtocolError):
        encode_command(bad)


def test_line_asterisk_would_cut_is_refused() -> None:
    assert len(encode_command("VERBOSE", "x" * 2000)) <= 2047
    with pytest.raises(LocalProtocolError, match="2047"):
        encode_command("VERBOSE", "x" * 2040)


def test_commands_wait_for_the_request_and_for_the_previous_reply() -> None:
    session = AgiSession()
    with pytest.raises(LocalProtocolError, match="no AGI request"):
        session.send_command("ANSWER")
    session.receive_data(b"agi_channel: X/1\n\n")
    session.next_event()
    session.send_command("ANSWER")
    with pytest.raises(LocalProtocolError, match="in flight"):
        session.send_command("NOOP")


_ARG = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\0", blacklist_categories=["Cs"]),
    max_size=30,
)


@given(args=st.lists(_ARG, max_size=8))
def test_asterisk_reads_back_exactly_the_arguments_we_sent(args: list[str]) -> None:
    line = encode_command("SET VARIABLE", *args).decode()
    assert line.endswith("\n")
    assert split_command(line[:-1]) == ["SET", "VARIABLE", *args]


def test_split_command_follows_parse_args_quirks() -> None:
    assert split_command('STREAM FILE no-such-sound-file ""') == [
        "STREAM",
        "FILE",
        "no-such-sound-file",
        "",
    ]
    assert split_command('a"b c"d  e\\ f') == ["ab cd", "e f"]
    assert split_command("ANSWER\r") == ["ANSWER\r"]  # Asterisk strips only the LF
    assert split_command("") == []
