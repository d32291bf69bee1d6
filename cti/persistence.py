"""The call_records table and its repository.

One row per CTI call (``id`` is the CTI call id), written with ``upsert`` as the call
changes. ``updated_at`` orders the writes: an upsert older than the stored row is
ignored, so replaying or reordering the same updates cannot roll a record back.
A call is active while ``ended_at`` is NULL.
"""

from __future__ import annotations

import json
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
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import metadata
from store.types import UtcDateTime, as_utc

__all__ = ["CallRecord", "CallRecordRepository", "call_records"]

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


class CallRecordRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def upsert(self, record: CallRecord) -> None:
        """Insert the record, or overwrite the stored one unless it is newer."""
        values = _values(record)
        changes = {name: values[name] for name in _COLUMNS if name != "id"}
        dialect = self._engine.dialect.name
        async with self._engine.begin() as conn:
            if dialect in ("sqlite", "postgresql"):
                stmt = (
                    sqlite.insert(call_records)
                    if dialect == "sqlite"
                    else postgresql.insert(call_records)
                )
                await conn.execute(
                    stmt.values(**values).on_conflict_do_update(
                        index_elements=[call_records.c.id],
                        set_={name: stmt.excluded[name] for name in changes},
                        where=call_records.c.updated_at <= stmt.excluded.updated_at,
                    )
                )
                return
            # Any other backend: check, then write, inside one transaction.
            current = (
                await conn.execute(
                    select(call_records.c.updated_at).where(call_records.c.id == record.id)
                )
            ).first()
            if current is None:
                await conn.execute(insert(call_records).values(**values))
            elif current.updated_at <= values["updated_at"]:
                await conn.execute(
                    update(call_records).where(call_records.c.id == record.id).values(**changes)
                )

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
