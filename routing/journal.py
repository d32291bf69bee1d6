"""The routing journal: live tasks, agents' routing state, and the event log.

Every command's outcome is written in one transaction before anything is
announced: the events appended to ``routing_events`` (the single log live and
historical statistics are folded from), the touched tasks' records upserted
into ``routing_tasks`` (a finished task keeps its row, without a record), the
touched agents' records into ``routing_agent_states``, and the router's
counters into ``routing_meta``. After a restart, ``load_snapshot`` rebuilds the
``RouterSnapshot`` the engine restores from: waiting tasks keep their original
arrival and priority, open reservations are offered again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from routing import model
from routing.codec import event_from_json, event_to_json, from_json, to_json
from store.db import metadata
from store.types import UtcDateTime, utc_now

__all__ = ["RoutingJournal", "TaskLink", "routing_agent_states", "routing_events", "routing_tasks"]

routing_tasks = Table(
    "routing_tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("queue_id", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("record", JSON, nullable=True),  # model.TaskRecord while the task lives
    Column("interaction_id", Integer, ForeignKey("interactions.id"), nullable=True),
    Column("call_id", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_routing_tasks_state", "state"),
    Index("ix_routing_tasks_call_id", "call_id"),
)

routing_agent_states = Table(
    "routing_agent_states",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("record", JSON, nullable=False),  # model.AgentRecord
    Column("updated_at", UtcDateTime(), nullable=False),
)

routing_events = Table(
    "routing_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("type", String(32), nullable=False),
    Column("queue_id", String(64), nullable=True),
    Column("task_id", String(64), nullable=True),
    Column("agent_id", String(64), nullable=True),
    Column("payload", JSON, nullable=False),
    Index("ix_routing_events_at", "at"),
    Index("ix_routing_events_task_id", "task_id"),
)

routing_meta = Table(
    "routing_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
)

LIVE_STATES = ("waiting", "reserved", "assigned", "wrapping")


@dataclass(frozen=True)
class TaskLink:
    """What ties a routing task to the rest of Callwright."""

    id: str
    channel: str
    queue_id: str
    state: str
    interaction_id: int | None
    call_id: str | None
    created_at: datetime


def _queue_of(event: model.RoutingEvent) -> str | None:
    for name in ("queue_id", "to_queue"):
        value = getattr(event, name, None)
        if isinstance(value, str):
            return value
    return None


class RoutingJournal:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_task(
        self,
        task_id: str,
        *,
        channel: str,
        queue_id: str,
        interaction_id: int | None = None,
        call_id: str | None = None,
    ) -> None:
        """The task's row, before the router hears of it."""
        now = utc_now()
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(routing_tasks).values(
                    id=task_id,
                    channel=channel,
                    queue_id=queue_id,
                    state="new",
                    record=None,
                    interaction_id=interaction_id,
                    call_id=call_id,
                    created_at=now,
                    updated_at=now,
                )
            )

    async def discard_task(self, task_id: str) -> None:
        """Remove a row the router refused (never announced)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(routing_tasks).where(
                    routing_tasks.c.id == task_id, routing_tasks.c.state == "new"
                )
            )

    async def write(
        self,
        events: Sequence[model.RoutingEvent],
        *,
        tasks: Mapping[str, tuple[str, model.TaskRecord | None]],
        agents: Iterable[model.AgentRecord],
        meta: Mapping[str, Any],
    ) -> None:
        """One transaction: the events, the touched tasks (state, record or
        None once finished), the touched agents, the counters."""
        now = utc_now()
        async with self.engine.begin() as conn:
            if events:
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
            for task_id, (state, record) in tasks.items():
                values: dict[str, Any] = {
                    "state": state,
                    "record": None if record is None else to_json(record),
                    "updated_at": now,
                }
                if record is not None:
                    values["queue_id"] = record.queue_id
                await conn.execute(
                    update(routing_tasks).where(routing_tasks.c.id == task_id).values(**values)
                )
            for agent in agents:
                await _upsert(
                    conn,
                    routing_agent_states,
                    "agent_id",
                    {"agent_id": agent.config.id, "record": to_json(agent), "updated_at": now},
                )
            for key, value in meta.items():
                await _upsert(conn, routing_meta, "key", {"key": key, "value": value})

    async def load_snapshot(self) -> model.RouterSnapshot | None:
        async with self.engine.connect() as conn:
            task_rows = (
                await conn.execute(
                    select(routing_tasks.c.record).where(
                        routing_tasks.c.state.in_(LIVE_STATES),
                        routing_tasks.c.record.is_not(None),
                    )
                )
            ).all()
            agent_rows = (await conn.execute(select(routing_agent_states.c.record))).all()
            meta = {row.key: row.value for row in (await conn.execute(select(routing_meta))).all()}
        if not task_rows and not agent_rows and not meta:
            return None
        return model.RouterSnapshot(
            taken_at=float(meta.get("taken_at", 0.0)),
            agents=tuple(from_json(model.AgentRecord, r.record) for r in agent_rows),
            tasks=tuple(from_json(model.TaskRecord, r.record) for r in task_rows),
            last_agent_of_customer=tuple(
                (str(k), str(v)) for k, v in meta.get("last_agent_of_customer", [])
            ),
            next_reservation=int(meta.get("next_reservation", 1)),
        )

    async def unrouted_tasks(self) -> list[TaskLink]:
        """Rows created but never handed to the router (a crash in between)."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(routing_tasks).where(routing_tasks.c.state == "new"))
            ).all()
        return [_link(r) for r in rows]

    async def task(self, task_id: str) -> TaskLink | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(routing_tasks).where(routing_tasks.c.id == task_id))
            ).first()
        return None if row is None else _link(row)

    async def task_for_call(self, call_id: str) -> TaskLink | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(routing_tasks)
                    .where(routing_tasks.c.call_id == call_id)
                    .order_by(routing_tasks.c.created_at.desc())
                )
            ).first()
        return None if row is None else _link(row)

    async def live_task_for_interaction(self, interaction_id: int) -> str | None:
        """The id of the interaction's task that is not finished, if any."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(routing_tasks.c.id)
                    .where(
                        routing_tasks.c.interaction_id == interaction_id,
                        routing_tasks.c.state.in_((*LIVE_STATES, "new")),
                    )
                    .order_by(routing_tasks.c.created_at.desc())
                )
            ).first()
        return None if row is None else str(row.id)

    async def events(
        self, since: float | None = None, until: float | None = None
    ) -> list[model.RoutingEvent]:
        query = select(routing_events.c.payload).order_by(routing_events.c.seq)
        if since is not None:
            query = query.where(routing_events.c.at >= since)
        if until is not None:
            query = query.where(routing_events.c.at < until)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [event_from_json(r.payload) for r in rows]


def _link(row: Any) -> TaskLink:
    return TaskLink(
        id=row.id,
        channel=row.channel,
        queue_id=row.queue_id,
        state=row.state,
        interaction_id=row.interaction_id,
        call_id=row.call_id,
        created_at=row.created_at,
    )


async def _upsert(conn: AsyncConnection, table: Table, key: str, values: dict[str, Any]) -> None:
    """Insert or update by primary key, on SQLite and PostgreSQL alike."""
    changes = {k: v for k, v in values.items() if k != key}
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(**values)
        await conn.execute(pg.on_conflict_do_update(index_elements=[key], set_=changes))
    else:
        lite = sqlite.insert(table).values(**values)
        await conn.execute(lite.on_conflict_do_update(index_elements=[key], set_=changes))
