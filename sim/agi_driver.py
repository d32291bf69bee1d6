"""Asterisk's side of FastAGI, for tests and the simulator.

``run_fastagi(url, env)`` connects to a FastAGI server the way Asterisk 22 does
for ``AGI(agi://host:port/script?query)``: it sends the ``agi_*`` block (the
keys, their order and format as recorded in tests/fixtures/ami/11-fastagi.txt),
then answers each command line with the reply Asterisk would give, until the
server closes the connection. The reply texts are the recorded ones.

What it models (from the recording and res_agi.c):
- Command lines are read like Asterisk reads them: up to LF, at most 2047 bytes
  (a longer line is cut and the rest runs as the next command), only the LF is
  stripped (a CR stays in the last argument), words split by ``parse_args``.
  Command names match case-insensitively, by leading words.
- Unknown command: ``510 Invalid or unknown command``; wrong argument count:
  ``520 Invalid command syntax.  Proper usage not available.`` (this build has
  no XML docs, like the lab's).
- The caller's keys come from ``digits``: WAIT FOR DIGIT takes one
  (``result=<ascii>``, or ``result=0`` when none is left: the timeout); STREAM
  FILE and SAY DIGITS/NUMBER/ALPHA take one only if it is an escape digit; GET
  DATA takes keys up to ``#`` (dropped) or its max, and adds ``(timeout)`` when
  the keys run out first. Keys nobody takes stay queued.
- ``sounds``: the sound files that exist (None: all of them). A missing one
  gives ``200 result=-1 endpos=0`` (STREAM FILE) / ``200 result=-1`` (GET DATA),
  as recorded.
- Variables start from the channel (CALLERID(num), CALLERID(name), CHANNEL,
  EXTEN, CONTEXT, UNIQUEID, ...) plus ``variables``; SET VARIABLE and ``EXEC Set``
  change them; GET FULL VARIABLE expands ``${NAME}``.
- Hangup: ``hangup_after=N`` hangs the caller up during the Nth command. A
  command that waits on the caller (WAIT FOR DIGIT, STREAM FILE, GET DATA,
  SAY ..., EXEC, ANSWER) then answers ``200 result=-1`` (STREAM FILE adds
  ``endpos=0``); an instant one answers as usual. The HANGUP command itself
  answers ``200 result=1``. Either way the channel is then dead, as in session
  2 of the recording: Asterisk writes a ``HANGUP`` line, keeps the connection
  open, runs the commands allowed on a dead channel (GET/SET VARIABLE, GET FULL
  VARIABLE, VERBOSE, EXEC, NOOP, DATABASE ...) and answers ``511 Command Not
  Permitted on a dead channel or intercept routine`` to the others.
  ``sighup=False`` is ``AGISIGHUP=no`` (no HANGUP line); ``exit_on_hangup=True``
  is ``AGIEXITONHANGUP=yes``: Asterisk writes HANGUP twice (if sighup) and closes.
- RECORD FILE (voicemail): an escape key queued in ``digits`` ends it with
  ``200 result=<ascii> (dtmf) endpos=40000`` (a 5 s message); none ends it at
  its time limit, ``(timeout)``; a hangup answers ``200 result=-1 (hangup)
  endpos=0`` (res_agi.c handle_recordfile). No file is written.
- ``respond(line)`` may return a reply text (LF-joined lines, no final LF) to
  override the default for that command line, or None to keep the default.

The driver waits for the server to close (as Asterisk does); ``idle_timeout``
closes after that many seconds with no command (for servers that never answer).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from ivr.agi.codec import MAX_COMMAND_BYTES, split_command

__all__ = [
    "DEFAULT_ENV",
    "ENV_ORDER",
    "REPLY_DEAD",
    "REPLY_UNKNOWN",
    "REPLY_USAGE",
    "AgiExchange",
    "AgiTranscript",
    "env_block",
    "run_fastagi",
]

DEFAULT_PORT = 4573

REPLY_UNKNOWN = "510 Invalid or unknown command"
REPLY_DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
REPLY_USAGE = "520 Invalid command syntax.  Proper usage not available."

# setup_env() order, after agi_network / agi_network_script / agi_request.
ENV_ORDER = (
    "channel",
    "language",
    "type",
    "uniqueid",
    "version",
    "callerid",
    "calleridname",
    "callingpres",
    "callingani2",
    "callington",
    "callingtns",
    "dnid",
    "rdnis",
    "context",
    "extension",
    "priority",
    "enhanced",
    "accountcode",
    "threadid",
)

DEFAULT_ENV: Mapping[str, str] = MappingProxyType(
    {
        "channel": "Local/102@inbound-00000001;2",
        "language": "en",
        "uniqueid": "1796007000.1",
        "version": "22.10.1",
        "callerid": "unknown",
        "calleridname": "unknown",
        "callingpres": "0",
        "callingani2": "0",
        "callington": "0",
        "callingtns": "0",
        "dnid": "unknown",
        "rdnis": "unknown",
        "context": "default",
        "extension": "s",
        "priority": "1",
        "enhanced": "0.0",
        "accountcode": "",
        "threadid": "140156419802816",
    }
)

KNOWN_APPS = frozenset(
    app.lower()
    for app in (
        "Answer Background BackGround Dial Echo ExecIf GosubIf Gosub Goto GotoIf Hangup Log "
        "MixMonitor MusicOnHold NoOp Playback Playtones Progress Queue Read Record Ringing "
        "SayDigits SayNumber SendDTMF Set StartMusicOnHold StopMixMonitor StopMusicOnHold "
        "StopPlaytones System Transfer Verbose VoiceMail Wait WaitExten"
    ).split()
)
# Applications that still work on a dead channel (they touch no media).
DEAD_OK_APPS = frozenset({"set", "noop", "log", "verbose", "execif", "system"})

FULL_PLAY_ENDPOS = 16000  # 2 s at 8 kHz
INTERRUPTED_ENDPOS = 8000
RECORDED_ENDPOS = 40000  # a 5 s message, then the finish key


@dataclass(frozen=True)
class AgiExchange:
    command: str  # the line as Asterisk read it (no LF)
    reply: str  # what it answered (LF-joined lines, no final LF)
    hangup_notice: bool = False  # a HANGUP line went out right after this reply


@dataclass
class AgiTranscript:
    url: str
    env_block: bytes = b""
    exchanges: list[AgiExchange] = field(default_factory=list)
    sent: bytearray = field(default_factory=bytearray)  # every byte the driver wrote
    received: bytearray = field(default_factory=bytearray)  # every byte the server wrote
    hung_up: bool = False
    closed_by: str = ""  # "server", "asterisk" (exit_on_hangup) or "idle_timeout"

    @property
    def commands(self) -> list[str]:
        return [e.command for e in self.exchanges]

    @property
    def replies(self) -> list[str]:
        return [e.reply for e in self.exchanges]


def env_block(url: str, env: Mapping[str, str] = DEFAULT_ENV, args: Iterable[str] = ()) -> bytes:
    """The ``agi_*`` block Asterisk 22 sends for ``AGI(url, args...)``."""
    script = _network_script(url)
    given = {_strip(k): v for k, v in env.items()}
    values = {**DEFAULT_ENV, **given}
    if "type" not in given:
        values["type"] = values["channel"].partition("/")[0]
    lines = ["agi_network: yes"]
    if script:
        lines.append(f"agi_network_script: {script}")
    lines.append(f"agi_request: {url}")
    lines += [f"agi_{key}: {values[key]}" for key in ENV_ORDER]
    lines += [
        f"agi_{key}: {value}"
        for key, value in values.items()
        if key not in ENV_ORDER and key not in ("network", "network_script", "request")
    ]
    lines += [f"agi_arg_{n}: {arg}" for n, arg in enumerate(args, start=1)]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def _strip(key: str) -> str:
    return key[4:] if key.startswith("agi_") else key


def _network_script(url: str) -> str:
    if not url.startswith("agi://"):
        raise ValueError(f"not an agi:// URL: {url!r}")
    _, _, script = url[len("agi://") :].partition("/")
    return script


async def run_fastagi(
    url: str,
    env: Mapping[str, str] = DEFAULT_ENV,
    respond: Callable[[str], str | None] | None = None,
    *,
    hangup_after: int | None = None,
    args: Iterable[str] = (),
    digits: str = "",
    variables: Mapping[str, str] | None = None,
    sounds: Container[str] | None = None,
    sighup: bool = True,
    exit_on_hangup: bool = False,
    idle_timeout: float | None = None,
) -> AgiTranscript:
    """Play one FastAGI call against the server at ``url``; see the module docstring."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT
    block = env_block(url, env, args)
    channel = _Channel(
        env={**DEFAULT_ENV, **{_strip(k): v for k, v in env.items()}},
        digits=digits,
        variables=variables or {},
        sounds=sounds,
    )
    transcript = AgiTranscript(url=url, env_block=block)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(block)
        transcript.sent += block
        await writer.drain()
        lines = _LineReader(reader, transcript)
        count = 0
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    raw = await lines.next_line()
            except TimeoutError:
                transcript.closed_by = "idle_timeout"
                break
            if raw is None:
                transcript.closed_by = "server"
                break
            count += 1
            line = raw.decode("utf-8", "replace")
            was_dead = channel.dead
            reply = respond(line) if respond is not None else None
            if reply is None:
                reply = channel.reply(line, hangup_now=count == hangup_after)
            elif count == hangup_after:
                channel.dead = True
            notice = channel.dead and not was_dead and sighup
            out = reply + "\n" + ("HANGUP\n" if notice else "")
            closing = channel.dead and not was_dead and exit_on_hangup
            if closing and sighup:
                out += "HANGUP\n"  # run_agi's "notify process" on the way out
            writer.write(out.encode("utf-8"))
            transcript.sent += out.encode("utf-8")
            transcript.exchanges.append(AgiExchange(line, reply, notice))
            await writer.drain()
            if closing:
                transcript.closed_by = "asterisk"
                break
    except ConnectionError:
        transcript.closed_by = "server"
    finally:
        transcript.hung_up = channel.dead
        writer.close()
        try:
            async with asyncio.timeout(5):
                await writer.wait_closed()
        except (TimeoutError, ConnectionError):
            writer.transport.abort()
    return transcript


class _LineReader:
    """Reads command lines the way res_agi.c's fgets loop does."""

    def __init__(self, reader: asyncio.StreamReader, transcript: AgiTranscript) -> None:
        self._reader = reader
        self._transcript = transcript
        self._buf = bytearray()
        self._eof = False

    async def next_line(self) -> bytes | None:
        while True:
            end = self._buf.find(b"\n", 0, MAX_COMMAND_BYTES)
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                return line
            if len(self._buf) >= MAX_COMMAND_BYTES:
                line = bytes(self._buf[:MAX_COMMAND_BYTES])
                del self._buf[:MAX_COMMAND_BYTES]
                return line
            if self._eof:
                # fgets hands Asterisk a partial last line at EOF and it runs it.
                line = bytes(self._buf)
                self._buf.clear()
                return line or None
            chunk = await self._reader.read(65536)
            if not chunk:
                self._eof = True
            self._transcript.received += chunk
            self._buf += chunk


_VAR_REF = re.compile(r"\$\{([^{}]*)\}")

_MEDIA = {"answer", "stream file", "control stream file", "get data", "get option"}
_MEDIA |= {"wait for digit", "say digits", "say number", "say alpha", "say phonetic"}
_MEDIA |= {"say date", "say time", "say datetime", "record file", "exec"}
_MEDIA |= {"receive char", "receive text", "speech recognize"}

# (words, allowed on a dead channel), from res_agi.c's command table.
_COMMANDS: tuple[tuple[str, bool], ...] = (
    ("answer", False),
    ("asyncagi break", True),
    ("channel status", False),
    ("database del", True),
    ("database deltree", True),
    ("database get", True),
    ("database put", True),
    ("exec", True),
    ("get data", False),
    ("get full variable", True),
    ("get option", False),
    ("get variable", True),
    ("hangup", False),
    ("noop", True),
    ("receive char", False),
    ("receive text", False),
    ("record file", False),
    ("say alpha", False),
    ("say digits", False),
    ("say number", False),
    ("say phonetic", False),
    ("say date", False),
    ("say time", False),
    ("say datetime", False),
    ("send image", False),
    ("send text", False),
    ("set autohangup", False),
    ("set callerid", False),
    ("set context", False),
    ("set extension", False),
    ("set music", False),
    ("set priority", False),
    ("set variable", True),
    ("stream file", False),
    ("control stream file", False),
    ("tdd mode", False),
    ("verbose", True),
    ("wait for digit", False),
    ("speech create", False),
    ("speech set", False),
    ("speech destroy", True),
    ("speech load grammar", False),
    ("speech unload grammar", True),
    ("speech activate grammar", False),
    ("speech deactivate grammar", False),
    ("speech recognize", False),
    ("gosub", False),
)


def _known(value: str) -> str:
    return "" if value == "unknown" else value


def _find(argv: list[str]) -> tuple[str, bool] | None:
    lowered = [a.lower() for a in argv]
    for name, dead_ok in _COMMANDS:
        words = name.split()
        if lowered[: len(words)] == words:
            return name, dead_ok
    return None


class _Channel:
    """The channel behind the AGI: state that replies read and change."""

    def __init__(
        self,
        env: Mapping[str, str],
        digits: str,
        variables: Mapping[str, str],
        sounds: Container[str] | None,
    ) -> None:
        self.env = env
        self.digits = deque(digits)
        self.sounds = sounds
        self.answered = False
        self.dead = False
        self.database: dict[tuple[str, str], str] = {}
        self.variables: dict[str, str] = {
            # Asterisk writes "unknown" in agi_callerid for an empty caller ID.
            "CALLERID(num)": _known(env.get("callerid", "")),
            "CALLERID(name)": _known(env.get("calleridname", "")),
            "CHANNEL": env.get("channel", ""),
            "CHANNEL(name)": env.get("channel", ""),
            "CHANNEL(language)": env.get("language", ""),
            "UNIQUEID": env.get("uniqueid", ""),
            "EXTEN": env.get("extension", ""),
            "CONTEXT": env.get("context", ""),
            "PRIORITY": env.get("priority", ""),
            **variables,
        }

    def reply(self, line: str, *, hangup_now: bool) -> str:
        argv = split_command(line)
        found = _find(argv)
        if found is None:
            return REPLY_UNKNOWN
        name, dead_ok = found
        if self.dead and not dead_ok:
            return REPLY_DEAD
        handler = getattr(self, "_" + name.replace(" ", "_"), None)
        reply = handler(argv) if handler is not None else "200 result=0"
        if hangup_now and not self.dead:
            self.dead = True
            # A command that waits on the caller is cut short; usage errors and
            # EXEC of a missing application never got that far.
            if name in _MEDIA and reply.startswith("200 ") and reply != "200 result=-2":
                if name == "record file":
                    return "200 result=-1 (hangup) endpos=0"
                return "200 result=-1 endpos=0" if "stream file" in name else "200 result=-1"
        self.dead = self.dead or hangup_now
        return reply

    # -- one method per simulated command; argv includes the command words --

    def _answer(self, argv: list[str]) -> str:
        self.answered = True
        return "200 result=0"

    def _channel_status(self, argv: list[str]) -> str:
        if len(argv) not in (2, 3):
            return REPLY_USAGE
        return "200 result=6" if self.answered else "200 result=4"

    def _hangup(self, argv: list[str]) -> str:
        if len(argv) not in (1, 2):
            return REPLY_USAGE
        self.dead = True
        return "200 result=1"

    def _noop(self, argv: list[str]) -> str:
        return "200 result=0"

    def _verbose(self, argv: list[str]) -> str:
        if len(argv) < 2:
            return REPLY_USAGE
        return "200 result=1"

    def _get_variable(self, argv: list[str]) -> str:
        if len(argv) != 3:
            return REPLY_USAGE
        value = self.variables.get(argv[2])
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    def _get_full_variable(self, argv: list[str]) -> str:
        if len(argv) not in (4, 5):
            return REPLY_USAGE
        expanded = _VAR_REF.sub(lambda m: self.variables.get(m.group(1), ""), argv[3])
        return f"200 result=1 ({expanded})"

    def _set_variable(self, argv: list[str]) -> str:
        if len(argv) != 4:
            return REPLY_USAGE
        self.variables[argv[2]] = argv[3]
        return "200 result=1"

    def _database_put(self, argv: list[str]) -> str:
        if len(argv) != 5:
            return REPLY_USAGE
        self.database[(argv[2], argv[3])] = argv[4]
        return "200 result=1"

    def _database_get(self, argv: list[str]) -> str:
        if len(argv) != 4:
            return REPLY_USAGE
        value = self.database.get((argv[2], argv[3]))
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    def _database_del(self, argv: list[str]) -> str:
        if len(argv) != 4:
            return REPLY_USAGE
        return "200 result=1" if self.database.pop((argv[2], argv[3]), None) else "200 result=0"

    def _exists(self, sound: str) -> bool:
        return self.sounds is None or sound in self.sounds

    def _escape(self, escape_digits: str) -> str | None:
        if self.digits and self.digits[0] in escape_digits:
            return self.digits.popleft()
        return None

    def _stream_file(self, argv: list[str]) -> str:
        if len(argv) not in (4, 5):
            return REPLY_USAGE
        if not self._exists(argv[2]):
            return "200 result=-1 endpos=0"
        key = self._escape(argv[3])
        if key is not None:
            return f"200 result={ord(key)} endpos={INTERRUPTED_ENDPOS}"
        return f"200 result=0 endpos={FULL_PLAY_ENDPOS}"

    def _get_data(self, argv: list[str]) -> str:
        if len(argv) not in (3, 4, 5):
            return REPLY_USAGE
        if not self._exists(argv[2]):
            return "200 result=-1"
        try:
            max_digits = int(argv[4]) if len(argv) == 5 else 1024
        except ValueError:
            max_digits = 1024
        entered = ""
        while len(entered) < max_digits:
            if not self.digits:
                return f"200 result={entered} (timeout)"
            key = self.digits.popleft()
            if key == "#":
                break
            entered += key
        return f"200 result={entered}"

    def _wait_for_digit(self, argv: list[str]) -> str:
        if len(argv) != 4:
            return REPLY_USAGE
        if not re.fullmatch(r"-?\d+", argv[3]):
            return REPLY_USAGE
        return f"200 result={ord(self.digits.popleft())}" if self.digits else "200 result=0"

    def _record_file(self, argv: list[str]) -> str:
        # RECORD FILE <file> <format> <escape digits> <timeout ms> [offset] [BEEP] [s=N]
        # (res_agi.c handle_recordfile): an escape key ends it "(dtmf)", the
        # time limit "(timeout)"; endpos counts 8 kHz samples. The caller
        # "speaks" RECORDED_ENDPOS samples before a key.
        if len(argv) < 6 or not re.fullmatch(r"-?\d+", argv[5]):
            return REPLY_USAGE
        key = self._escape(argv[4])
        if key is not None:
            return f"200 result={ord(key)} (dtmf) endpos={RECORDED_ENDPOS}"
        ms = int(argv[5])
        return f"200 result=0 (timeout) endpos={max(ms, 0) * 8}"

    def _say(self, argv: list[str], counts: tuple[int, ...]) -> str:
        if len(argv) not in counts:
            return REPLY_USAGE
        key = self._escape(argv[3])
        return f"200 result={ord(key)}" if key is not None else "200 result=0"

    def _say_digits(self, argv: list[str]) -> str:
        return self._say(argv, (4,))

    def _say_number(self, argv: list[str]) -> str:
        return self._say(argv, (4, 5))

    def _say_alpha(self, argv: list[str]) -> str:
        return self._say(argv, (4, 5))

    def _exec(self, argv: list[str]) -> str:
        if len(argv) < 2:
            return REPLY_USAGE
        app = argv[1].lower()
        options = argv[2] if len(argv) > 2 else ""
        if app not in KNOWN_APPS:
            return "200 result=-2"
        if self.dead and app not in DEAD_OK_APPS:
            return "200 result=-1"
        if app == "set":
            name, sep, value = options.partition("=")
            if sep:
                self.variables[name] = value
        if app == "answer":
            self.answered = True
        if app == "hangup":
            self.dead = True
            return "200 result=-1"
        return "200 result=0"
