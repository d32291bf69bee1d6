"""The Asterisk side of FastAGI: ``AGI(agi://host:port/script?args)`` connects
to the AGI server, sends the ``agi_*`` block, then answers commands line by
line, as in ``tests/fixtures/ami/11-fastagi.txt`` (AMI view:
``11-fastagi-ami-events.txt``: AGIExecStart/AGIExecEnd per command).

The simulator has no sound files: STREAM FILE, GET DATA and SAY DIGITS
"play" instantly, except files whose name starts with ``no-such`` (they fail
with ``result=-1``, as a missing file does). Keys the caller presses come
from ``PbxSimulator.send_dtmf``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shlex
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sim.pbx.dialplan import evaluate
from sim.pbx.model import SimChannel

if TYPE_CHECKING:
    from sim.pbx.engine import Outcome, Pbx

__all__ = ["run_agi"]

log = logging.getLogger(__name__)

AGI_VERSION = "22.10.1"
DEAD_OK = {
    "get variable",
    "get full variable",
    "set variable",
    "verbose",
    "noop",
    "exec",
    "channel status",
    "set context",
    "set extension",
    "set priority",
}
USAGE = "520 Invalid command syntax.  Proper usage not available."


async def run_agi(pbx: Pbx, ch: SimChannel, url: str) -> Outcome:
    target, _, arg_text = url.partition(",")
    parts = urlsplit(target)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 4573
    if pbx.agi_address is not None:
        host, port = pbx.agi_address
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5.0)
    except (OSError, TimeoutError):
        log.warning("AGI %s: cannot connect", target)
        pbx.set_var(ch, "AGISTATUS", "FAILURE")
        return "continue"
    session = _AgiSession(pbx, ch, reader, writer)
    try:
        await session.send_env(target, [a for a in arg_text.split(",") if a] if arg_text else [])
        await session.serve()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (TimeoutError, OSError, ConnectionError):
            pass
    dead = ch.hangup_requested or ch.hungup
    if not ch.hungup:
        # 11-fastagi-ami-events.txt: FAILURE after the script's own HANGUP,
        # HANGUP when the caller went away, SUCCESS otherwise.
        status = "FAILURE" if session.script_hangup else "HANGUP" if dead else "SUCCESS"
        pbx.set_var(ch, "AGISTATUS", status)
    return "hangup" if dead else "continue"


class _AgiSession:
    def __init__(
        self, pbx: Pbx, ch: SimChannel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.pbx = pbx
        self.ch = ch
        self.reader = reader
        self.writer = writer
        self.hangup_sent = False
        self.script_hangup = False

    @property
    def dead(self) -> bool:
        return self.ch.hangup_requested or self.ch.hungup

    async def send_env(self, url: str, args: list[str]) -> None:
        ch = self.ch
        script = url.split("/", 3)[3] if url.count("/") >= 3 else ""
        env = [
            ("agi_network", "yes"),
            ("agi_network_script", script),
            ("agi_request", url),
            ("agi_channel", ch.name),
            ("agi_language", ch.language),
            ("agi_type", ch.tech),
            ("agi_uniqueid", ch.uniqueid),
            ("agi_version", AGI_VERSION),
            ("agi_callerid", ch.caller_num or "unknown"),
            ("agi_calleridname", ch.caller_name or "unknown"),
            ("agi_callingpres", "0"),
            ("agi_callingani2", "0"),
            ("agi_callington", "0"),
            ("agi_callingtns", "0"),
            ("agi_dnid", ch.dnid or "unknown"),
            ("agi_rdnis", "unknown"),
            ("agi_context", ch.context),
            ("agi_extension", ch.exten),
            ("agi_priority", str(ch.priority)),
            ("agi_enhanced", "0.0"),
            ("agi_accountcode", ch.accountcode),
            ("agi_threadid", str(140156419802816 + random.randrange(1 << 20))),
        ]
        env += [(f"agi_arg_{i}", arg) for i, arg in enumerate(args, start=1)]
        text = "".join(f"{k}: {v}\n" for k, v in env) + "\n"
        self.writer.write(text.encode())
        await self.writer.drain()

    async def serve(self) -> None:
        while True:
            line = await self.reader.readline()
            if not line:
                return
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            if not command.strip():
                continue
            if self.dead and not self.hangup_sent:
                self.hangup_sent = True
                self.writer.write(b"HANGUP\n")
            command_id = str(random.randrange(1, 1 << 31))
            self.pbx.ev_chan(
                "AGIExecStart",
                self.ch,
                [("CommandId", command_id), ("Command", command)],
                cls="agi",
            )
            reply, code, result = await self.execute(command)
            self.writer.write(reply.encode() + b"\n")
            await self.writer.drain()
            if not self.ch.hungup:
                self.pbx.ev_chan(
                    "AGIExecEnd",
                    self.ch,
                    [
                        ("CommandId", command_id),
                        ("Command", command),
                        ("ResultCode", code),
                        ("Result", result),
                    ],
                    cls="agi",
                )

    async def execute(self, command: str) -> tuple[str, str, str]:
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        lower = [w.lower() for w in words]
        key, args = _match(lower, words)
        if key is None:
            return "510 Invalid or unknown command", "510", "Invalid or unknown command"
        if self.dead and key not in DEAD_OK:
            msg = "Command Not Permitted on a dead channel or intercept routine"
            return f"511 {msg}", "511", msg
        handler = getattr(self, "cmd_" + key.replace(" ", "_"))
        reply: str
        kind: str
        reply, kind = await handler(args)
        if kind == "usage":
            return USAGE, "520", "Usage"
        if kind == "failure":
            return reply, "-1", "Failure"
        if kind == "unknown":
            return reply, "200", "Unknown Result"
        return reply, "200", "Success"

    # -- commands ----------------------------------------------------------

    async def cmd_answer(self, args: list[str]) -> tuple[str, str]:
        self.pbx.answer(self.ch)
        return "200 result=0", "success"

    async def cmd_channel_status(self, args: list[str]) -> tuple[str, str]:
        ch = self.pbx.find(args[0]) if args else self.ch
        if ch is None:
            return "200 result=-1", "success"
        return f"200 result={ch.state_code}", "success"

    async def cmd_get_variable(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "", "usage"
        name = args[0]
        value = self.pbx.get_var(self.ch, name)
        known = value != "" or name in self.ch.variables
        return (f"200 result=1 ({value})" if known else "200 result=0"), "success"

    async def cmd_get_full_variable(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "", "usage"
        ch = self.pbx.find(args[1]) if len(args) > 1 else self.ch
        if ch is None:
            return "200 result=0", "success"
        value = evaluate(args[0], lambda name: self.pbx.get_var(ch, name))
        return f"200 result=1 ({value})", "success"

    async def cmd_set_variable(self, args: list[str]) -> tuple[str, str]:
        if len(args) < 2:
            return "", "usage"
        self.pbx.set_var(self.ch, args[0], args[1])
        return "200 result=1", "success"

    async def cmd_verbose(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "", "usage"
        log.info("AGI %s: %s", self.ch.name, args[0])
        return "200 result=1", "success"

    async def cmd_noop(self, args: list[str]) -> tuple[str, str]:
        return "200 result=0", "success"

    async def cmd_set_context(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "", "usage"
        self.ch.context = args[0]
        return "200 result=0", "success"

    async def cmd_set_extension(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "", "usage"
        self.ch.exten = args[0]
        return "200 result=0", "success"

    async def cmd_set_priority(self, args: list[str]) -> tuple[str, str]:
        if not args or not args[0].isdigit():
            return "", "usage"
        # res_agi's handle_setpriority is ast_explicit_goto, which takes one off
        # while the channel runs dialplan (AST_FLAG_IN_AUTOLOOP): the PBX adds
        # it back after AGI() returns, so the channel resumes *at* that priority.
        self.ch.priority = int(args[0]) - 1
        return "200 result=0", "success"

    async def cmd_hangup(self, args: list[str]) -> tuple[str, str]:
        self.pbx.ev_chan("SoftHangupRequest", self.ch, [("Cause", "32")])
        self.ch.hangup_requested = True
        self.script_hangup = True
        return "200 result=1", "success"

    async def cmd_exec(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "", "usage"
        app = args[0]
        data = " ".join(args[1:])
        if self.dead:
            return "200 result=-1", "unknown"
        handler = getattr(self.pbx, f"_app_{app.lower()}", None)
        if handler is None or app.lower() in ("dial", "agi", "queue"):
            return "200 result=-2", "unknown"
        saved = (self.ch.application, self.ch.app_data)
        await handler(self.ch, data)
        self.ch.application, self.ch.app_data = saved
        return ("200 result=-1", "unknown") if self.dead else ("200 result=0", "success")

    async def _play(self, name: str, escape: str) -> str | None:
        """'' when played to the end, a pressed escape digit, None when the
        file does not exist."""
        if name.rsplit("/", 1)[-1].startswith("no-such"):
            return None
        while self.ch.dtmf_queue:
            digit = self.ch.dtmf_queue.pop(0)
            if digit in escape:
                return digit
        return ""

    async def cmd_stream_file(self, args: list[str]) -> tuple[str, str]:
        if len(args) < 2:
            return "", "usage"
        played = await self._play(args[0], args[1])
        if played is None:
            return "200 result=-1 endpos=0", "failure"
        if played:
            return f"200 result={ord(played)} endpos=4000", "success"
        return "200 result=0 endpos=8000", "success"

    async def cmd_say_digits(self, args: list[str]) -> tuple[str, str]:
        if len(args) < 2:
            return "", "usage"
        pressed = await self._play("digits", args[1])
        return f"200 result={ord(pressed) if pressed else 0}", "success"

    async def _digit(self, timeout: float | None) -> str | None:
        """The next key pressed, "" on timeout, None when the caller hung up."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self.ch.dtmf_queue:
                return self.ch.dtmf_queue.pop(0)
            if self.dead:
                return None
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return ""
            await self.ch.wait(remaining)

    async def cmd_wait_for_digit(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "", "usage"
        ms = int(args[0]) if args[0].lstrip("-").isdigit() else -1
        digit = await self._digit(None if ms < 0 else ms / 1000 * self.pbx.time_scale)
        if digit is None:
            return "200 result=-1", "failure"
        return f"200 result={ord(digit) if digit else 0}", "success"

    async def cmd_get_data(self, args: list[str]) -> tuple[str, str]:
        if not args:
            return "", "usage"
        played = await self._play(args[0], "0123456789*#")
        if played is None:
            return "200 result=-1", "success"
        timeout = int(args[1]) / 1000 if len(args) > 1 and args[1].isdigit() else 5.0
        timeout *= self.pbx.time_scale
        max_digits = int(args[2]) if len(args) > 2 and args[2].isdigit() else 1024
        digits = played
        while len(digits) < max_digits:
            digit = await self._digit(timeout)
            if digit is None:
                return "200 result=-1", "success"
            if digit in ("", "#"):
                if digit == "":
                    return f"200 result={digits} (timeout)", "success"
                break
            digits += digit
        return f"200 result={digits}", "success"

    async def cmd_record_file(self, args: list[str]) -> tuple[str, str]:
        """RECORD FILE <file> <format> <escape digits> <timeout ms> [offset] [BEEP]
        [s=silence] (res_agi.c handle_recordfile): ends on an escape key
        ``(dtmf)``, at the time limit ``(timeout)`` or when the caller hangs up
        ``result=-1 (hangup)``; ``endpos`` counts 8 kHz samples of the time the
        caller spoke. The simulator writes no audio file."""
        if len(args) < 4 or not args[3].lstrip("-").isdigit():
            return "", "usage"
        escape = args[2]
        ms = int(args[3])
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = None if ms < 0 else started + ms / 1000 * self.pbx.time_scale

        def endpos() -> int:
            spoken = (loop.time() - started) / (self.pbx.time_scale or 1.0)
            return int(spoken * 8000)

        while True:
            while self.ch.dtmf_queue:
                digit = self.ch.dtmf_queue.pop(0)
                if digit in escape:
                    return f"200 result={ord(digit)} (dtmf) endpos={endpos()}", "success"
            if self.dead:
                return f"200 result=-1 (hangup) endpos={endpos()}", "failure"
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return f"200 result=0 (timeout) endpos={endpos()}", "success"
            await self.ch.wait(remaining)


_COMMANDS = [
    "record file",
    "get full variable",
    "get variable",
    "set variable",
    "channel status",
    "stream file",
    "get data",
    "say digits",
    "wait for digit",
    "set context",
    "set extension",
    "set priority",
    "answer",
    "verbose",
    "exec",
    "noop",
    "hangup",
]


def _match(lower: list[str], words: list[str]) -> tuple[str | None, list[str]]:
    for key in _COMMANDS:
        parts = key.split()
        if lower[: len(parts)] == parts:
            return key, words[len(parts) :]
    return None, []
