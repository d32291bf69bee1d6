"""The routing service's group commit, on SQLite and PostgreSQL: commands that
arrive while a transaction is in flight share the next one; each command's
events are announced only once they and the task rows are stored, in the
order the commands ran; a listener may run a command itself; a transaction
that fails fails its commands and nothing of it is announced."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from routing import model
from routing.errors import RoutingError
from routing.journal import RoutingJournal, routing_customer_agents, routing_tasks
from routing.service import RoutingService
from store.migrate import downgrade, upgrade

QUEUES = [model.QueueConfig(id="support", target="true")]


class CountingJournal(RoutingJournal):
    """The real journal, counting its transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.transactions = 0

    async def write(self, events: Sequence[model.RoutingEvent], **kw: Any) -> None:
        self.transactions += 1
        await super().write(events, **kw)

    def write_now(self, events: Sequence[model.RoutingEvent], **kw: Any) -> bool:
        done = super().write_now(events, **kw)
        self.transactions += done
        return done


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _open(
    engine: AsyncEngine, agents: Sequence[model.AgentConfig] = ()
) -> tuple[RoutingService, CountingJournal]:
    journal = CountingJournal(engine)
    service, _ = await RoutingService.open(QUEUES, journal, agents, clock=Clock())
    return service, journal


def _spec(task_id: str, customer: str | None = None) -> model.TaskSpec:
    return model.TaskSpec(id=task_id, queue_id="support", channel="voice", customer_id=customer)


async def _state(engine: AsyncEngine, task_id: str) -> str | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(routing_tasks.c.state).where(routing_tasks.c.id == task_id))
        ).first()
    return None if row is None else str(row.state)


async def test_concurrent_submissions_share_transactions_and_are_stored_before_announced(
    engine: AsyncEngine,
) -> None:
    service, journal = await _open(engine)
    seen: list[tuple[str, str | None]] = []

    async def listener(events: Sequence[model.RoutingEvent]) -> None:
        for event in events:
            if isinstance(event, model.TaskQueued):
                # A separate connection: what is committed, nothing else.
                seen.append((event.task_id, await _state(engine, event.task_id)))

    service.subscribe(listener)
    before = journal.transactions
    ids = [f"t{i:03d}" for i in range(60)]
    await asyncio.gather(*(service.submit(_spec(i)) for i in ids))

    assert [task_id for task_id, _ in seen] == ids  # announced in the order they ran
    assert all(state == "waiting" for _, state in seen), seen
    assert journal.transactions - before < len(ids)  # grouped, not one each
    for task_id in ids:
        assert await _state(engine, task_id) == "waiting"
    await service.stop()


async def test_a_listener_that_runs_a_command_is_not_left_waiting_for_itself(
    engine: AsyncEngine,
) -> None:
    service, _ = await _open(engine)
    announced: list[str] = []

    async def listener(events: Sequence[model.RoutingEvent]) -> None:
        for event in events:
            if isinstance(event, model.TaskQueued):
                announced.append(event.task_id)
                if event.task_id == "first":
                    await service.submit(_spec("second"))

    service.subscribe(listener)
    # The guard only turns a deadlock into a failure; nothing is timed.
    await asyncio.wait_for(service.submit(_spec("first")), timeout=30)
    await asyncio.wait_for(service.submit(_spec("third")), timeout=30)

    assert announced == ["first", "second", "third"]
    assert await _state(engine, "second") == "waiting"
    await service.stop()


async def test_a_failed_transaction_fails_its_commands_and_announces_none_of_them(
    engine: AsyncEngine,
) -> None:
    service, _ = await _open(engine)
    announced: list[str] = []

    def listener(events: Sequence[model.RoutingEvent]) -> None:
        announced.extend(e.task_id for e in events if isinstance(e, model.TaskQueued))

    service.subscribe(listener)
    # interactions.id 424242 does not exist: the task row breaks its foreign key.
    with pytest.raises(Exception) as failure:
        await service.submit(_spec("orphan"), interaction_id=424242)
    assert "foreign key" in str(failure.value).lower()
    assert announced == []
    assert await _state(engine, "orphan") is None

    await service.submit(_spec("fine"))  # the next transaction is not affected
    assert announced == ["fine"]
    assert await _state(engine, "fine") == "waiting"
    await service.stop()


async def test_a_command_the_router_refuses_stores_nothing_of_its_task(
    engine: AsyncEngine,
) -> None:
    service, _ = await _open(engine)
    await service.submit(_spec("dup"))
    with pytest.raises(RoutingError):
        await service.submit(_spec("dup"))  # the id is taken
    with pytest.raises(RoutingError):
        await service.submit(model.TaskSpec(id="nowhere", queue_id="nope", channel="voice"))
    assert await _state(engine, "nowhere") is None
    async with engine.connect() as conn:
        rows = (await conn.execute(select(routing_tasks.c.id))).all()
    assert sorted(r.id for r in rows) == ["dup"]
    await service.stop()


async def test_the_customers_last_agent_is_stored_when_it_changes_and_survives_a_restart(
    engine: AsyncEngine,
) -> None:
    agents = [model.AgentConfig(id="ann", auto_accept=True)]
    service, _ = await _open(engine, agents)
    await service.set_agent_state("ann", "available")
    await service.submit(_spec("call-1", customer="c-7"))
    assert service.router.task_state("call-1") is model.TaskState.ASSIGNED
    await service.stop()

    async with engine.connect() as conn:
        rows = (await conn.execute(select(routing_customer_agents))).all()
    assert [(r.customer_id, r.agent_id) for r in rows] == [("c-7", "ann")]

    again, _ = await _open(engine, agents)
    assert again.router.last_agent_of_customer() == (("c-7", "ann"),)
    await again.stop()


async def test_migration_0007_moves_the_last_agents_out_of_routing_meta_and_back(
    empty_engine: AsyncEngine,
) -> None:
    from routing.journal import routing_meta

    await upgrade(empty_engine, "0006")
    async with empty_engine.begin() as conn:
        await conn.execute(
            routing_meta.insert().values(
                key="last_agent_of_customer", value=[["c1", "ann"], ["c2", "bob"]]
            )
        )
        await conn.execute(routing_meta.insert().values(key="next_reservation", value=7))
    await upgrade(empty_engine)

    async with empty_engine.connect() as conn:
        pairs = (await conn.execute(select(routing_customer_agents))).all()
        meta: Mapping[str, Any] = {
            r.key: r.value for r in (await conn.execute(select(routing_meta))).all()
        }
    assert sorted((r.customer_id, r.agent_id) for r in pairs) == [("c1", "ann"), ("c2", "bob")]
    assert meta == {"next_reservation": 7}

    await downgrade(empty_engine, "0006")
    async with empty_engine.connect() as conn:
        meta = {r.key: r.value for r in (await conn.execute(select(routing_meta))).all()}
    assert meta["last_agent_of_customer"] == [["c1", "ann"], ["c2", "bob"]]
