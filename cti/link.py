"""The AMI link: one logged-in AMI session, kept alive, never replaying actions.

Why not panoramisk's Manager (1.4), though the stack names it: its measured
defects (../shared/PITFALLS.md) sit in every layer it owns. Its protocol's
``data_received`` drops a UTF-8 character split across reads and writes header
values unescaped; its ``close`` re-queues unanswered actions and its Manager
re-sends them after the next login (a second Originate); its login retries a
wrong secret forever without telling anyone; its pinger never checks for the
Pong, so a half-open socket goes unnoticed; an exception in an event callback
kills the connection; actions have no timeout and a ``wait_for`` around one
leaks it. A subclass would override ``data_received``, ``send``, ``close``,
``connection_made``, ``login``, ``ping``, ``dispatch``, ``send_action`` and
``connection_lost``, leaving nothing of panoramisk in use but
``loop.create_connection``. So the link is ours: asyncio streams around the
sans-I/O codec in ``cti.ami.framing``, and tests/cti/test_panoramisk_defects.py
shows each defect on the real panoramisk 1.4 next to this link passing the same
scenario.

Contract:
- ``send()`` raises ``NotConnected`` unless logged in; ``LinkLost`` when the
  link drops before the reply (the action is never re-sent: it may or may not
  have run); ``ActionTimeout`` after ``action_timeout`` (the pending entry is
  removed, nothing leaks); ``ActionFailed`` carrying Asterisk's own text for
  ``Response: Error``; ``LocalProtocolError`` for a value holding CR or LF.
- Events go to ``on_event`` in wire order. An exception in it is logged and
  counted; the link goes on.
- After every login, ``on_ready`` runs (the resync) while ``state`` is
  ``RESYNCING``; then ``READY``.
- Reconnects with exponential backoff and jitter. A refused login is reported
  as ``AUTH_FAILED`` and retried at the slowest pace.
- A link idle for ``ping_interval`` sends a Ping; if nothing at all arrives
  within ``ping_timeout`` the socket is considered half-open and is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cti.ami.framing import CLOSED, NEED_DATA, AmiConnection, FramingStats, Role
from cti.ami.messages import AmiAction, AmiEvent, AmiResponse, Banner
from cti.errors import (
    ActionFailed,
    ActionTimeout,
    AmiLinkError,
    AuthenticationFailed,
    LinkLost,
    NotConnected,
    RemoteProtocolError,
)

__all__ = ["AmiLink", "LinkSettings", "LinkState", "LinkStats"]

log = logging.getLogger(__name__)


class LinkState(enum.StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    RESYNCING = "resyncing"
    READY = "ready"
    AUTH_FAILED = "auth_failed"
    CLOSED = "closed"


@dataclass(frozen=True)
class LinkSettings:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    auth: str = "md5"  # "md5" or "plain"
    events: str = "on"
    connect_timeout: float = 5.0
    action_timeout: float = 10.0
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0


@dataclass
class LinkStats:
    connects: int = 0
    disconnects: int = 0
    auth_failures: int = 0
    events: int = 0
    callback_errors: int = 0
    actions_sent: int = 0
    actions_lost: int = 0
    actions_timed_out: int = 0
    half_open_detected: int = 0


@dataclass
class _Pending:
    action: AmiAction
    future: asyncio.Future[tuple[AmiResponse, list[AmiEvent]]]
    is_list: bool
    response: AmiResponse | None = None
    items: list[AmiEvent] = field(default_factory=list)


EventCallback = Callable[[AmiEvent], None]
ReadyCallback = Callable[[], Awaitable[None]]
StateCallback = Callable[["LinkState"], None]


class _DirectReader(asyncio.StreamReader):
    """The link's stream reader: Asterisk's bytes go to ``sink`` (the codec
    and the event callback) in the transport's own callback, as they arrive,
    instead of into a buffer for a reading task to wake up to: one event-loop
    pass less between an AMI event and the call service. No bytes reach the
    buffer: ``read`` returns ``b""`` at EOF (``at_eof()``) or, while
    ``probing``, when bytes came; it raises what the sink raised (a framing
    error).

    Why by hand: asyncio's streams and protocols offer a buffer or a raw
    ``data_received``; the link keeps the streams (connect, write, drain,
    EOF and close as they are) and changes only where the bytes go."""

    def __init__(self, sink: Callable[[bytes], None], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)
        self._sink = sink
        self._clock = loop.time
        self.last_data = loop.time()
        self.chunks = 0
        self.probing = False

    def feed_data(self, data: bytes) -> None:  # type: ignore[override]
        if not data or self.exception() is not None:
            return
        self.chunks += 1
        self.last_data = self._clock()
        try:
            self._sink(data)
        except Exception as exc:
            self.set_exception(exc)  # wakes the reading task, which raises it
            return
        if self.probing:
            self._wakeup_waiter()  # type: ignore[attr-defined]


class AmiLink:
    def __init__(
        self,
        settings: LinkSettings,
        *,
        on_event: EventCallback | None = None,
        on_ready: ReadyCallback | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._on_ready = on_ready
        self._on_state = on_state
        self.state = LinkState.DISCONNECTED
        self.stats = LinkStats()
        self.framing_stats = FramingStats()
        self.banner: str | None = None
        self.last_error: str | None = None
        self._ids = itertools.count(1)
        self._session = 0
        self._pending: dict[str, _Pending] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._codec: AmiConnection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._logged_in = False
        self._ready_event = asyncio.Event()
        self._closing = False
        self._banner_waiter: asyncio.Future[None] | None = None

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        if self._supervisor is None:
            self._closing = False
            self._supervisor = asyncio.create_task(self._run(), name="ami-link")

    async def close(self) -> None:
        self._closing = True
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drop_connection("the AMI link was closed")
        self._set_state(LinkState.CLOSED)

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready_event.wait(), timeout)

    @property
    def connected(self) -> bool:
        return self._logged_in

    # -- actions ---------------------------------------------------------

    async def send(self, action: AmiAction, *, timeout: float | None = None) -> AmiResponse:
        response, _ = await self._send(action, is_list=False, timeout=timeout)
        return response

    async def send_list(
        self, action: AmiAction, *, timeout: float | None = None
    ) -> tuple[AmiResponse, list[AmiEvent]]:
        """An action answered by an EventList: the response and every item event."""
        return await self._send(action, is_list=True, timeout=timeout)

    async def _send(
        self, action: AmiAction, *, is_list: bool, timeout: float | None
    ) -> tuple[AmiResponse, list[AmiEvent]]:
        if not self._logged_in:
            raise NotConnected(
                f"AMI is not connected ({self.state.value}); {action.name} was not sent"
            )
        return await self._transmit(action, is_list=is_list, timeout=timeout)

    async def _transmit(
        self, action: AmiAction, *, is_list: bool, timeout: float | None
    ) -> tuple[AmiResponse, list[AmiEvent]]:
        writer, codec = self._writer, self._codec
        if writer is None or codec is None:
            raise NotConnected(f"AMI is not connected; {action.name} was not sent")
        action_id = f"cw{self._session}-{next(self._ids)}"
        action = action.with_action_id(action_id)
        wire = codec.send(action)  # raises LocalProtocolError before anything is queued
        future: asyncio.Future[tuple[AmiResponse, list[AmiEvent]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[action_id] = _Pending(action, future, is_list)
        writer.write(wire)
        self.stats.actions_sent += 1
        limit = self.settings.action_timeout if timeout is None else timeout
        try:
            response, items = await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            self.stats.actions_timed_out += 1
            raise ActionTimeout(
                f"Asterisk did not answer {action.name} within {limit:g}s"
            ) from None
        finally:
            self._pending.pop(action_id, None)
        if not response.ok:
            raise ActionFailed(action.name, response.message)
        return response, items

    # -- the supervisor --------------------------------------------------

    async def _run(self) -> None:
        delay = self.settings.reconnect_min
        while not self._closing:
            self._set_state(LinkState.CONNECTING)
            was_ready = False
            try:
                was_ready = await self._session_once()
            except AuthenticationFailed as exc:
                self.stats.auth_failures += 1
                self.last_error = str(exc)
                log.error("AMI login refused for user %r: %s", self.settings.username, exc)
                self._drop_connection("the AMI login was refused")
                self._set_state(LinkState.AUTH_FAILED)
                delay = self.settings.reconnect_max
            except (OSError, TimeoutError, RemoteProtocolError, AmiLinkError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "AMI link to %s:%s down: %s",
                    self.settings.host,
                    self.settings.port,
                    self.last_error,
                )
            except Exception as exc:
                # Whatever went wrong, the supervisor itself must survive.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("AMI link session failed")
            finally:
                self._drop_connection("the AMI link dropped")
            if self._closing:
                break
            if self.state is not LinkState.AUTH_FAILED:
                self._set_state(LinkState.DISCONNECTED)
            if was_ready:
                delay = self.settings.reconnect_min
            # Full jitter keeps many nodes from reconnecting in lockstep.
            wait = random.uniform(delay / 2, delay)
            log.info("AMI reconnect in %.2fs", wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.settings.reconnect_max)

    async def _session_once(self) -> bool:
        """One connection: connect, log in, resync, read until it drops.
        Returns whether the session got as far as READY."""
        s = self.settings
        loop = asyncio.get_running_loop()
        # Ready before the first byte: the banner is handled as it arrives.
        banner_wait: asyncio.Future[None] = loop.create_future()
        self._banner_waiter = banner_wait
        codec = AmiConnection(Role.CLIENT)
        reader = _DirectReader(lambda data: self._feed(codec, data), loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await asyncio.wait_for(
            loop.create_connection(lambda: protocol, s.host, s.port), s.connect_timeout
        )
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        self._session += 1
        self._codec = codec
        self.framing_stats = self._codec.stats
        self._writer = writer
        self.stats.connects += 1
        reader_task = asyncio.create_task(self._read_loop(reader), name="ami-reader")
        try:
            await asyncio.wait_for(asyncio.shield(banner_wait), s.connect_timeout)
            await self._login()
            self._logged_in = True
            self._set_state(LinkState.RESYNCING)
            if self._on_ready is not None:
                await self._on_ready()
            self._set_state(LinkState.READY)
            self._ready_event.set()
            log.info("AMI link ready (%s)", self.banner)
            await reader_task
            return True
        finally:
            self._logged_in = False
            self._ready_event.clear()
            if not reader_task.done():
                reader_task.cancel()
                # The reader may already hold Asterisk's EOF (it hangs up right
                # after refusing a Login): on 3.11 its wait_for then swallows the
                # cancel and it ends in LinkLost, which must not replace the
                # reason this session ended (AuthenticationFailed, say).
                with contextlib.suppress(asyncio.CancelledError, LinkLost):
                    await reader_task
            if reader_task.done() and not reader_task.cancelled():
                exc = reader_task.exception()
                if exc is not None and not isinstance(exc, LinkLost):
                    raise exc

    async def _login(self) -> None:
        s = self.settings
        try:
            if s.auth == "md5":
                response, _ = await self._transmit(
                    AmiAction.build("Challenge", {"AuthType": "MD5"}),
                    is_list=False,
                    timeout=s.connect_timeout,
                )
                challenge = response.get("Challenge") or ""
                key = hashlib.md5((challenge + s.secret).encode("utf-8")).hexdigest()
                login = AmiAction.build(
                    "Login",
                    {"AuthType": "MD5", "Username": s.username, "Key": key, "Events": s.events},
                )
            else:
                login = AmiAction.build(
                    "Login", {"Username": s.username, "Secret": s.secret, "Events": s.events}
                )
            # A failed Login is answered after Asterisk's 1 s penalty.
            await self._transmit(login, is_list=False, timeout=s.connect_timeout + 2)
        except ActionFailed as exc:
            raise AuthenticationFailed(exc.message) from None

    async def _read_loop(self, reader: _DirectReader) -> None:
        """Wait for the end of the connection; Asterisk's bytes are handled as
        they arrive (``_DirectReader``). Idle for ``ping_interval``: probe."""
        s = self.settings
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self._closing:
                    # close() cancelled this task; stop here whatever raced the
                    # cancel, instead of waiting on, which hung close().
                    raise asyncio.CancelledError
                idle = loop.time() - reader.last_data
                if idle >= s.ping_interval:
                    # Idle: ask for a Pong; any byte proves the link is alive.
                    await self._probe(reader)
                    continue
                try:
                    async with asyncio.timeout(s.ping_interval - idle):
                        await reader.read(65536)  # b"": the bytes go to the sink
                except TimeoutError:
                    continue
                if reader.at_eof():
                    raise LinkLost("Asterisk closed the AMI connection")
        except (Exception, asyncio.CancelledError) as exc:
            # Fail what waits on this connection now, not at the next timeout.
            reason = "the AMI link dropped" if isinstance(exc, LinkLost) else str(exc)
            self._fail_pending(reason or type(exc).__name__)
            waiter = self._banner_waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(LinkLost(f"no AMI banner: {reason}"))
                waiter.exception()
            raise

    async def _probe(self, reader: _DirectReader) -> None:
        writer, codec = self._writer, self._codec
        if writer is None or codec is None:
            raise LinkLost("no connection")
        ping = AmiAction.build("Ping", action_id=f"cw{self._session}-ping-{next(self._ids)}")
        seen = reader.chunks
        reader.probing = True
        writer.write(codec.send(ping))
        try:
            async with asyncio.timeout(self.settings.ping_timeout):
                while reader.chunks == seen:
                    await reader.read(65536)  # woken by bytes while probing
                    if reader.at_eof():
                        raise LinkLost("Asterisk closed the AMI connection")
        except TimeoutError:
            self.stats.half_open_detected += 1
            raise LinkLost(
                f"no answer to Ping within {self.settings.ping_timeout:g}s: half-open connection"
            ) from None
        finally:
            reader.probing = False

    def _feed(self, codec: AmiConnection, data: bytes) -> None:
        codec.receive_data(data)
        while True:
            message = codec.next_message()
            if message is NEED_DATA or message is CLOSED:
                return
            if isinstance(message, AmiEvent):
                self._handle_event(message)
            elif isinstance(message, AmiResponse):
                self._handle_response(message)
            elif isinstance(message, Banner):
                self.banner = message.text
                if message.version is None:
                    raise RemoteProtocolError(f"not an Asterisk AMI banner: {message.text[:80]!r}")
                waiter = self._banner_waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    def _handle_response(self, response: AmiResponse) -> None:
        action_id = response.action_id
        pending = self._pending.get(action_id) if action_id else None
        if pending is None or pending.future.done():
            return  # a Pong, or the reply to an action that already timed out
        if pending.is_list and response.ok and response.is_list_start:
            pending.response = response
            return
        pending.future.set_result((response, []))

    def _handle_event(self, event: AmiEvent) -> None:
        action_id = event.action_id
        if action_id is not None:
            pending = self._pending.get(action_id)
            if pending is not None and pending.is_list and pending.response is not None:
                if (event.get("EventList") or "").lower() == "complete":
                    if not pending.future.done():
                        pending.future.set_result((pending.response, pending.items))
                else:
                    pending.items.append(event)
                return
        self.stats.events += 1
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            # A subscriber's bug must not take the PBX link down with it.
            self.stats.callback_errors += 1
            log.exception("AMI event handler failed on %s", event.name)

    def _drop_connection(self, reason: str) -> None:
        self._logged_in = False
        writer, self._writer = self._writer, None
        self._banner_waiter = None
        if writer is not None:
            self.stats.disconnects += 1
            writer.close()
        self._fail_pending(reason)

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.future.done():
                self.stats.actions_lost += 1
                entry.future.set_exception(
                    LinkLost(
                        f"{reason} before Asterisk answered {entry.action.name}; "
                        "it was not re-sent and may or may not have taken effect"
                    )
                )
                # Retrieve it so that an unawaited future does not warn.
                entry.future.exception()

    def _set_state(self, state: LinkState) -> None:
        if state is self.state:
            return
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("AMI state listener failed")
