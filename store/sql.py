"""Hand-written SQL for the few statements on the way to a screen-pop, run on
the DBAPI connection beneath a SQLAlchemy ``Connection`` (inside
``store.db.OneHop``), on SQLite and PostgreSQL alike.

Why by hand: SQLAlchemy Core spends tens of microseconds to milliseconds per
statement building it, computing its cache key and, for expanding ``IN``
lists, compiling it again, before the database does anything. The caller-ID
match with its contacts took 1.7 ms that way against 60 us as plain SQL on
the same connection (this machine; bench/RESULTS.md, "Third performance
round"), and it runs for every caller. The tables are still defined,
migrated and used everywhere else through SQLAlchemy; these statements name
the same columns and store values in the form SQLAlchemy does (``db_time``),
so either side reads what the other wrote.

Statements are written with ``?`` placeholders (SQLite's qmark style) and
turned into ``$1, $2...`` for asyncpg once. They must not hold a literal ``?``.
A driver's error is raised as SQLAlchemy raises it (``sqlalchemy.exc.IntegrityError``,
``OperationalError``... with the driver's error as ``.orig``), as for any other
statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, exc

__all__ = ["Sql", "db_time", "py_time"]

_PLACEHOLDER: Final = re.compile(r"\?")


class Sql:
    """One statement, written once."""

    __slots__ = ("numbered", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        counter = iter(range(1, text.count("?") + 1))
        self.numbered = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", text)

    def _cursor(self, conn: Connection) -> tuple[Any, str]:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        text = self.text if conn.dialect.paramstyle == "qmark" else self.numbered
        return cursor, text

    def rows(self, conn: Connection, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run it; the rows it returns (none for a statement without a result)."""
        cursor, text = self._cursor(conn)
        try:
            cursor.execute(text, tuple(params))
            return list(cursor.fetchall()) if cursor.description else []
        except conn.dialect.loaded_dbapi.Error as error:
            raise _wrapped(conn, text, params, error) from error
        finally:
            cursor.close()

    def run(self, conn: Connection, params: Sequence[Any] = ()) -> int:
        """Run it; how many rows it changed."""
        cursor, text = self._cursor(conn)
        try:
            cursor.execute(text, tuple(params))
            return int(cursor.rowcount)
        except conn.dialect.loaded_dbapi.Error as error:
            raise _wrapped(conn, text, params, error) from error
        finally:
            cursor.close()

    def many(self, conn: Connection, params: Iterable[Sequence[Any]]) -> None:
        """Run it once per parameter row (one executemany)."""
        batch = [tuple(p) for p in params]
        if not batch:
            return
        cursor, text = self._cursor(conn)
        try:
            cursor.executemany(text, batch)
        except conn.dialect.loaded_dbapi.Error as error:
            raise _wrapped(conn, text, batch, error, many=True) from error
        finally:
            cursor.close()


def _wrapped(
    conn: Connection, text: str, params: Any, error: Exception, *, many: bool = False
) -> BaseException:
    """The driver's ``error`` as SQLAlchemy's own statements raise it, so that
    callers catch ``sqlalchemy.exc.IntegrityError`` and the like either way."""
    return exc.DBAPIError.instance(
        text,
        params,
        error,
        conn.dialect.loaded_dbapi.Error,
        dialect=conn.dialect,
        ismulti=many,
    )


def db_time(conn: Connection, value: datetime | None) -> Any:
    """An aware datetime as ``store.types.UtcDateTime`` binds it: naive UTC
    text in SQLAlchemy's SQLite format, or the aware value for PostgreSQL."""
    if value is None:
        return None
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} (pass a timezone-aware one)")
    value = value.astimezone(UTC)
    if conn.dialect.name != "sqlite":
        return value
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


def py_time(value: Any) -> datetime | None:
    """A time column's raw value (SQLite's text, asyncpg's datetime) as an
    aware UTC datetime, as ``UtcDateTime`` returns it."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a time, got {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
