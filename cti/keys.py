"""Idempotency keys of call control, in the store: a restart does not forget them.

``CallService`` runs an originate, a transfer or a spy once per key (see its
module docstring). In memory alone a restart forgot the keys, and a client that
retried after a restart (a deploy, a crash) placed a second call to the
customer. Here each key is a row of ``call_control_keys``, claimed before the
action is sent:

- ``claim`` inserts the row (``in_flight``); the primary key makes one claim
  win, on this node or any other sharing the store. The loser gets the row.
- ``finish`` stores the outcome (``done``, the result as JSON): a repeat,
  before or after a restart, answers it without sending anything.
- ``release`` deletes the row when the action was refused or never sent: the
  key is free to try again.
- ``unknown`` marks a row whose action was in flight when the AMI link
  dropped. A row still ``in_flight`` that no local request holds (the node
  died with it in flight, or another node runs it now) reads the same way: a
  repeat is refused with ``OutcomeUnknown`` rather than risking a second call.

Rows older than ``ttl`` seconds (a day by default) are deleted as claims come:
a key is for retries, not forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import JSON, Column, String, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import metadata
from store.types import UtcDateTime, utc_now

__all__ = ["KEY_TTL", "CallControlKeys", "StoredKey", "call_control_keys"]

KEY_TTL: Final = 86400.0  # seconds a key is kept
PURGE_EVERY: Final = 60.0  # seconds between deletions of expired keys

call_control_keys = Table(
    "call_control_keys",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("state", String(16), nullable=False),  # in_flight | done | unknown
    Column("result", JSON, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False, index=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)


@dataclass(frozen=True)
class StoredKey:
    key: str
    state: str
    result: dict[str, Any] | None


class CallControlKeys:
    """``call_control_keys`` (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = utc_now,
        ttl: float = KEY_TTL,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.ttl = ttl
        self._purged_at: datetime | None = None

    async def claim(self, key: str) -> StoredKey | None:
        """None: the key is this caller's now (``in_flight``). Else the row a
        claim made earlier, as it stands."""
        now = self._clock()
        await self._purge(now)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(call_control_keys).values(
                        key=key, state="in_flight", created_at=now, updated_at=now
                    )
                )
            return None
        except IntegrityError:
            pass
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(call_control_keys).where(call_control_keys.c.key == key))
            ).first()
        if row is None:  # expired and deleted in between: try once more
            return await self.claim(key)
        return _stored(row)

    async def finish(self, key: str, result: dict[str, Any]) -> None:
        await self._set(key, state="done", result=result)

    async def unknown(self, key: str) -> None:
        await self._set(key, state="unknown")

    async def release(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(call_control_keys).where(
                    call_control_keys.c.key == key, call_control_keys.c.state == "in_flight"
                )
            )

    async def _set(self, key: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(call_control_keys)
                .where(call_control_keys.c.key == key)
                .values(updated_at=self._clock(), **values)
            )

    async def _purge(self, now: datetime) -> None:
        if self._purged_at is not None and (now - self._purged_at).total_seconds() < PURGE_EVERY:
            return
        self._purged_at = now
        cutoff = now - timedelta(seconds=self.ttl)
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(call_control_keys).where(call_control_keys.c.created_at < cutoff)
            )


def _stored(row: Any) -> StoredKey:
    return StoredKey(row.key, row.state, row.result)
