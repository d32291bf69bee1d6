"""An asyncio FastAGI server around the sans-I/O codec in ``ivr.agi.codec``.

Why not panoramisk's FastAGI server (``panoramisk.fast_agi``, 1.4): its measured
defects (../shared/PITFALLS.md), each shown on the real library in
tests/ivr/test_agi_panoramisk.py next to this server passing the same scenario:

- a client that closes before finishing its headers freezes the whole server:
  the header loop ``while b'\\n\\n' not in buffer: buffer += await reader.read()``
  never yields once ``read()`` returns ``b""`` at EOF, so any port scan hangs
  every call on the box;
- a caller hanging up mid-command raises ``ValueError`` (``int('')`` on the empty
  read at EOF) instead of a hangup result, and a ``HANGUP`` line is taken for the
  reply to the command, so every later reply is off by one;
- ``add_route`` with a plain function calls ``asyncio.coroutine``, gone in 3.11;
- ``Application()`` made outside a running loop grabs (makes) a stray loop.

Here: the ``agi_*`` block must arrive within ``header_timeout`` and within the
codec's size limit, or the connection is closed and counted in
``stats.aborted_before_headers``; other sessions are untouched. A hangup (the
``HANGUP`` line, a 511 reply, or EOF) raises ``AgiHangup`` from the command that
notices it. A handler exception is logged and counted; the server goes on. The
socket is closed when the handler returns. Nothing touches an event loop before
``start()``.

``stats`` partitions finished sessions by how the handler ended:
``completed + hungup + errors + cancelled == sessions - active``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ivr.agi.codec import (
    CLOSED,
    NEED_DATA,
    AgiReply,
    AgiRequest,
    AgiSession,
    HangupNotice,
)
from ivr.agi.errors import (
    AgiCommandError,
    AgiCommandFailed,
    AgiHangup,
    AgiTimeout,
    RemoteProtocolError,
)

__all__ = ["AgiChannel", "AgiHandler", "AgiServer", "AgiServerStats"]

log = logging.getLogger(__name__)

READ_SIZE = 65536
CLOSE_TIMEOUT = 5.0

AgiHandler = Callable[["AgiChannel"], Awaitable[None] | None]


class AgiChannel:
    """One FastAGI call, as a flow handler sees it.

    ``command()`` sends one command and returns its reply. It raises
    ``AgiHangup`` when the caller is gone: a 511 reply, the connection closing
    before the reply, or Asterisk's ``HANGUP`` line (reported once, by the first
    command whose reply follows it; ``.reply`` carries that reply). After that
    the channel is "dead": Asterisk still runs GET/SET VARIABLE, VERBOSE, EXEC
    and NOOP, and answers 511 (``AgiHangup``) to the rest.

    The convenience methods raise ``AgiCommandError`` for a non-200 reply and,
    for ``result=-1``, find out whether the caller hung up (one NOOP: Asterisk
    writes its ``HANGUP`` line before that NOOP's reply) to raise ``AgiHangup``
    or else ``AgiCommandFailed`` (a missing sound file, say).
    """

    def __init__(
        self,
        request: AgiRequest,
        session: AgiSession,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.request = request
        self._session = session
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._hungup = False
        self._notice_pending = False  # a HANGUP line not yet reported by AgiHangup
        self._closed = False

    @property
    def hungup(self) -> bool:
        """True once Asterisk has said the caller is gone (or the link closed)."""
        return self._hungup

    # -- the one primitive -------------------------------------------------

    async def command(self, command: str, *args: str, timeout: float | None = None) -> AgiReply:
        """Send ``command`` with ``args`` (quoted as needed) and return the reply."""
        async with self._lock:
            if self._closed:
                raise AgiHangup(f"{command}: the FastAGI connection is closed")
            wire = self._session.send_command(command, *args)
            reply = await self._exchange(wire, command, timeout)
        if reply.code == 511:
            self._hungup = True
            self._notice_pending = False
            raise AgiHangup(f"{command}: {reply.text}", reply)
        if self._notice_pending:
            self._notice_pending = False
            raise AgiHangup(f"{command}: Asterisk sent HANGUP", reply)
        return reply

    async def _exchange(self, wire: bytes, command: str, timeout: float | None) -> AgiReply:
        try:
            self._writer.write(wire)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
                return await self._read_reply(command)
        except OSError as exc:  # TimeoutError and ConnectionError included
            if isinstance(exc, TimeoutError) and exc.errno is None:  # ours, not ETIMEDOUT
                self._close()
                raise AgiTimeout(
                    f"{command}: no reply within {timeout} s; connection closed"
                ) from None
            self._gone()
            raise AgiHangup(f"{command}: connection lost ({exc!r})") from None
        except BaseException:
            # Cancelled (or worse) mid-command: a late reply would desynchronise us.
            self._close()
            raise

    async def _read_reply(self, command: str) -> AgiReply:
        while True:
            event = self._session.next_event()
            if event is NEED_DATA:
                self._session.receive_data(await self._reader.read(READ_SIZE))
            elif event is CLOSED:
                self._gone()
                raise AgiHangup(f"{command}: Asterisk closed the connection")
            elif isinstance(event, HangupNotice):
                if not self._hungup:
                    self._notice_pending = True
                self._hungup = True
            elif isinstance(event, AgiReply):
                if event.code != 100:
                    return event

    def _gone(self) -> None:
        self._hungup = True
        self._notice_pending = False
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.close()

    # -- convenience -------------------------------------------------------

    async def _checked(self, command: str, *args: str) -> AgiReply:
        reply = await self.command(command, *args)
        if reply.code != 200:
            raise AgiCommandError(command, reply)
        if reply.result == "-1":
            if not self._hungup:
                with contextlib.suppress(AgiHangup):
                    await self.command("NOOP")
            if self._hungup:
                raise AgiHangup(f"{command}: the caller hung up", reply)
            raise AgiCommandFailed(command, reply)
        return reply

    async def answer(self) -> None:
        await self._checked("ANSWER")

    async def hangup(self) -> None:
        """Hang the channel up; a no-op when the caller is already gone, so it
        never raises ``AgiHangup``. The channel is dead afterwards."""
        if self._hungup:
            return
        with contextlib.suppress(AgiHangup):
            await self._checked("HANGUP")
        self._hungup = True

    async def channel_status(self) -> int:
        """Asterisk's channel state: 4 ring, 6 up, ..."""
        reply = await self._checked("CHANNEL STATUS")
        return _int(reply)

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        """Play ``name``; the escape digit the caller pressed, or None."""
        reply = await self._checked("STREAM FILE", name, escape_digits)
        return _digit(reply)

    async def get_data(
        self, prompt: str, timeout_ms: int | None = None, max_digits: int | None = None
    ) -> str:
        """Play ``prompt`` and collect digits (up to ``#``, ``max_digits`` or the
        timeout). Returns the digits entered, maybe ""."""
        args = [prompt]
        if timeout_ms is not None or max_digits is not None:
            args.append(str(timeout_ms if timeout_ms is not None else 0))
        if max_digits is not None:
            args.append(str(max_digits))
        reply = await self._checked("GET DATA", *args)
        return reply.result or ""

    async def wait_for_digit(self, timeout_ms: int = -1) -> str | None:
        """The next digit pressed, or None on timeout (-1 waits forever)."""
        reply = await self._checked("WAIT FOR DIGIT", str(timeout_ms))
        return _digit(reply)

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        reply = await self._checked("SAY DIGITS", digits, escape_digits)
        return _digit(reply)

    async def set_variable(self, name: str, value: str) -> None:
        await self._checked("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        """The variable's value, or None when it is not set."""
        reply = await self._checked("GET VARIABLE", name)
        return reply.data if reply.result == "1" else None

    async def get_full_variable(self, expression: str) -> str | None:
        """``expression`` with ``${...}`` expanded by Asterisk."""
        reply = await self._checked("GET FULL VARIABLE", expression)
        return reply.data if reply.result == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self._checked("VERBOSE", message, str(level))

    async def exec(self, app: str, options: str = "") -> int:
        """Run a dialplan application; its return value (0 normally).
        ``AgiCommandFailed`` when Asterisk has no such application (``-2``)."""
        reply = await self._checked("EXEC", *((app, options) if options else (app,)))
        if reply.result == "-2":
            raise AgiCommandFailed("EXEC", reply)
        return _int(reply)


def _int(reply: AgiReply) -> int:
    value = reply.result_int
    if value is None:
        raise AgiCommandError("reply", reply)
    return value


def _digit(reply: AgiReply) -> str | None:
    value = _int(reply)
    return chr(value) if value > 0 else None


@dataclass
class AgiServerStats:
    connections: int = 0  # TCP connections accepted
    rejected: int = 0  # closed at once: max_sessions connections already open
    aborted_before_headers: int = 0  # closed, silent, garbage or too slow before agi_* ended
    sessions: int = 0  # a full agi_* block arrived; the handler ran
    active: int = 0
    completed: int = 0  # the handler returned
    hungup: int = 0  # AgiHangup escaped the handler
    errors: int = 0  # any other exception escaped the handler
    cancelled: int = 0  # ended by stop()


class AgiServer:
    def __init__(
        self,
        handler: AgiHandler,
        *,
        header_timeout: float = 10.0,
        max_sessions: int = 500,
        max_env_bytes: int = 64 * 1024,
    ) -> None:
        self._handler = handler
        self.header_timeout = header_timeout
        self.max_sessions = max_sessions
        self.max_env_bytes = max_env_bytes
        self.stats = AgiServerStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.host = ""
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._server is not None:
            raise RuntimeError("AgiServer already started")
        self._server = await asyncio.start_server(self._serve, host, port)
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        log.info("FastAGI server listening on %s:%s", self.host, self.port)

    @property
    def url(self) -> str:
        return f"agi://{self.host}:{self.port}"

    async def wait_idle(self) -> None:
        """Return once no accepted connection is being served any more."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def stop(self) -> None:
        """Stop listening and end every session (their handlers are cancelled)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
        log.info("FastAGI server on %s:%s stopped", self.host, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.stats.connections += 1
        peer = writer.get_extra_info("peername")
        if len(self._tasks) >= self.max_sessions:
            self.stats.rejected += 1
            log.warning("FastAGI: %d connections open, refusing %s", len(self._tasks), peer)
            await _close(writer)
            return
        self._tasks.add(task)
        try:
            session = AgiSession(max_env_bytes=self.max_env_bytes)
            request = await self._read_request(session, reader, peer)
            if request is None:
                self.stats.aborted_before_headers += 1
                return
            await self._run_handler(AgiChannel(request, session, reader, writer), peer)
        finally:
            self._tasks.discard(task)
            await _close(writer)

    async def _read_request(
        self, session: AgiSession, reader: asyncio.StreamReader, peer: object
    ) -> AgiRequest | None:
        try:
            async with asyncio.timeout(self.header_timeout):
                while True:
                    event = session.next_event()
                    if event is NEED_DATA:
                        session.receive_data(await reader.read(READ_SIZE))
                    elif isinstance(event, AgiRequest):
                        return event
                    else:  # CLOSED before a single byte
                        log.debug("FastAGI: %s closed without a word", peer)
                        return None
        except TimeoutError:
            log.info("FastAGI: %s sent no agi_* block within %s s", peer, self.header_timeout)
        except RemoteProtocolError as exc:
            log.info("FastAGI: %s is not speaking FastAGI: %s", peer, exc)
        except OSError as exc:
            log.info("FastAGI: %s dropped before its agi_* block ended: %r", peer, exc)
        return None

    async def _run_handler(self, channel: AgiChannel, peer: object) -> None:
        request = channel.request
        self.stats.sessions += 1
        self.stats.active += 1
        log.info(
            "FastAGI: %s script=%r channel=%s uniqueid=%s",
            peer,
            request.script,
            request.channel,
            request.uniqueid,
        )
        try:
            result = self._handler(channel)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            raise
        except AgiHangup as exc:
            self.stats.hungup += 1
            log.info("FastAGI: %s (%s) hung up: %s", request.channel, request.script, exc)
        except Exception:
            self.stats.errors += 1
            log.exception("FastAGI: handler for %s (%s) failed", request.channel, request.script)
        else:
            self.stats.completed += 1
        finally:
            self.stats.active -= 1


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await writer.wait_closed()
    except (TimeoutError, ConnectionError, OSError):
        writer.transport.abort()
