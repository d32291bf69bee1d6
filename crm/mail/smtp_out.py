"""Outbound mail: an agent's reply, stored first, then sent by SMTP (aiosmtplib).

``send_reply`` builds the reply (From the agent's name at our address, To the
customer, "Re: <subject>" without stacking, a Message-ID on our domain, In-Reply-To
and References chaining the parent), stores it as ``queued``, sends it and marks it
``sent`` or ``failed`` with the SMTP error. The outbox (``retry_due``, run by the
runtime every ``[email.outbound] retry_every`` seconds) sends again the failed
ones that have attempts left and the ones a stop left ``queued`` (the stored
bytes, so the same Message-ID: a receiver that got one already can tell);
``retry_failed()`` sends every failed one once, attempts or not.
The customer's answer to the reply threads onto the same interaction because the
reply's Message-ID is stored on it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final, Protocol

import aiosmtplib

from crm.mail.errors import ReplyError
from crm.mail.parse import parse_email
from crm.mail.repository import MailStore, StoredEmail
from store.errors import NotFoundError
from store.types import utc_now

__all__ = ["MailSender", "Revealable", "reply_subject"]

log = logging.getLogger(__name__)

_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_MAX_REFERENCES: Final = 20
# Seconds a reply may stay ``queued`` before the outbox takes it for interrupted
# (at least the SMTP timeout: a send in progress is never taken).
INTERRUPTED_AFTER: Final = 120.0


class Revealable(Protocol):
    """A secret holder such as ``callwright.config.Secret``."""

    def reveal(self) -> str: ...


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` with any existing Re:/AW:/SV:/Antw: prefixes folded into one."""
    base = _REPLY_PREFIX.sub("", " ".join(subject.split()))
    return f"Re: {base}" if base else "Re:"


def _one_line(value: str) -> str:
    return " ".join(value.split())


class MailSender:
    def __init__(
        self,
        store: MailStore,
        *,
        host: str,
        port: int,
        from_address: str,
        starttls: bool = False,
        username: str | None = None,
        password: Revealable | str | None = None,
        timeout: float = 30.0,
        message_id_domain: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if "@" not in from_address:
            raise ValueError(f"from_address is not an e-mail address: {from_address!r}")
        self._store = store
        self._host = host
        self._port = port
        self._from = from_address.strip()
        self._starttls = starttls
        self._username = username
        self._password = password
        self._timeout = timeout
        self._domain = message_id_domain or self._from.rpartition("@")[2]
        self._clock = clock
        if username and not starttls:
            log.warning(
                "SMTP credentials for %s:%d will be sent without STARTTLS", self._host, port
            )

    def __repr__(self) -> str:
        return (
            f"MailSender(host={self._host!r}, port={self._port}, from_address={self._from!r}, "
            f"starttls={self._starttls}, username={self._username!r}, password='***')"
        )

    def _secret(self) -> str | None:
        if self._password is None:
            return None
        if isinstance(self._password, str):
            return self._password
        return self._password.reveal() or None

    async def send_reply(
        self,
        interaction_id: int,
        agent_display_name: str,
        text_body: str,
        *,
        in_reply_to_pk: int,
    ) -> StoredEmail:
        """Reply on ``interaction_id`` to its message ``in_reply_to_pk``. Returns the stored
        reply, ``sent`` or ``failed`` (with ``status_reason``); a failed send is not an
        exception. NotFoundError for an unknown message, ReplyError if it is not on that
        interaction or has no address to answer."""
        parent = await self._store.get(in_reply_to_pk)
        if parent is None:
            raise NotFoundError("email", in_reply_to_pk)
        if parent.interaction_id != interaction_id:
            raise ReplyError(
                f"email {in_reply_to_pk} is on interaction {parent.interaction_id}, "
                f"not {interaction_id}"
            )
        recipient = parent.from_addr if parent.direction == "inbound" else None
        if parent.direction == "outbound" and parent.to_addrs:
            recipient = parent.to_addrs[0]
        if not recipient:
            raise ReplyError(f"email {in_reply_to_pk} has no address to reply to")

        message = EmailMessage(policy=policy.SMTP)
        message["From"] = Address(display_name=_one_line(agent_display_name), addr_spec=self._from)
        message["To"] = recipient
        message["Subject"] = reply_subject(parent.subject)
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = f"<{uuid.uuid4().hex}@{self._domain}>"
        message["In-Reply-To"] = parent.message_id
        chain = list(parent.references or ((parent.in_reply_to,) if parent.in_reply_to else ()))
        chain.append(parent.message_id)
        if len(chain) > _MAX_REFERENCES:  # keep the thread's root and the newest ones
            chain = [chain[0], *chain[-(_MAX_REFERENCES - 1) :]]
        message["References"] = " ".join(dict.fromkeys(chain))
        message.set_content(text_body)
        raw = message.as_bytes()

        parsed = parse_email(raw)
        stored = await self._store.record_outbound(
            interaction_id, parsed, raw, envelope_from=self._from, envelope_to=(recipient,)
        )
        return await self._deliver(stored, raw)

    async def retry_due(
        self, *, max_attempts: int, interrupted_after: float = INTERRUPTED_AFTER
    ) -> list[StoredEmail]:
        """The outbox, one pass: replies still ``queued`` ``interrupted_after``
        seconds after they were stored (Callwright stopped before sending them;
        a send gives up after ``timeout``) become ``failed``; then every
        ``failed`` reply sent fewer than ``max_attempts`` times is sent again,
        once. The results in id order."""
        now = self._clock()
        interrupted = await self._store.fail_interrupted(
            now - timedelta(seconds=max(interrupted_after, self._timeout))
        )
        if interrupted:
            log.warning("outbox: %d reply(ies) left unsent by a stop, sending now", interrupted)
        return await self.retry_failed(max_attempts=max_attempts)

    async def retry_failed(self, *, max_attempts: int | None = None) -> list[StoredEmail]:
        """Send every ``failed`` outbound message (sent fewer than ``max_attempts``
        times, if given) again, once; the results in id order."""
        results: list[StoredEmail] = []
        for failed in await self._store.failed_outbound():
            if max_attempts is not None and failed.attempts >= max_attempts:
                continue
            if not await self._store.claim_retry(failed.id):
                continue
            raw = await self._store.read_raw(failed.id)
            results.append(await self._deliver(failed, raw))
        return results

    async def _deliver(self, stored: StoredEmail, raw: bytes) -> StoredEmail:
        recipients = list(stored.envelope_to or stored.to_addrs)
        try:
            await aiosmtplib.send(
                raw,
                sender=stored.envelope_from or self._from,
                recipients=recipients,
                hostname=self._host,
                port=self._port,
                start_tls=self._starttls,
                username=self._username,
                password=self._secret(),
                timeout=self._timeout,
            )
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
            reason = f"{type(error).__name__}: {error}"
            log.warning(
                "sending email %d (%s) via %s:%d failed: %s",
                stored.id,
                stored.message_id,
                self._host,
                self._port,
                reason,
            )
            return await self._store.mark_failed(stored.id, reason)
        log.info("sent email %d (%s) to %s", stored.id, stored.message_id, ", ".join(recipients))
        return await self._store.mark_sent(stored.id)
