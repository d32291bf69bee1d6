"""Column types and time helpers shared by every table.

Times are stored as timezone-aware UTC. SQLite has no time zone type and hands back
naive datetimes, so ``UtcDateTime`` converts on the way in (refusing naive values) and
marks results as UTC on the way out: callers always get aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UtcDateTime", "as_utc", "from_epoch", "to_epoch", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime; a naive value is refused (ValueError)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} (pass a timezone-aware one)")
    return value.astimezone(UTC)


def from_epoch(seconds: float) -> datetime:
    """Epoch seconds (as the CTI layer keeps them) to an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def to_epoch(value: datetime) -> float:
    return as_utc(value).timestamp()


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only accepts and only returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        value = as_utc(value)
        if dialect.name == "sqlite":
            # SQLite stores the text without an offset; keep it UTC and naive there.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
