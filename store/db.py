"""The shared MetaData and engine factory.

SQLite (aiosqlite, a file in the data directory) is the embedded default;
PostgreSQL (asyncpg) is chosen by URL. Every table module registers its tables on
``metadata``; ``store.schema.load_all()`` imports them all.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["NAMING_CONVENTION", "make_engine", "metadata", "ping", "safe_url", "sqlite_url"]

log = logging.getLogger(__name__)

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir}/callwright.db"


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def make_engine(url: str | URL, **engine_kwargs: Any) -> AsyncEngine:
    """An AsyncEngine for ``url``; extra keyword arguments go to ``create_async_engine``.

    SQLite: the parent directory of the database file is created, foreign keys are
    enforced and the journal is WAL. PostgreSQL: connections are pinged before use.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed, **engine_kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    elif backend == "postgresql":
        engine_kwargs.setdefault("pool_pre_ping", True)
        engine = create_async_engine(parsed, **engine_kwargs)
    else:
        raise ValueError(f"unsupported database URL {safe_url(parsed)} (use sqlite or postgresql)")
    log.debug("database engine for %s", safe_url(parsed))
    return engine


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers ``SELECT 1``; False on any error (for /healthz)."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("database ping failed: %s: %s", exc.__class__.__name__, exc)
        return False
    return True
