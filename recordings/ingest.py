"""Moving a finished recording from the spool directory into storage.

``Ingestor(repo, storage, spool_dir, retention_days=..., clock=...)``;
``await ingestor.finish(recording_id)`` once the recording has stopped (REC-CONTROL calls
it after ``RecordingRepository.mark_ended``; ``check`` and start-up call
``finish_pending``). The steps, each safe to repeat:

1. the row is ``ended`` (set here if the caller has not), so the row says "the file is
   in the spool under ``spool_name``";
2. duration from the WAV header (``recordings.wav``);
3. ``storage.put`` (atomic: temporary file, fsync, rename; encrypts when configured),
   which also gives the plaintext SHA-256 and size;
4. ``mark_stored`` (state ``stored``, key, hash, size, duration, ``retain_until``);
5. the spool file is removed.

A crash before 3 completes leaves no object visible in storage and the row ``ended``
with its spool file: ``finish`` again completes it. A crash between 3 and 4 leaves a
complete object and the row ``ended``: ``finish`` again stores it again (same bytes)
and marks the row. A crash between 4 and 5 leaves a spool file whose row is
``stored``: ``finish`` removes it. Nothing is lost and no half file is ever listed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from recordings.repository import Recording, RecordingRepository
from recordings.storage import Storage, key_for
from recordings.wav import NotAWav, probe
from store.errors import NotFoundError
from store.types import utc_now

__all__ = ["Ingestor", "SpoolPathError"]

log = logging.getLogger(__name__)


class SpoolPathError(ValueError):
    """A spool path outside the spool directory (or not a bare file name)."""


class Ingestor:
    def __init__(
        self,
        repo: RecordingRepository,
        storage: Storage,
        spool_dir: Path,
        *,
        retention_days: Callable[[str | None], int | None] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repo
        self._storage = storage
        self._spool = Path(spool_dir).resolve()
        self._retention_days = retention_days
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def spool_dir(self) -> Path:
        return self._spool

    def spool_path(self, spool_name: str) -> Path:
        """``spool_dir / spool_name`` for a bare file name; SpoolPathError otherwise."""
        if (
            not spool_name
            or spool_name in (".", "..")
            or "/" in spool_name
            or "\\" in spool_name
            or "\x00" in spool_name
        ):
            raise SpoolPathError(f"spool_name: expected a bare file name, got {spool_name!r:.80}")
        return self._spool / spool_name

    async def finish(self, recording_id: str, spool_path: Path | None = None) -> Recording:
        """Store the recording's spool file and mark the row ``stored`` (see the module
        docstring). ``spool_path`` defaults to ``spool_dir / row.spool_name`` and must
        be inside the spool directory. Returns the row as it ends up: ``stored``, or
        ``failed`` when there is no file anywhere. NotFoundError for an unknown id."""
        lock = self._locks.setdefault(recording_id, asyncio.Lock())
        try:
            async with lock:
                return await self._finish(recording_id, spool_path)
        finally:
            if not lock.locked():
                self._locks.pop(recording_id, None)

    async def _finish(self, recording_id: str, spool_path: Path | None) -> Recording:
        rec = await self._repo.get(recording_id)
        if rec is None:
            raise NotFoundError("recording", recording_id)
        path = self._resolve(rec, spool_path)
        if rec.state == "stored":
            if path is not None and await asyncio.to_thread(path.is_file):
                await asyncio.to_thread(path.unlink, missing_ok=True)
                log.info("recording %s: removed its spool file left after storing", rec.id)
            return rec
        if rec.state in ("recording", "paused"):
            rec = await self._repo.mark_ended(rec.id)
        key = rec.storage_key or key_for(rec.id, rec.started_at, _extension(rec))
        if path is None or not await asyncio.to_thread(path.is_file):
            if await self._storage.exists(key):
                # Stored, then the spool file went away before the row was marked.
                return await self._mark_from_storage(rec, key)
            log.warning("recording %s: no file in the spool nor in storage", rec.id)
            return await self._repo.update_state(rec.id, "failed")
        duration_ms: int | None
        try:
            duration_ms = (await asyncio.to_thread(probe, path)).duration_ms
        except NotAWav as exc:
            log.warning("recording %s: stored without a duration: %s", rec.id, exc)
            duration_ms = None
        stored = await self._storage.put(key, path)
        now = self._clock()
        result = await self._repo.mark_stored(
            rec.id,
            storage_key=key,
            sha256=stored.sha256,
            size=stored.size,
            duration_ms=duration_ms,
            encrypted=stored.encrypted,
            retain_until=self._retain_until(rec, now),
            stored_at=now,
        )
        await asyncio.to_thread(path.unlink, missing_ok=True)
        log.info(
            "recording %s stored as %s (%d bytes, %s ms%s)",
            rec.id,
            key,
            stored.size,
            duration_ms,
            ", encrypted" if stored.encrypted else "",
        )
        return result

    async def finish_pending(self) -> list[Recording]:
        """Finish every ``ended`` row (files left in the spool by a crash or a restart)."""
        done: list[Recording] = []
        before: tuple[datetime, str] | None = None
        while True:
            page = await self._repo.list(states=["ended"], before=before, limit=200)
            for rec in page:
                done.append(await self.finish(rec.id))
            if len(page) < 200:
                return done
            before = (page[-1].started_at, page[-1].id)

    def _resolve(self, rec: Recording, spool_path: Path | None) -> Path | None:
        if spool_path is not None:
            path = Path(spool_path).resolve()
            if path.parent != self._spool:
                raise SpoolPathError(f"{path.name}: not in the spool directory {self._spool}")
            return path
        if rec.spool_name is None:
            return None
        return self.spool_path(rec.spool_name)

    def _retain_until(self, rec: Recording, now: datetime) -> datetime | None:
        if self._retention_days is None:
            return None
        days = self._retention_days(rec.queue)
        return None if days is None else now + timedelta(days=days)

    async def _mark_from_storage(self, rec: Recording, key: str) -> Recording:
        size = await self._storage.size(key)
        digest = hashlib.sha256()
        if size:
            async for piece in self._storage.read_range(key, 0, size - 1):
                digest.update(piece)
        now = self._clock()
        log.info("recording %s: found complete in storage as %s; marking it stored", rec.id, key)
        return await self._repo.mark_stored(
            rec.id,
            storage_key=key,
            sha256=digest.hexdigest(),
            size=size,
            duration_ms=rec.duration_ms,
            encrypted=await self._storage.is_encrypted(key),
            retain_until=self._retain_until(rec, now),
            stored_at=now,
        )


def _extension(rec: Recording) -> str:
    return "mp3" if rec.content_type == "audio/mpeg" else "wav"
