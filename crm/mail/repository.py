"""``MailStore``: e-mail messages on interactions, their files, their delivery states.

Inbound: ``store_inbound`` writes the raw message and the attachments to files first,
then, in one transaction, threads the message (``crm.mail.threading``) onto an
existing interaction or creates a new ``email``/``inbound`` interaction, and inserts
the message and attachment rows. If the transaction fails the files are removed
(unless the failure came during the commit itself, when the outcome is unknown: an
orphan file is harmless, a row without its file is not).

Outbound: ``record_outbound`` stores a message as ``queued``; ``mark_sent`` and
``mark_failed`` record the outcome; ``claim_retry`` moves one ``failed`` message back
to ``queued`` (only one caller wins).

An e-mail interaction is open (``ended_at`` NULL) while the customer waits for an
answer: a reply marked sent ends it, a follow-up from the customer opens it again.

The sender's customer is found with ``CustomerRepository.find_by_email``; unknown
senders are not created as customers: their interaction has ``customer_id`` NULL.
A follow-up keeps its interaction's customer.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, cast

from sqlalchemy import Select, exc, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm.mail.files import Kind, MailFiles, StoredFile
from crm.mail.parse import GENERATED_ID_DOMAIN, ParsedEmail, clean_text
from crm.mail.persistence import email_attachments, email_messages
from crm.mail.threading import candidate_ids, find_thread
from crm.persistence import interactions
from crm.repository import CustomerRepository, Direction
from store.errors import NotFoundError
from store.types import as_utc, utc_now

__all__ = ["EMAIL_STATUSES", "AttachmentMeta", "EmailStatus", "MailStore", "StoredEmail"]

log = logging.getLogger(__name__)

EmailStatus = Literal["received", "queued", "sent", "failed"]
EMAIL_STATUSES: Final[tuple[EmailStatus, ...]] = ("received", "queued", "sent", "failed")
_MAX_REASON: Final = 2000
# The reason of a reply that was stored but never sent (Callwright stopped first).
INTERRUPTED: Final = "interrupted: Callwright stopped before sending it"
_MAX_INTERACTION_SUBJECT: Final = 300


@dataclass(frozen=True)
class AttachmentMeta:
    id: int
    email_id: int
    position: int
    filename: str
    content_type: str
    size: int
    sha256: str
    path: str
    """Relative to the data directory; ``MailStore.attachment`` gives the absolute path."""


@dataclass(frozen=True)
class StoredEmail:
    id: int
    interaction_id: int
    customer_id: int | None
    """The interaction's customer (None for an unknown sender)."""
    direction: Direction
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    new_interaction: bool
    """True when this message opened its interaction, False for a follow-up or reply."""
    from_addr: str | None
    from_name: str | None
    reply_to: tuple[str, ...]
    to_addrs: tuple[str, ...]
    cc_addrs: tuple[str, ...]
    envelope_from: str | None
    envelope_to: tuple[str, ...]
    subject: str
    text_body: str | None
    html_body: str | None
    """Stored as received; never rendered by Callwright's mail code."""
    header_date: datetime | None
    received_at: datetime
    """When the row was stored (for outbound mail: when it was queued)."""
    status: EmailStatus
    status_reason: str | None
    attempts: int
    sent_at: datetime | None
    routed_at: datetime | None
    raw_path: str
    raw_sha256: str
    raw_size: int
    problem: str | None
    attachments: tuple[AttachmentMeta, ...] = ()
    duplicate: bool = field(default=False, compare=False)
    """Only on ``store_inbound``'s result: the same message (same Message-ID, same bytes)
    was already stored; this is that row and nothing new was written."""


def _lines(values: Iterable[str]) -> str:
    return "\n".join(clean_text(v).replace("\n", " ") for v in values)


def _split(text: str | None, sep: str = "\n") -> tuple[str, ...]:
    return tuple(v for v in (text or "").split(sep) if v)


def _email(row: Row[Any], attachments: tuple[AttachmentMeta, ...]) -> StoredEmail:
    return StoredEmail(
        id=row.id,
        interaction_id=row.interaction_id,
        customer_id=row.customer_id,
        direction=cast(Direction, row.direction),
        message_id=row.message_id,
        in_reply_to=row.in_reply_to,
        references=_split(row.reference_ids, " "),
        new_interaction=bool(row.opens_interaction),
        from_addr=row.from_addr,
        from_name=row.from_name,
        reply_to=_split(row.reply_to),
        to_addrs=_split(row.to_addrs),
        cc_addrs=_split(row.cc_addrs),
        envelope_from=row.envelope_from,
        envelope_to=_split(row.envelope_to),
        subject=row.subject,
        text_body=row.text_body,
        html_body=row.html_body,
        header_date=row.header_date,
        received_at=row.received_at,
        status=cast(EmailStatus, row.status),
        status_reason=row.status_reason,
        attempts=row.attempts,
        sent_at=row.sent_at,
        routed_at=row.routed_at,
        raw_path=row.raw_path,
        raw_sha256=row.raw_sha256,
        raw_size=row.raw_size,
        problem=row.problem,
        attachments=attachments,
    )


def _attachment(row: Row[Any]) -> AttachmentMeta:
    return AttachmentMeta(
        id=row.id,
        email_id=row.email_id,
        position=row.position,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        path=row.path,
    )


def _join_problems(*parts: str | None) -> str | None:
    return "; ".join(p for p in parts if p) or None


class MailStore:
    def __init__(
        self,
        engine: AsyncEngine,
        data_dir: Path,
        *,
        clock: Callable[[], datetime] = utc_now,
        customers: CustomerRepository | None = None,
    ) -> None:
        self._engine = engine
        self._files = MailFiles(data_dir)
        self._clock = clock
        self._customers = customers or CustomerRepository(engine, clock=clock)

    @property
    def data_dir(self) -> Path:
        return self._files.data_dir

    # -- inbound ---------------------------------------------------------------------------

    async def store_inbound(
        self,
        parsed: ParsedEmail,
        raw: bytes,
        *,
        envelope_from: str | None = None,
        envelope_to: Sequence[str] = (),
    ) -> StoredEmail:
        """Store one received message (see the module docstring). Raises on a storage
        failure, with nothing stored; the caller answers the sender with a temporary
        failure so that it retries."""
        sender = parsed.from_addr
        customer = await self._customers.find_by_email(sender) if sender else None
        items: list[tuple[Kind, bytes]] = [("raw", raw)]
        items.extend(("attachments", a.data) for a in parsed.attachments)
        files = await asyncio.to_thread(self._files.write_all, items)
        paths = [f.path for f in files]
        values = self._message_values(parsed, files[0], envelope_from, envelope_to)
        values.update(direction="inbound", status="received", attempts=0)
        body_done = False
        try:
            for attempt in (1, 2):
                try:
                    async with self._engine.begin() as conn:
                        pk, duplicate = await self._insert_inbound(
                            conn, parsed, values, files, customer.id if customer else None
                        )
                        body_done = True
                    break
                except exc.IntegrityError:
                    # Another delivery of the same Message-ID committed first: look again.
                    body_done = False
                    if attempt == 2:
                        raise
        except BaseException:
            if not body_done:
                self._files.remove(paths)
            raise
        if duplicate:
            self._files.remove(paths)
        stored = await self.get(pk)
        assert stored is not None
        if duplicate:
            log.info("email %s already stored as %d: duplicate delivery", parsed.message_id, pk)
            return replace(stored, duplicate=True)
        log.info(
            "stored inbound email %d (%s) on interaction %d (%s)",
            stored.id,
            stored.message_id,
            stored.interaction_id,
            "new" if stored.new_interaction else "follow-up",
        )
        return stored

    async def _insert_inbound(
        self,
        conn: AsyncConnection,
        parsed: ParsedEmail,
        values: dict[str, Any],
        files: list[StoredFile],
        customer_id: int | None,
    ) -> tuple[int, bool]:
        values = dict(values)
        taken = (
            await conn.execute(
                select(email_messages.c.id, email_messages.c.raw_sha256).where(
                    email_messages.c.message_id == parsed.message_id
                )
            )
        ).first()
        if taken is not None:
            if taken.raw_sha256 == files[0].sha256:
                return taken.id, True
            fresh = f"<{uuid.uuid4().hex}@{GENERATED_ID_DOMAIN}>"
            values["message_id"] = fresh
            values["problem"] = _join_problems(
                values["problem"],
                f"Message-ID {parsed.message_id} already used by email {taken.id} "
                f"with other content; stored as {fresh}",
            )
        now = self._clock()
        candidates = candidate_ids(parsed)
        known: dict[str, int] = {}
        if candidates:
            rows = await conn.execute(
                select(email_messages.c.message_id, email_messages.c.interaction_id).where(
                    email_messages.c.message_id.in_(candidates)
                )
            )
            known = {row.message_id: row.interaction_id for row in rows}
        match = find_thread(parsed, known)
        if match is not None:
            interaction_id = match.interaction_id
            await conn.execute(
                update(interactions)
                .where(interactions.c.id == interaction_id)
                .values(ended_at=None)
            )
        else:
            result = await conn.execute(
                insert(interactions)
                .values(
                    channel="email",
                    direction="inbound",
                    customer_id=customer_id,
                    subject=parsed.subject[:_MAX_INTERACTION_SUBJECT] or None,
                    started_at=now,
                    created_at=now,
                )
                .returning(interactions.c.id)
            )
            interaction_id = result.scalar_one()
        values.update(
            interaction_id=interaction_id, opens_interaction=match is None, received_at=now
        )
        pk = await self._insert_message(conn, values, parsed, files)
        return pk, False

    async def _insert_message(
        self,
        conn: AsyncConnection,
        values: dict[str, Any],
        parsed: ParsedEmail,
        files: list[StoredFile],
    ) -> int:
        result = await conn.execute(
            insert(email_messages).values(**values).returning(email_messages.c.id)
        )
        pk: int = result.scalar_one()
        rows = [
            {
                "email_id": pk,
                "position": position,
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": stored.size,
                "sha256": stored.sha256,
                "path": stored.path,
            }
            for position, (attachment, stored) in enumerate(
                zip(parsed.attachments, files[1:], strict=True)
            )
        ]
        if rows:
            await conn.execute(insert(email_attachments), rows)
        return pk

    @staticmethod
    def _message_values(
        parsed: ParsedEmail,
        raw_file: StoredFile,
        envelope_from: str | None,
        envelope_to: Sequence[str],
    ) -> dict[str, Any]:
        return {
            "message_id": parsed.message_id,
            "in_reply_to": parsed.in_reply_to,
            "reference_ids": " ".join(parsed.references),
            "from_addr": parsed.from_addr,
            "from_name": parsed.from_name,
            "reply_to": _lines(parsed.reply_to),
            "to_addrs": _lines(parsed.to),
            "cc_addrs": _lines(parsed.cc),
            "envelope_from": None if envelope_from is None else clean_text(envelope_from),
            "envelope_to": _lines(envelope_to),
            "subject": parsed.subject,
            "text_body": parsed.text_body,
            "html_body": parsed.html_body,
            "header_date": parsed.date,
            "raw_path": raw_file.path,
            "raw_sha256": raw_file.sha256,
            "raw_size": raw_file.size,
            "problem": parsed.problem,
        }

    async def mark_routed(self, email_id: int, *, at: datetime | None = None) -> StoredEmail:
        """Record that the routing service made work out of this inbound message."""
        return await self._update(email_id, routed_at=as_utc(at) if at else self._clock())

    async def unrouted(self) -> list[StoredEmail]:
        """Inbound messages never marked routed, oldest first (for the service's startup)."""
        return await self._select(
            self._query()
            .where(
                email_messages.c.direction == "inbound",
                email_messages.c.routed_at.is_(None),
            )
            .order_by(email_messages.c.received_at, email_messages.c.id)
        )

    # -- outbound --------------------------------------------------------------------------

    async def record_outbound(
        self,
        interaction_id: int,
        parsed: ParsedEmail,
        raw: bytes,
        *,
        envelope_from: str | None,
        envelope_to: Sequence[str],
    ) -> StoredEmail:
        """Store a message we are about to send, as ``queued``; NotFoundError if the
        interaction does not exist."""
        files = await asyncio.to_thread(self._files.write_all, [("raw", raw)])
        values = self._message_values(parsed, files[0], envelope_from, envelope_to)
        values.update(
            direction="outbound",
            status="queued",
            attempts=0,
            interaction_id=interaction_id,
            opens_interaction=False,
            received_at=self._clock(),
        )
        body_done = False
        try:
            async with self._engine.begin() as conn:
                found = (
                    await conn.execute(
                        select(interactions.c.id).where(interactions.c.id == interaction_id)
                    )
                ).first()
                if found is None:
                    raise NotFoundError("interaction", interaction_id)
                pk = await self._insert_message(conn, values, parsed, files)
                body_done = True
        except BaseException:
            if not body_done:
                self._files.remove(f.path for f in files)
            raise
        stored = await self.get(pk)
        assert stored is not None
        return stored

    async def mark_sent(self, email_id: int, *, at: datetime | None = None) -> StoredEmail:
        sent_at = as_utc(at) if at else self._clock()
        stored = await self._update(
            email_id,
            status="sent",
            status_reason=None,
            sent_at=sent_at,
            attempts=email_messages.c.attempts + 1,
        )
        # Answered: the thread is no longer open (until the customer writes again).
        async with self._engine.begin() as conn:
            await conn.execute(
                update(interactions)
                .where(interactions.c.id == stored.interaction_id)
                .values(ended_at=sent_at)
            )
        return stored

    async def mark_failed(self, email_id: int, reason: str) -> StoredEmail:
        return await self._update(
            email_id,
            status="failed",
            status_reason=clean_text(reason)[:_MAX_REASON],
            attempts=email_messages.c.attempts + 1,
        )

    async def failed_outbound(self) -> list[StoredEmail]:
        return await self._select(
            self._query()
            .where(email_messages.c.direction == "outbound", email_messages.c.status == "failed")
            .order_by(email_messages.c.id)
        )

    async def fail_interrupted(self, queued_before: datetime) -> int:
        """Outbound messages still ``queued`` since before ``queued_before``:
        Callwright stopped between storing and sending them. Marked ``failed``
        (so the outbox sends them again); how many."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(email_messages)
                .where(
                    email_messages.c.direction == "outbound",
                    email_messages.c.status == "queued",
                    email_messages.c.received_at < queued_before,
                )
                .values(status="failed", status_reason=INTERRUPTED)
            )
            return int(result.rowcount or 0)

    async def claim_retry(self, email_id: int) -> bool:
        """Move a ``failed`` outbound message back to ``queued``; False if it is not
        failed any more (someone else claimed it, or it was sent)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(email_messages)
                .where(
                    email_messages.c.id == email_id,
                    email_messages.c.direction == "outbound",
                    email_messages.c.status == "failed",
                )
                .values(status="queued")
            )
            return result.rowcount == 1

    # -- reading ---------------------------------------------------------------------------

    async def get(self, email_id: int) -> StoredEmail | None:
        found = await self._select(self._query().where(email_messages.c.id == email_id))
        return found[0] if found else None

    async def by_message_id(self, message_id: str) -> StoredEmail | None:
        found = await self._select(self._query().where(email_messages.c.message_id == message_id))
        return found[0] if found else None

    async def thread(self, interaction_id: int) -> list[StoredEmail]:
        """Every message on the interaction, oldest first."""
        return await self._select(
            self._query()
            .where(email_messages.c.interaction_id == interaction_id)
            .order_by(email_messages.c.received_at, email_messages.c.id)
        )

    async def attachment(self, attachment_id: int) -> tuple[AttachmentMeta, Path]:
        """The attachment's metadata and the absolute path of its bytes; NotFoundError."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(email_attachments).where(email_attachments.c.id == attachment_id)
                )
            ).first()
        if row is None:
            raise NotFoundError("email attachment", attachment_id)
        meta = _attachment(row)
        return meta, self._files.resolve(meta.path)

    async def read_raw(self, email_id: int) -> bytes:
        """The message's RFC 5322 bytes as received (or as sent); NotFoundError."""
        stored = await self.get(email_id)
        if stored is None:
            raise NotFoundError("email", email_id)
        return await asyncio.to_thread(self._files.read, stored.raw_path)

    def raw_file(self, stored: StoredEmail) -> Path:
        return self._files.resolve(stored.raw_path)

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _query() -> Select[Any]:
        return select(email_messages, interactions.c.customer_id).join(
            interactions, interactions.c.id == email_messages.c.interaction_id
        )

    async def _select(self, query: Select[Any]) -> list[StoredEmail]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            if not rows:
                return []
            ids = [row.id for row in rows]
            attachment_rows = await conn.execute(
                select(email_attachments)
                .where(email_attachments.c.email_id.in_(ids))
                .order_by(email_attachments.c.email_id, email_attachments.c.position)
            )
            by_email: dict[int, list[AttachmentMeta]] = {}
            for row in attachment_rows:
                by_email.setdefault(row.email_id, []).append(_attachment(row))
        return [_email(row, tuple(by_email.get(row.id, ()))) for row in rows]

    async def _update(self, email_id: int, **values: Any) -> StoredEmail:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(email_messages).where(email_messages.c.id == email_id).values(**values)
            )
            if result.rowcount == 0:
                raise NotFoundError("email", email_id)
        stored = await self.get(email_id)
        assert stored is not None
        return stored
