"""sim.agi_driver plays Asterisk 22's side of FastAGI as recorded in 11-fastagi.txt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ivr.agi import AgiChannel, AgiHangup, AgiServer
from ivr.agi.codec import AgiReply, split_command
from sim.agi_driver import REPLY_DEAD, REPLY_UNKNOWN, AgiTranscript, env_block, run_fastagi
from sim.transcripts import Connection, read_transcript

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ami" / "11-fastagi.txt"
SESSIONS = read_transcript(FIXTURE)
RECORDED_URL = "agi://127.0.0.1:4573/ivr?lang=en"
TIMEOUT = 10


def recorded_env(conn: Connection) -> dict[str, str]:
    block = conn.received().split(b"\n\n", 1)[0].decode()
    env = {}
    for line in block.split("\n"):
        key, _, value = line.partition(": ")
        env[key.rstrip(":")] = value
    for key in ("agi_network", "agi_network_script", "agi_request"):
        del env[key]
    return env


def as_call(line: str) -> tuple[str, list[str]]:
    words = split_command(line)
    n = 0
    while n < len(words) and words[n].isalpha() and words[n].isupper():
        n += 1
    return " ".join(words[:n]), words[n:]


@asynccontextmanager
async def agi_server(
    handler: Callable[[AgiChannel], Awaitable[None]], **kwargs: float
) -> AsyncIterator[AgiServer]:
    server = AgiServer(handler, **kwargs)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def replaying(
    lines: list[str], replies: list[AgiReply | str]
) -> Callable[[AgiChannel], Awaitable[None]]:
    async def handler(channel: AgiChannel) -> None:
        for line in lines:
            command, args = as_call(line)
            try:
                replies.append(await channel.command(command, *args))
            except AgiHangup as exc:
                assert exc.reply is not None
                replies.append(f"AgiHangup: {exc.reply.text}")

    return handler


@pytest.mark.parametrize("index", [0, 1])
def test_env_block_is_byte_for_byte_what_asterisk_sent(index: int) -> None:
    conn = SESSIONS[index]
    recorded = conn.received().split(b"\n\n", 1)[0] + b"\n\n"
    assert env_block(RECORDED_URL, recorded_env(conn)) == recorded


def test_env_block_defaults_type_from_channel_and_appends_arguments() -> None:
    block = env_block("agi://h/menu", {"agi_channel": "PJSIP/100-0001"}, ["a b", "2"]).decode()
    assert "agi_network_script: menu\n" in block
    assert "agi_type: PJSIP\n" in block
    assert block.endswith("agi_threadid: 140156419802816\nagi_arg_1: a b\nagi_arg_2: 2\n\n")


async def replay_through_server(
    conn: Connection, **driver: object
) -> tuple[AgiTranscript, list[AgiReply | str], int]:
    lines = conn.sent().decode().splitlines()
    replies: list[AgiReply | str] = []
    async with agi_server(replaying(lines, replies)) as server:
        url = f"agi://127.0.0.1:{server.port}/ivr?lang=en"
        transcript = await asyncio.wait_for(
            run_fastagi(url, recorded_env(conn), sounds=(), **driver),  # type: ignore[arg-type]
            TIMEOUT,
        )
        return transcript, replies, server.port


async def test_session_1_replays_byte_for_byte() -> None:
    conn = SESSIONS[0]
    transcript, replies, port = await replay_through_server(conn)
    here = f"127.0.0.1:{port}".encode()
    assert bytes(transcript.sent) == conn.received().replace(b"127.0.0.1:4573", here)
    # What our server wrote is what the recorder wrote, but for the one line it
    # over-quoted (see test_agi_codec).
    ours = [split_command(line) for line in transcript.received.decode().splitlines()]
    assert ours == [split_command(line) for line in conn.sent().decode().splitlines()]
    assert transcript.closed_by == "server"
    assert transcript.hung_up
    assert "AgiHangup: 200 result=1 (hello world)" in replies  # the HANGUP line, then the reply
    assert f"AgiHangup: {REPLY_DEAD}" in replies


async def test_session_2_caller_hangs_up_during_wait_for_digit() -> None:
    conn = SESSIONS[1]
    transcript, replies, port = await replay_through_server(conn, hangup_after=2)
    here = f"127.0.0.1:{port}".encode()
    assert bytes(transcript.sent) == conn.received().replace(b"127.0.0.1:4573", here)
    assert bytes(transcript.received) == conn.sent()
    assert [r if isinstance(r, str) else r.text for r in replies] == [
        "200 result=0",
        "200 result=-1",
        "AgiHangup: 200 result=0",
        "200 result=1 (Local/102@inbound-0000001f;2)",
        f"AgiHangup: {REPLY_DEAD}",
        f"AgiHangup: {REPLY_DEAD}",
    ]
    assert [e.hangup_notice for e in transcript.exchanges] == [
        False,
        True,
        False,
        False,
        False,
        False,
    ]


# -- the driver against a raw socket: what Asterisk does with odd input -----------


@asynccontextmanager
async def raw_server(
    script: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\n\n")
            await script(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"agi://127.0.0.1:{server.sockets[0].getsockname()[1]}/raw"
    finally:
        server.close()
        await server.wait_closed()


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> bytes:
    writer.write(line)
    return await reader.readline()


async def test_crlf_sent_to_asterisk_makes_an_unknown_command() -> None:
    got: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await ask(reader, writer, b"ANSWER\r\n"))
        got.append(await ask(reader, writer, b"answer\n"))

    async with raw_server(script) as url:
        transcript = await asyncio.wait_for(run_fastagi(url), TIMEOUT)
    assert got == [REPLY_UNKNOWN.encode() + b"\n", b"200 result=0\n"]
    assert transcript.commands == ["ANSWER\r", "answer"]


async def test_line_longer_than_asterisk_buffer_runs_as_two_commands() -> None:
    got: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"VERBOSE " + b"x" * 2039 + b"NOOP\n")
        got.append(await reader.readline())
        got.append(await reader.readline())

    async with raw_server(script) as url:
        transcript = await asyncio.wait_for(run_fastagi(url), TIMEOUT)
    assert [len(c) for c in transcript.commands] == [2047, 4]
    assert transcript.commands[1] == "NOOP"
    assert got == [b"200 result=1\n", b"200 result=0\n"]


async def test_exit_on_hangup_writes_hangup_twice_and_closes() -> None:
    got: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await ask(reader, writer, b"WAIT FOR DIGIT 10000\n"))
        got.append(await reader.read())

    async with raw_server(script) as url:
        transcript = await asyncio.wait_for(
            run_fastagi(url, hangup_after=1, exit_on_hangup=True), TIMEOUT
        )
    assert got == [b"200 result=-1\n", b"HANGUP\nHANGUP\n"]
    assert transcript.closed_by == "asterisk"


async def test_without_sighup_there_is_no_hangup_line_only_511() -> None:
    got: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await ask(reader, writer, b'STREAM FILE welcome ""\n'))
        got.append(await ask(reader, writer, b"ANSWER\n"))

    async with raw_server(script) as url:
        await asyncio.wait_for(run_fastagi(url, hangup_after=1, sighup=False), TIMEOUT)
    assert got == [b"200 result=-1 endpos=0\n", REPLY_DEAD.encode() + b"\n"]


async def test_caller_keys_feed_get_data_wait_for_digit_and_escape_digits() -> None:
    got: list[bytes] = []
    lines = [
        b"GET DATA enter-account 5000 4\n",  # takes 1, 2, 3, 4 (max)
        b"GET DATA enter-pin\n",  # takes 9 and the # (dropped)
        b"STREAM FILE menu 12\n",  # next key 5 is no escape digit: plays out
        b"WAIT FOR DIGIT 3000\n",  # takes 5
        b"SAY DIGITS 42 0\n",  # takes the escape key 0
        b"GET DATA again 3000\n",  # keys run out: timeout
        b"WAIT FOR DIGIT 3000\n",
    ]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for line in lines:
            got.append(await ask(reader, writer, line))

    async with raw_server(script) as url:
        await asyncio.wait_for(run_fastagi(url, digits="12349#507"), TIMEOUT)
    assert got == [
        b"200 result=1234\n",
        b"200 result=9\n",
        b"200 result=0 endpos=16000\n",
        b"200 result=53\n",
        b"200 result=48\n",
        b"200 result=7 (timeout)\n",
        b"200 result=0\n",
    ]


async def test_respond_overrides_a_default_reply() -> None:
    got: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await ask(reader, writer, b"GET VARIABLE CRM_SEGMENT\n"))
        got.append(await ask(reader, writer, b"NOOP\n"))

    def respond(line: str) -> str | None:
        return "200 result=1 (gold)" if line == "GET VARIABLE CRM_SEGMENT" else None

    async with raw_server(script) as url:
        await asyncio.wait_for(run_fastagi(url, respond=respond), TIMEOUT)
    assert got == [b"200 result=1 (gold)\n", b"200 result=0\n"]


async def test_idle_timeout_ends_a_call_whose_server_never_speaks() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # say nothing until the driver gives up

    async with raw_server(script) as url:
        transcript = await asyncio.wait_for(run_fastagi(url, idle_timeout=0.2), TIMEOUT)
    assert transcript.closed_by == "idle_timeout"
    assert transcript.exchanges == []
