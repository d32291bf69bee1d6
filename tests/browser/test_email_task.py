"""An e-mail task on the desk: offered with the customer's record, the thread
shown as text (script and HTML never run), the reply sent over real SMTP."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from dataclasses import replace
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from callwright.config import EmailConfig, OutboundMailConfig, RoutingConfig
from callwright.runtime import Runtime
from sim.pbx.server import PbxSimulator
from tests.browser.conftest import (
    QUEUE,
    Browsers,
    DeskStack,
    expect,
    log_in,
    make_config,
    screenshot,
    seed,
)


class Sink:
    """A real SMTP server on loopback keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(data, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.arrived.set()
        return "250 OK"


@pytest.fixture
async def mail_desk(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[tuple[DeskStack, Sink]]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="sink"), "127.0.0.1", 0)
    data = tmp_path / "data"
    seeded = await seed(f"sqlite+aiosqlite:///{data / 'callwright.db'}")
    config = replace(
        make_config(sim.port, data),
        routing=RoutingConfig(queues=(QUEUE,), voice_queue="support", email_queue="support"),
        email=EmailConfig(
            enabled=True,
            listen_port=0,
            accept_domains=("support.example",),
            outbound=OutboundMailConfig(
                host="127.0.0.1",
                port=server.sockets[0].getsockname()[1],
                from_address="help@support.example",
            ),
        ),
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        yield DeskStack(sim, runtime, seeded), sink
    finally:
        await runtime.stop()
        server.close()


async def test_an_email_task_shows_the_thread_as_text_and_sends_the_reply(
    mail_desk: tuple[DeskStack, Sink], browsers: Browsers
) -> None:
    stack, sink = mail_desk
    page = await browsers.page()
    await log_in(page, stack.url, "/desk", "alice")
    await page.get_by_role("button", name="Available").click()
    await expect(page.locator("#state-name")).to_have_text("available")

    message = EmailMessage()
    message["From"] = "Ada Lovelace <ada@example.com>"
    message["To"] = "help@support.example"
    message["Subject"] = "Invoice <script>alert(2)</script>"
    message["Message-ID"] = "<q1@example.com>"
    message.set_content("I was billed twice. <img src=x onerror=alert(3)>")
    message.add_alternative("<p>I was billed <b>twice</b>.<img src=x onerror=alert(4)></p>", "html")
    listener = stack.runtime.mail_listener
    assert listener is not None
    await aiosmtplib.send(message, hostname="127.0.0.1", port=listener.port, timeout=10)

    offer = page.locator("article.offer[data-channel=email]")
    await expect(offer.locator(".customer-name")).to_have_text("Ada Lovelace")
    await offer.get_by_role("button", name="Accept").click()

    task = page.locator("article.task[data-channel=email]")
    mail = task.locator(".thread .message.inbound")
    await expect(mail.locator(".subject")).to_have_text("Invoice <script>alert(2)</script>")
    await expect(mail.locator(".body")).to_contain_text(
        "I was billed twice. <img src=x onerror=alert(3)>"
    )
    assert await task.locator(".thread script, .thread img, .thread b").count() == 0
    await screenshot(page, "desk-email")

    await task.get_by_label("Reply").fill("Sorry! We refunded the second charge.")
    await task.get_by_role("button", name="Send reply").click()
    await asyncio.wait_for(sink.arrived.wait(), 15)
    (sent,) = sink.messages
    assert sent["To"] == "ada@example.com"
    assert "refunded the second charge" in sent.get_content()
    # The reply completes the task: the card leaves the live tasks.
    await expect(page.locator("#tasks article.task")).to_have_count(0)
    await expect(page.locator("#finished article.task[data-channel=email]")).to_have_count(1)
    assert browsers.dialogs == []
