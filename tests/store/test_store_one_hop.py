"""store.db.OneHop: a transaction written against a synchronous
connection, committed whole or not at all, on SQLite (on the event loop's
thread, or in a thread when the database is locked) and PostgreSQL
(run_sync), and seen at once by the async engine."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncEngine

import store.db
from routing.journal import routing_meta
from store.db import OneHop, make_engine, sqlite_url
from store.migrate import upgrade


async def _meta(engine: AsyncEngine) -> dict[str, object]:
    async with engine.connect() as conn:
        return {r.key: r.value for r in (await conn.execute(select(routing_meta))).all()}


async def test_a_transaction_is_committed_whole_and_seen_by_the_async_engine(
    engine: AsyncEngine,
) -> None:
    writer = OneHop(engine)

    def write(conn: Connection) -> int:
        conn.execute(routing_meta.insert(), [{"key": "a", "value": 1}, {"key": "b", "value": 2}])
        return 2

    assert await writer.run(write) == 2
    assert await _meta(engine) == {"a": 1, "b": 2}
    await writer.close()


async def test_a_transaction_that_raises_leaves_nothing_behind(engine: AsyncEngine) -> None:
    writer = OneHop(engine)

    def half(conn: Connection) -> None:
        conn.execute(routing_meta.insert(), [{"key": "c", "value": 3}])
        raise RuntimeError("stop half way")

    with pytest.raises(RuntimeError, match="half way"):
        await writer.run(half)
    assert await _meta(engine) == {}

    def dup(conn: Connection) -> None:  # the database refuses: rolled back too
        conn.execute(routing_meta.insert(), [{"key": "d", "value": 4}, {"key": "d", "value": 5}])

    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await writer.run(dup)
    assert await _meta(engine) == {}
    await writer.close()


async def test_after_close_it_still_writes_through_the_async_engine(engine: AsyncEngine) -> None:
    writer = OneHop(engine)
    await writer.close()
    await writer.run(lambda conn: conn.execute(routing_meta.insert(), [{"key": "e", "value": 5}]))
    assert await _meta(engine) == {"e": 5}


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "data"))
    await upgrade(engine)
    yield engine
    await engine.dispose()


async def test_on_sqlite_a_transaction_runs_on_the_event_loops_thread(
    sqlite_engine: AsyncEngine,
) -> None:
    engine = sqlite_engine
    first, second = OneHop(engine), OneHop(engine)
    threads: list[int] = []

    def write(conn: Connection) -> None:
        threads.append(threading.get_ident())
        conn.execute(routing_meta.insert(), [{"key": f"k{len(threads)}", "value": 1}])

    await first.run(write)
    await second.run(write)
    assert threads == [threading.get_ident()] * 2
    assert first.fallbacks == second.fallbacks == 0
    await first.close()  # the other one keeps the shared connection
    await second.run(write)
    assert await _meta(engine) == {"k1": 1, "k2": 1, "k3": 1}
    await second.close()


async def test_on_sqlite_a_locked_database_is_waited_for_in_a_thread(
    sqlite_engine: AsyncEngine,
) -> None:
    """Another connection (the command line, a backup) holds the write lock:
    the transaction is rolled back on the loop and run again where it may
    wait, and the event loop goes on meanwhile."""
    engine = sqlite_engine
    writer = OneHop(engine)
    other = sqlite3.connect(engine.url.database or "", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO routing_meta (key, value) VALUES ('other', '1')")
    runs: list[int] = []

    def write(conn: Connection) -> str:
        runs.append(threading.get_ident())
        conn.execute(routing_meta.insert(), [{"key": "mine", "value": 2}])
        return "stored"

    pending = asyncio.ensure_future(writer.run(write))
    for _ in range(20):  # the loop is free while the writer waits
        await asyncio.sleep(0.01)
    assert not pending.done()
    other.execute("COMMIT")
    assert await pending == "stored"
    assert writer.fallbacks == 1
    assert runs[0] == threading.get_ident() and runs[1] != threading.get_ident()
    assert await _meta(engine) == {"other": 1, "mine": 2}
    other.close()
    await writer.close()


async def test_sqlite_commits_are_not_fsynced_one_by_one(sqlite_engine: AsyncEngine) -> None:
    """WAL with synchronous=NORMAL (store.db: durable across a crash of the
    process; PostgreSQL for more)."""
    engine = sqlite_engine
    writer = OneHop(engine)
    assert await writer.run(lambda conn: conn.exec_driver_sql("PRAGMA synchronous").scalar()) == 1
    async with engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
    await writer.close()


async def test_on_sqlite_wal_checkpoints_run_in_the_thread_not_in_a_commit_on_the_loop(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's automatic checkpoint would copy the WAL into the database
    file inside whichever commit fills it: on the event loop, for the inline
    connection. It is off there; every CHECKPOINT_EVERY commits one runs in
    the writer's thread."""
    monkeypatch.setattr(store.db, "CHECKPOINT_EVERY", 5)
    writer = OneHop(sqlite_engine)
    assert await writer.run(lambda c: c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()) == 0
    for n in range(11):  # with the pragma's read above: 12 commits

        def write(conn: Connection, n: int = n) -> None:
            conn.execute(routing_meta.insert(), [{"key": f"c{n}", "value": n}])

        await writer.run(write)
    shared = writer._file
    assert shared is not None
    await asyncio.get_running_loop().run_in_executor(shared.thread, lambda: None)  # done
    assert shared.checkpoints == 2
    assert len(await _meta(sqlite_engine)) == 11
    await writer.close()


async def test_run_now_commits_on_the_callers_thread_or_says_it_cannot(
    engine: AsyncEngine,
) -> None:
    """``run_now``: on a SQLite file, committed before it returns, with no
    await; on PostgreSQL it cannot (a network round trip): nothing written."""
    writer = OneHop(engine)

    def write(conn: Connection) -> str:
        conn.execute(routing_meta.insert(), [{"key": "now", "value": 1}])
        return "stored"

    done, result = writer.run_now(write)
    if engine.dialect.name == "sqlite":
        assert writer.inline
        assert (done, result) == (True, "stored")
        assert await _meta(engine) == {"now": 1}
    else:
        assert not writer.inline
        assert (done, result) == (False, None)
        assert await _meta(engine) == {}
    await writer.close()


async def test_run_now_on_a_locked_sqlite_file_writes_nothing_and_says_so(
    sqlite_engine: AsyncEngine,
) -> None:
    engine = sqlite_engine
    writer = OneHop(engine)
    other = sqlite3.connect(engine.url.database or "", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    def write(conn: Connection) -> None:
        conn.execute(routing_meta.insert(), [{"key": "mine", "value": 2}])

    assert writer.run_now(write) == (False, None)
    other.execute("COMMIT")
    other.close()
    assert await _meta(engine) == {}
    assert writer.fallbacks == 1
    await writer.close()
