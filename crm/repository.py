"""Customers and interactions, read and written through SQLAlchemy Core.

Repositories return frozen values (``Customer``, ``Interaction``) and take and return
timezone-aware UTC datetimes. Phone numbers go through ``crm.phones.normalize_phone``
with the repository's ``default_region`` on the way in and on lookup.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal, cast

from sqlalchemy import (
    ColumnElement,
    delete,
    exc,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm.persistence import customer_emails, customer_phones, customers, interactions
from crm.phones import normalize_phone
from routing.persistence import agents
from store.db import OneHop
from store.errors import DuplicateError, NotFoundError
from store.sql import Sql, db_time, py_time
from store.types import as_utc, utc_now

__all__ = [
    "CHANNELS",
    "DIRECTIONS",
    "Channel",
    "Customer",
    "CustomerRepository",
    "Direction",
    "Interaction",
    "InteractionRepository",
    "normalize_email",
]

Channel = Literal["voice", "email"]
Direction = Literal["inbound", "outbound"]
CHANNELS: Final[tuple[Channel, ...]] = ("voice", "email")
DIRECTIONS: Final[tuple[Direction, ...]] = ("inbound", "outbound")

PhoneInput = str | tuple[str, str | None]
"""A phone number as typed, or ``(number, label)`` such as ``("555-0100", "mobile")``."""


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_MAX_NAME = 200


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    account_number: str | None
    notes: str | None
    phones: tuple[str, ...]
    """Normalised numbers (E.164 when possible), in the order they were added."""
    emails: tuple[str, ...]
    """Lower-cased addresses, in the order they were added."""
    created_at: datetime


@dataclass(frozen=True)
class Interaction:
    id: int
    customer_id: int | None
    channel: Channel
    direction: Direction
    call_id: str | None
    queue: str | None
    agent_id: int | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    disposition: str | None
    notes: str | None
    subject: str | None
    created_at: datetime


def normalize_email(address: str) -> str:
    """The address trimmed and lower-cased; ValueError naming it if it is not one."""
    cleaned = address.strip().lower()
    if len(cleaned) > 320 or not _EMAIL.fullmatch(cleaned):
        raise ValueError(f"not an e-mail address: {address!r}")
    return cleaned


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValueError("customer name must not be empty")
    if len(cleaned) > _MAX_NAME:
        raise ValueError(f"customer name longer than {_MAX_NAME} characters")
    return cleaned


def _clean_account(account_number: str | None) -> str | None:
    if account_number is None:
        return None
    cleaned = account_number.strip()
    return cleaned or None


def _is_unique_violation(error: exc.IntegrityError, column: str) -> bool:
    return column in str(error.orig)


class CustomerRepository:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        default_region: str | None = "US",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._region = default_region
        self._clock = clock
        # Lookups in one hop (store.db.OneHop: on SQLite, on the event loop's
        # thread; the caller-ID match is on the way to every screen-pop).
        self._reads = OneHop(engine)

    async def close(self) -> None:
        await self._reads.close()

    def normalize(self, raw: str) -> str | None:
        """The key a phone number is stored and looked up under (see crm.phones)."""
        return normalize_phone(raw, self._region)

    async def create(
        self,
        name: str,
        *,
        phones: Iterable[PhoneInput] = (),
        emails: Iterable[str] = (),
        account_number: str | None = None,
        notes: str | None = None,
    ) -> Customer:
        """Store a new customer; ValueError for a phone or e-mail that does not normalise,
        DuplicateError (a ValueError) for an account number already in use."""
        name = _clean_name(name)
        account = _clean_account(account_number)
        phone_rows = self._phone_rows(phones)
        email_rows = list(dict.fromkeys(normalize_email(address) for address in emails))
        now = self._clock()
        async with self._engine.begin() as conn:
            await self._refuse_account(conn, account, exclude_id=None)
            try:
                result = await conn.execute(
                    insert(customers)
                    .values(
                        name=name,
                        account_number=account,
                        notes=notes,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(customers.c.id)
                )
            except exc.IntegrityError as error:
                if account is not None and _is_unique_violation(error, "account_number"):
                    raise DuplicateError("customer", "account number", account) from error
                raise
            customer_id: int = result.scalar_one()
            if phone_rows:
                await conn.execute(
                    insert(customer_phones),
                    [{"customer_id": customer_id, **row} for row in phone_rows],
                )
            if email_rows:
                await conn.execute(
                    insert(customer_emails),
                    [{"customer_id": customer_id, "address": a} for a in email_rows],
                )
            return await self._require(conn, customer_id)

    async def get(self, customer_id: int) -> Customer | None:
        async with self._engine.connect() as conn:
            found = await self._load(conn, [customer_id])
        return found[0] if found else None

    async def find_by_phone(self, raw_caller_id: str) -> Customer | None:
        """The screen-pop lookup: the customer holding this number (lowest id if several)."""
        found = await self.find_all_by_phone(raw_caller_id, limit=1)
        return found[0] if found else None

    async def find_all_by_phone(self, raw_caller_id: str, limit: int = 10) -> list[Customer]:
        number = self.normalize(raw_caller_id)
        if number is None:
            return []
        # One equality match on the indexed number_e164, joined to its
        # customers, then their contacts: the screen-pop's caller-ID match,
        # for every caller, in hand-written SQL (store.sql says why).
        return await self._reads.run(lambda conn: _by_phone(conn, number, limit))

    async def find_by_email(self, address: str) -> Customer | None:
        try:
            cleaned = normalize_email(address)
        except ValueError:
            return None
        query = (
            select(customers)
            .join(customer_emails, customer_emails.c.customer_id == customers.c.id)
            .where(customer_emails.c.address == cleaned)
            .order_by(customers.c.id)
            .limit(1)
        )
        found = await self._find(query)
        return found[0] if found else None

    async def find_by_account(self, account_number: str) -> Customer | None:
        account = _clean_account(account_number)
        if account is None:
            return None
        found = await self._find(select(customers).where(customers.c.account_number == account))
        return found[0] if found else None

    async def search(self, text: str, limit: int = 20) -> builtins.list[Customer]:
        """Customers whose name, account number, e-mail or phone contains ``text``
        (case-insensitive for ASCII letters), ordered by name."""
        text = text.strip()
        if not text:
            return []
        conditions: list[ColumnElement[bool]] = [
            customers.c.name.icontains(text, autoescape=True),
            customers.c.account_number.icontains(text, autoescape=True),
            exists().where(
                customer_emails.c.customer_id == customers.c.id,
                customer_emails.c.address.icontains(text, autoescape=True),
            ),
        ]
        digits = "".join(char for char in text if char in "0123456789")
        if len(digits) >= 3:
            conditions.append(
                exists().where(
                    customer_phones.c.customer_id == customers.c.id,
                    customer_phones.c.number_e164.contains(digits, autoescape=True),
                )
            )
        query = (
            select(customers)
            .where(or_(*conditions))
            .order_by(customers.c.name, customers.c.id)
            .limit(limit)
        )
        return await self._find(query)

    async def update(
        self,
        customer_id: int,
        *,
        name: str | _Unset = UNSET,
        account_number: str | _Unset | None = UNSET,
        notes: str | _Unset | None = UNSET,
    ) -> Customer:
        """Change the given fields (None clears account_number or notes)."""
        values: dict[str, Any] = {"updated_at": self._clock()}
        if not isinstance(name, _Unset):
            values["name"] = _clean_name(name)
        if not isinstance(notes, _Unset):
            values["notes"] = notes
        account: str | None = None
        if not isinstance(account_number, _Unset):
            account = values["account_number"] = _clean_account(account_number)
        async with self._engine.begin() as conn:
            if account is not None:
                await self._refuse_account(conn, account, exclude_id=customer_id)
            try:
                result = await conn.execute(
                    update(customers).where(customers.c.id == customer_id).values(**values)
                )
            except exc.IntegrityError as error:
                if account is not None and _is_unique_violation(error, "account_number"):
                    raise DuplicateError("customer", "account number", account) from error
                raise
            if result.rowcount == 0:
                raise NotFoundError("customer", customer_id)
            return await self._require(conn, customer_id)

    async def add_phone(self, customer_id: int, raw: str, *, label: str | None = None) -> Customer:
        """Add a number (no-op if the customer already has it); ValueError if it does not
        normalise."""
        (row,) = self._phone_rows([(raw, label)])
        async with self._engine.begin() as conn:
            await self._touch(conn, customer_id)
            present = (
                await conn.execute(
                    select(customer_phones.c.id).where(
                        customer_phones.c.customer_id == customer_id,
                        customer_phones.c.number_e164 == row["number_e164"],
                    )
                )
            ).first()
            if present is None:
                await conn.execute(insert(customer_phones).values(customer_id=customer_id, **row))
            return await self._require(conn, customer_id)

    async def remove_phone(self, customer_id: int, raw: str) -> Customer:
        number = self.normalize(raw)
        async with self._engine.begin() as conn:
            await self._touch(conn, customer_id)
            if number is not None:
                await conn.execute(
                    delete(customer_phones).where(
                        customer_phones.c.customer_id == customer_id,
                        customer_phones.c.number_e164 == number,
                    )
                )
            return await self._require(conn, customer_id)

    async def add_email(self, customer_id: int, address: str) -> Customer:
        cleaned = normalize_email(address)
        async with self._engine.begin() as conn:
            await self._touch(conn, customer_id)
            present = (
                await conn.execute(
                    select(customer_emails.c.id).where(
                        customer_emails.c.customer_id == customer_id,
                        customer_emails.c.address == cleaned,
                    )
                )
            ).first()
            if present is None:
                await conn.execute(
                    insert(customer_emails).values(customer_id=customer_id, address=cleaned)
                )
            return await self._require(conn, customer_id)

    async def remove_email(self, customer_id: int, address: str) -> Customer:
        cleaned = address.strip().lower()
        async with self._engine.begin() as conn:
            await self._touch(conn, customer_id)
            await conn.execute(
                delete(customer_emails).where(
                    customer_emails.c.customer_id == customer_id,
                    customer_emails.c.address == cleaned,
                )
            )
            return await self._require(conn, customer_id)

    async def delete(self, customer_id: int) -> bool:
        """Delete the customer, their phones and e-mails; their interactions stay, detached.
        False if there was no such customer."""
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(customers).where(customers.c.id == customer_id))
            return result.rowcount > 0

    # -- helpers ---------------------------------------------------------------------------

    def _phone_rows(self, phones: Iterable[PhoneInput]) -> builtins.list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for entry in phones:
            raw, label = (entry, None) if isinstance(entry, str) else entry
            number = self.normalize(raw)
            if number is None:
                raise ValueError(f"not a phone number: {raw!r}")
            rows.setdefault(
                number, {"number_e164": number, "raw": raw.strip()[:64], "label": label}
            )
        return list(rows.values())

    async def _refuse_account(
        self, conn: AsyncConnection, account: str | None, *, exclude_id: int | None
    ) -> None:
        if account is None:
            return
        query = select(customers.c.id).where(customers.c.account_number == account)
        if exclude_id is not None:
            query = query.where(customers.c.id != exclude_id)
        holder = (await conn.execute(query)).first()
        if holder is not None:
            raise DuplicateError("customer", "account number", account)

    async def _touch(self, conn: AsyncConnection, customer_id: int) -> None:
        result = await conn.execute(
            update(customers).where(customers.c.id == customer_id).values(updated_at=self._clock())
        )
        if result.rowcount == 0:
            raise NotFoundError("customer", customer_id)

    async def _require(self, conn: AsyncConnection, customer_id: int) -> Customer:
        found = await self._load(conn, [customer_id])
        if not found:
            raise NotFoundError("customer", customer_id)
        return found[0]

    async def _find(self, query: Any) -> builtins.list[Customer]:
        """Run a query selecting ``customers`` rows, then fetch their phones and
        e-mails: both in one hop (the screen-pop's caller-ID match is one)."""
        return await self._reads.run(lambda conn: _hydrate(conn, conn.execute(query).all()))

    async def _load(
        self, conn: AsyncConnection, ids: builtins.list[int]
    ) -> builtins.list[Customer]:
        rows = (await conn.execute(select(customers).where(customers.c.id.in_(ids)))).all()
        return await conn.run_sync(_hydrate, rows)


# -- interactions ------------------------------------------------------------------------

_INTERACTION_FIELDS: Final = frozenset(
    {
        "customer_id",
        "call_id",
        "queue",
        "agent_id",
        "started_at",
        "answered_at",
        "ended_at",
        "disposition",
        "notes",
        "subject",
        "direction",
        "channel",
    }
)
_TIME_FIELDS: Final = ("started_at", "answered_at", "ended_at")


def _check_interaction_values(values: dict[str, Any]) -> None:
    if "channel" in values and values["channel"] not in CHANNELS:
        raise ValueError(f"unknown channel {values['channel']!r} (expected voice or email)")
    if "direction" in values and values["direction"] not in DIRECTIONS:
        raise ValueError(
            f"unknown direction {values['direction']!r} (expected inbound or outbound)"
        )
    if "started_at" in values and values["started_at"] is None:
        raise ValueError("started_at is required")
    for name in _TIME_FIELDS:
        if values.get(name) is not None:
            values[name] = as_utc(values[name])


class InteractionRepository:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        # An interaction's insert or update, checks included, and the
        # screen-pop's history read, each in one hop (store.db.OneHop): a voice
        # call's are on the way to its offer.
        self._hop = OneHop(engine)

    async def close(self) -> None:
        await self._hop.close()

    async def create(
        self,
        *,
        channel: Channel,
        direction: Direction,
        started_at: datetime,
        customer_id: int | None = None,
        call_id: str | None = None,
        queue: str | None = None,
        agent_id: int | None = None,
        subject: str | None = None,
        answered_at: datetime | None = None,
        ended_at: datetime | None = None,
        disposition: str | None = None,
        notes: str | None = None,
    ) -> Interaction:
        """Record an interaction; NotFoundError if customer_id or agent_id is unknown."""
        values: dict[str, Any] = {
            "channel": channel,
            "direction": direction,
            "started_at": started_at,
            "customer_id": customer_id,
            "call_id": call_id,
            "queue": queue,
            "agent_id": agent_id,
            "subject": subject,
            "answered_at": answered_at,
            "ended_at": ended_at,
            "disposition": disposition,
            "notes": notes,
        }
        _check_interaction_values(values)
        values["created_at"] = self._clock()

        def write(conn: Connection) -> Interaction:
            # Hand-written SQL (store.sql): one per voice call, before its offer.
            _check_references(conn, values)
            params = [
                db_time(conn, values[c]) if c in _TIMES else values[c] for c in _INSERT_COLUMNS
            ]
            return _interaction(_INSERT.rows(conn, params)[0])

        return await self._hop.run(write)

    async def get(self, interaction_id: int) -> Interaction | None:
        return await self._first(select(interactions).where(interactions.c.id == interaction_id))

    async def by_call_id(self, call_id: str) -> Interaction | None:
        """The latest interaction recorded for this CTI call id."""
        return await self._first(
            select(interactions)
            .where(interactions.c.call_id == call_id)
            .order_by(interactions.c.id.desc())
            .limit(1)
        )

    async def update(self, interaction_id: int, **fields: Any) -> Interaction:
        """Change any of customer_id, call_id, queue, agent_id, started_at, answered_at,
        ended_at, disposition, notes, subject, channel, direction."""
        unknown = set(fields) - _INTERACTION_FIELDS
        if unknown:
            raise TypeError(f"cannot update interaction field(s): {', '.join(sorted(unknown))}")
        values = dict(fields)
        _check_interaction_values(values)

        names = tuple(sorted(values))

        def write(conn: Connection) -> Interaction:
            # Hand-written SQL (store.sql): a voice call's answer and end.
            _check_references(conn, values)
            params = [db_time(conn, values[c]) if c in _TIMES else values[c] for c in names]
            found = _update_statement(names).rows(conn, (*params, interaction_id))
            if not found:
                raise NotFoundError("interaction", interaction_id)
            return _interaction(found[0])

        return await self._hop.run(write)

    async def set_disposition(
        self, interaction_id: int, disposition: str, notes: str | None = None
    ) -> Interaction:
        """The agent's wrap-up: set the disposition, and the notes unless ``notes`` is None."""
        fields: dict[str, Any] = {"disposition": disposition}
        if notes is not None:
            fields["notes"] = notes
        return await self.update(interaction_id, **fields)

    async def recent_for_customer(
        self, customer_id: int, limit: int = 10
    ) -> builtins.list[Interaction]:
        """The customer's interactions, most recently started first."""
        rows = await self._hop.run(lambda conn: _RECENT.rows(conn, (customer_id, limit)))
        return [_interaction(r) for r in rows]

    async def open_for_customer(
        self, customer_id: int, *, channel: Channel = "email", limit: int = 10
    ) -> builtins.list[Interaction]:
        """The customer's interactions on ``channel`` not ended yet (open e-mail
        threads), most recently started first."""
        rows = await self._hop.run(lambda conn: _OPEN.rows(conn, (customer_id, channel, limit)))
        return [_interaction(r) for r in rows]

    async def history_for_customer(
        self, customer_id: int, *, limit: int = 10, open_channel: Channel = "email"
    ) -> tuple[builtins.list[Interaction], builtins.list[Interaction]]:
        """``recent_for_customer`` and ``open_for_customer`` on one connection
        (a screen-pop needs both)."""

        def read(conn: Connection) -> tuple[builtins.list[Interaction], builtins.list[Interaction]]:
            # Hand-written SQL (store.sql): read for every caller's pop.
            recent = _RECENT.rows(conn, (customer_id, limit))
            still_open = _OPEN.rows(conn, (customer_id, open_channel, limit))
            return [_interaction(r) for r in recent], [_interaction(r) for r in still_open]

        return await self._hop.run(read)

    async def _first(self, query: Any) -> Interaction | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _interaction(row)


def _check_references(conn: Connection, values: dict[str, Any]) -> None:
    """NotFoundError naming the customer or agent an interaction refers to
    that does not exist (a clear error instead of a foreign-key failure)."""
    for field, table, entity in (
        ("customer_id", customers, "customer"),
        ("agent_id", agents, "agent"),
    ):
        key = values.get(field)
        if key is None:
            continue
        if not _EXISTS[table.name].rows(conn, (key,)):
            raise NotFoundError(entity, key)


# -- hand-written SQL for the screen-pop's path (store.sql says why) ----------------

_CUSTOMER_COLUMNS: Final = "c.id, c.name, c.account_number, c.notes, c.created_at"
_BY_PHONE: Final = Sql(
    f"SELECT {_CUSTOMER_COLUMNS} FROM customers c"
    " JOIN customer_phones p ON p.customer_id = c.id"
    " WHERE p.number_e164 = ? ORDER BY c.id LIMIT ?"
)
_PHONES_OF: Final = Sql("SELECT number_e164 FROM customer_phones WHERE customer_id = ? ORDER BY id")
_EMAILS_OF: Final = Sql("SELECT address FROM customer_emails WHERE customer_id = ? ORDER BY id")


def _by_phone(conn: Connection, number: str, limit: int) -> builtins.list[Customer]:
    return _hydrate(conn, _BY_PHONE.rows(conn, (number, limit)))


def _hydrate(conn: Connection, rows: Sequence[Sequence[Any]]) -> builtins.list[Customer]:
    """Customers for rows that begin (id, name, account_number, notes,
    created_at), as ``_BY_PHONE``'s and ``select(customers)``'s do, in the
    same order, with their phones and e-mails (two queries a customer: a
    lookup finds a few)."""
    return [
        Customer(
            id=id_,
            name=name,
            account_number=account,
            notes=notes,
            phones=tuple(r[0] for r in _PHONES_OF.rows(conn, (id_,))),
            emails=tuple(r[0] for r in _EMAILS_OF.rows(conn, (id_,))),
            created_at=cast(datetime, py_time(created_at)),
        )
        for id_, name, account, notes, created_at, *_ in rows
    ]


_INTERACTION_COLUMNS: Final = (
    "id, customer_id, channel, direction, call_id, queue, agent_id, started_at,"
    " answered_at, ended_at, disposition, notes, subject, created_at"
)
_TIMES: Final = frozenset({*_TIME_FIELDS, "created_at"})
# The mappers read rows by position: the tables' column order is theirs.
assert [c.name for c in interactions.columns] == _INTERACTION_COLUMNS.split(", ")
assert [c.name for c in customers.columns][:5] == [
    c.removeprefix("c.") for c in _CUSTOMER_COLUMNS.split(", ")
]
_INSERT_COLUMNS: Final = (
    "channel",
    "direction",
    "started_at",
    "customer_id",
    "call_id",
    "queue",
    "agent_id",
    "subject",
    "answered_at",
    "ended_at",
    "disposition",
    "notes",
    "created_at",
)
_INSERT: Final = Sql(
    f"INSERT INTO interactions ({', '.join(_INSERT_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _INSERT_COLUMNS)}) RETURNING {_INTERACTION_COLUMNS}"
)
_RECENT: Final = Sql(
    f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE customer_id = ?"
    " ORDER BY started_at DESC, id DESC LIMIT ?"
)
_OPEN: Final = Sql(
    f"SELECT {_INTERACTION_COLUMNS} FROM interactions"
    " WHERE customer_id = ? AND channel = ? AND ended_at IS NULL"
    " ORDER BY started_at DESC, id DESC LIMIT ?"
)
_EXISTS: Final = {
    table: Sql(f"SELECT 1 FROM {table} WHERE id = ?") for table in ("customers", "agents")
}
_UPDATES: dict[tuple[str, ...], Sql] = {}


def _update_statement(names: tuple[str, ...]) -> Sql:
    """UPDATE of these columns (checked against _INTERACTION_FIELDS by the
    caller), returning the row; SELECT of it when there are none."""
    statement = _UPDATES.get(names)
    if statement is None:
        if names:
            sets = ", ".join(f"{name} = ?" for name in names)
            text = f"UPDATE interactions SET {sets} WHERE id = ? RETURNING {_INTERACTION_COLUMNS}"
        else:
            text = f"SELECT {_INTERACTION_COLUMNS} FROM interactions WHERE id = ?"
        statement = _UPDATES[names] = Sql(text)
    return statement


def _interaction(row: Sequence[Any]) -> Interaction:
    """An interaction from a row of _INTERACTION_COLUMNS: raw from the driver
    (store.sql), or a ``select(interactions)`` row (the table's own order, the
    same: checked below)."""
    return Interaction(
        id=row[0],
        customer_id=row[1],
        channel=cast(Channel, row[2]),
        direction=cast(Direction, row[3]),
        call_id=row[4],
        queue=row[5],
        agent_id=row[6],
        started_at=cast(datetime, py_time(row[7])),
        answered_at=py_time(row[8]),
        ended_at=py_time(row[9]),
        disposition=row[10],
        notes=row[11],
        subject=row[12],
        created_at=cast(datetime, py_time(row[13])),
    )
