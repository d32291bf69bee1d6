"""The routing journal's write and the call records' upsert are hand-written SQL
(store.sql): what they store reads back unchanged through the SQLAlchemy
readers, and is stored exactly as SQLAlchemy stores the same values (a twin
row written through SQLAlchemy Core holds the same text), on SQLite and
PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Table, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.repository import InteractionRepository
from cti.persistence import CallRecord, CallRecordRepository, _values, call_records
from routing import model
from routing.codec import event_to_json, to_json
from routing.engine import Router
from routing.journal import (
    NewTask,
    RoutingJournal,
    TaskLink,
    _queue_of,
    routing_agent_states,
    routing_events,
    routing_meta,
    routing_tasks,
)
from store.types import from_epoch, utc_now

T = 1_740_819_600.125  # the router's clock (epoch seconds)
QUEUES = [model.QueueConfig(id="support", target="true")]
ANN = model.AgentConfig(
    id="ann",
    skills={"de": 3},
    languages=frozenset({"de", "en"}),
    attributes={"name": "Jörg ✓", "vip": True, "level": 2.5},
)
SPEC = model.TaskSpec(
    id="t1",
    queue_id="support",
    channel="voice",
    priority=3,
    customer_id="c-7",
    attributes={"name": "Zoë", "n": 2, "f": 0.1, "vip": False},
)


async def _stored(engine: AsyncEngine, table: Table, key: str) -> dict[Any, tuple[Any, ...]]:
    """Every row of ``table`` by its ``key``: its other columns as the database
    holds them (SQLite: storage class and SQL literal; PostgreSQL: the value's
    text, None for SQL NULL)."""
    names = [c.name for c in table.columns if c.name != key]
    if engine.dialect.name == "sqlite":
        columns = ", ".join(f'typeof("{n}"), quote("{n}")' for n in names)
    else:
        columns = ", ".join(f'("{n}")::text' for n in names)
    query = text(f'SELECT "{key}", {columns} FROM {table.name}')
    async with engine.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in await conn.execute(query)}


async def _outcome(engine: AsyncEngine) -> tuple[Router, list[model.RoutingEvent], int]:
    """A router's first events: an agent added and available, a task submitted
    and offered to her; and the interaction the task belongs to."""
    interaction = await InteractionRepository(engine).create(
        channel="voice", direction="inbound", call_id="call-1", started_at=from_epoch(T)
    )
    router = Router(QUEUES)
    events = router.add_agent(ANN, T)
    events += router.set_agent_state("ann", "available", T)
    events += router.submit(SPEC, T + 0.25)
    assert router.task_state("t1") is model.TaskState.RESERVED
    return router, events, interaction.id


async def _write_outcome(
    journal: RoutingJournal, router: Router, events: list[model.RoutingEvent], interaction: int
) -> None:
    await journal.write(
        events,
        tasks={"t1": ("reserved", router.task_record("t1"))},
        agents=[router.agent_record("ann")],
        meta={"taken_at": T + 0.25, "next_reservation": router.next_reservation_number()},
        new_tasks=[NewTask("t1", "voice", "support", interaction, "call-1")],
        customer_agents={"c-7": "ann"},
    )


async def test_the_journals_rows_read_back_through_its_readers(engine: AsyncEngine) -> None:
    router, events, interaction = await _outcome(engine)
    journal = RoutingJournal(engine)
    before = utc_now()
    await _write_outcome(journal, router, events, interaction)
    after = utc_now()

    link = await journal.task("t1")
    assert link is not None
    assert link == TaskLink(
        "t1", "voice", "support", "reserved", interaction, "call-1", link.created_at
    )
    # Aware UTC, microseconds kept (a truncated time would fall before ``before``).
    assert link.created_at.tzinfo is UTC
    assert before <= link.created_at <= after
    assert await journal.task_for_call("call-1") == link
    assert await journal.live_task_for_interaction(interaction) == "t1"

    assert await journal.events() == events
    later = [e for e in events if e.at >= T + 0.25]
    assert 0 < len(later) < len(events)
    assert await journal.events(since=T + 0.25) == later  # ``at`` compares as a number
    assert await journal.events(until=T + 0.25) == events[: len(events) - len(later)]

    assert await journal.load_snapshot() == model.RouterSnapshot(
        taken_at=T + 0.25,
        agents=(router.agent_record("ann"),),
        tasks=(router.task_record("t1"),),
        last_agent_of_customer=(("c-7", "ann"),),
        next_reservation=router.next_reservation_number(),
    )
    await journal.close()


async def test_the_journals_rows_are_stored_as_sqlalchemy_stores_them(engine: AsyncEngine) -> None:
    router, events, interaction = await _outcome(engine)
    journal = RoutingJournal(engine)
    await _write_outcome(journal, router, events, interaction)
    await journal.write([], tasks={}, agents=[], meta={}, new_tasks=[NewTask("t0", "email", "x")])
    await journal.close()

    # Twins through SQLAlchemy Core, with the values the journal was given
    # (its times as SQLAlchemy reads them back).
    async with engine.begin() as conn:
        times = {
            r.id: (r.created_at, r.updated_at)
            for r in await conn.execute(
                select(routing_tasks.c.id, routing_tasks.c.created_at, routing_tasks.c.updated_at)
            )
        }
        agent_time = (await conn.execute(select(routing_agent_states.c.updated_at))).scalar_one()
        await conn.execute(
            insert(routing_tasks),
            [
                {
                    "id": "t1-twin",
                    "channel": "voice",
                    "queue_id": "support",
                    "state": "reserved",
                    "record": to_json(router.task_record("t1")),
                    "interaction_id": interaction,
                    "call_id": "call-1",
                    "created_at": times["t1"][0],
                    "updated_at": times["t1"][1],
                },
                {
                    "id": "t0-twin",
                    "channel": "email",
                    "queue_id": "x",
                    "state": "new",
                    "record": None,
                    "interaction_id": None,
                    "call_id": None,
                    "created_at": times["t0"][0],
                    "updated_at": times["t0"][1],
                },
            ],
        )
        await conn.execute(
            insert(routing_agent_states).values(
                agent_id="twin", record=to_json(router.agent_record("ann")), updated_at=agent_time
            )
        )
        await conn.execute(
            insert(routing_events),
            [
                {
                    "at": e.at,
                    "type": type(e).__name__,
                    "queue_id": _queue_of(e),
                    "task_id": getattr(e, "task_id", None),
                    "agent_id": getattr(e, "agent_id", None),
                    "payload": event_to_json(e),
                }
                for e in events
            ],
        )
        await conn.execute(
            insert(routing_meta),
            [{"key": "taken_at~", "value": T + 0.25}, {"key": "next_reservation~", "value": 2}],
        )

    tasks = await _stored(engine, routing_tasks, "id")
    assert tasks["t1"] == tasks["t1-twin"]
    assert tasks["t0"] == tasks["t0-twin"]
    agents = await _stored(engine, routing_agent_states, "agent_id")
    assert agents["ann"] == agents["twin"]
    stored_events = [
        row for _, row in sorted((await _stored(engine, routing_events, "seq")).items())
    ]
    assert stored_events[: len(events)] == stored_events[len(events) :]
    meta = await _stored(engine, routing_meta, "key")
    assert meta["taken_at"] == meta["taken_at~"]
    assert meta["next_reservation"] == meta["next_reservation~"]


async def test_a_finished_task_keeps_its_row_and_its_last_queue_without_a_record(
    engine: AsyncEngine,
) -> None:
    router, events, interaction = await _outcome(engine)
    journal = RoutingJournal(engine)
    await _write_outcome(journal, router, events, interaction)
    moved = replace(router.task_record("t1"), queue_id="sales")

    await journal.write([], tasks={"t1": ("waiting", moved)}, agents=[], meta={})
    link = await journal.task("t1")
    assert link is not None and (link.state, link.queue_id) == ("waiting", "sales")
    snapshot = await journal.load_snapshot()
    assert snapshot is not None and snapshot.tasks == (moved,)

    await journal.write([], tasks={"t1": ("completed", None)}, agents=[], meta={})
    done = await journal.task("t1")
    assert done is not None
    assert done == replace(link, state="completed")  # the queue and the rest stay
    snapshot = await journal.load_snapshot()
    assert snapshot is not None and snapshot.tasks == ()
    assert await journal.live_task_for_interaction(interaction) is None

    # The record is JSON null, as SQLAlchemy's JSON type stores None.
    async with engine.begin() as conn:
        twin = (await conn.execute(select(routing_tasks).where(routing_tasks.c.id == "t1"))).one()
        await conn.execute(insert(routing_tasks).values(**{**twin._asdict(), "id": "t1-twin"}))
        await conn.execute(
            update(routing_tasks).where(routing_tasks.c.id == "t1-twin").values(record=None)
        )
    tasks = await _stored(engine, routing_tasks, "id")
    assert tasks["t1"] == tasks["t1-twin"]
    await journal.close()


T0 = datetime(2025, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))
_BARE: dict[str, Any] = {"state": "ringing", "started_at": T0, "updated_at": T0}


def _full(call_id: str, interaction: int) -> CallRecord:
    """Every column set; times given in another zone, with microseconds."""
    local = T0.astimezone(PLUS_TWO)
    return CallRecord(
        id=call_id,
        state="hungup",
        started_at=local,
        updated_at=local + timedelta(seconds=30, microseconds=7),
        caller_num="+15550100001",
        caller_name="Jörg Müller ✓",
        callee_num="1001",
        callee_name="Ann",
        answered_at=local + timedelta(seconds=8, microseconds=1),
        ended_at=local + timedelta(seconds=30, microseconds=7),
        hangup_cause=16,
        hangup_cause_text="Normal Clearing",
        channels=("PJSIP/trunk-00000001", "PJSIP/1001-00000002"),
        interaction_id=interaction,
    )


async def _interaction(engine: AsyncEngine) -> int:
    created = await InteractionRepository(engine).create(
        channel="voice", direction="inbound", call_id="c1", started_at=T0
    )
    return created.id


async def test_a_call_records_columns_read_back_unchanged(engine: AsyncEngine) -> None:
    repo = CallRecordRepository(engine)
    full = _full("c1", await _interaction(engine))
    bare = CallRecord(id="c2", **_BARE)

    await repo.upsert_many([full, bare])

    stored = await repo.get("c1")
    assert stored == full
    assert stored is not None
    for name in ("started_at", "updated_at", "answered_at", "ended_at"):
        value = getattr(stored, name)
        assert value.tzinfo is UTC, name
        assert value.astimezone(PLUS_TWO) == getattr(full, name)
    assert stored.ended_at is not None
    assert (stored.started_at.microsecond, stored.ended_at.microsecond) == (123456, 123463)
    assert await repo.get("c2") == bare
    await repo.close()


async def test_a_call_record_is_stored_as_sqlalchemy_stores_it(engine: AsyncEngine) -> None:
    repo = CallRecordRepository(engine)
    interaction = await _interaction(engine)
    await repo.upsert_many([_full("c1", interaction), CallRecord(id="c3", **_BARE)])
    await repo.close()
    async with engine.begin() as conn:
        await conn.execute(insert(call_records).values(**_values(_full("c2", interaction))))
        await conn.execute(insert(call_records).values(**_values(CallRecord(id="c4", **_BARE))))

    stored = await _stored(engine, call_records, "id")
    assert stored["c1"] == stored["c2"]
    assert stored["c3"] == stored["c4"]


async def test_an_older_call_record_does_not_overwrite_a_newer_one(engine: AsyncEngine) -> None:
    repo = CallRecordRepository(engine)
    newer = _full("c1", await _interaction(engine))
    older = replace(
        newer,
        state="up",
        ended_at=None,
        hangup_cause=None,
        updated_at=newer.updated_at - timedelta(microseconds=1),
        channels=(),
    )
    await repo.upsert_many([newer])

    await repo.upsert_many([older])  # a microsecond older, in a batch of its own
    assert await repo.get("c1") == newer

    newest = replace(older, updated_at=newer.updated_at + timedelta(microseconds=1))
    await repo.upsert_many([newest])
    assert await repo.get("c1") == newest
    await repo.close()
