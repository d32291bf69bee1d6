"""The desk's REST routes on the customer record: wrap-up, unknown callers
identified, and the record itself. Thin: check, call the repositories, dump.

* ``POST /api/interactions/{id}/disposition`` ``{disposition, notes?}``: the
  wrap-up, saved on the interaction. ``disposition`` is one of ``[desk]
  dispositions``; ``notes`` at most ``[desk] notes_max_chars`` (absent: the
  notes stay as they were). -> ``{interaction}``.
* ``POST /api/interactions/{id}/customer``: an unknown caller identified from
  the pop. ``{customer_id}`` links an existing customer; ``{name, phone?,
  email?, account_number?, notes?}`` creates one (``phone`` defaults to the
  caller's number; ``null`` for none). The interaction gets the customer, the
  caller's number (E.164) is added to the customer's phones (for e-mail: the
  sender's address to the e-mails), and the task's pop is made again and sent
  to the agent's desk. -> ``{interaction, customer, created, phone_added,
  email_added, pop}``.
* ``GET /api/customers/{id}``: the record: ``{customer, recent_interactions
  (newest first), open_emails}``.

Errors: ``400 invalid_request`` naming the field, ``404 unknown_interaction``
/ ``unknown_customer``, ``409 duplicate`` (an account number in use). Who
may: ``authorize(request, action, subject)`` with ``interactions.disposition``
and ``interactions.customer`` (subject: the interaction id) and
``customers.read``. Both changes write their own audit row (the disposition
code, the customer linked or created; never the notes' text).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiohttp import web

from agent_desk.audit import AuditLog
from agent_desk.auth import record_allowed
from agent_desk.pops import customer_json, interaction_json, open_email_json
from crm.mail.repository import MailStore
from crm.repository import (
    Customer,
    CustomerRepository,
    Interaction,
    InteractionRepository,
    normalize_email,
)
from cti.http import read_json_object
from store.errors import DuplicateError, NotFoundError

__all__ = ["DeskSettings", "records_routes"]

log = logging.getLogger(__name__)

Authorize = Callable[[web.Request, str, Any], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HISTORY_LIMIT: Final = 20
MAX_ACCOUNT: Final = 64
MAX_CUSTOMER_NOTES: Final = 2000
CREATE_FIELDS: Final = frozenset({"name", "phone", "email", "account_number", "notes"})


@dataclass(frozen=True)
class DeskSettings:
    """``[desk]`` in config.toml, as the desk's routes and pages need it."""

    dispositions: tuple[str, ...]
    notes_max_chars: int
    payment: bool = False  # a card payment line to transfer callers to ([pbx] payment_context)

    def json(self) -> dict[str, Any]:
        return {
            "dispositions": list(self.dispositions),
            "notes_max_chars": self.notes_max_chars,
            "payment": self.payment,
        }


class CallerNumbers(Protocol):
    """``CallRecordRepository``: the caller's number of a call (``caller_num``)."""

    async def get(self, call_id: str) -> Any: ...


class Linked(Protocol):
    """``Desk.customer_linked``: make the task's pop again and tell the desk."""

    def __call__(self, interaction_id: int, customer: Customer) -> Awaitable[Any]: ...


class Invalid(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _int_id(request: web.Request, name: str, what: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise Invalid(f"{what} id: expected a positive integer")
    return int(raw)


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise Invalid(f"{name}: required")
        return None
    if not isinstance(value, str):
        raise Invalid(f"{name}: expected a string")
    if len(value) > limit:
        raise Invalid(f"{name}: at most {limit} characters")
    return value


def records_routes(
    *,
    customers: CustomerRepository,
    interactions: InteractionRepository,
    settings: DeskSettings,
    audit: AuditLog,
    authorize: Authorize,
    calls: CallerNumbers | None = None,
    mail: MailStore | None = None,
    linked: Linked | None = None,
) -> list[web.RouteDef]:
    def guarded(fn: Handler) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await fn(request)
            except Invalid as exc:
                return _error(exc.status, exc.code, str(exc))
            except DuplicateError as exc:
                return _error(409, "duplicate", str(exc))
            except NotFoundError as exc:
                return _error(404, f"unknown_{exc.entity}", str(exc))

        return handler

    async def interaction_of(request: web.Request, action: str) -> Interaction:
        interaction_id = _int_id(request, "interaction_id", "interaction")
        await authorize(request, action, str(interaction_id))
        interaction = await interactions.get(interaction_id)
        if interaction is None:
            raise Invalid(f"no interaction {interaction_id}", 404, "unknown_interaction")
        return interaction

    async def disposition(request: web.Request) -> web.StreamResponse:
        interaction = await interaction_of(request, "interactions.disposition")
        body = await read_json_object(request, Invalid)
        unknown = sorted(set(body) - {"disposition", "notes"})
        if unknown:
            raise Invalid(f"{unknown[0][:64]}: unknown field (expected disposition, notes)")
        code = body.get("disposition")
        if code not in settings.dispositions:
            raise Invalid(
                f"disposition: expected one of {', '.join(settings.dispositions)}"
                + ("" if code is None else f", got {str(code)[:64]!r}")
            )
        notes = _text(body, "notes", settings.notes_max_chars)
        saved = await interactions.set_disposition(interaction.id, code, notes)
        await record_allowed(
            audit,
            request,
            "interactions.disposition",
            str(interaction.id),
            {"status": 200, "disposition": code, "notes_chars": len(notes or "")},
        )
        return web.json_response({"interaction": interaction_json(saved)})

    async def caller_number(interaction: Interaction) -> str | None:
        if calls is None or interaction.call_id is None:
            return None
        found = await calls.get(interaction.call_id)
        number = getattr(found, "caller_num", None)
        return number if isinstance(number, str) and number else None

    async def sender_address(interaction: Interaction) -> str | None:
        if mail is None or interaction.channel != "email":
            return None
        inbound = [m for m in await mail.thread(interaction.id) if m.direction == "inbound"]
        return inbound[0].from_addr if inbound and inbound[0].from_addr else None

    def e164(raw: str, field: str) -> str:
        number = customers.normalize(raw)
        if number is None or not number.startswith("+"):
            raise Invalid(
                f"{field}: expected a phone number in E.164 (such as +15550100001) "
                "or a national number of the default region"
            )
        return number

    def caller_e164(raw: str | None) -> str | None:
        """The caller's number if it is a phone number (not an internal
        extension, not withheld): what to add to the customer."""
        number = None if raw is None else customers.normalize(raw)
        return raw if number is not None and number.startswith("+") else None

    async def link_customer(request: web.Request) -> web.StreamResponse:
        interaction = await interaction_of(request, "interactions.customer")
        body = await read_json_object(request, Invalid)
        created = False
        if "customer_id" in body:
            if set(body) != {"customer_id"}:
                raise Invalid("customer_id: link an existing customer, with no other field")
            customer_id = body["customer_id"]
            if (
                isinstance(customer_id, bool)
                or not isinstance(customer_id, int)
                or not 0 < customer_id < 2**63
            ):
                raise Invalid("customer_id: expected a positive integer")
            found = await customers.get(customer_id)
            if found is None:
                raise Invalid(f"customer_id: no customer {customer_id}", 404, "unknown_customer")
            customer = found
            phone = caller_e164(await caller_number(interaction))
        else:
            unknown = sorted(set(body) - CREATE_FIELDS)
            if unknown:
                raise Invalid(
                    f"{unknown[0][:64]}: unknown field (expected customer_id, or "
                    f"{', '.join(sorted(CREATE_FIELDS))})"
                )
            name = _text(body, "name", 200, required=True)
            assert name is not None
            if not " ".join(name.split()):
                raise Invalid("name: must not be empty")
            if "phone" in body:
                phone = _text(body, "phone", 64)
                if phone is not None:
                    e164(phone, "phone")
            else:
                phone = caller_e164(await caller_number(interaction))
            email = _text(body, "email", 320)
            if email is not None:
                try:
                    email = normalize_email(email)
                except ValueError:
                    raise Invalid("email: expected an e-mail address") from None
            account = _text(body, "account_number", MAX_ACCOUNT)
            notes = _text(body, "notes", MAX_CUSTOMER_NOTES)
            sender = await sender_address(interaction)
            emails = [e for e in (email, sender) if e]
            try:
                customer = await customers.create(
                    name,
                    phones=[phone] if phone else [],
                    emails=list(dict.fromkeys(normalize_email(e) for e in emails)),
                    account_number=account or None,
                    notes=notes or None,
                )
            except DuplicateError as exc:
                raise Invalid(f"account_number: {exc}", 409, "duplicate") from None
            created = True
        phone_added = None
        email_added = None
        if phone is not None:
            number = e164(phone, "phone")
            if number not in customer.phones:
                customer = await customers.add_phone(customer.id, phone)
                phone_added = number
            elif created:
                phone_added = number
        if not created:
            sender = await sender_address(interaction)
            if sender is not None:
                address = normalize_email(sender)
                if address not in customer.emails:
                    customer = await customers.add_email(customer.id, address)
                    email_added = address
        previous = interaction.customer_id
        saved = await interactions.update(interaction.id, customer_id=customer.id)
        pop = None
        if linked is not None:
            try:
                pop = await linked(interaction.id, customer)
            except Exception:  # stored; the desk catches up on its next snapshot
                log.exception("desk: the pop of interaction %s not refreshed", interaction.id)
        await record_allowed(
            audit,
            request,
            "interactions.customer",
            str(interaction.id),
            {
                "status": 201 if created else 200,
                "customer_id": customer.id,
                "created": created,
                "previous_customer_id": previous,
                "phone_added": phone_added is not None,
            },
        )
        return web.json_response(
            {
                "interaction": interaction_json(saved),
                "customer": customer_json(customer),
                "created": created,
                "phone_added": phone_added,
                "email_added": email_added,
                "pop": pop,
            },
            status=201 if created else 200,
        )

    async def customer_record(request: web.Request) -> web.StreamResponse:
        customer_id = _int_id(request, "customer_id", "customer")
        await authorize(request, "customers.read", str(customer_id))
        customer = await customers.get(customer_id)
        if customer is None:
            raise Invalid(f"no customer {customer_id}", 404, "unknown_customer")
        recent: Sequence[Interaction] = await interactions.recent_for_customer(
            customer_id, limit=HISTORY_LIMIT
        )
        threads = await interactions.open_for_customer(customer_id, limit=HISTORY_LIMIT)
        return web.json_response(
            {
                "customer": customer_json(customer),
                "recent_interactions": [interaction_json(i) for i in recent],
                "open_emails": [open_email_json(i) for i in threads],
            }
        )

    return [
        web.post("/api/interactions/{interaction_id}/disposition", guarded(disposition)),
        web.post("/api/interactions/{interaction_id}/customer", guarded(link_customer)),
        web.get("/api/customers/{customer_id}", guarded(customer_record)),
    ]
