"""Email end to end over loopback SMTP: mail in, task, offer, accept, reply
out through a real SMTP server, and the customer's answer threading back onto
the same interaction as a new task."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from dataclasses import replace
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from callwright.config import EmailConfig, OutboundMailConfig, RoutingConfig
from callwright.runtime import Runtime
from routing import model
from routing.model import QueueConfig
from sim.pbx.server import PbxSimulator
from tests.integration.conftest import TOKEN, Recorder, Stack, make_config, offered_to, seed_agents

QUEUE = QueueConfig(id="support", target='"support" in agent.skills', wrap_up_seconds=0)


class Sink:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = asyncio.Event()
        self.refusals = 0  # the next this many messages get a temporary failure

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refusals > 0:
            self.refusals -= 1
            return "451 4.3.0 try again later"
        data = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(data, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.arrived.set()
        return "250 OK"


@pytest.fixture
async def sink() -> AsyncIterator[tuple[Sink, int]]:
    handler = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield handler, port
    server.close()


@pytest.fixture
def retry_every() -> float:
    return 300.0


@pytest.fixture
async def mail_stack(
    sim: PbxSimulator, sink: tuple[Sink, int], tmp_path: Path, retry_every: float
) -> AsyncIterator[tuple[Stack, Recorder, dict[str, str], Sink]]:
    data = tmp_path / "data"
    agents = await seed_agents(
        f"sqlite+aiosqlite:///{data / 'callwright.db'}", capacity={"voice": 1, "email": 3}
    )
    config = make_config(sim.port, data)
    config = replace(
        config,
        routing=RoutingConfig(queues=(QUEUE,), voice_queue="support", email_queue="support"),
        email=EmailConfig(
            enabled=True,
            listen_port=0,
            accept_domains=("support.example",),
            outbound=OutboundMailConfig(
                host="127.0.0.1",
                port=sink[1],
                from_address="help@support.example",
                retry_every=retry_every,
            ),
        ),
    )
    runtime = Runtime(config)
    await runtime.start()
    recorder = Recorder()
    assert runtime.routing is not None
    runtime.routing.subscribe(recorder)
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        yield Stack(sim, runtime, http), recorder, agents, sink[0]
    finally:
        await http.close()
        await runtime.stop()


async def send(port: int, message: EmailMessage) -> None:
    await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=10)


def customer_mail(subject: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Ada Lovelace <ada@analytical.example>"
    message["To"] = "help@support.example"
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", "<q1@analytical.example>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


async def accepted_by_alice(mail_stack: Any, mail: EmailMessage) -> tuple[Any, int]:
    """``mail`` comes in, is offered to Alice, who accepts: (the offer, the interaction)."""
    stack, recorder, agents, _ = mail_stack
    alice = agents["1001"]
    listener = stack.runtime.mail_listener
    assert listener is not None
    await stack.post(f"/api/agents/{alice}/state", {"state": "available"})
    await send(listener.port, mail)
    offer = await recorder.wait_for(offered_to(alice))
    assert isinstance(offer, model.ReservationOffered) and offer.channel == "email"
    status, body = await stack.post(f"/api/reservations/{offer.reservation_id}/accept")
    assert status == 200, body
    link = await stack.runtime.routing.journal.task(offer.task_id)
    assert link is not None and link.interaction_id is not None
    return offer, link.interaction_id


async def test_mail_in_offer_reply_out_and_the_answer_threads_back(mail_stack: Any) -> None:
    stack, recorder, _, sink = mail_stack
    offer, interaction = await accepted_by_alice(
        mail_stack, customer_mail("Invoice 42 is wrong", "I was billed twice.")
    )
    listener = stack.runtime.mail_listener
    status, thread = await stack.get(f"/api/interactions/{interaction}/emails")
    assert status == 200
    assert [m["subject"] for m in thread["messages"]] == ["Invoice 42 is wrong"]
    assert thread["messages"][0]["text"].strip() == "I was billed twice."

    status, result = await stack.post(
        f"/api/interactions/{interaction}/reply",
        {"text": "Sorry! We refunded the second charge.", "agent_name": "Alice"},
    )
    assert status == 201, result
    assert result["completed_task"] == offer.task_id
    await asyncio.wait_for(sink.arrived.wait(), 10)
    (sent,) = sink.messages
    assert sent["To"] == "ada@analytical.example"
    assert sent["Subject"] == "Re: Invoice 42 is wrong"
    assert sent["In-Reply-To"] == "<q1@analytical.example>"
    assert "refunded" in sent.get_content()
    await recorder.wait_for(
        lambda e: isinstance(e, model.TaskCompleted) and e.task_id == offer.task_id
    )

    # The customer answers our reply: same interaction, a new task.
    answer = customer_mail(
        "Re: Re: Invoice 42 is wrong",
        "Thanks, received.",
        message_id="<q2@analytical.example>",
        In_Reply_To=sent["Message-ID"],
    )
    await send(listener.port, answer)
    second = await recorder.wait_for(
        lambda e: isinstance(e, model.ReservationOffered) and e.task_id != offer.task_id
    )
    link2 = await stack.runtime.routing.journal.task(second.task_id)  # type: ignore[union-attr]
    assert link2 is not None and link2.interaction_id == interaction
    status, thread = await stack.get(f"/api/interactions/{interaction}/emails")
    assert [m["direction"] for m in thread["messages"]] == ["inbound", "outbound", "inbound"]


async def test_mail_for_another_domain_is_refused_at_smtp(mail_stack: Any) -> None:
    stack, recorder, _, _ = mail_stack
    listener = stack.runtime.mail_listener
    message = customer_mail("hello", "hi")
    message.replace_header("To", "someone@elsewhere.example")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        await send(listener.port, message)
    assert info.value.recipients[0].code == 550
    assert not any(isinstance(e, model.TaskQueued) for e in recorder.events)


async def test_reply_with_no_text_is_a_400_and_sends_nothing(mail_stack: Any) -> None:
    stack, _, _, sink = mail_stack
    status, body = await stack.post("/api/interactions/1/reply", {"text": "  "})
    assert status == 400 and body["message"].startswith("text: required")
    status, body = await stack.post("/api/interactions/999/reply", {"text": "hi"})
    assert status == 404
    assert sink.messages == []


@pytest.mark.parametrize("retry_every", [0.2])
async def test_a_reply_the_relay_refused_is_sent_by_the_outbox(mail_stack: Any) -> None:
    """The relay answers 451 (try later): the reply is stored as failed, and the
    outbox sends it again, the same message, once the relay takes it."""
    stack, _, _, sink = mail_stack
    _, interaction = await accepted_by_alice(
        mail_stack, customer_mail("Where is my order?", "Order 7 is late.")
    )

    sink.refusals = 2  # the first send and the outbox's first retry are refused
    status, result = await stack.post(
        f"/api/interactions/{interaction}/reply",
        {"text": "It left the warehouse today.", "agent_name": "Alice"},
    )
    # The agent is told it did not leave (502, the reply stored as failed).
    assert (status, result["reply"]["status"]) == (502, "failed"), result
    await asyncio.wait_for(sink.arrived.wait(), 10)
    (sent,) = sink.messages
    assert "warehouse" in sent.get_content()
    status, thread = await stack.get(f"/api/interactions/{interaction}/emails")
    (reply,) = [m for m in thread["messages"] if m["direction"] == "outbound"]
    assert reply["message_id"] == sent["Message-ID"]
    stored = await stack.runtime.mail_store.by_message_id(reply["message_id"])
    assert stored is not None and (stored.status, stored.attempts) == ("sent", 3)
