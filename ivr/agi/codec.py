"""A sans-I/O FastAGI codec for the server side, in the shape of h11.

``AgiSession`` never touches a socket::

    session = AgiSession()
    session.receive_data(chunk)       # b"" means EOF
    event = session.next_event()      # AgiRequest first, then AgiReply / HangupNotice,
                                      # NEED_DATA, or CLOSED after EOF
    wire = session.send_command("STREAM FILE", "welcome", "")   # b'STREAM FILE welcome ""\\n'

What Asterisk 22 sends (tests/fixtures/ami/11-fastagi.txt): an ``agi_*: value``
block ended by an empty line, then one reply per command (``200 result=1
(data)``, ``200 result=-1 endpos=0``, ``510 ...``, ``511 ...``, ``520 ...``, or a
``520-`` usage block closed by ``520 End of proper usage.``). A ``HANGUP`` line
may arrive at any time once the caller is gone; it is not the reply to anything
(the reply to the command follows it). Lines end in a bare LF; CR LF is accepted.

Contract:
- The request comes first; ``send_command`` before it, or while a command is in
  flight, raises ``LocalProtocolError`` (AGI is strictly one command, one reply).
- ``100`` replies are provisional: the command stays in flight.
- ``RemoteProtocolError`` for a line that is not FastAGI, an ``agi_*`` block over
  ``max_env_bytes``, a reply over ``max_reply_bytes``, or a reply with no
  command in flight. Errors are sticky: the session is unusable afterwards.
- ``send_command`` quotes arguments the way Asterisk's ``parse_args`` reads them
  and refuses CR, LF and NUL (a newline would smuggle a second command) and
  lines longer than Asterisk's 2047-byte command buffer (it would cut the line
  and run the rest as another command).
- EOF: ``CLOSED`` (a partial line left at EOF is dropped). EOF inside the
  ``agi_*`` block is a ``RemoteProtocolError``; EOF before any byte is ``CLOSED``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl

from ivr.agi.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CLOSED",
    "NEED_DATA",
    "AgiReply",
    "AgiRequest",
    "AgiSession",
    "AgiState",
    "Event",
    "HangupNotice",
    "Sentinel",
    "encode_command",
    "parse_reply",
    "split_command",
]

DEFAULT_MAX_ENV_BYTES = 64 * 1024
DEFAULT_MAX_REPLY_BYTES = 1024 * 1024
# res_agi.c reads a command with fgets into AGI_BUF_LEN (2048) bytes: at most
# 2047 bytes including the LF reach it as one line.
MAX_COMMAND_BYTES = 2047
# parse_args keeps at most MAX_ARGS - 1 (127) words.
MAX_COMMAND_WORDS = 127


class Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    CLOSED = "CLOSED"

    def __repr__(self) -> str:
        return self.value


NEED_DATA = Sentinel.NEED_DATA
CLOSED = Sentinel.CLOSED


class AgiState(enum.Enum):
    ENV = "ENV"  # reading the agi_* block
    IDLE = "IDLE"  # request received, no command in flight
    AWAITING_REPLY = "AWAITING_REPLY"
    CLOSED = "CLOSED"  # the peer closed
    ERROR = "ERROR"  # the peer broke the protocol


@dataclass(frozen=True)
class AgiRequest:
    """The ``agi_*`` block. ``env`` keys drop the ``agi_`` prefix."""

    script: str  # path part of agi_network_script: "ivr" for "ivr?lang=en"
    query: Mapping[str, str] = field(hash=False)  # {"lang": "en"}
    env: Mapping[str, str] = field(hash=False)  # channel, uniqueid, callerid, ...
    args: tuple[str, ...] = ()  # agi_arg_1, agi_arg_2, ...

    @property
    def channel(self) -> str:
        return self.env.get("channel", "")

    @property
    def uniqueid(self) -> str:
        return self.env.get("uniqueid", "")

    @property
    def callerid(self) -> str:
        return self.env.get("callerid", "")

    @property
    def calleridname(self) -> str:
        return self.env.get("calleridname", "")

    @property
    def context(self) -> str:
        return self.env.get("context", "")

    @property
    def extension(self) -> str:
        return self.env.get("extension", "")

    @property
    def language(self) -> str:
        return self.env.get("language", "")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AgiRequest:
        network_script = env.get("network_script", "")
        script, _, query = network_script.partition("?")
        arg_keys = sorted(
            (int(key[4:]), key) for key in env if key.startswith("arg_") and key[4:].isdigit()
        )
        return cls(
            script=script,
            query=MappingProxyType(dict(parse_qsl(query, keep_blank_values=True))),
            env=MappingProxyType(dict(env)),
            args=tuple(env[key] for _, key in arg_keys),
        )


@dataclass(frozen=True)
class AgiReply:
    """One reply. ``text`` is the raw reply (lines joined by LF, no final LF)."""

    code: int
    result: str | None  # "1" in "200 result=1 (x)"; None when there is no result=
    data: str | None  # "x": the "(...)" part
    endpos: int | None  # STREAM FILE / RECORD FILE playback offset
    text: str
    hungup: bool  # the reply itself says the channel is gone: 511 or "(hangup)"

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        """``result`` as an int, or None when it is absent or not a number."""
        if self.result is None:
            return None
        try:
            return int(self.result)
        except ValueError:
            return None


@dataclass(frozen=True)
class HangupNotice:
    """Asterisk's ``HANGUP`` line: the caller is gone. Not a reply to anything."""


Event = AgiRequest | AgiReply | HangupNotice | Sentinel

_REPLY_LINE = re.compile(r"(\d{3})(?:([ -])(.*))?")
_RESULT = re.compile(r"result=(\S*)(?: \((.*)\))?(?: endpos=(-?\d+))?")
_ENV_LINE = re.compile(r"agi_([A-Za-z0-9_]+):(.*)")
_COMMAND_WORD = re.compile(r"[A-Za-z0-9_]+")
_NEEDS_QUOTES = re.compile(r"[ \t]")


def parse_reply(text: str) -> AgiReply:
    """Parse one reply (a single line, or a ``520-`` block joined by LF)."""
    match = _REPLY_LINE.match(text)
    if match is None:
        raise RemoteProtocolError(f"not an AGI reply: {_clip(text)!r}")
    code = int(match.group(1))
    rest = match.group(3) or ""
    result = data = None
    endpos = None
    if match.group(2) == " ":
        found = _RESULT.match(rest)
        if found is not None:
            result, data = found.group(1), found.group(2)
            endpos = int(found.group(3)) if found.group(3) is not None else None
    return AgiReply(
        code=code,
        result=result,
        data=data,
        endpos=endpos,
        text=text,
        hungup=code == 511 or data == "hangup",
    )


def quote_arg(arg: str) -> str:
    """One argument as Asterisk's ``parse_args`` reads it back."""
    if any(c in arg for c in "\r\n\0"):
        raise LocalProtocolError(f"AGI argument {_clip(arg)!r} holds CR, LF or NUL")
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
    if not escaped or _NEEDS_QUOTES.search(escaped):
        return f'"{escaped}"'
    return escaped


def encode_command(command: str, *args: str) -> bytes:
    """The wire line for ``command`` with ``args`` (quoted where needed), LF-terminated."""
    words = command.split(" ")
    if not words or not all(_COMMAND_WORD.fullmatch(w) for w in words):
        raise LocalProtocolError(f"not an AGI command name: {_clip(command)!r}")
    if len(words) + len(args) > MAX_COMMAND_WORDS:
        raise LocalProtocolError(
            f"{len(words) + len(args)} words: Asterisk keeps at most {MAX_COMMAND_WORDS}"
        )
    for arg in args:
        if not isinstance(arg, str):
            raise LocalProtocolError(f"AGI argument {arg!r} is not a str")
    line = " ".join([*words, *(quote_arg(a) for a in args)]) + "\n"
    wire = line.encode("utf-8")
    if len(wire) > MAX_COMMAND_BYTES:
        raise LocalProtocolError(
            f"AGI command line is {len(wire)} bytes; Asterisk reads at most "
            f"{MAX_COMMAND_BYTES} and would run the rest as another command"
        )
    return wire


def split_command(line: str) -> list[str]:
    """Split a command line exactly as Asterisk's ``parse_args`` (res_agi.c) does:
    blanks separate words, double quotes group, a backslash makes the next
    character literal, a quote met after a blank starts a word even if empty."""
    words: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and current is None:
                current = []
            escaped = False
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                words.append("".join(current))
                current = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if current is None:
            if len(words) >= MAX_COMMAND_WORDS:
                escaped = False
                continue  # Asterisk warns "Too many arguments, truncating"
            current = []
        current.append(char)
        escaped = False
    if current is not None:
        words.append("".join(current))
    return words


class AgiSession:
    """The server side of one FastAGI connection. See the module docstring."""

    def __init__(
        self,
        *,
        max_env_bytes: int = DEFAULT_MAX_ENV_BYTES,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        self.max_env_bytes = max_env_bytes
        self.max_reply_bytes = max_reply_bytes
        self.request: AgiRequest | None = None
        self._state = AgiState.ENV
        self._buf = bytearray()
        self._scan = 0  # where to resume looking for LF
        self._eof = False
        self._received_any = False
        self._env: dict[str, str] = {}
        self._env_bytes = 0
        self._block: list[str] | None = None  # lines of a "520-" block so far
        self._block_code = ""
        self._block_bytes = 0
        self._error: RemoteProtocolError | None = None

    @property
    def state(self) -> AgiState:
        return self._state

    # -- receiving -------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from Asterisk. ``b""`` means EOF."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("data received after EOF")
        self._received_any = True
        self._buf += data

    def next_event(self) -> Event:
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except RemoteProtocolError as exc:
            self._error = exc
            self._state = AgiState.ERROR
            raise

    def _next_event(self) -> Event:
        while True:
            limit = self._line_limit()
            line = self._next_line(limit)
            if line is None:
                if not self._eof:
                    return NEED_DATA
                if self._state is AgiState.ENV and self._received_any:
                    raise RemoteProtocolError("connection closed inside the agi_* block")
                self._state = AgiState.CLOSED
                return CLOSED
            if self._state is AgiState.ENV:
                request = self._env_line(line)
                if request is not None:
                    return request
                continue
            event = self._reply_line(line)
            if event is not None:
                return event

    def _line_limit(self) -> int:
        if self._state is AgiState.ENV:
            return self.max_env_bytes - self._env_bytes
        if self._block is not None:
            return self.max_reply_bytes - self._block_bytes
        return self.max_reply_bytes

    def _next_line(self, limit: int) -> str | None:
        end = self._buf.find(b"\n", self._scan)
        if end < 0:
            self._scan = len(self._buf)
            if len(self._buf) > limit:
                what = "agi_* block" if self._state is AgiState.ENV else "reply"
                raise RemoteProtocolError(f"{what} longer than the limit")
            return None
        if end + 1 > limit:
            what = "agi_* block" if self._state is AgiState.ENV else "reply"
            raise RemoteProtocolError(f"{what} longer than the limit")
        raw = bytes(self._buf[:end])
        del self._buf[: end + 1]
        self._scan = 0
        if self._state is AgiState.ENV:
            self._env_bytes += end + 1
        elif self._block is not None:
            self._block_bytes += end + 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return raw.decode("utf-8", "replace")

    def _env_line(self, line: str) -> AgiRequest | None:
        if line == "":
            if not self._env:
                raise RemoteProtocolError("empty agi_* block")
            self.request = AgiRequest.from_env(self._env)
            self._state = AgiState.IDLE
            return self.request
        match = _ENV_LINE.fullmatch(line)
        if match is None:
            raise RemoteProtocolError(f"not an agi_* line: {_clip(line)!r}")
        value = match.group(2)
        self._env[match.group(1)] = value[1:] if value.startswith(" ") else value
        return None

    def _reply_line(self, line: str) -> AgiReply | HangupNotice | None:
        if self._block is not None:
            self._block.append(line)
            if line.startswith(self._block_code + " "):
                text = "\n".join(self._block)
                self._block = None
                return self._final(parse_reply(text))
            return None
        if line == "HANGUP":
            return HangupNotice()
        match = _REPLY_LINE.fullmatch(line)
        if match is None:
            raise RemoteProtocolError(f"not an AGI reply: {_clip(line)!r}")
        if self._state is not AgiState.AWAITING_REPLY:
            raise RemoteProtocolError(f"reply with no command in flight: {_clip(line)!r}")
        if match.group(2) == "-":
            self._block = [line]
            self._block_code = match.group(1)
            self._block_bytes = len(line.encode("utf-8")) + 1
            return None
        reply = parse_reply(line)
        if reply.code == 100:
            return reply  # provisional ("100 result=0 Trying..."): still in flight
        return self._final(reply)

    def _final(self, reply: AgiReply) -> AgiReply:
        self._state = AgiState.IDLE
        return reply

    # -- sending ---------------------------------------------------------

    def send_command(self, command: str, *args: str) -> bytes:
        """Bytes for one command line; the session then awaits its reply."""
        if self._state is AgiState.ENV:
            raise LocalProtocolError("no AGI request yet: wait for the agi_* block")
        if self._state is AgiState.AWAITING_REPLY:
            raise LocalProtocolError("a command is already in flight")
        if self._state in (AgiState.CLOSED, AgiState.ERROR):
            raise LocalProtocolError(f"the session is {self._state.value}")
        wire = encode_command(command, *args)
        self._state = AgiState.AWAITING_REPLY
        return wire


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
