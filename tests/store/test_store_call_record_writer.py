"""CallRecordWriter (group commit) on SQLite files and on PostgreSQL: every record
handed to ``store`` is committed before ``store`` returns, or its caller gets the
error of the transaction that held it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from cti.persistence import (
    CallRecord,
    CallRecordRepository,
    CallRecordWriter,
    WriterClosed,
    call_records,
)
from store import from_epoch, make_engine
from store.group_commit import NOW_PER_PASS

T0 = from_epoch(1_740_819_600.25)


def _ringing(call_id: str, seconds: float = 0) -> CallRecord:
    at = T0 + timedelta(seconds=seconds)
    return CallRecord(
        id=call_id,
        state="ringing",
        started_at=T0,
        updated_at=at,
        caller_num="+15550100001",
        callee_num="1001",
        channels=("PJSIP/trunk-00000001",),
    )


def _at_once(engine: AsyncEngine) -> int:
    """How many of a burst are written one by one inside ``store`` before the
    rest are grouped: on a SQLite file, the first NOW_PER_PASS of an event-loop
    pass (store.group_commit's ``write_now``); elsewhere none."""
    return NOW_PER_PASS if engine.dialect.name == "sqlite" else 0


@pytest.fixture
def repo(engine: AsyncEngine) -> CallRecordRepository:
    return CallRecordRepository(engine)


@pytest.fixture
async def writer(repo: CallRecordRepository) -> AsyncIterator[CallRecordWriter]:
    writer = CallRecordWriter(repo)
    try:
        yield writer
    finally:
        await writer.close()


@pytest.fixture
async def other_engine(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A second engine on the same database: its connections are not the writer's."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
        other = make_engine(engine.url, connect_args={"server_settings": {"search_path": schema}})
    else:
        other = make_engine(engine.url)
    try:
        yield other
    finally:
        await other.dispose()


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(call_records))).scalar_one()
        )


async def test_two_hundred_concurrent_stores_are_each_readable_elsewhere_on_return(
    engine: AsyncEngine, other_engine: AsyncEngine, writer: CallRecordWriter
) -> None:
    other = CallRecordRepository(other_engine)
    seen: list[CallRecord | None] = []

    async def store_then_read(record: CallRecord) -> None:
        await writer.store(record)
        seen.append(await other.get(record.id))

    records = [_ringing(f"c{i:03d}", i) for i in range(200)]
    await asyncio.gather(*(store_then_read(r) for r in records))

    assert sorted(seen, key=lambda r: r.id if r else "") == records
    assert await _count(engine) == 200
    # All were handed in before the first write began: one transaction; on
    # SQLite the first few were written at once, each in its caller, then
    # the others together.
    assert writer.transactions == _at_once(engine) + 1


async def test_a_batch_holds_at_most_max_batch_records(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    writer = CallRecordWriter(repo, max_batch=50)
    records = [_ringing(f"c{i:03d}") for i in range(200)]

    await asyncio.gather(*(writer.store(r) for r in records))
    await writer.close()

    # SQLite: the first at once, then 199 in batches of 50.
    assert writer.transactions == _at_once(engine) + -(-(200 - _at_once(engine)) // 50)
    assert await repo.list_active() == records


async def test_records_handed_in_one_by_one_are_stored(
    writer: CallRecordWriter, repo: CallRecordRepository
) -> None:
    ringing = _ringing("c1")
    up = replace(ringing, state="up", updated_at=T0 + timedelta(seconds=8))

    await writer.store(ringing)
    assert await repo.get("c1") == ringing
    await writer.store(up)
    assert await repo.get("c1") == up
    await writer.store(ringing)  # older: changes nothing
    assert await repo.get("c1") == up


async def test_within_and_across_batches_the_newest_record_of_a_call_wins(
    writer: CallRecordWriter, repo: CallRecordRepository
) -> None:
    ringing = _ringing("c1")
    up = replace(ringing, state="up", updated_at=T0 + timedelta(seconds=8))
    ended = replace(up, state="hungup", ended_at=T0 + timedelta(seconds=30))
    ended = replace(ended, updated_at=T0 + timedelta(seconds=30))

    await asyncio.gather(writer.store(up), writer.store(ringing), writer.store(_ringing("c2")))
    assert await repo.get("c1") == up
    await asyncio.gather(writer.store(ended), writer.store(ringing))
    await asyncio.gather(writer.store(up), writer.store(ringing))

    assert await repo.get("c1") == ended


async def test_a_failed_transaction_raises_in_every_caller_of_its_batch_only(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    writer = CallRecordWriter(repo, max_batch=3)
    # interaction 999999 does not exist: the foreign key refuses the whole first batch.
    orphan = replace(_ringing("orphan"), interaction_id=999_999)
    first_batch = [_ringing("a1"), orphan, _ringing("a2")]
    next_batch = [_ringing("b1"), _ringing("b2")]
    # On SQLite the first record of the burst is written at once, alone.
    lead = [_ringing(f"lead{i}") for i in range(_at_once(engine))]

    results = await asyncio.gather(
        *(writer.store(r) for r in [*lead, *first_batch, *next_batch]), return_exceptions=True
    )
    results = results[len(lead) :]

    assert [type(r) for r in results[:3]] == [IntegrityError] * 3
    assert results[3:] == [None, None]
    assert await repo.get("a1") is None
    assert [r.id for r in await repo.list_active()] == ["b1", "b2", *(r.id for r in lead)]

    # The writer goes on: the refused records' callers can retry without the orphan.
    await asyncio.gather(writer.store(first_batch[0]), writer.store(first_batch[2]))
    await writer.close()
    assert await _count(engine) == 4 + len(lead)
    assert writer.failures == 1


async def test_a_bad_record_fails_only_its_own_caller(
    engine: AsyncEngine, writer: CallRecordWriter
) -> None:
    naive = replace(_ringing("bad"), updated_at=datetime(2025, 3, 1, 9, 0))

    results = await asyncio.gather(
        writer.store(_ringing("c1")),
        writer.store(naive),
        writer.store(_ringing("c2")),
        return_exceptions=True,
    )

    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert await _count(engine) == 2


async def test_a_batch_failing_in_the_database_fails_its_callers_and_the_writer_recovers(
    engine: AsyncEngine, writer: CallRecordWriter, repo: CallRecordRepository
) -> None:
    # The table goes away under the writer (as a database gone wrong would), then back.
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE call_records RENAME TO call_records_away"))

    results = await asyncio.gather(
        *(writer.store(_ringing(f"c{i}")) for i in range(3)), return_exceptions=True
    )

    assert [type(r) for r in results] == [type(results[0])] * 3
    assert isinstance(results[0], DBAPIError)
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE call_records_away RENAME TO call_records"))
    assert await _count(engine) == 0

    await asyncio.gather(*(writer.store(_ringing(f"c{i}")) for i in range(3)))
    assert [r.id for r in await repo.list_active()] == ["c0", "c1", "c2"]


async def test_close_writes_the_pending_records_then_refuses_new_ones(
    repo: CallRecordRepository,
) -> None:
    writer = CallRecordWriter(repo, max_batch=10)
    records = [_ringing(f"c{i:02d}") for i in range(25)]
    stores = [asyncio.create_task(writer.store(r)) for r in records]
    await asyncio.sleep(0)  # every task hands its record in (no write has finished)

    await writer.close()

    assert all(task.done() and task.exception() is None for task in stores)
    assert await repo.list_active() == records
    with pytest.raises(WriterClosed):
        await writer.store(_ringing("late"))
    assert await repo.get("late") is None


async def test_a_record_whose_caller_is_cancelled_is_written_all_the_same(
    repo: CallRecordRepository,
) -> None:
    # As when the runtime stops the call-event workers, then closes the writer.
    writer = CallRecordWriter(repo)
    # In one event-loop pass: the last waits for a write (on SQLite the
    # first few are written at once, each in its caller).
    first = asyncio.create_task(writer.store(_ringing("c0")))
    others = [asyncio.create_task(writer.store(_ringing(f"d{i}"))) for i in range(NOW_PER_PASS)]
    task = asyncio.create_task(writer.store(_ringing("c1")))
    await asyncio.sleep(0)  # handed in
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await writer.close()

    assert await first is None
    assert await asyncio.gather(*others) == [None] * NOW_PER_PASS
    assert await repo.get("c1") == _ringing("c1")
    assert await repo.get("c0") == _ringing("c0")
