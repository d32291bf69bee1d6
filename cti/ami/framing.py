"""A sans-I/O AMI codec, in the shape of h11.

``AmiConnection(role)`` never touches a socket::

    conn = AmiConnection(Role.CLIENT)
    conn.receive_data(chunk)          # b"" means EOF
    while (msg := conn.next_message()) is not NEED_DATA:
        ...                           # Banner, AmiEvent, AmiResponse, AmiAction or CLOSED
    wire = conn.send(AmiAction.build("Ping", action_id="1"))

Why our own codec instead of panoramisk's parser (see ../shared/PITFALLS.md):
panoramisk decodes every TCP read on its own, so a UTF-8 character split across
two reads is dropped; it splits only on CRLF CRLF; it writes header values
unescaped, so a value holding CR LF CR LF smuggles a second action. Here bytes
are buffered and decoded in whole messages only, either line ending is accepted
(Asterisk itself accepts LF-only from clients), a message larger than
``max_message_bytes`` is discarded and counted instead of growing the buffer,
and ``send`` refuses any CR or LF inside a header name or value.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import cast

from cti.ami.messages import AmiAction, AmiEvent, AmiMessage, AmiResponse, Banner, Headers
from cti.errors import LocalProtocolError

__all__ = [
    "CLOSED",
    "NEED_DATA",
    "AmiConnection",
    "FramingStats",
    "Role",
    "Sentinel",
]


class Role(enum.Enum):
    CLIENT = "client"  # we talk to Asterisk: we read events and responses
    SERVER = "server"  # we are the PBX (the simulator): we read actions


class Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    CLOSED = "CLOSED"

    def __repr__(self) -> str:
        return self.value


NEED_DATA = Sentinel.NEED_DATA
CLOSED = Sentinel.CLOSED

# The end of a message is an empty line, whatever the line ending: the first
# match of rb"\r?\n\r?\n", found by _message_end with bytes.find (10x faster).
_LINE_END = re.compile(r"\r?\n")
_BANNER_END = re.compile(rb"\r?\n")

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024

# Client role: parsed header lines are kept by their bytes. Asterisk repeats the
# same lines (each event carries its channel's snapshot: Channel, Uniqueid,
# Linkedid, CallerIDNum...), so most lines skip parsing and share one tuple.
# Bounded: at most _HEADER_CACHE_SIZE lines of up to _CACHED_LINE_MAX bytes, kept
# as bytes (a cached line is never decoded).
_HEADER_CACHE_SIZE = 2048
_CACHED_LINE_MAX = 128


@dataclass(slots=True)
class FramingStats:
    """What the codec had to throw away or repair. Exposed on /healthz-type views."""

    messages: int = 0
    malformed_lines: int = 0  # a line without a colon (Asterisk ignores those too)
    invalid_utf8: int = 0  # messages whose bytes were not UTF-8 (decoded with U+FFFD)
    oversized: int = 0  # messages discarded for exceeding max_message_bytes
    unclassified: int = 0  # client role: neither Event nor Response header


Parsed = Banner | AmiEvent | AmiResponse | AmiAction


class AmiConnection:
    def __init__(self, role: Role, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.role = role
        self.max_message_bytes = max_message_bytes
        self.stats = FramingStats()
        self._buf = bytearray()
        self._eof = False
        # The client reads the banner line first; the server sends it.
        self._want_banner = role is Role.CLIENT
        self._discarding = False
        self._fresh = False  # bytes arrived since the last _take_batch
        # The lines of the whole messages _take_batch framed together, each
        # message ended by an empty line; those from _pos on are not returned yet.
        self._lines: list[bytes] = []
        self._pos = 0
        self._client = role is Role.CLIENT
        self._header_cache: dict[bytes, tuple[str, str]] = {}  # client: line -> header
        self._cached = self._header_cache.get

    # -- receiving -------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer. ``b""`` means the peer closed (EOF)."""
        if not data:
            self._eof = True
            return
        self._buf += data
        self._fresh = True

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as messages."""
        if self._pos >= len(self._lines):
            return len(self._buf)
        # The batch was its lines joined by CRLF, plus a final CRLF.
        return len(self._buf) + len(b"\r\n".join(self._lines[self._pos :])) + 2

    def next_message(self) -> Parsed | Sentinel:
        """The next whole message, ``NEED_DATA``, or ``CLOSED`` after EOF."""
        # A batch's messages come first (no banner or discard is pending then).
        lines = self._lines
        pos = self._pos
        if pos < len(lines):
            if self._client:
                # Inlined for the usual case: an event whose lines are all cached.
                end = lines.index(b"", pos)
                self._pos = end + 1
                if end > pos:
                    part = lines[pos:end]
                    cached = tuple(map(self._cached, part))
                    if all(cached):
                        hdrs = cast(Headers, cached)
                        if hdrs[0][0] == "Event":
                            self.stats.messages += 1
                            return AmiEvent(hdrs)
                        parsed: Parsed | None = self._classify(hdrs)
                    else:
                        parsed = self._parse_missed(part, cached)
                    if parsed is not None:
                        return parsed
            message = self._next_ready()
            if message is not None:
                return message
        elif lines:
            self._lines = []  # used up: let it go
            self._pos = 0
        while True:
            if self._want_banner:
                match = _BANNER_END.search(self._buf)
                if match is None:
                    return self._need_data()
                line = bytes(self._buf[: match.start()])
                del self._buf[: match.end()]
                self._want_banner = False
                return Banner(line.decode("utf-8", "replace"))

            if self._discarding:
                found = _message_end(self._buf)
                if found is None:
                    # Keep only a tail that could start the terminator.
                    del self._buf[:-3]
                    return self._need_data()
                del self._buf[: found[1]]
                self._discarding = False
                continue

            if self._fresh:
                self._fresh = False
                if self._take_batch():
                    message = self._next_ready()
                    if message is not None:
                        return message
                    continue

            found = _message_end(self._buf)
            if found is None:
                if len(self._buf) > self.max_message_bytes:
                    self.stats.oversized += 1
                    self._discarding = True
                    continue
                return self._need_data()
            end, after = found
            # A leading blank line (an LF-only peer's stray newline) ends nothing.
            if end == 0:
                del self._buf[:after]
                continue
            if end > self.max_message_bytes:
                self.stats.oversized += 1
                del self._buf[:after]
                continue
            block = bytes(self._buf[:end])
            del self._buf[:after]
            message = self._parse(block)
            if message is not None:
                return message

    def _need_data(self) -> Sentinel:
        return CLOSED if self._eof else NEED_DATA

    # -- batches: every whole message in the buffer at once ----------------

    def _take_batch(self) -> bool:
        """Frame every whole message in the buffer with one split into lines,
        when that gives exactly what framing them one by one gives: only CRLF
        line endings (Asterisk's stream); anything else goes one by one. Taking
        at most ``max_message_bytes`` leaves no message too large. Lines stay
        bytes: a cached line is never decoded, and a message with a line that
        is not UTF-8 is parsed again as a whole, as one by one."""
        buf = self._buf
        last = buf.rfind(b"\r\n\r\n", 0, self.max_message_bytes + 4)
        if last <= 0:
            return False
        region = bytes(buf[: last + 4])
        lines = region.split(b"\r\n")
        n = len(lines)
        if region.count(b"\n") != n - 1:
            return False  # a bare LF
        # The region ends in a run of CRLFs; framing pairs them from the left,
        # so an odd run leaves a CRLF that belongs to the next message.
        empty = 2
        while empty < n and not lines[-empty - 1]:
            empty += 1
        if (empty if empty < n else empty - 1) % 2:
            return False
        del buf[: last + 4]
        lines.pop()  # after the final CRLF: now every message ends with an empty line
        self._lines = lines
        self._pos = 0
        return True

    def _next_ready(self) -> Parsed | None:
        """The batch's next message; None once they are all returned. Extra
        empty lines make empty messages, skipped like the blank lines they are."""
        lines = self._lines
        pos = self._pos
        message: Parsed | None
        while pos < len(lines):
            end = lines.index(b"", pos)
            self._pos = end + 1
            if end > pos:
                message = self._parse_lines(lines[pos:end])
                if message is not None:
                    return message
            pos = end + 1
        self._lines = []
        self._pos = 0
        return None

    def _parse_lines(self, lines: list[bytes]) -> Parsed | None:
        if not self._client:
            try:
                text = [line.decode("utf-8") for line in lines]
            except UnicodeDecodeError:
                return self._parse(b"\r\n".join(lines))
            return self._parse_action(text)
        # Most lines are in the cache: look them all up at once.
        found = tuple(map(self._cached, lines))
        if all(found):
            return self._classify(cast(Headers, found))
        return self._parse_missed(lines, found)

    def _parse_missed(
        self, lines: list[bytes], found: tuple[tuple[str, str] | None, ...]
    ) -> Parsed | None:
        """Client role: the message of ``lines`` when the cache lacked some
        (``found[i]`` is None): those are parsed and cached; a line without a
        name and colon is dropped (and counted unless blank)."""
        cache = self._header_cache
        headers: list[tuple[str, str]] = []
        malformed = 0
        for raw, header in zip(lines, found, strict=True):
            if header is None:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    return self._parse(b"\r\n".join(lines))  # counted, decoded with U+FFFD
                name, sep, value = line.partition(":")
                if not sep or not name:
                    if line.strip():
                        malformed += 1
                    continue
                # Asterisk writes "Name: value"; further blanks belong to the
                # value ("Output:    Members:" keeps its indentation).
                header = (name, value[1:] if value[:1] == " " else value)
                if len(raw) <= _CACHED_LINE_MAX:
                    if len(cache) >= _HEADER_CACHE_SIZE:
                        cache.clear()
                    cache[raw] = header
            headers.append(header)
        self.stats.malformed_lines += malformed
        return self._classify(tuple(headers))

    # -- one message at a time ----------------------------------------------

    def _parse(self, block: bytes) -> Parsed | None:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            self.stats.invalid_utf8 += 1
            text = block.decode("utf-8", "replace")
        # Asterisk ends every line in CRLF: then a plain split does what the regex does.
        lines = text.split("\r\n")
        if len(lines) != text.count("\n") + 1:
            lines = _LINE_END.split(text)
        if self.role is Role.SERVER:
            return self._parse_action(lines)
        headers: list[tuple[str, str]] = []
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep or not name:
                if line.strip():
                    self.stats.malformed_lines += 1
                continue
            headers.append((name, value[1:] if value[:1] == " " else value))
        return self._classify(tuple(headers))

    def _classify(self, hdrs: Headers) -> AmiEvent | AmiResponse | None:
        if not hdrs:
            return None
        self.stats.messages += 1
        name = hdrs[0][0]
        if name == "Event":
            return AmiEvent(hdrs)
        first = name.lower()
        if first == "event":
            return AmiEvent(hdrs)
        if first == "response":
            return AmiResponse(hdrs)
        probe = AmiMessage(hdrs)
        if "Event" in probe:
            return AmiEvent(hdrs)
        if "Response" in probe:
            return AmiResponse(hdrs)
        self.stats.unclassified += 1
        return None

    def _parse_action(self, lines: list[str]) -> AmiAction | None:
        headers: list[tuple[str, str]] = []
        append = headers.append
        for line in lines:
            name, sep, value = line.partition(":")
            if sep and name:
                # Asterisk skips the blanks after the colon ("Action:Ping" is fine).
                append((name.strip(), value.lstrip(" \t")))
            elif line.strip():
                self.stats.malformed_lines += 1
        if not headers:
            return None
        self.stats.messages += 1
        return AmiAction(tuple(headers))

    # -- sending ---------------------------------------------------------

    def send(self, message: AmiMessage | Banner) -> bytes:
        """Bytes for ``message``. Raises ``LocalProtocolError`` if any header
        name or value holds CR or LF (it would inject a second message)."""
        if isinstance(message, Banner):
            if "\r" in message.text or "\n" in message.text:
                raise LocalProtocolError("banner holds CR or LF")
            return message.text.encode("utf-8") + b"\r\n"
        return encode(message)


def _message_end(buf: bytearray) -> tuple[int, int] | None:
    """``(start, end)`` of the first match of ``rb"\r?\n\r?\n"`` in ``buf``, or None.

    Every match holds LF (CR) LF; the leftmost match is at the first such LF,
    one byte earlier if a CR precedes it. CRLF CRLF is searched first, and the
    LF-only forms only before it, so the buffer is scanned about once.
    """
    crlf = buf.find(b"\n\r\n")
    lf = buf.find(b"\n\n", 0, crlf + 1 if crlf >= 0 else len(buf))
    if lf >= 0:
        at, end = lf, lf + 2
    elif crlf >= 0:
        at, end = crlf, crlf + 3
    else:
        return None
    if at and buf[at - 1] == 0x0D:  # CR
        at -= 1
    return at, end


def encode(message: AmiMessage) -> bytes:
    parts: list[str] = []
    for name, value in message.headers:
        if not name or ":" in name or _has_newline(name):
            raise LocalProtocolError(f"AMI header name {name!r} is not allowed")
        if _has_newline(value):
            raise LocalProtocolError(f"AMI header {name!r} holds CR or LF; refusing to send it")
        parts.append(f"{name}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def _has_newline(value: str) -> bool:
    return "\r" in value or "\n" in value
