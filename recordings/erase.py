"""GDPR erasure of a customer, and the legal-hold routes.

``Eraser.erase(customer_id, actor=...)`` (``callwright customers erase <id>`` and
``POST /api/customers/{id}/erase``, admins only):

- refuses with ``LegalHoldActive`` (HTTP 409 ``legal_hold``) while an active legal hold
  names the customer or one of their interactions; nothing changes;
- deletes their recordings (those linked to the customer or to one of their
  interactions): file, then row, one audit row each (``recordings.erase``);
- deletes their e-mails' raw files and attachments (files and rows) and strips the
  messages (bodies, subject, addresses); the message rows stay for threading counts;
- removes personal data: the name becomes ``"erased"``, account number and notes are
  cleared, phones and e-mail addresses deleted; their interactions stay, anonymised
  (notes and subject cleared), and their call records lose the numbers and names;
- writes one ``customers.erase`` audit row with the counts, and returns the same
  report (``ErasureReport.as_dict()``).

Files go first: a crash midway leaves rows to finish, never personal data without a
row pointing at it; running erase again completes the job.

Legal holds (supervisors and admins, each change audited):
``GET /api/legal-holds[?customer_id=&interaction_id=&all=true]``,
``POST /api/legal-holds`` ``{"customer_id": n | "interaction_id": n, "reason": "..."}``
-> 201, ``POST /api/legal-holds/{hold_id}/release``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk.audit import Actor, AuditLog
from agent_desk.auth import AUDITED, client_ip, record_allowed
from callwright.app import PRINCIPAL
from crm.mail.files import MailFiles
from crm.mail.persistence import email_attachments, email_messages
from crm.persistence import customer_emails, customer_phones, customers, interactions
from cti.http import read_json_object
from cti.persistence import call_records
from recordings.persistence import recordings
from recordings.repository import LegalHold, RecordingRepository
from recordings.storage import Storage
from store.errors import NotFoundError
from store.types import utc_now

__all__ = [
    "ERASED_NAME",
    "Eraser",
    "ErasureReport",
    "LegalHoldActive",
    "RecordingInProgress",
    "erase_routes",
    "hold_json",
]

log = logging.getLogger(__name__)

ERASED_NAME: Final = "erased"
MAX_REASON: Final = 2000
# Rows recording control still owns: the call is being recorded, or its file is on its
# way from the spool into storage.
LIVE_STATES: Final = frozenset({"recording", "paused", "ended"})


class LegalHoldActive(Exception):
    def __init__(self, customer_id: int, holds: Sequence[LegalHold]) -> None:
        self.customer_id = customer_id
        self.holds = tuple(holds)
        names = ", ".join(
            f"#{h.id} on "
            + (f"customer {h.customer_id}" if h.customer_id else f"interaction {h.interaction_id}")
            for h in holds
        )
        super().__init__(
            f"customer {customer_id} cannot be erased while under legal hold ({names}); "
            "release the hold first"
        )


class RecordingInProgress(Exception):
    """A recording of the customer is still being made or not yet stored: erasing now would
    delete its row under recording control, and the file would land later with no row."""

    def __init__(self, customer_id: int, recording_ids: Sequence[str]) -> None:
        self.customer_id = customer_id
        self.recording_ids = tuple(recording_ids)
        super().__init__(
            f"customer {customer_id} cannot be erased while a call of theirs is being recorded "
            f"or its recording is not yet stored ({', '.join(recording_ids)}); "
            "try again after the call"
        )


@dataclass(frozen=True)
class ErasureReport:
    customer_id: int
    recordings: tuple[str, ...]
    """Ids of the recordings deleted (file and row)."""
    recording_files: int
    phones: int
    emails: int
    interactions: int
    """Interactions kept, anonymised (notes and subject cleared)."""
    call_records: int
    email_messages: int
    """Messages stripped of bodies, subject and addresses."""
    attachments: int
    mail_files: int

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recordings"] = list(self.recordings)
        return data


class Eraser:
    def __init__(
        self,
        engine: AsyncEngine,
        repo: RecordingRepository,
        storage: Storage,
        audit: AuditLog,
        *,
        data_dir: Path | None = None,
        clock: Callable[[], Any] = utc_now,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._storage = storage
        self._audit = audit
        self._mail = None if data_dir is None else MailFiles(data_dir)
        self._clock = clock

    async def holds_on(self, customer_id: int) -> list[LegalHold]:
        """Active holds on the customer or on any of their interactions."""
        ids = await self._interaction_ids(customer_id)
        holds = await self._repo.list_holds(customer_id=customer_id)
        for hold in await self._repo.list_holds():
            if hold.interaction_id in ids and hold not in holds:
                holds.append(hold)
        return holds

    async def erase(
        self, customer_id: int, *, actor: Actor, client_ip: str | None = None
    ) -> ErasureReport:
        """NotFoundError for an unknown customer; LegalHoldActive under a hold (audited
        ``denied``, nothing changed)."""
        subject = f"customer:{customer_id}"
        async with self._engine.connect() as conn:
            found = (
                await conn.execute(select(customers.c.id).where(customers.c.id == customer_id))
            ).first()
        if found is None:
            raise NotFoundError("customer", customer_id)
        holds = await self.holds_on(customer_id)
        if holds:
            await self._audit.record(
                actor=actor,
                action="customers.erase",
                outcome="denied",
                subject=subject,
                detail={"reason": "legal_hold", "holds": [h.id for h in holds]},
                client_ip=client_ip,
            )
            raise LegalHoldActive(customer_id, holds)
        interaction_ids = await self._interaction_ids(customer_id)
        live = [
            rec[0]
            for rec in await self._recordings_of(customer_id, interaction_ids)
            if rec[2] in LIVE_STATES
        ]
        if live:
            await self._audit.record(
                actor=actor,
                action="customers.erase",
                outcome="denied",
                subject=subject,
                detail={"reason": "recording_in_progress", "recordings": live},
                client_ip=client_ip,
            )
            raise RecordingInProgress(customer_id, live)

        # 1. Recordings: file, then row, each audited.
        recording_ids: list[str] = []
        files = 0
        for rec in await self._recordings_of(customer_id, interaction_ids):
            deleted = await self._storage.delete(rec[1]) if rec[1] else False
            files += int(deleted)
            await self._repo.delete(rec[0])
            recording_ids.append(rec[0])
            await self._audit.record(
                actor=actor,
                action="recordings.erase",
                outcome="allowed",
                subject=f"recording:{rec[0]}",
                detail={"customer_id": customer_id, "file_deleted": deleted},
                client_ip=client_ip,
            )

        # 2. Mail files, then the rows that named them.
        async with self._engine.connect() as conn:
            messages = (
                await conn.execute(
                    select(email_messages.c.id, email_messages.c.raw_path).where(
                        email_messages.c.interaction_id.in_(interaction_ids)
                    )
                )
            ).all()
            message_ids = [m.id for m in messages]
            attachment_paths = [
                row.path
                for row in await conn.execute(
                    select(email_attachments.c.path).where(
                        email_attachments.c.email_id.in_(message_ids)
                    )
                )
            ]
        mail_paths = [m.raw_path for m in messages if m.raw_path] + attachment_paths
        if self._mail is not None and mail_paths:
            await asyncio.to_thread(self._mail.remove, mail_paths)

        # 3. Personal data, in one transaction.
        now = self._clock()
        async with self._engine.begin() as conn:
            phones = (
                await conn.execute(
                    delete(customer_phones).where(customer_phones.c.customer_id == customer_id)
                )
            ).rowcount
            emails = (
                await conn.execute(
                    delete(customer_emails).where(customer_emails.c.customer_id == customer_id)
                )
            ).rowcount
            await conn.execute(
                update(customers)
                .where(customers.c.id == customer_id)
                .values(name=ERASED_NAME, account_number=None, notes=None, updated_at=now)
            )
            anonymised = (
                await conn.execute(
                    update(interactions)
                    .where(interactions.c.customer_id == customer_id)
                    .values(notes=None, subject=None)
                )
            ).rowcount
            calls = (
                await conn.execute(
                    update(call_records)
                    .where(call_records.c.interaction_id.in_(interaction_ids))
                    .values(caller_num=None, caller_name=None, callee_num=None, callee_name=None)
                )
            ).rowcount
            attachments = (
                await conn.execute(
                    delete(email_attachments).where(email_attachments.c.email_id.in_(message_ids))
                )
            ).rowcount
            stripped = (
                await conn.execute(
                    update(email_messages)
                    .where(email_messages.c.id.in_(message_ids))
                    .values(
                        text_body=None,
                        html_body=None,
                        subject="",
                        from_addr=None,
                        from_name=None,
                        reply_to="",
                        to_addrs="",
                        cc_addrs="",
                        envelope_from=None,
                        envelope_to="",
                        raw_path="",
                        raw_sha256="",
                        raw_size=0,
                        problem=None,
                        status_reason=None,
                    )
                )
            ).rowcount
        report = ErasureReport(
            customer_id=customer_id,
            recordings=tuple(recording_ids),
            recording_files=files,
            phones=phones,
            emails=emails,
            interactions=anonymised,
            call_records=calls,
            email_messages=stripped,
            attachments=attachments,
            mail_files=len(mail_paths) if self._mail is not None else 0,
        )
        detail = report.as_dict()
        detail["recordings"] = len(recording_ids)
        await self._audit.record(
            actor=actor,
            action="customers.erase",
            outcome="allowed",
            subject=subject,
            detail=detail,
            client_ip=client_ip,
        )
        log.info("customer %s erased: %s", customer_id, detail)
        return report

    async def _interaction_ids(self, customer_id: int) -> list[int]:
        async with self._engine.connect() as conn:
            return [
                row.id
                for row in await conn.execute(
                    select(interactions.c.id).where(interactions.c.customer_id == customer_id)
                )
            ]

    async def _recordings_of(
        self, customer_id: int, interaction_ids: list[int]
    ) -> list[tuple[str, str | None, str]]:
        query = select(recordings.c.id, recordings.c.storage_key, recordings.c.state).where(
            or_(
                recordings.c.customer_id == customer_id,
                recordings.c.interaction_id.in_(interaction_ids),
            )
        )
        async with self._engine.connect() as conn:
            return [(row.id, row.storage_key, row.state) for row in await conn.execute(query)]


# -- HTTP ---------------------------------------------------------------------------------

Authorize = Callable[[web.Request, str, Any], Awaitable[None]]


def hold_json(hold: LegalHold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "interaction_id": hold.interaction_id,
        "customer_id": hold.customer_id,
        "reason": hold.reason,
        "created_by": hold.created_by,
        "created_at": hold.created_at.isoformat(),
        "released_at": None if hold.released_at is None else hold.released_at.isoformat(),
        "released_by": hold.released_by,
        "active": hold.active,
    }


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


class _Invalid(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _path_int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 12:
        raise _Invalid(f"{name}: expected a positive integer")
    return int(raw)


def _query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise _Invalid(f"{name}: expected a positive integer")
    return int(raw)


def erase_routes(
    eraser: Eraser,
    repo: RecordingRepository,
    engine: AsyncEngine,
    audit: AuditLog,
    authorize: Authorize,
) -> list[web.RouteDef]:
    def guarded(
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except _Invalid as exc:
                return _error(exc.status, exc.code, str(exc))

        return run

    async def erase(request: web.Request) -> web.StreamResponse:
        customer_id = _path_int(request, "customer_id")
        await authorize(request, "customers.erase", str(customer_id))
        try:
            report = await eraser.erase(
                customer_id, actor=request[PRINCIPAL], client_ip=client_ip(request)
            )
        except NotFoundError:
            raise _Invalid(f"no customer {customer_id}", 404, "unknown_customer") from None
        except LegalHoldActive as exc:
            request[AUDITED] = True  # the eraser wrote the denied row
            return _error(409, "legal_hold", str(exc), holds=[hold_json(h) for h in exc.holds])
        except RecordingInProgress as exc:
            request[AUDITED] = True  # the eraser wrote the denied row
            return _error(
                409, "recording_in_progress", str(exc), recordings=list(exc.recording_ids)
            )
        request[AUDITED] = True  # the eraser wrote its rows
        return web.json_response({"erased": report.as_dict()})

    async def list_holds(request: web.Request) -> web.StreamResponse:
        await authorize(request, "legal_holds.read", None)
        customer_id = _query_int(request, "customer_id")
        interaction_id = _query_int(request, "interaction_id")
        everything = request.query.get("all", "false")
        if everything not in ("true", "false"):
            raise _Invalid("all: expected true or false")
        holds = await repo.list_holds(
            customer_id=customer_id,
            interaction_id=interaction_id,
            active_only=everything == "false",
        )
        return web.json_response({"holds": [hold_json(h) for h in holds]})

    async def add_hold(request: web.Request) -> web.StreamResponse:
        await authorize(request, "legal_holds.manage", None)
        body = await read_json_object(request, _Invalid)
        unknown = sorted(set(body) - {"customer_id", "interaction_id", "reason"})
        if unknown:
            raise _Invalid(f"{unknown[0][:64]}: unknown field")
        subjects = {k: body[k] for k in ("customer_id", "interaction_id") if k in body}
        if len(subjects) != 1:
            raise _Invalid("expected exactly one of customer_id, interaction_id")
        ((field, value),) = subjects.items()
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _Invalid(f"{field}: expected a positive integer")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise _Invalid(f"reason: expected a non-empty string of at most {MAX_REASON}")
        table = customers if field == "customer_id" else interactions
        async with engine.connect() as conn:
            exists = (await conn.execute(select(table.c.id).where(table.c.id == value))).first()
        if exists is None:
            kind = field.removesuffix("_id")
            raise _Invalid(f"no {kind} {value}", 404, f"unknown_{kind}")
        hold = await repo.add_hold(
            reason=reason, created_by=request[PRINCIPAL].id, **{field: value}
        )
        await record_allowed(
            audit,
            request,
            "legal_holds.manage",
            f"legal_hold:{hold.id}",
            {"op": "add", field: value, "hold_id": hold.id},
        )
        return web.json_response({"hold": hold_json(hold)}, status=201)

    async def release_hold(request: web.Request) -> web.StreamResponse:
        hold_id = _path_int(request, "hold_id")
        await authorize(request, "legal_holds.manage", str(hold_id))
        try:
            hold = await repo.release_hold(hold_id, released_by=request[PRINCIPAL].id)
        except NotFoundError:
            raise _Invalid(f"no legal hold {hold_id}", 404, "unknown_hold") from None
        await record_allowed(
            audit, request, "legal_holds.manage", f"legal_hold:{hold_id}", {"op": "release"}
        )
        return web.json_response({"hold": hold_json(hold)})

    return [
        web.post("/api/customers/{customer_id}/erase", guarded(erase)),
        web.get("/api/legal-holds", guarded(list_holds)),
        web.post("/api/legal-holds", guarded(add_hold)),
        web.post("/api/legal-holds/{hold_id}/release", guarded(release_hold)),
    ]
