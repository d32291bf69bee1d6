from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.mail import MailListener, MailStore, StoredEmail
from crm.mail.persistence import email_attachments, email_messages
from crm.repository import CustomerRepository, InteractionRepository
from store import make_engine, sqlite_url
from tests.mail.conftest import SUPPORT, TIMEOUT, Inbox, StartListener, make_email, send


async def _count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()  # type: ignore[arg-type]


def _files(data_dir: Path) -> list[Path]:
    root = data_dir / "mail"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _put_a_file_where_the_mail_directory_goes(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "mail").write_bytes(b"not a directory")


async def test_plain_email_from_a_known_customer_opens_an_interaction_linked_to_them(
    engine: AsyncEngine, mail_store: MailStore, listener: MailListener, inbox: Inbox
) -> None:
    ann = await CustomerRepository(engine).create("Ann Customer", emails=["ANN@example.com"])
    seen_in_callback: list[StoredEmail | None] = []

    async def row_is_committed(stored: StoredEmail) -> None:
        # A separate connection sees the row: it was committed before the callback.
        seen_in_callback.append(await MailStore(engine, mail_store.data_dir).get(stored.id))

    inbox.check = row_is_committed

    reply = await send(listener.port, make_email(message_id="<m1@example.com>"))

    stored = await inbox.next()
    assert reply.startswith("2.0.0 Stored as")
    assert seen_in_callback == [stored]
    assert stored.customer_id == ann.id
    assert stored.new_interaction
    assert stored.message_id == "<m1@example.com>"
    assert stored.from_addr == "ann@example.com"
    assert stored.from_name == "Ann Customer"
    assert stored.subject == "Printer broken"
    assert stored.text_body == "My printer is broken.\n"
    assert stored.status == "received"
    assert stored.envelope_to == (SUPPORT,)
    interaction = await InteractionRepository(engine).get(stored.interaction_id)
    assert interaction is not None
    assert (interaction.channel, interaction.direction) == ("email", "inbound")
    assert interaction.customer_id == ann.id
    assert interaction.subject == "Printer broken"


async def test_email_from_an_unknown_sender_is_stored_without_a_customer(
    engine: AsyncEngine, listener: MailListener, inbox: Inbox
) -> None:
    await send(listener.port, make_email(sender="stranger@example.org"), sender="x@y.org")

    stored = await inbox.next()
    assert stored.customer_id is None
    assert stored.envelope_from == "x@y.org"
    assert await CustomerRepository(engine).find_by_email("stranger@example.org") is None


async def test_reply_with_in_reply_to_threads_onto_the_same_interaction(
    listener: MailListener, inbox: Inbox, mail_store: MailStore
) -> None:
    await send(listener.port, make_email(message_id="<first@example.com>"))
    first = await inbox.next()

    await send(
        listener.port,
        make_email(
            subject="Re: Printer broken",
            body="Still broken.",
            message_id="<second@example.com>",
            in_reply_to="<first@example.com>",
        ),
    )
    second = await inbox.next()

    assert second.interaction_id == first.interaction_id
    assert not second.new_interaction
    thread = await mail_store.thread(first.interaction_id)
    assert [m.message_id for m in thread] == ["<first@example.com>", "<second@example.com>"]


async def test_references_alone_thread_the_email_using_the_newest_known_id(
    listener: MailListener, inbox: Inbox
) -> None:
    await send(listener.port, make_email(message_id="<a@example.com>"))
    first = await inbox.next()
    await send(listener.port, make_email(subject="Another matter", message_id="<b@example.com>"))
    other = await inbox.next()
    assert other.interaction_id != first.interaction_id

    await send(
        listener.port,
        make_email(
            subject="Fwd: whatever",
            message_id="<c@example.com>",
            references="<a@example.com> <unknown@elsewhere> <b@example.com> <gone@x>",
        ),
    )
    follow_up = await inbox.next()

    assert follow_up.interaction_id == other.interaction_id
    assert follow_up.references[-1] == "<gone@x>"


async def test_same_subject_without_threading_headers_opens_a_new_interaction(
    listener: MailListener, inbox: Inbox
) -> None:
    await send(listener.port, make_email(message_id="<one@example.com>"))
    first = await inbox.next()
    await send(listener.port, make_email(subject="Re: Printer broken", message_id="<two@x>"))
    second = await inbox.next()

    assert second.interaction_id != first.interaction_id
    assert second.new_interaction


async def test_attachments_are_kept_byte_for_byte_under_safe_names(
    listener: MailListener, inbox: Inbox, mail_store: MailStore, data_dir: Path
) -> None:
    message = make_email()
    payloads = {
        "../../etc/passwd": b"root:x:0:0:root:/root:/bin/bash\n",
        "C:\\x\\evil.exe": b"MZ\x90\x00" + bytes(range(256)) * 64,
        "report.pdf": b"%PDF-1.4\r\n\x00\xff binary \r\n.\r\n..\r\n",
    }
    for name, data in payloads.items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)

    await send(listener.port, message)
    stored = await inbox.next()

    assert [a.filename for a in stored.attachments] == ["passwd", "evil.exe", "report.pdf"]
    mail_root = (data_dir / "mail").resolve()
    for meta, original in zip(stored.attachments, payloads.values(), strict=True):
        found, path = await mail_store.attachment(meta.id)
        assert found == meta
        assert path.is_relative_to(mail_root)
        assert path.read_bytes() == original
        assert meta.size == len(original)
        assert meta.sha256 == hashlib.sha256(original).hexdigest()
    names = {p.name for p in _files(data_dir)}
    assert not names & {"passwd", "evil.exe", "report.pdf"}
    assert not any(p.name.endswith(".tmp") for p in _files(data_dir))
    assert (await mail_store.read_raw(stored.id)) == mail_store.raw_file(stored).read_bytes()


async def test_oversized_message_is_refused_with_552_and_nothing_is_stored(
    engine: AsyncEngine, start_listener: StartListener, inbox: Inbox, data_dir: Path
) -> None:
    listener = await start_listener(max_message_bytes=20_000)
    big = make_email(body="x" * 30_000).as_bytes()

    # A client that declares the size (aiosmtplib does, from the SIZE extension).
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as declared:
        await send(listener.port, big)
    # A client that does not: refused after the data.
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=TIMEOUT)
    await client.connect(start_tls=False)
    try:
        await client.ehlo()
        await client.mail("ann@example.com")
        await client.rcpt(SUPPORT)
        with pytest.raises(aiosmtplib.SMTPDataError) as undeclared:
            await client.data(big)
    finally:
        await client.quit()

    for error in (declared.value, undeclared.value):
        assert error.code == 552
        assert error.message == "5.3.4 Message too big"
    assert await _count(engine, email_messages) == 0
    assert _files(data_dir) == []
    assert inbox.calls == 0


async def test_size_limit_is_announced_in_the_ehlo_reply(start_listener: StartListener) -> None:
    listener = await start_listener(max_message_bytes=20_000)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=TIMEOUT)
    await client.connect(start_tls=False)
    try:
        await client.ehlo()
        assert client.esmtp_extensions["size"] == "20000"
    finally:
        await client.quit()


async def test_recipient_in_an_unknown_domain_is_refused_with_550(
    engine: AsyncEngine, listener: MailListener, inbox: Inbox
) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(listener.port, make_email(), recipients=["support@elsewhere.example"])

    (error,) = refused.value.recipients
    assert error.code == 550
    assert error.message.startswith("5.1.1")
    assert await _count(engine, email_messages) == 0


async def test_listener_without_accept_domains_takes_any_recipient(
    start_listener: StartListener, inbox: Inbox
) -> None:
    listener = await start_listener()
    await send(listener.port, make_email(), recipients=["anyone@anywhere.example"])

    assert (await inbox.next()).envelope_to == ("anyone@anywhere.example",)


async def test_malformed_mime_is_stored_with_its_problem_and_accepted(
    listener: MailListener, inbox: Inbox, mail_store: MailStore
) -> None:
    raw = (
        b"From: ann@example.com\r\n"
        b"To: support@callwright.example\r\n"
        b"Subject: broken \xff\xfe bytes\r\n"
        b"Content-Type: multipart/mixed\r\n"  # no boundary
        b"\r\n"
        b"Please help, my order 123 never came.\r\n"
    )

    reply = await send(listener.port, raw)
    stored = await inbox.next()

    assert reply.startswith("2.0.0")
    assert stored.problem is not None
    assert "NoBoundaryInMultipartDefect" in stored.problem
    assert "generated" in stored.problem  # no Message-ID was given
    assert stored.message_id.endswith("@callwright.invalid>")
    assert stored.text_body is not None and "order 123" in stored.text_body
    assert stored.subject == "broken \ufffd\ufffd bytes"
    assert await mail_store.read_raw(stored.id) == raw


async def test_html_and_script_are_kept_as_data(listener: MailListener, inbox: Inbox) -> None:
    html = '<p onclick="steal()">Hi</p><script>alert(document.cookie)</script>'
    message = make_email()
    message.add_alternative(html, subtype="html")

    await send(listener.port, message)
    stored = await inbox.next()

    assert stored.html_body == html + "\n"
    assert stored.text_body == "My printer is broken.\n"


async def test_callback_failure_still_stores_answers_250_and_leaves_the_email_unrouted(
    listener: MailListener,
    inbox: Inbox,
    mail_store: MailStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox.fail_with = RuntimeError("routing is down")

    with caplog.at_level(logging.ERROR, logger="crm.mail.smtp_in"):
        reply = await send(listener.port, make_email(message_id="<kept@example.com>"))
    stored = await inbox.next()

    assert reply.startswith("2.0.0 Stored as")
    assert await mail_store.get(stored.id) == stored
    assert [m.id for m in await mail_store.unrouted()] == [stored.id]
    assert "routing is down" in caplog.text

    await mail_store.mark_routed(stored.id)
    assert await mail_store.unrouted() == []


async def test_storage_failure_answers_451_and_the_retry_is_stored(
    engine: AsyncEngine, listener: MailListener, inbox: Inbox, data_dir: Path
) -> None:
    _put_a_file_where_the_mail_directory_goes(data_dir)  # the disk refuses our files

    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(listener.port, make_email(message_id="<retry@example.com>"))

    assert refused.value.code == 451
    assert refused.value.message.startswith("4.3.0")
    assert await _count(engine, email_messages) == 0
    assert inbox.calls == 0

    (data_dir / "mail").unlink()  # the sender retries later
    await send(listener.port, make_email(message_id="<retry@example.com>"))
    assert (await inbox.next()).message_id == "<retry@example.com>"


async def test_database_failure_answers_451_and_leaves_no_files(tmp_path: Path) -> None:
    unmigrated = make_engine(sqlite_url(tmp_path / "db"))  # no tables: every insert fails
    inbox = Inbox()
    listener = MailListener(MailStore(unmigrated, tmp_path / "data"), inbox, port=0)
    await listener.start()
    try:
        message = make_email()
        message.add_attachment(b"data", maintype="application", subtype="pdf", filename="a.pdf")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await send(listener.port, message)
    finally:
        await listener.stop()
        await unmigrated.dispose()

    assert refused.value.code == 451
    assert _files(tmp_path / "data") == []
    assert inbox.calls == 0


async def test_duplicate_delivery_is_accepted_once(
    engine: AsyncEngine, listener: MailListener, inbox: Inbox
) -> None:
    message = make_email(message_id="<twice@example.com>")
    await send(listener.port, message)
    first = await inbox.next()

    reply = await send(listener.port, message)

    assert reply == f"2.0.0 Already stored as {first.id}"
    assert inbox.calls == 1
    assert await _count(engine, email_messages) == 1


async def test_several_recipients_of_one_message_make_one_stored_email(
    engine: AsyncEngine, listener: MailListener, inbox: Inbox
) -> None:
    recipients = [SUPPORT, "sales@callwright.example"]
    message = make_email()
    message.add_attachment(b"1", maintype="text", subtype="plain", filename="one.txt")

    await send(listener.port, message, recipients=recipients)

    assert (await inbox.next()).envelope_to == tuple(recipients)
    assert await _count(engine, email_messages) == 1
    assert await _count(engine, email_attachments) == 1


async def test_stop_closes_open_sessions_and_frees_the_port(
    start_listener: StartListener,
) -> None:
    listener = await start_listener()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=TIMEOUT)
    await client.connect(start_tls=False)
    await client.ehlo()

    await listener.stop()

    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await client.noop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await send(listener.port, make_email())
    client.close()
