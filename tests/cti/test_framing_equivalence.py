"""The codec frames and parses exactly as a plain one-message-at-a-time codec.

``AmiConnection`` takes shortcuts for speed (every whole message in the buffer
framed at once, a cache of parsed header lines kept as bytes). ``Reference``
below is the codec's behaviour frozen as of commit 360e0c3, written the slow and
obvious way: find the first empty line with a regex, decode, split lines with a
regex, parse each line. Both must return the same messages and count the same
``FramingStats`` for any bytes, any chunking, either role.
"""

from __future__ import annotations

import re
from dataclasses import astuple
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami.framing import CLOSED, NEED_DATA, AmiConnection, FramingStats, Role
from cti.ami.messages import AmiAction, AmiEvent, AmiMessage, AmiResponse, Banner
from sim.transcripts import read_transcript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
AMI_TRANSCRIPTS = sorted(p for p in FIXTURES.glob("*.txt") if p.name != "11-fastagi.txt")

_MESSAGE_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(r"\r?\n")
_BANNER_END = re.compile(rb"\r?\n")


class Reference:
    """One message at a time, no batch, no cache (the rules of commit 360e0c3)."""

    def __init__(self, role: Role, max_message_bytes: int) -> None:
        self.client = role is Role.CLIENT
        self.max_message_bytes = max_message_bytes
        self.stats = FramingStats()
        self.buf = bytearray()
        self.eof = False
        self.want_banner = self.client
        self.discarding = False

    def receive_data(self, data: bytes) -> None:
        if data:
            self.buf += data
        else:
            self.eof = True

    def next_message(self) -> object:
        while True:
            if self.want_banner:
                eol = _BANNER_END.search(self.buf)
                if eol is None:
                    return CLOSED if self.eof else NEED_DATA
                line = bytes(self.buf[: eol.start()])
                del self.buf[: eol.end()]
                self.want_banner = False
                return Banner(line.decode("utf-8", "replace"))
            end = _MESSAGE_END.search(self.buf)
            if self.discarding:
                if end is None:
                    del self.buf[:-3]
                    return CLOSED if self.eof else NEED_DATA
                del self.buf[: end.end()]
                self.discarding = False
                continue
            if end is None:
                if len(self.buf) > self.max_message_bytes:
                    self.stats.oversized += 1
                    self.discarding = True
                    continue
                return CLOSED if self.eof else NEED_DATA
            block = bytes(self.buf[: end.start()])
            del self.buf[: end.end()]
            if not block:
                continue
            if len(block) > self.max_message_bytes:
                self.stats.oversized += 1
                continue
            message = self.parse(block)
            if message is not None:
                return message

    def parse(self, block: bytes) -> object:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            self.stats.invalid_utf8 += 1
            text = block.decode("utf-8", "replace")
        headers: list[tuple[str, str]] = []
        for line in _LINE_END.split(text):
            name, sep, value = line.partition(":")
            if not sep or not name:
                if line.strip():
                    self.stats.malformed_lines += 1
            elif self.client:
                headers.append((name, value[1:] if value[:1] == " " else value))
            else:
                headers.append((name.strip(), value.lstrip(" \t")))
        if not headers:
            return None
        self.stats.messages += 1
        hdrs = tuple(headers)
        if not self.client:
            return AmiAction(hdrs)
        first = hdrs[0][0].lower()
        if first == "event" or (first != "response" and "Event" in AmiMessage(hdrs)):
            return AmiEvent(hdrs)
        if first == "response" or "Response" in AmiMessage(hdrs):
            return AmiResponse(hdrs)
        self.stats.unclassified += 1
        return None


def _shown(message: object) -> object:
    if isinstance(message, Banner):
        return ("Banner", message.text)
    if isinstance(message, AmiMessage):
        return (type(message).__name__, message.headers)
    return message


def run_both(
    role: Role, chunks: list[bytes], max_message_bytes: int = 256 * 1024, take: int | None = None
) -> None:
    """Feed both codecs the same chunks; after each chunk take up to ``take``
    messages (all of them if None), then all that is left. Same messages, same
    stats and same number of bytes still buffered after every step."""
    codec = AmiConnection(role, max_message_bytes=max_message_bytes)
    reference = Reference(role, max_message_bytes)
    for chunk in [*chunks, b"\r\n\r\n", b""]:  # the end flushes what is left
        codec.receive_data(chunk)
        reference.receive_data(chunk)
        for _ in range(10**6 if take is None else take):
            got, want = codec.next_message(), reference.next_message()
            assert _shown(got) == _shown(want)
            if got is NEED_DATA or got is CLOSED:
                break
        assert astuple(codec.stats) == astuple(reference.stats)
        assert codec.buffered == len(reference.buf)
    while (got := codec.next_message()) is not CLOSED:
        assert _shown(got) == _shown(reference.next_message())
    assert reference.next_message() is CLOSED
    assert astuple(codec.stats) == astuple(reference.stats)
    assert codec.buffered == len(reference.buf)


def _cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [13, 100, 4096, 1 << 20])
@pytest.mark.parametrize("path", AMI_TRANSCRIPTS, ids=lambda p: p.name)
def test_recorded_streams_give_the_same_messages_at_any_read_size(path: Path, size: int) -> None:
    for conn in read_transcript(path):
        run_both(Role.CLIENT, _cut(conn.received(), size))
        run_both(Role.SERVER, _cut(conn.sent(), size))
        run_both(Role.SERVER, _cut(conn.received(), size))  # the wrong role: junk, counted


def test_a_long_stream_read_in_socket_sized_chunks_gives_the_same_messages() -> None:
    data = b"".join(conn.received() for path in AMI_TRANSCRIPTS for conn in read_transcript(path))
    for size in (1000, 65536):
        run_both(Role.CLIENT, _cut(data, size))
        run_both(Role.CLIENT, _cut(data, size), max_message_bytes=300)
        run_both(Role.CLIENT, _cut(data, size), take=2)


TOKENS = [
    b"\r", b"\n", b"\r\n", b"\r\n\r\n", b":", b": ", b" ", b"\t", b"Event: X", b"event:y",
    b"Response: Success", b"Action: Ping", b"ActionID: 1", b"Value", b"a", b"Uniqueid: 1.5",
    b"\xc3\xa9", b"\xe5\xb1\xb1", b"\xc3", b"\xa9", b"\xff", b"x" * 130,
    b"Asterisk Call Manager/11.0.0\r\n",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    tokens=st.lists(st.sampled_from(TOKENS), max_size=80),
    cuts=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=20),
    client=st.booleans(),
    max_message_bytes=st.sampled_from([256 * 1024, 200, 40, 5]),
    take=st.sampled_from([None, 1, 3]),
)
def test_any_bytes_in_any_chunks_give_the_same_messages_and_stats(
    tokens: list[bytes], cuts: list[int], client: bool, max_message_bytes: int, take: int | None
) -> None:
    data = b"".join(tokens)
    chunks: list[bytes] = []
    pos = 0
    for cut in cuts:
        chunks.append(data[pos : pos + cut])
        pos += cut
    chunks.append(data[pos:])
    role = Role.CLIENT if client else Role.SERVER
    run_both(role, [c for c in chunks if c], max_message_bytes, take)
