from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.mail import MailListener, MailSender, MailStore, ReplyError, StoredEmail, reply_subject
from crm.mail.parse import parse_email
from crm.repository import CustomerRepository
from store.errors import NotFoundError
from tests.mail.conftest import SUPPORT, FakeClock, Inbox, Sink, make_email, send

AGENT = "Alice Martin"


def _sender(store: MailStore, port: int, **options: object) -> MailSender:
    return MailSender(
        store,
        host="127.0.0.1",
        port=port,
        from_address=SUPPORT,
        timeout=10.0,
        **options,  # type: ignore[arg-type]
    )


async def _inbound(listener: MailListener, inbox: Inbox, **headers: str) -> StoredEmail:
    headers.setdefault("message_id", "<question@example.com>")
    await send(listener.port, make_email(**headers))
    return await inbox.next()


async def test_reply_leaves_by_smtp_with_threading_headers_and_is_stored_as_sent(
    listener: MailListener, inbox: Inbox, mail_store: MailStore, sink: Sink
) -> None:
    question = await _inbound(
        listener, inbox, subject="RE: Re: Printer broken", references="<root@example.com>"
    )

    reply = await _sender(mail_store, sink.port).send_reply(
        question.interaction_id,
        AGENT,
        "Please try turning it off and on.",
        in_reply_to_pk=question.id,
    )

    captured = await sink.next()
    message = captured.message
    assert captured.mail_from == SUPPORT
    assert captured.rcpt_tos == ("ann@example.com",)
    assert str(message["From"]) == f"{AGENT} <{SUPPORT}>"
    assert str(message["To"]) == "ann@example.com"
    assert str(message["Subject"]) == "Re: Printer broken"
    assert str(message["In-Reply-To"]) == "<question@example.com>"
    assert str(message["References"]).split() == ["<root@example.com>", "<question@example.com>"]
    assert str(message["Message-ID"]).endswith("@callwright.example>")
    assert message.get_content().splitlines() == ["Please try turning it off and on."]

    assert reply.status == "sent"
    assert reply.text_body == "Please try turning it off and on.\n"
    assert reply.sent_at is not None
    assert reply.attempts == 1
    assert reply.direction == "outbound"
    assert reply.message_id == str(message["Message-ID"])
    assert reply.interaction_id == question.interaction_id
    thread = await mail_store.thread(question.interaction_id)
    assert [m.id for m in thread] == [question.id, reply.id]
    assert await mail_store.read_raw(reply.id) == captured.raw


async def test_customer_answer_to_our_reply_threads_back_onto_the_interaction(
    engine: AsyncEngine, listener: MailListener, inbox: Inbox, mail_store: MailStore, sink: Sink
) -> None:
    ann = await CustomerRepository(engine).create("Ann Customer", emails=["ann@example.com"])
    question = await _inbound(listener, inbox)
    reply = await _sender(mail_store, sink.port).send_reply(
        question.interaction_id, AGENT, "Which model?", in_reply_to_pk=question.id
    )
    ours = (await sink.next()).message

    answer = make_email(
        subject=str(ours["Subject"]),
        body="The X200.",
        message_id="<answer@example.com>",
        in_reply_to=str(ours["Message-ID"]),
        references=str(ours["References"]) + " " + str(ours["Message-ID"]),
    )
    await send(listener.port, answer)
    follow_up = await inbox.next()

    assert follow_up.interaction_id == question.interaction_id
    assert follow_up.customer_id == ann.id
    assert not follow_up.new_interaction
    thread = await mail_store.thread(question.interaction_id)
    assert [m.id for m in thread] == [question.id, reply.id, follow_up.id]
    assert [m.direction for m in thread] == ["inbound", "outbound", "inbound"]


async def test_unreachable_server_marks_the_reply_failed_and_retry_sends_it_later(
    listener: MailListener,
    inbox: Inbox,
    mail_store: MailStore,
    sink: Sink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    question = await _inbound(listener, inbox)
    port = sink.port
    await sink.stop()  # nothing listens on the port now: connection refused
    sender = _sender(mail_store, port, username="cw-relay", password="hunter2-secret")

    with caplog.at_level(logging.DEBUG):
        failed = await sender.send_reply(
            question.interaction_id, AGENT, "On its way.", in_reply_to_pk=question.id
        )

    assert failed.status == "failed"
    assert failed.status_reason is not None
    assert "SMTPConnectError" in failed.status_reason
    assert failed.attempts == 1
    assert [m.id for m in await mail_store.failed_outbound()] == [failed.id]
    assert "hunter2-secret" not in caplog.text
    assert "hunter2-secret" not in failed.status_reason
    assert "hunter2-secret" not in repr(sender)

    await sink.start(port)  # the relay is back
    retried = await _sender(mail_store, port).retry_failed()

    assert [m.id for m in retried] == [failed.id]
    (sent,) = retried
    assert sent.status == "sent"
    assert sent.status_reason is None
    assert sent.attempts == 2
    captured = await sink.next()
    assert str(captured.message["Message-ID"]) == failed.message_id
    assert await mail_store.failed_outbound() == []
    assert await _sender(mail_store, port).retry_failed() == []


async def test_a_failed_reply_is_retried_by_only_one_caller(
    listener: MailListener, inbox: Inbox, mail_store: MailStore, sink: Sink
) -> None:
    question = await _inbound(listener, inbox)
    port = sink.port
    await sink.stop()
    failed = await _sender(mail_store, port).send_reply(
        question.interaction_id, AGENT, "Hi", in_reply_to_pk=question.id
    )

    assert await mail_store.claim_retry(failed.id)
    assert not await mail_store.claim_retry(failed.id)
    assert (await mail_store.get(failed.id)).status == "queued"  # type: ignore[union-attr]


async def test_reply_to_a_message_of_another_interaction_is_refused(
    listener: MailListener, inbox: Inbox, mail_store: MailStore, sink: Sink
) -> None:
    first = await _inbound(listener, inbox, message_id="<one@example.com>")
    second = await _inbound(listener, inbox, message_id="<two@example.com>", subject="Other")
    sender = _sender(mail_store, sink.port)

    with pytest.raises(ReplyError):
        await sender.send_reply(first.interaction_id, AGENT, "x", in_reply_to_pk=second.id)
    with pytest.raises(NotFoundError):
        await sender.send_reply(first.interaction_id, AGENT, "x", in_reply_to_pk=99_999)
    assert sink.received.empty()
    assert [m.id for m in await mail_store.thread(first.interaction_id)] == [first.id]


async def test_agent_name_and_subject_cannot_inject_headers(
    listener: MailListener, inbox: Inbox, mail_store: MailStore, sink: Sink
) -> None:
    question = await _inbound(listener, inbox, subject="Help\tme")

    await _sender(mail_store, sink.port).send_reply(
        question.interaction_id,
        "Alice\r\nBcc: victim@example.org",
        "Body",
        in_reply_to_pk=question.id,
    )

    captured = await sink.next()
    assert captured.rcpt_tos == ("ann@example.com",)
    assert captured.message["Bcc"] is None
    assert str(captured.message["Subject"]) == "Re: Help me"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Printer broken", "Re: Printer broken"),
        ("Re: Printer broken", "Re: Printer broken"),
        ("RE: re:Re[2]: AW: Printer broken", "Re: Printer broken"),
        ("Fwd: Printer broken", "Re: Fwd: Printer broken"),
        ("Area 51", "Re: Area 51"),
        ("", "Re:"),
    ],
)
def test_reply_subject_does_not_stack_prefixes(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


async def test_the_outbox_sends_failed_replies_while_they_have_attempts_left(
    listener: MailListener, inbox: Inbox, mail_store: MailStore, sink: Sink
) -> None:
    question = await _inbound(listener, inbox)
    port = sink.port
    await sink.stop()  # the relay is down
    sender = _sender(mail_store, port)
    failed = await sender.send_reply(
        question.interaction_id, AGENT, "On its way.", in_reply_to_pk=question.id
    )
    assert (failed.status, failed.attempts) == ("failed", 1)
    (again,) = await sender.retry_due(max_attempts=3)  # down still: failed again
    assert (again.id, again.status, again.attempts) == (failed.id, "failed", 2)

    await sink.start(port)  # the relay is back
    assert await sender.retry_due(max_attempts=2) == []  # no attempts left: stays failed
    (sent,) = await sender.retry_due(max_attempts=3)
    assert (sent.id, sent.status, sent.attempts) == (failed.id, "sent", 3)
    captured = await sink.next()
    assert str(captured.message["Message-ID"]) == failed.message_id
    assert await sender.retry_due(max_attempts=3) == []


async def test_the_outbox_sends_a_reply_a_stop_left_unsent_and_only_that_one(
    listener: MailListener,
    inbox: Inbox,
    engine: AsyncEngine,
    data_dir: Path,
    sink: Sink,
    clock: FakeClock,
) -> None:
    """Stored as ``queued``, then Callwright stopped before sending it (the
    state ``send_reply`` leaves between its store and its send)."""
    question = await _inbound(listener, inbox)
    raw = make_email(
        sender=SUPPORT, to="ann@example.com", subject="Re: Hello", message_id="<left@x.example>"
    ).as_bytes()
    store = MailStore(engine, data_dir, clock=clock)
    queued = await store.record_outbound(
        question.interaction_id,
        parse_email(raw),
        raw,
        envelope_from=SUPPORT,
        envelope_to=("ann@example.com",),
    )
    assert queued.status == "queued"
    sender = _sender(store, sink.port, clock=clock)
    clock.advance(60)  # perhaps still being sent: left alone
    assert await sender.retry_due(max_attempts=3) == []
    clock.advance(120)
    (sent,) = await sender.retry_due(max_attempts=3)
    assert (sent.id, sent.status, sent.attempts) == (queued.id, "sent", 1)
    captured = await sink.next()
    assert str(captured.message["Message-ID"]) == "<left@x.example>"
