"""The call_records table, its repository and its group-commit writer.

One row per CTI call (``id`` is the CTI call id), written with ``upsert`` or
``upsert_many`` as the call changes. ``updated_at`` orders the writes: an upsert older
than the stored row is ignored, so replaying or reordering the same updates cannot roll
a record back. A call is active while ``ended_at`` is NULL.

``CallRecordWriter`` lets many concurrent callers share one transaction: records handed
to ``store`` while a write is in flight go together into the next one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.db import OneHop, metadata
from store.group_commit import GroupCommit
from store.sql import Sql, db_time
from store.types import UtcDateTime, as_utc

__all__ = ["CallRecord", "CallRecordRepository", "CallRecordWriter", "WriterClosed", "call_records"]

log = logging.getLogger(__name__)

call_records = Table(
    "call_records",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("caller_num", String(64), nullable=True),
    Column("caller_name", String(200), nullable=True),
    Column("callee_num", String(64), nullable=True),
    Column("callee_name", String(200), nullable=True),
    Column("started_at", UtcDateTime(), nullable=False, index=True),
    Column("answered_at", UtcDateTime(), nullable=True),
    Column("ended_at", UtcDateTime(), nullable=True, index=True),
    Column("hangup_cause", Integer, nullable=True),
    Column("hangup_cause_text", Text, nullable=True),
    Column("channels", JSON, nullable=False),
    Column(
        "interaction_id",
        Integer,
        ForeignKey("interactions.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("updated_at", UtcDateTime(), nullable=False),
)


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """``channels`` holds channel names (``("PJSIP/1001-00000002", ...)``)."""

    id: str
    state: str
    started_at: datetime
    updated_at: datetime
    caller_num: str | None = None
    caller_name: str | None = None
    callee_num: str | None = None
    callee_name: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    channels: tuple[str, ...] = ()
    interaction_id: int | None = None


_COLUMNS = tuple(field.name for field in fields(CallRecord))


def _record(row: Row[Any]) -> CallRecord:
    values = dict(row._mapping)
    values["channels"] = tuple(values["channels"] or ())
    return CallRecord(**values)


def _channel_names(channels: object) -> list[str]:
    # A tuple of channel names; JSON text of a list of names is accepted too. A bare
    # string is never iterated (that would store one "channel" per character).
    if isinstance(channels, str):
        try:
            channels = json.loads(channels)
        except ValueError:
            raise TypeError(f"channels must be a tuple of names, got {channels!r}") from None
    if not isinstance(channels, list | tuple) or not all(isinstance(c, str) for c in channels):
        raise TypeError(f"channels must be a tuple of names, got {channels!r}")
    return list(channels)


def _values(record: CallRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _COLUMNS}
    for name in ("started_at", "updated_at", "answered_at", "ended_at"):
        if values[name] is not None:
            values[name] = as_utc(values[name])
    values["channels"] = _channel_names(record.channels)
    return values


def _checked(record: CallRecord) -> str:
    """The record's channels as the JSON text stored for them (``json.dumps``,
    as SQLAlchemy's JSON type writes it: the engines set no other serializer).
    A naive time raises ValueError, bad channels TypeError (as ``_values``)."""
    for value in (record.started_at, record.updated_at, record.answered_at, record.ended_at):
        if value is not None:
            as_utc(value)
    return json.dumps(_channel_names(record.channels))


# Hand-written SQL: SQLAlchemy Core's per-statement Python overhead outweighed
# the database's work on this path (store/sql.py's docstring). The same
# statement SQLAlchemy built: an older update (stored updated_at later than the
# new one) leaves the row as it is. Parameters in this column order (_params).
_UPSERT = Sql(
    "INSERT INTO call_records (id, state, caller_num, caller_name, callee_num, callee_name,"
    " started_at, answered_at, ended_at, hangup_cause, hangup_cause_text, channels,"
    " interaction_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
    " caller_num = excluded.caller_num, caller_name = excluded.caller_name,"
    " callee_num = excluded.callee_num, callee_name = excluded.callee_name,"
    " started_at = excluded.started_at, answered_at = excluded.answered_at,"
    " ended_at = excluded.ended_at, hangup_cause = excluded.hangup_cause,"
    " hangup_cause_text = excluded.hangup_cause_text, channels = excluded.channels,"
    " interaction_id = excluded.interaction_id, updated_at = excluded.updated_at"
    " WHERE call_records.updated_at <= excluded.updated_at"
)


def _params(conn: Connection, record: CallRecord, channels: str) -> tuple[Any, ...]:
    """``_UPSERT``'s parameters for a record (``channels`` from ``_checked``)."""
    return (
        record.id,
        record.state,
        record.caller_num,
        record.caller_name,
        record.callee_num,
        record.callee_name,
        db_time(conn, record.started_at),
        db_time(conn, record.answered_at),
        db_time(conn, record.ended_at),
        record.hangup_cause,
        record.hangup_cause_text,
        channels,
        record.interaction_id,
        db_time(conn, record.updated_at),
    )


def _newest_per_call(records: Iterable[CallRecord]) -> list[tuple[CallRecord, str]]:
    """One record per call id, with its channels' JSON text: the latest
    ``updated_at``, a tie going to the later record. Sorted by id (the same
    lock order for every batch). A bad record raises here (``_checked``)."""
    newest: dict[str, tuple[CallRecord, str]] = {}
    for record in records:
        channels = _checked(record)
        kept = newest.get(record.id)
        if kept is None or kept[0].updated_at <= record.updated_at:
            newest[record.id] = (record, channels)
    return [newest[call_id] for call_id in sorted(newest)]


async def _check_then_write(conn: AsyncConnection, values: dict[str, Any]) -> None:
    # Any other backend: check, then write (inside the caller's transaction).
    changes = {name: values[name] for name in _COLUMNS if name != "id"}
    current = (
        await conn.execute(
            select(call_records.c.updated_at).where(call_records.c.id == values["id"])
        )
    ).first()
    if current is None:
        await conn.execute(insert(call_records).values(**values))
    elif current.updated_at <= values["updated_at"]:
        await conn.execute(
            update(call_records).where(call_records.c.id == values["id"]).values(**changes)
        )


class CallRecordRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # A batch in one hop (store.db.OneHop: statement and commit
        # together on SQLite).
        self._writer = OneHop(engine)

    async def close(self) -> None:
        """Let go of the writer's connection (SQLite) and thread."""
        await self._writer.close()

    async def upsert(self, record: CallRecord) -> None:
        """Insert the record, or overwrite the stored one unless it is newer."""
        await self.upsert_many([record])

    async def upsert_many(self, records: Iterable[CallRecord]) -> None:
        """``upsert`` for each record, all in one transaction. Of two records of one
        call, the later ``updated_at`` is written (a tie: the later in ``records``).
        A bad record (naive time, bad channels) raises before anything is written."""
        newest = _newest_per_call(records)
        if not newest:
            return
        if self._engine.dialect.name in ("sqlite", "postgresql"):
            await self._writer.run(_upsert_fn(newest))
            return
        async with self._engine.begin() as conn:
            for record, _ in newest:
                await _check_then_write(conn, _values(record))

    def upsert_many_now(self, records: Iterable[CallRecord]) -> bool:
        """``upsert_many`` on this thread, at once, when the store allows it
        without waiting (store.db.OneHop.run_now); False, with nothing
        written, when not: then ``upsert_many``."""
        if not self._writer.inline:
            return False
        newest = _newest_per_call(records)
        if not newest:
            return True
        done, _ = self._writer.run_now(_upsert_fn(newest))
        return done

    async def get(self, call_id: str) -> CallRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(call_records).where(call_records.c.id == call_id))
            ).first()
        return None if row is None else _record(row)

    async def list_active(self) -> list[CallRecord]:
        """Calls not ended yet, oldest first."""
        query = (
            select(call_records)
            .where(call_records.c.ended_at.is_(None))
            .order_by(call_records.c.started_at, call_records.c.id)
        )
        return await self._many(query)

    async def list_recent(self, limit: int = 50) -> list[CallRecord]:
        """The most recently started calls, newest first."""
        query = (
            select(call_records)
            .order_by(call_records.c.started_at.desc(), call_records.c.id.desc())
            .limit(limit)
        )
        return await self._many(query)

    async def _many(self, query: Any) -> list[CallRecord]:
        async with self._engine.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]


def _upsert_fn(newest: list[tuple[CallRecord, str]]) -> Callable[[Connection], None]:
    def write(conn: Connection) -> None:
        _UPSERT.many(conn, [_params(conn, r, channels) for r, channels in newest])

    return write


class WriterClosed(RuntimeError):
    """``CallRecordWriter.store`` after ``close``."""


class CallRecordWriter:
    """Group commit for call records (store.group_commit.GroupCommit).

    ``await store(record)`` returns once a transaction holding the record has
    committed, and raises that transaction's exception if it failed. A bad
    record (naive time, bad channels) raises in its own caller only and joins
    no batch. ``close`` writes what is pending, then refuses new records.
    """

    def __init__(self, repository: CallRecordRepository, *, max_batch: int = 500) -> None:
        self._repository = repository
        self._group: GroupCommit[CallRecord] = GroupCommit(
            self._write,
            max_batch=max_batch,
            name="call-record-writer",
            write_now=self._write_now,
        )
        self._closed = False

    async def _write(self, records: list[CallRecord]) -> None:
        await self._repository.upsert_many(records)

    def _write_now(self, records: list[CallRecord]) -> bool:
        return self._repository.upsert_many_now(records)

    @property
    def max_batch(self) -> int:
        return self._group.max_batch

    @property
    def transactions(self) -> int:
        return self._group.transactions

    @property
    def failures(self) -> int:
        return self._group.failures

    async def store(self, record: CallRecord) -> None:
        if self._closed:
            raise WriterClosed(f"call record writer closed (record {record.id!r} not stored)")
        _checked(record)  # a bad record raises here, in its own caller
        await self._group.submit(record)

    async def close(self) -> None:
        """Write every pending record, then refuse new ones. Waiting here being
        cancelled does not stop the write under way."""
        self._closed = True
        await self._group.drain()
