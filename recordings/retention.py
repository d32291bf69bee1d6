"""Retention: which recordings are due for purge (a pure function), and the purge job.

The rule (``due_for_purge``, no I/O, the clock passed in):

- a recording's deadline is its ``retain_until`` (set when it was stored, from its
  queue's retention days at that time); a row without one (never stored: ``failed``,
  ``missing``...) gets ``(ended_at or started_at) + retention_days(queue)`` from the
  current policy; ``retention_days(queue) is None`` means keep forever;
- it is due when ``now >= deadline``;
- unless an active legal hold names its interaction or its customer.

Changing a queue's retention days therefore applies to recordings stored from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from recordings.repository import LegalHold, Recording

__all__ = ["RetentionDays", "deadline", "due_for_purge", "is_held"]

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
