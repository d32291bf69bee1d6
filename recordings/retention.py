"""Retention: which recordings are due for purge (a pure function), and the purge job.

The rule (``due_for_purge``, no I/O, the clock passed in):

- a recording's deadline is its ``retain_until`` (set when it was stored, from its
  queue's retention days at that time); a row without one (never stored: ``failed``,
  ``missing``...) gets ``(ended_at or started_at) + retention_days(queue)`` from the
  current policy; ``retention_days(queue) is None`` means keep forever;
- it is due when ``now >= deadline``;
- unless an active legal hold names its interaction or its customer.

Changing a queue's retention days therefore applies to recordings stored from then on,
until ``callwright recordings retention --apply`` (``retention_changes``) sets the
stored ones' ``retain_until`` from the current policy: ``stored_at`` + the queue's
days (None: keep forever).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from agent_desk.audit import AuditLog
from recordings.repository import LegalHold, Recording, RecordingRepository
from recordings.storage import Storage
from store.types import utc_now

__all__ = [
    "SYSTEM",
    "PurgeReport",
    "Purged",
    "Purger",
    "RetentionChange",
    "RetentionDays",
    "SystemActor",
    "deadline",
    "due_for_purge",
    "is_held",
    "retention_changes",
]

log = logging.getLogger(__name__)

RetentionDays = Callable[[str | None], int | None]
"""``retention_days(queue)``: days to keep a recording of that queue; None: forever."""


def deadline(recording: Recording, retention_days: RetentionDays | None) -> datetime | None:
    """When ``recording`` may be purged (None: never, by retention)."""
    if recording.retain_until is not None:
        return recording.retain_until
    if retention_days is None:
        return None
    days = retention_days(recording.queue)
    if days is None:
        return None
    return (recording.ended_at or recording.started_at) + timedelta(days=days)


@dataclass(frozen=True)
class RetentionChange:
    recording: Recording
    retain_until: datetime | None  # what the current policy gives


def retention_changes(
    recordings: Iterable[Recording], retention_days: RetentionDays
) -> list[RetentionChange]:
    """The stored recordings whose ``retain_until`` is not what the current
    policy gives (``stored_at`` + the queue's days; None: forever), in the
    order given."""
    changes: list[RetentionChange] = []
    for recording in recordings:
        if recording.state != "stored" or recording.stored_at is None:
            continue
        days = retention_days(recording.queue)
        wanted = None if days is None else recording.stored_at + timedelta(days=days)
        if wanted != recording.retain_until:
            changes.append(RetentionChange(recording, wanted))
    return changes


def is_held(recording: Recording, holds: Iterable[LegalHold]) -> bool:
    """True when an active hold names the recording's interaction or customer."""
    for hold in holds:
        if not hold.active:
            continue
        if hold.interaction_id is not None and hold.interaction_id == recording.interaction_id:
            return True
        if hold.customer_id is not None and hold.customer_id == recording.customer_id:
            return True
    return False


def due_for_purge(
    recordings: Iterable[Recording],
    holds: Iterable[LegalHold],
    now: datetime,
    retention_days: RetentionDays | None = None,
) -> list[Recording]:
    """The recordings whose deadline has passed at ``now`` and that no active hold keeps,
    in the order given. Recordings still being recorded are never due."""
    hold_list = [hold for hold in holds if hold.active]
    due: list[Recording] = []
    for recording in recordings:
        if recording.state in ("recording", "paused", "ended"):
            continue
        limit = deadline(recording, retention_days)
        if limit is None or now < limit:
            continue
        if is_held(recording, hold_list):
            continue
        due.append(recording)
    return due


# -- the purge job ------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemActor:
    """The actor of scheduled work in the audit log."""

    id: str = "system"
    role: str = "system"


SYSTEM: Final = SystemActor()


@dataclass(frozen=True)
class Purged:
    recording_id: str
    interaction_id: int
    customer_id: int | None
    queue: str | None
    storage_key: str | None
    file_deleted: bool
    """False: there was no file (a ``missing`` or ``failed`` row, or already gone)."""
    deadline: datetime | None


@dataclass(frozen=True)
class PurgeReport:
    at: datetime
    dry_run: bool
    purged: tuple[Purged, ...]
    held: int
    """Due by date but kept by a legal hold."""
    errors: tuple[str, ...] = ()


class Purger:
    """Deletes due recordings, file then row, one audit row (``recordings.purge``, actor
    ``system``) per deletion. A crash between the file and the row leaves a row without
    a file, which the next run (or ``check``) finishes: nothing is half kept."""

    def __init__(
        self,
        repo: RecordingRepository,
        storage: Storage,
        audit: AuditLog,
        *,
        retention_days: RetentionDays | None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repo
        self._storage = storage
        self._audit = audit
        self._retention_days = retention_days
        self._clock = clock

    async def run(self, *, dry_run: bool = False) -> PurgeReport:
        now = self._clock()
        candidates = await self._repo.stored_candidates(now=now)
        holds = await self._repo.list_holds(active_only=True)
        due = due_for_purge(candidates, holds, now, self._retention_days)
        by_date = due_for_purge(candidates, (), now, self._retention_days)
        purged: list[Purged] = []
        errors: list[str] = []
        for rec in due:
            item = Purged(
                recording_id=rec.id,
                interaction_id=rec.interaction_id,
                customer_id=rec.customer_id,
                queue=rec.queue,
                storage_key=rec.storage_key,
                file_deleted=False,
                deadline=deadline(rec, self._retention_days),
            )
            if dry_run:
                purged.append(item)
                continue
            # A hold added since the list was read wins.
            fresh = await self._repo.list_holds(interaction_id=rec.interaction_id)
            if rec.customer_id is not None:
                fresh += await self._repo.list_holds(customer_id=rec.customer_id)
            if is_held(rec, fresh):
                continue
            try:
                deleted = await self._storage.delete(rec.storage_key) if rec.storage_key else False
                await self._repo.delete(rec.id)
            except Exception as exc:  # one bad file must not stop the purge
                log.error("purge of recording %s failed: %s", rec.id, exc)
                errors.append(f"{rec.id}: {exc.__class__.__name__}: {exc}")
                await self._audit.record(
                    actor=SYSTEM,
                    action="recordings.purge",
                    outcome="failed",
                    subject=f"recording:{rec.id}",
                    detail={"error": exc.__class__.__name__},
                )
                continue
            item = replace(item, file_deleted=deleted)
            await self._audit.record(
                actor=SYSTEM,
                action="recordings.purge",
                outcome="allowed",
                subject=f"recording:{rec.id}",
                detail={
                    "interaction_id": rec.interaction_id,
                    "queue": rec.queue,
                    "storage_key": rec.storage_key,
                    "file_deleted": deleted,
                    "deadline": None if item.deadline is None else item.deadline.isoformat(),
                },
            )
            purged.append(item)
        if purged and not dry_run:
            log.info("retention purge: %d recording(s) deleted", len(purged))
        return PurgeReport(now, dry_run, tuple(purged), len(by_date) - len(due), tuple(errors))

    async def run_forever(self, interval: float) -> None:
        """Purge every ``interval`` seconds until cancelled; errors are logged, not fatal."""
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention purge failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)
