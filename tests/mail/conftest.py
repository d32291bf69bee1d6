"""Mail tests run on SQLite and PostgreSQL (the store fixtures) over real loopback SMTP.

``listener`` starts a ``MailListener`` on 127.0.0.1 port 0 whose ``on_email`` puts the
stored email on ``inbox``; ``sink`` is a second, plain aiosmtpd server that captures
what ``MailSender`` sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.mail import MailListener, MailStore, StoredEmail
from tests.store.conftest import FakeClock, clock, empty_engine, engine

__all__ = ["FakeClock", "clock", "empty_engine", "engine"]

SUPPORT = "support@callwright.example"
TIMEOUT = 10.0


def make_email(
    *,
    subject: str = "Printer broken",
    sender: str = "Ann Customer <ann@example.com>",
    to: str = SUPPORT,
    body: str = "My printer is broken.",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Sat, 01 Mar 2025 09:00:00 +0000"
    if message_id is not None:
        message["Message-ID"] = message_id
    if in_reply_to is not None:
        message["In-Reply-To"] = in_reply_to
    if references is not None:
        message["References"] = references
    message.set_content(body)
    return message


async def send(
    port: int,
    message: EmailMessage | bytes,
    *,
    sender: str = "ann@example.com",
    recipients: Iterable[str] = (SUPPORT,),
    mail_options: Iterable[str] = (),
) -> str:
    """Deliver over SMTP to 127.0.0.1:port; the server's final reply text."""
    raw = message.as_bytes() if isinstance(message, EmailMessage) else message
    _, reply = await aiosmtplib.send(
        raw,
        sender=sender,
        recipients=list(recipients),
        mail_options=list(mail_options),
        hostname="127.0.0.1",
        port=port,
        start_tls=False,
        timeout=TIMEOUT,
    )
    return reply


class Inbox:
    """What ``on_email`` received; ``check`` runs inside the callback."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[StoredEmail] = asyncio.Queue()
        self.check: Callable[[StoredEmail], Awaitable[None]] | None = None
        self.fail_with: Exception | None = None
        self.calls = 0

    async def __call__(self, stored: StoredEmail) -> None:
        self.calls += 1
        if self.check is not None:
            await self.check(stored)
        await self.queue.put(stored)
        if self.fail_with is not None:
            raise self.fail_with

    async def next(self) -> StoredEmail:
        return await asyncio.wait_for(self.queue.get(), TIMEOUT)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def mail_store(engine: AsyncEngine, data_dir: Path) -> MailStore:
    return MailStore(engine, data_dir)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


StartListener = Callable[..., Awaitable[MailListener]]


@pytest.fixture
async def start_listener(mail_store: MailStore, inbox: Inbox) -> AsyncIterator[StartListener]:
    """Start a MailListener with the given keyword options (stopped at teardown)."""
    started: list[MailListener] = []

    async def start(store: MailStore | None = None, **options: Any) -> MailListener:
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        listener = MailListener(store or mail_store, inbox, **options)
        await listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        await listener.stop()


@pytest.fixture
async def listener(start_listener: StartListener) -> MailListener:
    return await start_listener(accept_domains=["callwright.example"])


@dataclass(frozen=True)
class Captured:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed


class Sink:
    """A plain aiosmtpd server that accepts everything and keeps it."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[Captured] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._sessions: list[SMTP] = []
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self.received.put(
            Captured(
                envelope.mail_from or "",
                tuple(envelope.rcpt_tos),
                envelope.original_content or b"",
            )
        )
        return "250 2.0.0 captured"

    async def start(self, port: int = 0) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            protocol = SMTP(self, hostname="sink", loop=loop)
            self._sessions.append(protocol)
            return protocol

        self._server = await loop.create_server(factory, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = []
        for protocol in self._sessions:
            if protocol.transport is not None:
                protocol.transport.close()
            task = protocol._handler_coroutine
            if task is not None and not task.done():
                task.cancel()
                tasks.append(task)
        self._sessions.clear()
        if tasks:
            await asyncio.wait(tasks, timeout=TIMEOUT)
        await server.wait_closed()

    async def next(self) -> Captured:
        return await asyncio.wait_for(self.received.get(), TIMEOUT)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = Sink()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
