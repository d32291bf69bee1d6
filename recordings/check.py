"""``callwright recordings check [--repair]``: storage, spool and rows compared.

Found (always reported; nothing changes without ``repair``):

- ``files_without_row``: a stored object whose key no row names. Repair: moved to the
  storage's quarantine (never deleted: it may be the only copy of something).
- ``rows_without_file``: a ``stored`` row whose object is gone. Repair: state
  ``missing`` (playback answers 404; retention still purges the row).
- ``reappeared``: a ``missing`` row whose object is back. Repair: state ``stored``.
- ``spool_pending``: an ``ended`` row (or a ``recording``/``paused`` one older than
  ``stale_after`` whose spool file has not changed for as long) with its spool file
  still there: it was never stored (a crash, a restart); or a row whose object is in
  storage but was never marked. Repair: ``Ingestor.finish``.
- ``spool_without_row``: a spool file no row names. Reported only (a call being set up
  may own it).
- ``leftovers``: temporary files of interrupted writes and stray files in storage.
  Repair: temporary files older than ``stale_after`` are removed; stray files stay.

Every repair is logged; the report lists what was done.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from recordings.ingest import Ingestor
from recordings.repository import RecordingRepository
from recordings.storage import LocalStorage, Storage, object_id
from store.types import utc_now

__all__ = ["CheckReport", "check_recordings"]

log = logging.getLogger(__name__)


@dataclass
class CheckReport:
    files_without_row: list[str] = field(default_factory=list)
    rows_without_file: list[str] = field(default_factory=list)
    reappeared: list[str] = field(default_factory=list)
    spool_pending: list[str] = field(default_factory=list)
    spool_without_row: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    """One line per change made (only with ``repair``)."""
    errors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.files_without_row
            or self.rows_without_file
            or self.reappeared
            or self.spool_pending
            or self.spool_without_row
            or self.leftovers
            or self.errors
        )

    def lines(self) -> list[str]:
        out: list[str] = []
        sections = (
            ("file without row", self.files_without_row),
            ("row without file", self.rows_without_file),
            ("file back for a missing row", self.reappeared),
            ("in the spool, never stored", self.spool_pending),
            ("spool file without row", self.spool_without_row),
            ("leftover file in storage", self.leftovers),
            ("repaired", self.repaired),
            ("error", self.errors),
        )
        for title, items in sections:
            out.extend(f"{title}: {item}" for item in items)
        return out


async def check_recordings(
    repo: RecordingRepository,
    storage: Storage,
    ingestor: Ingestor,
    *,
    repair: bool = False,
    stale_after: timedelta = timedelta(hours=1),
    clock: Callable[[], datetime] = utc_now,
) -> CheckReport:
    report = CheckReport()
    now = clock()
    rows = await repo.all_ids_and_keys()
    keys_with_rows = {key for _, key, _, _ in rows if key is not None}
    spool_names = {spool for _, _, _, spool in rows if spool is not None}
    stored_keys = [key async for key in storage.keys()]
    present = set(stored_keys)

    unmarked = {rec_id for rec_id, key, _, _ in rows if key is None}
    for key in stored_keys:
        if key in keys_with_rows:
            continue
        if object_id(key) in unmarked:
            # Stored, but the process stopped before marking the row: finish does it.
            continue
        report.files_without_row.append(key)
        if repair:
            where = await storage.quarantine(key)
            report.repaired.append(f"{key}: moved to {where}")

    for rec_id, row_key, state, _ in rows:
        if state == "stored" and (row_key is None or row_key not in present):
            report.rows_without_file.append(f"{rec_id} ({row_key})")
            if repair:
                await repo.update_state(rec_id, "missing")
                report.repaired.append(f"{rec_id}: state missing")
        elif state == "missing" and row_key is not None and row_key in present:
            report.reappeared.append(f"{rec_id} ({row_key})")
            if repair:
                await repo.update_state(rec_id, "stored")
                report.repaired.append(f"{rec_id}: state stored")

    pending = await _spool_pending(repo, ingestor, rows, now - stale_after)
    pending_ids = {rec_id for rec_id, _ in pending}
    for key in stored_keys:
        rec_id = object_id(key)
        if key not in keys_with_rows and rec_id in unmarked and rec_id not in pending_ids:
            pending.append((rec_id, f"stored as {key}, row not marked"))
    for rec_id, name in pending:
        report.spool_pending.append(f"{rec_id} ({name})")
        if repair:
            try:
                done = await ingestor.finish(rec_id)
            except Exception as exc:
                report.errors.append(f"{rec_id}: ingest failed: {exc.__class__.__name__}: {exc}")
                continue
            report.repaired.append(f"{rec_id}: ingested as {done.storage_key} ({done.state})")

    for name in await asyncio.to_thread(_spool_files, ingestor.spool_dir):
        if name not in spool_names:
            report.spool_without_row.append(name)

    if isinstance(storage, LocalStorage):
        cutoff = (now - stale_after).timestamp()
        for path in await asyncio.to_thread(storage.leftovers):
            shown = path.relative_to(storage.root).as_posix()
            report.leftovers.append(shown)
            if repair and path.name.endswith(".tmp") and path.name.startswith("."):
                if await asyncio.to_thread(_remove_if_older, path, cutoff):
                    report.repaired.append(f"{shown}: removed (interrupted write)")

    for line in report.repaired:
        log.info("recordings check repaired %s", line)
    return report


async def _spool_pending(
    repo: RecordingRepository,
    ingestor: Ingestor,
    rows: list[tuple[str, str | None, str, str | None]],
    stale_before: datetime,
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for rec_id, _, state, spool in rows:
        if spool is None or state not in ("ended", "recording", "paused"):
            continue
        try:
            path = ingestor.spool_path(spool)
        except ValueError:
            continue
        if not await asyncio.to_thread(path.is_file):
            continue
        if state != "ended":
            # Still recording as far as the row knows: only a stale one is stuck.
            rec = await repo.get(rec_id)
            if rec is None or rec.started_at > stale_before:
                continue
            mtime = (await asyncio.to_thread(path.stat)).st_mtime
            if mtime > stale_before.timestamp():
                continue
        found.append((rec_id, spool))
    return found


def _remove_if_older(path: Path, cutoff: float) -> bool:
    try:
        if path.stat().st_mtime >= cutoff:
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _spool_files(spool_dir: Path) -> list[str]:
    try:
        return sorted(
            entry.name
            for entry in os.scandir(spool_dir)
            if entry.is_file() and not entry.name.startswith(".")
        )
    except FileNotFoundError:
        return []
