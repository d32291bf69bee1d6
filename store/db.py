"""The shared MetaData and engine factory.

SQLite (aiosqlite, a file in the data directory) is the embedded default;
PostgreSQL (asyncpg) is chosen by URL. Every table module registers its tables on
``metadata``; ``store.schema.load_all()`` imports them all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

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
        # WAL with synchronous=NORMAL: a commit is durable across a crash or
        # restart of Callwright; only an OS crash or a power cut may roll back
        # the last transactions (SQLite's documentation calls this "a good
        # choice for most applications running in WAL mode"). FULL fsyncs at
        # every commit: 0.3 ms each here, on the way to every screen-pop.
        # Sites that need more run PostgreSQL (README, "Storage").
        cursor.execute("PRAGMA synchronous=NORMAL")
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


def _is_busy(error: BaseException) -> bool:
    """SQLite's "database is locked" (SQLITE_BUSY, SQLITE_LOCKED and their
    extended codes), raised by SQLAlchemy or by the driver itself."""
    orig = error.orig if isinstance(error, exc.DBAPIError) else error
    if not isinstance(orig, sqlite3.OperationalError):
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    if code is None:
        return "locked" in str(orig) or "busy" in str(orig)
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


# Inline commits between two WAL checkpoints (each in the writer's thread).
CHECKPOINT_EVERY = 500


class _SqliteFile:
    """What every OneHop of one engine on one SQLite file shares: a
    synchronous connection used on the event loop's thread (busy timeout 0),
    and a thread with its own connection (busy timeout as usual) for a
    transaction that found the database locked, and for WAL checkpoints.

    The inline connection never checkpoints: SQLite's automatic checkpoint
    runs inside the commit that fills the WAL to 1,000 pages, copying them to
    the database file and syncing it: on the event loop, every few seconds at
    50 calls/s (the benchmark showed no difference beyond its spread either
    way; the copy and the sync belong off the loop). Every
    ``CHECKPOINT_EVERY`` inline commits a PASSIVE checkpoint (it never waits
    for, nor blocks, readers and writers) runs in the thread instead."""

    def __init__(self, url: URL) -> None:
        sync_url = url.set(drivername="sqlite+pysqlite")
        # One connection, held: no pool checkout per transaction. Used only
        # from the event loop's thread, one transaction at a time (a
        # transaction runs to its end with no await inside).
        self.inline_engine = create_engine(
            sync_url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        event.listen(self.inline_engine, "connect", _sqlite_on_connect)
        self.inline = self.inline_engine.connect()
        self.inline.exec_driver_sql("PRAGMA busy_timeout=0")
        self.inline.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        self.inline.commit()  # (SQLAlchemy began a transaction for the pragmas)
        self.commits = 0  # inline, since the last checkpoint
        self.checkpoints = 0  # done: for tests
        self.threaded = create_engine(sync_url)
        event.listen(self.threaded, "connect", _sqlite_on_connect)
        self.thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="store-writer"
        )
        self.users = 0

    def committed(self) -> None:
        self.commits += 1
        if self.commits >= CHECKPOINT_EVERY:
            self.commits = 0
            self.thread.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            with self.threaded.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except Exception:  # the next one will try again; the WAL only grows meanwhile
            log.exception("SQLite WAL checkpoint failed")

    def close(self) -> None:
        self.thread.submit(self._checkpoint)
        self.inline.close()
        self.inline_engine.dispose()
        # Its connections belong to the writer's thread: closed there.
        self.thread.submit(self.threaded.dispose)
        self.thread.shutdown(wait=True)


_SQLITE_FILES: weakref.WeakKeyDictionary[Engine, _SqliteFile] = weakref.WeakKeyDictionary()


class OneHop:
    """Runs a whole transaction (writes, or reads that belong together),
    written against SQLAlchemy's synchronous ``Connection``, for an
    AsyncEngine. On a SQLite file: on the event loop's own thread, on a
    synchronous connection to the same file shared by every OneHop of the
    engine; if the database is locked by another connection at that moment
    (SQLITE_BUSY: some other writer, a backup, the command line), the
    transaction is rolled back and run again in a thread that waits for the
    lock. ``fn`` must therefore touch nothing but the database: it may run
    twice. On anything else: ``AsyncConnection.run_sync`` (PostgreSQL:
    asyncpg as usual).

    Why by hand: SQLAlchemy's async SQLite driver (aiosqlite) crosses from the
    event loop to its connection's thread and back for every statement and for
    the commit, and each crossing waits for the event loop (and, under load,
    for the GIL: up to its 5 ms switch interval). A transaction of six
    statements took 4.3 ms that way, 0.7 ms as one call in a thread; at 2
    calls/s three such commits were 17 of the screen-pop's 23 ms, and on the
    loop's thread the pop took 13.5 ms (bench/RESULTS.md, "Third performance
    round"). The
    statements of one transaction take tens to hundreds of microseconds:
    less than a thread hop. No maintained library runs SQLAlchemy that way.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._file: _SqliteFile | None = None
        self.fallbacks = 0  # transactions that found the database locked: for tests
        url = engine.url
        database = url.database or ""
        if (
            url.get_backend_name() == "sqlite"
            and database
            and database != ":memory:"
            and not database.startswith("file:")
        ):
            shared = _SQLITE_FILES.get(engine.sync_engine)
            if shared is None:
                shared = _SQLITE_FILES[engine.sync_engine] = _SqliteFile(url)
            shared.users += 1
            self._file = shared

    @property
    def inline(self) -> bool:
        """Whether transactions run on the event loop's thread (a SQLite
        file): awaiting ``run`` then takes no event-loop pass, unless the
        database is locked."""
        return self._file is not None

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` inside one transaction, committed when it returns."""
        shared = self._file
        if shared is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        done, result = self.run_now(fn)
        if done:
            return result  # type: ignore[return-value]
        return await asyncio.get_running_loop().run_in_executor(shared.thread, _tx, shared, fn)

    def run_now(self, fn: Callable[[Connection], T]) -> tuple[bool, T | None]:
        """``fn`` inside one transaction on this thread, now, if that needs no
        waiting: ``(True, its result)`` once committed. ``(False, None)``, with
        nothing written, when it cannot be (not a SQLite file: use ``run``; or
        the database is locked: ``run`` waits for the lock in a thread)."""
        shared = self._file
        if shared is None:
            return False, None
        try:
            with shared.inline.begin():
                result = fn(shared.inline)
        except Exception as error:
            if not _is_busy(error):
                raise
            self.fallbacks += 1
            return False, None
        shared.committed()
        return True, result

    async def close(self) -> None:
        shared, self._file = self._file, None
        if shared is None:
            return
        shared.users -= 1
        if shared.users == 0:
            if _SQLITE_FILES.get(self.engine.sync_engine) is shared:
                del _SQLITE_FILES[self.engine.sync_engine]
            await asyncio.get_running_loop().run_in_executor(None, shared.close)


def _tx(shared: _SqliteFile, fn: Callable[[Connection], T]) -> T:
    with shared.threaded.begin() as conn:
        return fn(conn)
