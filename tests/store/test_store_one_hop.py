"""store.db.OneHop: a transaction written against a synchronous
connection, committed whole or not at all, on SQLite (a thread with its own
connection) and PostgreSQL (run_sync), and seen at once by the async engine."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncEngine

from routing.journal import routing_meta
from store.db import OneHop


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
