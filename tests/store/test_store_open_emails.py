"""Open e-mail threads (a screen-pop lists them): an e-mail interaction is open
while the customer waits for an answer; a reply sent ends it, a follow-up from
the customer opens it again. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from crm.mail.parse import parse_email
from crm.mail.repository import MailStore
from crm.repository import CustomerRepository, InteractionRepository

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def mail(message_id: str, subject: str, *, reply_to: str | None = None, out: bool = False) -> bytes:
    message = EmailMessage()
    message["From"] = "help@support.example" if out else "Ada <ada@example.com>"
    message["To"] = "ada@example.com" if out else "help@support.example"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    if reply_to is not None:
        message["In-Reply-To"] = reply_to
        message["References"] = reply_to
    message.set_content("text\n")
    return bytes(message)


async def test_open_emails_are_the_customers_unended_email_interactions_newest_first(
    engine: AsyncEngine,
) -> None:
    customers = CustomerRepository(engine)
    ada = await customers.create("Ada")
    other = await customers.create("Other")
    repo = InteractionRepository(engine)
    older = await repo.create(
        channel="email", direction="inbound", customer_id=ada.id, started_at=T0, subject="a"
    )
    newer = await repo.create(
        channel="email",
        direction="inbound",
        customer_id=ada.id,
        started_at=T0 + timedelta(hours=1),
        subject="b",
    )
    await repo.create(  # answered
        channel="email",
        direction="inbound",
        customer_id=ada.id,
        started_at=T0 + timedelta(hours=2),
        ended_at=T0 + timedelta(hours=3),
    )
    await repo.create(channel="voice", direction="inbound", customer_id=ada.id, started_at=T0)
    await repo.create(channel="email", direction="inbound", customer_id=other.id, started_at=T0)

    found = await repo.open_for_customer(ada.id)
    assert [i.id for i in found] == [newer.id, older.id]
    assert [i.id for i in await repo.open_for_customer(ada.id, limit=1)] == [newer.id]
    assert await repo.open_for_customer(ada.id, channel="voice") != []


async def test_a_reply_sent_ends_the_thread_and_a_follow_up_opens_it_again(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    customers = CustomerRepository(engine)
    ada = await customers.create("Ada", emails=["ada@example.com"])
    store = MailStore(engine, tmp_path / "mail", customers=customers)
    repo = InteractionRepository(engine)

    raw = mail("<q1@example.com>", "Invoice")
    first = await store.store_inbound(parse_email(raw), raw)
    assert [i.id for i in await repo.open_for_customer(ada.id)] == [first.interaction_id]

    answer = mail("<a1@support.example>", "Re: Invoice", reply_to="<q1@example.com>", out=True)
    reply = await store.record_outbound(
        first.interaction_id,
        parse_email(answer),
        answer,
        envelope_from="help@support.example",
        envelope_to=["ada@example.com"],
    )
    assert await repo.open_for_customer(ada.id) != []  # queued, not sent yet
    await store.mark_sent(reply.id)
    assert await repo.open_for_customer(ada.id) == []
    ended = await repo.get(first.interaction_id)
    assert ended is not None and ended.ended_at is not None

    again = mail("<q2@example.com>", "Re: Re: Invoice", reply_to="<a1@support.example>")
    follow_up = await store.store_inbound(parse_email(again), again)
    assert follow_up.interaction_id == first.interaction_id
    assert [i.id for i in await repo.open_for_customer(ada.id)] == [first.interaction_id]
