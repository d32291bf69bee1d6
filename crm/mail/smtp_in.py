"""Inbound mail: an SMTP listener (aiosmtpd's protocol on our own event loop).

Each accepted message is parsed, STORED, and only then handed to ``on_email``. The
reply to the sender says what happened:

- ``250 2.0.0``  stored (also when ``on_email`` raised: the mail is safe; the error is
  logged and the message stays unrouted, see ``MailStore.unrouted``); also for a
  malformed message, stored with its ``problem``; also for a duplicate delivery of a
  message already stored (``on_email`` is not called again).
- ``552 5.3.4``  larger than ``max_message_bytes`` (announced with the SIZE extension,
  refused at MAIL FROM when the client declares a larger SIZE); nothing stored.
- ``550 5.1.1``  recipient outside ``accept_domains`` (when given).
- ``451 4.3.0``  storage failed (database or disk): the sender keeps the message and
  retries later; nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import AnyStr, Final

from aiosmtpd.smtp import SMTP, Envelope, Session

from crm.mail.parse import ParsedEmail, parse_email
from crm.mail.repository import MailStore, StoredEmail

__all__ = ["MailListener", "OnEmail"]

log = logging.getLogger(__name__)

OnEmail = Callable[[StoredEmail], Awaitable[None]]

TOO_BIG: Final = "552 5.3.4 Message too big"
_AIOSMTPD_TOO_BIG: Final = (
    "552 Error: Too much mail data",
    "552 Error: message size exceeds fixed maximum message size",
)


class _Smtp(SMTP):
    """aiosmtpd's protocol with RFC 3463 enhanced codes on its size refusals, telling its
    listener when the connection is gone."""

    on_lost: Callable[[_Smtp], None] | None = None

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if self.on_lost is not None:
            self.on_lost(self)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status in _AIOSMTPD_TOO_BIG:
            status = TOO_BIG
        await super().push(status)


class _Handler:
    def __init__(self, listener: MailListener) -> None:
        self._listener = listener

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        return self._listener._accept_recipient(envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self._listener._deliver(envelope)


class MailListener:
    def __init__(
        self,
        store: MailStore,
        on_email: OnEmail,
        *,
        host: str = "127.0.0.1",
        port: int = 2525,
        max_message_bytes: int = 25 * 1024 * 1024,
        accept_domains: Iterable[str] | None = None,
        max_recipients: int = 100,
        hostname: str = "callwright",
        session_timeout: float = 300.0,
        stop_grace: float = 10.0,
    ) -> None:
        if max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")
        self._store = store
        self._on_email = on_email
        self._host = host
        self._requested_port = port
        self._max_bytes = max_message_bytes
        self._domains = (
            None
            if accept_domains is None
            else frozenset(d.strip().lower().rstrip(".") for d in accept_domains)
        )
        self._max_recipients = max_recipients
        self._hostname = hostname
        self._session_timeout = session_timeout
        self._stop_grace = stop_grace
        self._server: asyncio.Server | None = None
        self._sessions: set[_Smtp] = set()
        self._delivering: set[asyncio.Future[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``); the requested one before ``start``."""
        if self._server is None or not self._server.sockets:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("mail listener already started")
        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        def factory() -> _Smtp:
            protocol = _Smtp(
                handler,
                data_size_limit=self._max_bytes,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname=self._hostname,
                ident="Callwright ESMTP",
                timeout=self._session_timeout,
                loop=loop,
            )
            protocol.on_lost = self._sessions.discard
            self._sessions.add(protocol)
            return protocol

        self._server = await loop.create_server(factory, self._host, self._requested_port)
        log.info("SMTP listener on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Stop accepting; let messages being stored finish (up to ``stop_grace`` s), then
        close every session. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._delivering:
            await asyncio.wait(set(self._delivering), timeout=self._stop_grace)
        handlers = []
        for protocol in list(self._sessions):
            transport = protocol.transport
            if transport is not None:
                transport.close()
            task = protocol._handler_coroutine
            if task is not None and not task.done():
                task.cancel()
                handlers.append(task)
        self._sessions.clear()
        if handlers:
            await asyncio.wait(handlers, timeout=self._stop_grace)
        await server.wait_closed()
        log.info("SMTP listener stopped")

    # -- the SMTP hooks --------------------------------------------------------------------

    def _accept_recipient(self, envelope: Envelope, address: str, options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return "452 4.5.3 Too many recipients"
        domain = address.rpartition("@")[2].strip().lower().rstrip(".")
        if self._domains is not None and domain not in self._domains:
            log.info("refused recipient %r: domain not accepted", address)
            return "550 5.1.1 Recipient address rejected: domain not accepted here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def _deliver(self, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self._max_bytes:
            return TOO_BIG
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._delivering.add(done)
        try:
            return await self._store_and_notify(envelope, raw)
        finally:
            done.set_result(None)
            self._delivering.discard(done)

    async def _store_and_notify(self, envelope: Envelope, raw: bytes) -> str:
        parsed: ParsedEmail = await asyncio.to_thread(parse_email, raw)
        try:
            stored = await self._store.store_inbound(
                parsed,
                raw,
                envelope_from=envelope.mail_from,
                envelope_to=list(envelope.rcpt_tos),
            )
        except Exception:
            log.exception(
                "could not store email %s from %r; answered 451 so that the sender retries",
                parsed.message_id,
                envelope.mail_from,
            )
            return "451 4.3.0 Temporary failure storing the message, try again later"
        if stored.duplicate:
            return f"250 2.0.0 Already stored as {stored.id}"
        if stored.problem:
            log.warning("stored email %d with a problem: %s", stored.id, stored.problem)
        try:
            await self._on_email(stored)
        except Exception:
            log.exception(
                "on_email failed for stored email %d (interaction %d); it stays unrouted",
                stored.id,
                stored.interaction_id,
            )
        return f"250 2.0.0 Stored as {stored.id}"
