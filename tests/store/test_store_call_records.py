from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.repository import InteractionRepository
from cti.persistence import (
    CallRecord,
    CallRecordRepository,
    _check_then_write,
    _values,
    call_records,
)
from store import from_epoch, to_epoch

T0 = from_epoch(1_740_819_600.25)


@pytest.fixture
def repo(engine: AsyncEngine) -> CallRecordRepository:
    return CallRecordRepository(engine)


def _ringing(call_id: str = "1740819600.17", started: datetime = T0) -> CallRecord:
    return CallRecord(
        id=call_id,
        state="ringing",
        started_at=started,
        updated_at=started,
        caller_num="+15550100001",
        caller_name="Jörg Müller",
        callee_num="1001",
        channels=("PJSIP/trunk-00000001",),
    )


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(call_records))).scalar_one()
        )


def test_epoch_seconds_convert_to_aware_utc_and_back() -> None:
    assert T0 == datetime(2025, 3, 1, 9, 0, 0, 250000, tzinfo=UTC)
    assert to_epoch(T0) == 1_740_819_600.25


async def test_upsert_inserts_then_updates_the_same_call(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    ringing = _ringing()
    await repo.upsert(ringing)
    assert await repo.get(ringing.id) == ringing

    answered = replace(
        ringing,
        state="up",
        answered_at=T0 + timedelta(seconds=8),
        updated_at=T0 + timedelta(seconds=8),
        channels=("PJSIP/trunk-00000001", "PJSIP/1001-00000002"),
    )
    await repo.upsert(answered)

    assert await repo.get(ringing.id) == answered
    assert await _count(engine) == 1


async def test_upserting_the_same_record_twice_changes_nothing(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    record = _ringing()

    await repo.upsert(record)
    await repo.upsert(record)

    assert await repo.get(record.id) == record
    assert await _count(engine) == 1


async def test_an_older_update_does_not_roll_the_record_back(repo: CallRecordRepository) -> None:
    ringing = _ringing()
    ended = replace(
        ringing,
        state="hungup",
        ended_at=T0 + timedelta(seconds=30),
        updated_at=T0 + timedelta(seconds=30),
        hangup_cause=16,
        hangup_cause_text="Normal Clearing",
    )
    await repo.upsert(ended)

    await repo.upsert(ringing)

    assert await repo.get(ringing.id) == ended


async def test_active_calls_are_those_not_ended(repo: CallRecordRepository) -> None:
    first = _ringing("c1", T0)
    second = _ringing("c2", T0 + timedelta(seconds=5))
    done = replace(
        _ringing("c3", T0 - timedelta(minutes=1)),
        ended_at=T0,
        updated_at=T0,
        state="hungup",
    )
    for record in (second, done, first):
        await repo.upsert(record)

    assert await repo.list_active() == [first, second]
    assert [r.id for r in await repo.list_recent()] == ["c2", "c1", "c3"]
    assert [r.id for r in await repo.list_recent(limit=1)] == ["c2"]
    assert await repo.get("nope") is None


async def test_call_record_links_to_its_interaction(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    interaction = await InteractionRepository(engine).create(
        channel="voice", direction="inbound", call_id="c1", started_at=T0
    )
    record = replace(_ringing("c1"), interaction_id=interaction.id)

    await repo.upsert(record)

    stored = await repo.get("c1")
    assert stored is not None
    assert stored.interaction_id == interaction.id
    assert stored.caller_name == "Jörg Müller"
    assert stored.channels == ("PJSIP/trunk-00000001",)


async def test_channels_given_as_json_text_are_stored_as_names(
    repo: CallRecordRepository,
) -> None:
    record = replace(_ringing(), channels='["PJSIP/trunk-00000001", "PJSIP/1001-00000002"]')  # type: ignore[arg-type]

    await repo.upsert(record)

    stored = await repo.get(record.id)
    assert stored is not None
    assert stored.channels == ("PJSIP/trunk-00000001", "PJSIP/1001-00000002")


async def test_a_bare_channel_string_is_refused_not_split_into_characters(
    repo: CallRecordRepository,
) -> None:
    record = replace(_ringing(), channels="PJSIP/1001-00000002")  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="channels"):
        await repo.upsert(record)
    assert await repo.get(record.id) is None


def _at(record: CallRecord, seconds: float, **changes: object) -> CallRecord:
    return replace(record, updated_at=T0 + timedelta(seconds=seconds), **changes)  # type: ignore[arg-type]


async def test_upsert_many_stores_many_calls_in_one_call(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    records = [_ringing(f"c{i:04d}", T0 + timedelta(seconds=i)) for i in range(300)]

    await repo.upsert_many(records)

    assert await _count(engine) == 300
    assert await repo.list_active() == records


async def test_upsert_many_of_nothing_writes_nothing(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    await repo.upsert_many([])
    assert await _count(engine) == 0


async def test_upsert_many_updates_stored_calls_and_inserts_new_ones(
    repo: CallRecordRepository,
) -> None:
    first, second = _ringing("c1"), _ringing("c2")
    await repo.upsert_many([first])

    answered = _at(first, 8, state="up", answered_at=T0 + timedelta(seconds=8))
    await repo.upsert_many([answered, second])

    assert await repo.get("c1") == answered
    assert await repo.get("c2") == second


@pytest.mark.parametrize("order", ["older_first", "newer_first"])
async def test_in_one_batch_the_newer_record_of_a_call_wins(
    engine: AsyncEngine, repo: CallRecordRepository, order: str
) -> None:
    ringing = _ringing()
    up = _at(ringing, 8, state="up", answered_at=T0 + timedelta(seconds=8))
    batch = [ringing, up] if order == "older_first" else [up, ringing]

    await repo.upsert_many([_ringing("other"), *batch])

    assert await repo.get(ringing.id) == up
    assert await _count(engine) == 2


async def test_in_one_batch_a_tie_goes_to_the_later_record(repo: CallRecordRepository) -> None:
    ringing = _ringing()
    first = _at(ringing, 5, state="up")
    later = _at(ringing, 5, state="held")

    await repo.upsert_many([first, later])
    assert (await repo.get(ringing.id)) == later

    # Across batches too: an equal updated_at overwrites (as upsert always did).
    await repo.upsert_many([first])
    assert (await repo.get(ringing.id)) == first


async def test_across_batches_the_newer_record_wins_and_an_older_never_overwrites(
    repo: CallRecordRepository,
) -> None:
    ringing = _ringing()
    up = _at(ringing, 8, state="up", answered_at=T0 + timedelta(seconds=8))
    ended = _at(up, 30, state="hungup", ended_at=T0 + timedelta(seconds=30), hangup_cause=16)

    await repo.upsert_many([up])
    await repo.upsert_many([ended, _ringing("c2")])
    assert await repo.get(ringing.id) == ended

    # Replayed or reordered older updates, alone or beside new rows, change nothing.
    await repo.upsert_many([ringing, up, _ringing("c3")])
    await repo.upsert(up)

    assert await repo.get(ringing.id) == ended
    assert await repo.get("c3") == _ringing("c3")


async def test_a_bad_record_in_a_batch_writes_nothing(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    naive = replace(_ringing("bad"), updated_at=datetime(2025, 3, 1, 9, 0))

    with pytest.raises(ValueError, match="naive"):
        await repo.upsert_many([_ringing("c1"), naive, _ringing("c2")])

    assert await _count(engine) == 0


async def test_a_batch_the_database_refuses_is_rolled_back_whole(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    # interaction 999999 does not exist: the foreign key refuses the row.
    orphan = replace(_ringing("orphan"), interaction_id=999_999)

    with pytest.raises(IntegrityError):
        await repo.upsert_many([_ringing("c1"), orphan, _ringing("c2")])

    assert await _count(engine) == 0


async def test_the_check_then_write_fallback_keeps_the_same_rules(
    engine: AsyncEngine, repo: CallRecordRepository
) -> None:
    # The path for a backend without ON CONFLICT, run here on a real one.
    ringing = _ringing()
    up = _at(ringing, 8, state="up")
    async with engine.begin() as conn:
        await _check_then_write(conn, _values(up))
        await _check_then_write(conn, _values(ringing))  # older: ignored
        await _check_then_write(conn, _values(_ringing("c2")))

    assert await repo.get(ringing.id) == up
    assert await repo.get("c2") == _ringing("c2")
