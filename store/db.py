"""The shared MetaData and engine factory.

SQLite (aiosqlite, a file in the data directory) is the embedded default;
PostgreSQL (asyncpg) is chosen by URL. Every table module registers its tables on
``metadata``; ``store.schema.load_all()`` imports them all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = [
    "NAMING_CONVENTION",
    "OneHop",
    "make_engine",
    "metadata",
    "ping",
    "safe_url",
    "sqlite_url",
]

T = TypeVar("T")

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


class OneHop:
    """Runs a whole transaction (writes, or reads that belong together),
    written against SQLAlchemy's synchronous ``Connection``, for an
    AsyncEngine. On a SQLite file: in one hop to a thread of its own holding a
    synchronous connection to the same file. On anything else:
    ``AsyncConnection.run_sync`` (PostgreSQL: asyncpg as usual).

    Why by hand: SQLAlchemy's async SQLite driver (aiosqlite) crosses from the
    event loop to its connection's thread and back for every statement and for
    the commit, and each crossing waits for the event loop. A transaction of
    six statements took 4.3 ms that way against 0.7 ms as one call on a
    synchronous connection in a thread (this machine, idle; the routing
    journal writes such a transaction on the way to every screen-pop). No
    maintained library runs a SQLAlchemy transaction per thread hop.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sync: Engine | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        url = engine.url
        database = url.database or ""
        if (
            url.get_backend_name() == "sqlite"
            and database
            and database != ":memory:"
            and not database.startswith("file:")
        ):
            self._sync = create_engine(url.set(drivername="sqlite+pysqlite"))
            event.listen(self._sync, "connect", _sqlite_on_connect)
            self._thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="store-writer"
            )

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` inside one transaction, committed when it returns."""
        if self._sync is None or self._thread is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._tx, fn)

    def _tx(self, fn: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.begin() as conn:
            return fn(conn)

    async def close(self) -> None:
        if self._sync is None or self._thread is None:
            return
        sync, thread = self._sync, self._thread
        self._sync, self._thread = None, None
        # Its connections belong to the writer's thread: closed there.
        await asyncio.get_running_loop().run_in_executor(thread, sync.dispose)
        thread.shutdown(wait=False)
