from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.mail import MailStore, parse_email
from crm.mail.persistence import email_attachments
from crm.repository import CustomerRepository, InteractionRepository
from store.errors import NotFoundError
from tests.mail.conftest import make_email
from tests.store.conftest import FakeClock


def _raw(**headers: str) -> bytes:
    return make_email(**headers).as_bytes()


def _leftovers(data_dir: Path) -> list[Path]:
    root = data_dir / "mail"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def store(engine: AsyncEngine, data_dir: Path, clock: FakeClock) -> MailStore:
    return MailStore(engine, data_dir, clock=clock)


async def test_received_time_comes_from_the_clock_and_opens_the_interaction_then(
    engine: AsyncEngine, store: MailStore, clock: FakeClock
) -> None:
    raw = _raw(message_id="<t@x>")
    stored = await store.store_inbound(parse_email(raw), raw)

    assert stored.received_at == clock.now
    interaction = await InteractionRepository(engine).get(stored.interaction_id)
    assert interaction is not None and interaction.started_at == clock.now
    assert stored.raw_size == len(raw)
    assert store.raw_file(stored).read_bytes() == raw


async def test_same_message_id_with_other_content_is_kept_under_a_new_id(
    store: MailStore,
) -> None:
    first_raw = _raw(message_id="<reused@x>", body="one")
    second_raw = _raw(message_id="<reused@x>", body="two")
    first = await store.store_inbound(parse_email(first_raw), first_raw)

    second = await store.store_inbound(parse_email(second_raw), second_raw)

    assert not second.duplicate
    assert second.id != first.id
    assert second.message_id.endswith("@callwright.invalid>")
    assert second.problem is not None and "<reused@x> already used" in second.problem
    assert second.text_body == "two\n"


async def test_follow_up_keeps_the_interaction_customer_and_a_long_subject(
    engine: AsyncEngine, store: MailStore
) -> None:
    ann = await CustomerRepository(engine).create("Ann", emails=["ann@example.com"])
    subject = "Very long " * 50
    first_raw = _raw(message_id="<long@x>", subject=subject)
    first = await store.store_inbound(parse_email(first_raw), first_raw)
    other_raw = _raw(message_id="<cc@x>", sender="colleague@example.com", in_reply_to="<long@x>")

    follow_up = await store.store_inbound(parse_email(other_raw), other_raw)

    assert first.subject == subject.strip()
    interaction = await InteractionRepository(engine).get(first.interaction_id)
    assert interaction is not None and interaction.subject == subject.strip()[:300]
    assert follow_up.interaction_id == first.interaction_id
    assert follow_up.customer_id == ann.id
    assert follow_up.from_addr == "colleague@example.com"


async def test_unrouted_lists_inbound_mail_oldest_first_until_marked(
    store: MailStore, clock: FakeClock
) -> None:
    first_raw = _raw(message_id="<u1@x>")
    first = await store.store_inbound(parse_email(first_raw), first_raw)
    clock.advance(5)
    second_raw = _raw(message_id="<u2@x>")
    second = await store.store_inbound(parse_email(second_raw), second_raw)

    assert [m.id for m in await store.unrouted()] == [first.id, second.id]
    routed = await store.mark_routed(first.id)

    assert routed.routed_at == clock.now
    assert [m.id for m in await store.unrouted()] == [second.id]


async def test_outbound_on_an_unknown_interaction_is_refused_and_leaves_no_file(
    store: MailStore, data_dir: Path
) -> None:
    raw = _raw(message_id="<out@x>")

    with pytest.raises(NotFoundError):
        await store.record_outbound(
            12345, parse_email(raw), raw, envelope_from="a@b.c", envelope_to=["d@e.f"]
        )

    assert _leftovers(data_dir) == []


async def test_unknown_ids_raise_not_found(store: MailStore) -> None:
    assert await store.get(404) is None
    with pytest.raises(NotFoundError):
        await store.attachment(404)
    with pytest.raises(NotFoundError):
        await store.mark_sent(404)
    with pytest.raises(NotFoundError):
        await store.read_raw(404)


async def test_a_tampered_attachment_path_is_not_followed(
    engine: AsyncEngine, store: MailStore
) -> None:
    message = make_email(message_id="<tamper@x>")
    message.add_attachment(b"x", maintype="text", subtype="plain", filename="a.txt")
    raw = message.as_bytes()
    stored = await store.store_inbound(parse_email(raw), raw)
    (meta,) = stored.attachments
    async with engine.begin() as conn:
        await conn.execute(
            update(email_attachments)
            .where(email_attachments.c.id == meta.id)
            .values(path="mail/../../../etc/passwd")
        )

    with pytest.raises(ValueError, match="outside the mail directory"):
        await store.attachment(meta.id)
