"""Recordings, their pauses and legal holds, read and written through SQLAlchemy Core.

``RecordingRepository(engine, clock=...)`` returns frozen values (``Recording``,
``Pause``, ``LegalHold``) and takes and returns timezone-aware UTC datetimes.

How the other recording modules use it:

- control (REC-CONTROL): ``create(...)`` when recording starts (state ``recording``,
  ``spool_name`` = the file name given to MixMonitor), ``add_pause`` / ``end_pause``
  (state ``paused`` / ``recording``), ``mark_ended`` at hangup (state ``ended``: the file
  is in the spool, waiting for ``recordings.ingest.Ingestor.finish``).
- ingest: ``mark_stored`` (state ``stored``), ``update_state(id, "failed")``.
- playback (REC-ACCESS): ``get``, ``list`` / ``list_for_interaction`` /
  ``list_for_customer``; a stored row whose file is gone: ``update_state(id, "missing")``.
- retention / erase: ``due_for_purge``, legal holds, ``delete``.

Errors: ``store.errors.NotFoundError`` for an unknown id; ``ValueError`` naming the
field for bad input (a state or source outside ``persistence.STATES`` / ``SOURCES``...).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recordings.persistence import (
    PAUSE_SOURCES,
    SOURCES,
    STATES,
    legal_holds,
    recording_pauses,
    recordings,
)
from store.errors import NotFoundError
from store.types import as_utc, utc_now

__all__ = [
    "MAX_PAGE",
    "LegalHold",
    "Pause",
    "PauseSource",
    "Recording",
    "RecordingRepository",
    "Source",
    "State",
    "new_recording_id",
]

State = Literal["recording", "paused", "ended", "stored", "failed", "missing"]
Source = Literal["asterisk", "twilio"]
PauseSource = Literal["desk", "api", "ivr"]
MAX_PAGE: Final = 500


def new_recording_id() -> str:
    """A random recording id (32 hex characters); never derived from anything guessable."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Recording:
    id: str
    interaction_id: int
    call_id: str | None
    agent_id: int | None
    customer_id: int | None
    queue: str | None
    source: Source
    external_id: str | None
    state: State
    spool_name: str | None
    """The file name in the spool directory (the name given to MixMonitor)."""
    storage_key: str | None
    """Where the file is in ``recordings.storage`` once stored."""
    sha256: str | None
    """SHA-256 (hex) of the plaintext file."""
    size_bytes: int | None
    """Plaintext size in bytes (what a Range request counts in)."""
    duration_ms: int | None
    content_type: str
    encrypted: bool
    started_at: datetime
    ended_at: datetime | None
    stored_at: datetime | None
    retain_until: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Pause:
    id: int
    recording_id: str
    paused_at: datetime
    resumed_at: datetime | None
    actor_id: str | None
    source: PauseSource


@dataclass(frozen=True)
class LegalHold:
    id: int
    interaction_id: int | None
    customer_id: int | None
    reason: str
    created_by: str | None
    created_at: datetime
    released_at: datetime | None
    released_by: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None


def _recording(row: Row[Any]) -> Recording:
    return Recording(
        id=row.id,
        interaction_id=row.interaction_id,
        call_id=row.call_id,
        agent_id=row.agent_id,
        customer_id=row.customer_id,
        queue=row.queue,
        source=row.source,
        external_id=row.external_id,
        state=row.state,
        spool_name=row.spool_name,
        storage_key=row.storage_key,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        duration_ms=row.duration_ms,
        content_type=row.content_type,
        encrypted=bool(row.encrypted),
        started_at=row.started_at,
        ended_at=row.ended_at,
        stored_at=row.stored_at,
        retain_until=row.retain_until,
        created_at=row.created_at,
    )


def _pause(row: Row[Any]) -> Pause:
    return Pause(
        id=row.id,
        recording_id=row.recording_id,
        paused_at=row.paused_at,
        resumed_at=row.resumed_at,
        actor_id=row.actor_id,
        source=row.source,
    )


def _hold(row: Row[Any]) -> LegalHold:
    return LegalHold(
        id=row.id,
        interaction_id=row.interaction_id,
        customer_id=row.customer_id,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        released_at=row.released_at,
        released_by=row.released_by,
    )


def _check(field: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{field}: expected one of {', '.join(allowed)}, got {value!r}")


def _optional_text(field: str, value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    if len(value) > limit:
        raise ValueError(f"{field}: longer than {limit} characters")
    return value


class RecordingRepository:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # -- recordings ------------------------------------------------------------------------

    async def create(
        self,
        *,
        interaction_id: int,
        source: str = "asterisk",
        call_id: str | None = None,
        agent_id: int | None = None,
        customer_id: int | None = None,
        queue: str | None = None,
        external_id: str | None = None,
        spool_name: str | None = None,
        content_type: str = "audio/wav",
        started_at: datetime | None = None,
        recording_id: str | None = None,
        state: str = "recording",
    ) -> Recording:
        """Store a new recording row (state ``recording`` unless given) and return it.

        ``recording_id``: pass one from ``new_recording_id()`` when the id must be known
        before the row exists (to name the MixMonitor file); otherwise one is drawn.
        """
        _check("source", source, SOURCES)
        _check("state", state, STATES)
        if recording_id is None:
            recording_id = new_recording_id()
        elif len(recording_id) != 32 or any(c not in "0123456789abcdef" for c in recording_id):
            raise ValueError(
                f"recording_id: expected 32 lower-case hex digits, got {recording_id!r}"
            )
        if spool_name is not None:
            _check_spool_name(spool_name)
        now = self._clock()
        values: dict[str, Any] = {
            "id": recording_id,
            "interaction_id": interaction_id,
            "call_id": _optional_text("call_id", call_id, 64),
            "agent_id": agent_id,
            "customer_id": customer_id,
            "queue": _optional_text("queue", queue, 64),
            "source": source,
            "external_id": _optional_text("external_id", external_id, 128),
            "state": state,
            "spool_name": spool_name,
            "content_type": content_type,
            "encrypted": False,
            "started_at": as_utc(started_at) if started_at is not None else now,
            "created_at": now,
        }
        async with self._engine.begin() as conn:
            await conn.execute(insert(recordings).values(**values))
            return await self._require(conn, recording_id)

    async def get(self, recording_id: str) -> Recording | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(recordings).where(recordings.c.id == recording_id))
            ).first()
        return None if row is None else _recording(row)

    async def find_by_external_id(self, source: str, external_id: str) -> Recording | None:
        """The recording a MixMonitorID or Twilio RecordingSid belongs to (newest first)."""
        query = (
            select(recordings)
            .where(recordings.c.source == source, recordings.c.external_id == external_id)
            .order_by(recordings.c.created_at.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _recording(row)

    async def find_by_spool_name(self, spool_name: str) -> Recording | None:
        query = select(recordings).where(recordings.c.spool_name == spool_name).limit(1)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _recording(row)

    async def update(self, recording_id: str, **values: Any) -> Recording:
        """Set columns directly (``external_id``, ``call_id``, ``agent_id``...); the
        ``state`` and ``source`` values are checked. NotFoundError for an unknown id."""
        unknown = set(values) - set(recordings.c.keys()) | ({"id"} & set(values))
        if unknown:
            raise ValueError(f"recording: unknown or read-only column {sorted(unknown)[0]!r}")
        if "state" in values:
            _check("state", values["state"], STATES)
        if "source" in values:
            _check("source", values["source"], SOURCES)
        if values.get("spool_name") is not None:
            _check_spool_name(values["spool_name"])
        async with self._engine.begin() as conn:
            return await self._update(conn, recording_id, values)

    async def update_state(self, recording_id: str, state: str) -> Recording:
        _check("state", state, STATES)
        async with self._engine.begin() as conn:
            return await self._update(conn, recording_id, {"state": state})

    async def mark_ended(self, recording_id: str, *, ended_at: datetime | None = None) -> Recording:
        """Recording stopped: state ``ended`` (file in the spool), open pause closed."""
        at = as_utc(ended_at) if ended_at is not None else self._clock()
        async with self._engine.begin() as conn:
            await conn.execute(
                update(recording_pauses)
                .where(
                    recording_pauses.c.recording_id == recording_id,
                    recording_pauses.c.resumed_at.is_(None),
                )
                .values(resumed_at=at)
            )
            return await self._update(conn, recording_id, {"state": "ended", "ended_at": at})

    async def mark_stored(
        self,
        recording_id: str,
        *,
        storage_key: str,
        sha256: str,
        size: int,
        duration_ms: int | None,
        encrypted: bool,
        retain_until: datetime | None,
        stored_at: datetime | None = None,
    ) -> Recording:
        """The file is in storage under ``storage_key``: state ``stored``."""
        if len(sha256) != 64:
            raise ValueError(f"sha256: expected 64 hex digits, got {sha256!r}")
        if size < 0:
            raise ValueError(f"size: expected a byte count >= 0, got {size}")
        values: dict[str, Any] = {
            "state": "stored",
            "storage_key": storage_key,
            "sha256": sha256,
            "size_bytes": size,
            "duration_ms": duration_ms,
            "encrypted": encrypted,
            "retain_until": None if retain_until is None else as_utc(retain_until),
            "stored_at": as_utc(stored_at) if stored_at is not None else self._clock(),
        }
        async with self._engine.begin() as conn:
            current = await self._require(conn, recording_id)
            if current.ended_at is None:
                values["ended_at"] = values["stored_at"]
            return await self._update(conn, recording_id, values)

    async def set_retain_until(self, recording_id: str, retain_until: datetime | None) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(recordings)
                .where(recordings.c.id == recording_id)
                .values(retain_until=None if retain_until is None else as_utc(retain_until))
            )

    async def delete(self, recording_id: str) -> bool:
        """Delete the row and its pauses. False if there was none. The file is the
        caller's business (``retention.Purger`` and ``erase`` delete both)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(recordings).where(recordings.c.id == recording_id))
            return result.rowcount > 0

    async def list(
        self,
        *,
        interaction_id: int | None = None,
        customer_id: int | None = None,
        agent_id: int | None = None,
        queue: str | None = None,
        states: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> builtins.list[Recording]:
        """Newest first (by ``started_at``, then id). Paging: pass the last row's
        ``(started_at, id)`` as ``before`` to get the next page. ``limit`` <= MAX_PAGE."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: expected 1-{MAX_PAGE}, got {limit}")
        conditions: builtins.list[ColumnElement[bool]] = []
        if interaction_id is not None:
            conditions.append(recordings.c.interaction_id == interaction_id)
        if customer_id is not None:
            conditions.append(recordings.c.customer_id == customer_id)
        if agent_id is not None:
            conditions.append(recordings.c.agent_id == agent_id)
        if queue is not None:
            conditions.append(recordings.c.queue == queue)
        if states is not None:
            for state in states:
                _check("state", state, STATES)
            conditions.append(recordings.c.state.in_(list(states)))
        if since is not None:
            conditions.append(recordings.c.started_at >= as_utc(since))
        if until is not None:
            conditions.append(recordings.c.started_at < as_utc(until))
        if before is not None:
            at, last_id = as_utc(before[0]), before[1]
            conditions.append(
                or_(
                    recordings.c.started_at < at,
                    and_(recordings.c.started_at == at, recordings.c.id < last_id),
                )
            )
        query = (
            select(recordings)
            .where(*conditions)
            .order_by(recordings.c.started_at.desc(), recordings.c.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_recording(row) for row in await conn.execute(query)]

    async def list_for_interaction(self, interaction_id: int) -> builtins.list[Recording]:
        return await self.list(interaction_id=interaction_id, limit=MAX_PAGE)

    async def list_for_customer(
        self, customer_id: int, *, limit: int = 100
    ) -> builtins.list[Recording]:
        return await self.list(customer_id=customer_id, limit=limit)

    async def all_ids_and_keys(self) -> builtins.list[tuple[str, str | None, str, str | None]]:
        """Every row as ``(id, storage_key, state, spool_name)``: for ``recordings.check``."""
        query = select(
            recordings.c.id, recordings.c.storage_key, recordings.c.state, recordings.c.spool_name
        )
        async with self._engine.connect() as conn:
            return [(r.id, r.storage_key, r.state, r.spool_name) for r in await conn.execute(query)]

    async def stored_candidates(self, *, now: datetime) -> builtins.list[Recording]:
        """Rows the retention rules may look at: stored, missing or failed recordings
        that ended before ``now``. ``retention.due_for_purge`` makes the decision."""
        query = (
            select(recordings)
            .where(
                recordings.c.state.in_(["stored", "missing", "failed"]),
                recordings.c.started_at <= as_utc(now),
            )
            .order_by(recordings.c.started_at, recordings.c.id)
        )
        async with self._engine.connect() as conn:
            return [_recording(row) for row in await conn.execute(query)]

    # -- pauses ----------------------------------------------------------------------------

    async def add_pause(
        self,
        recording_id: str,
        *,
        source: str,
        actor_id: str | None = None,
        at: datetime | None = None,
    ) -> Pause:
        """Open a pause (state ``paused``). If one is already open it is returned as is:
        pausing twice is harmless."""
        _check("source", source, PAUSE_SOURCES)
        when = as_utc(at) if at is not None else self._clock()
        async with self._engine.begin() as conn:
            current = await self._require(conn, recording_id)
            if current.state not in ("recording", "paused"):
                raise ValueError(
                    f"recording {recording_id}: cannot pause in state {current.state!r}"
                )
            open_pause = await self._open_pause(conn, recording_id)
            if open_pause is not None:
                return open_pause
            row = (
                await conn.execute(
                    insert(recording_pauses)
                    .values(
                        recording_id=recording_id,
                        paused_at=when,
                        actor_id=_optional_text("actor_id", actor_id, 64),
                        source=source,
                    )
                    .returning(recording_pauses)
                )
            ).one()
            await self._update(conn, recording_id, {"state": "paused"})
            return _pause(row)

    async def end_pause(self, recording_id: str, *, at: datetime | None = None) -> Pause | None:
        """Close the open pause (state back to ``recording``); None if none was open."""
        when = as_utc(at) if at is not None else self._clock()
        async with self._engine.begin() as conn:
            current = await self._require(conn, recording_id)
            open_pause = await self._open_pause(conn, recording_id)
            if open_pause is None:
                return None
            row = (
                await conn.execute(
                    update(recording_pauses)
                    .where(recording_pauses.c.id == open_pause.id)
                    .values(resumed_at=when)
                    .returning(recording_pauses)
                )
            ).one()
            if current.state == "paused":
                await self._update(conn, recording_id, {"state": "recording"})
            return _pause(row)

    async def pauses(self, recording_id: str) -> builtins.list[Pause]:
        query = (
            select(recording_pauses)
            .where(recording_pauses.c.recording_id == recording_id)
            .order_by(recording_pauses.c.paused_at, recording_pauses.c.id)
        )
        async with self._engine.connect() as conn:
            return [_pause(row) for row in await conn.execute(query)]

    # -- legal holds -----------------------------------------------------------------------

    async def add_hold(
        self,
        *,
        reason: str,
        interaction_id: int | None = None,
        customer_id: int | None = None,
        created_by: str | None = None,
    ) -> LegalHold:
        """Put a hold on exactly one interaction or one customer (ValueError otherwise)."""
        if (interaction_id is None) == (customer_id is None):
            raise ValueError("legal hold: expected exactly one of interaction_id, customer_id")
        reason = reason.strip()
        if not reason:
            raise ValueError("reason: a legal hold needs a reason")
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    insert(legal_holds)
                    .values(
                        interaction_id=interaction_id,
                        customer_id=customer_id,
                        reason=reason,
                        created_by=_optional_text("created_by", created_by, 64),
                        created_at=self._clock(),
                    )
                    .returning(legal_holds)
                )
            ).one()
        return _hold(row)

    async def release_hold(self, hold_id: int, *, released_by: str | None = None) -> LegalHold:
        """Release a hold (releasing a released hold changes nothing). NotFoundError if none."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(select(legal_holds).where(legal_holds.c.id == hold_id))
            ).first()
            if row is None:
                raise NotFoundError("legal hold", hold_id)
            if row.released_at is not None:
                return _hold(row)
            row = (
                await conn.execute(
                    update(legal_holds)
                    .where(legal_holds.c.id == hold_id)
                    .values(
                        released_at=self._clock(),
                        released_by=_optional_text("released_by", released_by, 64),
                    )
                    .returning(legal_holds)
                )
            ).one()
        return _hold(row)

    async def get_hold(self, hold_id: int) -> LegalHold | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(legal_holds).where(legal_holds.c.id == hold_id))
            ).first()
        return None if row is None else _hold(row)

    async def list_holds(
        self,
        *,
        interaction_id: int | None = None,
        customer_id: int | None = None,
        active_only: bool = True,
    ) -> builtins.list[LegalHold]:
        query = select(legal_holds).order_by(legal_holds.c.id)
        if interaction_id is not None:
            query = query.where(legal_holds.c.interaction_id == interaction_id)
        if customer_id is not None:
            query = query.where(legal_holds.c.customer_id == customer_id)
        if active_only:
            query = query.where(legal_holds.c.released_at.is_(None))
        async with self._engine.connect() as conn:
            return [_hold(row) for row in await conn.execute(query)]

    async def due_for_purge(
        self,
        now: datetime,
        retention_days: Callable[[str | None], int | None] | None = None,
    ) -> builtins.list[Recording]:
        """Recordings whose retention has run out at ``now`` and that no active legal hold
        (on the interaction or on the customer) protects. See ``retention.due_for_purge``
        for the rule; ``retention_days(queue)`` gives the current policy (None: keep)."""
        from recordings.retention import due_for_purge

        candidates = await self.stored_candidates(now=now)
        holds = await self.list_holds(active_only=True)
        return due_for_purge(candidates, holds, now, retention_days)

    # -- helpers ---------------------------------------------------------------------------

    async def _require(self, conn: AsyncConnection, recording_id: str) -> Recording:
        row = (
            await conn.execute(select(recordings).where(recordings.c.id == recording_id))
        ).first()
        if row is None:
            raise NotFoundError("recording", recording_id)
        return _recording(row)

    async def _update(
        self, conn: AsyncConnection, recording_id: str, values: dict[str, Any]
    ) -> Recording:
        result = await conn.execute(
            update(recordings).where(recordings.c.id == recording_id).values(**values)
        )
        if result.rowcount == 0:
            raise NotFoundError("recording", recording_id)
        return await self._require(conn, recording_id)

    async def _open_pause(self, conn: AsyncConnection, recording_id: str) -> Pause | None:
        row = (
            await conn.execute(
                select(recording_pauses)
                .where(
                    recording_pauses.c.recording_id == recording_id,
                    recording_pauses.c.resumed_at.is_(None),
                )
                .order_by(recording_pauses.c.id.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else _pause(row)


def _check_spool_name(name: str) -> None:
    """A bare file name (no directory part, no ``..``): the spool path is spool_dir / name."""
    if (
        not name
        or len(name) > 255
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
    ):
        raise ValueError(f"spool_name: expected a bare file name, got {name!r}")
