"""The routing journal: live tasks, agents' routing state, and the event log.

Every command's outcome is written in one transaction before anything is
announced (the service groups the commands that arrive while a transaction is
in flight into the next one): a new task's row into ``routing_tasks``, the
events appended to ``routing_events`` (the single log live and historical
statistics are folded from), the touched tasks' records into
``routing_tasks`` (a finished task keeps its row, without a record), the
touched agents' records into ``routing_agent_states``, a customer's last agent
when it changes into ``routing_customer_agents``, and the router's counters
into ``routing_meta``. After a restart, ``load_snapshot`` rebuilds the
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
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from routing import model
from routing.codec import event_from_json, event_to_json, from_json, to_json
from store.db import OneHop, metadata
from store.types import UtcDateTime, utc_now

__all__ = [
    "NewTask",
    "RoutingJournal",
    "TaskLink",
    "routing_agent_states",
    "routing_customer_agents",
    "routing_events",
    "routing_tasks",
]

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

routing_customer_agents = Table(
    "routing_customer_agents",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("agent_id", String(64), nullable=False),
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


@dataclass(frozen=True)
class NewTask:
    """A task's row, written in the same transaction as the router's outcome
    of its submission (nothing is announced before both are stored)."""

    id: str
    channel: str
    queue_id: str
    interaction_id: int | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class _Rows:
    """One transaction's parameter sets, one list per statement."""

    new_tasks: list[dict[str, Any]]
    events: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    customer_agents: list[dict[str, Any]]
    meta: list[dict[str, Any]]


class RoutingJournal:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # A command's outcome in one hop (store.db.OneHop: on SQLite,
        # four times faster than a statement at a time through aiosqlite).
        self._writer = OneHop(engine)
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # Built once: executed with a list of parameter sets (one executemany
        # per table per transaction, whatever the number of rows).
        self._update_task = (
            update(routing_tasks)
            .where(routing_tasks.c.id == bindparam("b_id"))
            .values(
                state=bindparam("b_state"),
                record=bindparam("b_record", type_=JSON),
                queue_id=func.coalesce(
                    bindparam("b_queue", type_=String), routing_tasks.c.queue_id
                ),
                updated_at=bindparam("b_updated_at", type_=UtcDateTime()),
            )
        )
        self._upsert_agent = self._upsert_stmt(routing_agent_states, "agent_id")
        self._upsert_meta = self._upsert_stmt(routing_meta, "key")
        self._upsert_customer_agent = self._upsert_stmt(routing_customer_agents, "customer_id")

    def _upsert_stmt(self, table: Table, key: str) -> Any:
        """Insert or update by primary key, on SQLite and PostgreSQL alike."""
        stmt = self._insert(table)
        changes = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != key}
        return stmt.on_conflict_do_update(index_elements=[key], set_=changes)

    async def write(
        self,
        events: Sequence[model.RoutingEvent],
        *,
        tasks: Mapping[str, tuple[str, model.TaskRecord | None]],
        agents: Iterable[model.AgentRecord],
        meta: Mapping[str, Any],
        new_tasks: Sequence[NewTask] = (),
        customer_agents: Mapping[str, str] | None = None,
    ) -> None:
        """One transaction: the new tasks' rows, the events, the touched tasks
        (state, record or None once finished), the touched agents, the
        customers' last agents that changed, the counters. One statement per
        table, each with all its rows."""
        now = utc_now()
        rows = _Rows(
            new_tasks=[
                {
                    "id": t.id,
                    "channel": t.channel,
                    "queue_id": t.queue_id,
                    "state": "new",
                    "record": None,
                    "interaction_id": t.interaction_id,
                    "call_id": t.call_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for t in new_tasks
            ],
            events=[
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
            tasks=[
                {
                    "b_id": task_id,
                    "b_state": state,
                    "b_record": None if record is None else to_json(record),
                    "b_queue": None if record is None else record.queue_id,
                    "b_updated_at": now,
                }
                for task_id, (state, record) in tasks.items()
            ],
            agents=[
                {"agent_id": a.config.id, "record": to_json(a), "updated_at": now} for a in agents
            ],
            customer_agents=[
                {"customer_id": c, "agent_id": a} for c, a in (customer_agents or {}).items()
            ],
            meta=[{"key": k, "value": v} for k, v in meta.items()],
        )
        await self._writer.run(lambda conn: self._write(conn, rows))

    def _write(self, conn: Connection, rows: _Rows) -> None:
        """The statements of ``write``, in one transaction (the caller's)."""
        if rows.new_tasks:
            conn.execute(insert(routing_tasks), rows.new_tasks)
        if rows.events:
            conn.execute(insert(routing_events), rows.events)
        if rows.tasks:
            conn.execute(self._update_task, rows.tasks)
        if rows.agents:
            conn.execute(self._upsert_agent, rows.agents)
        if rows.customer_agents:
            conn.execute(self._upsert_customer_agent, rows.customer_agents)
        if rows.meta:
            conn.execute(self._upsert_meta, rows.meta)

    async def close(self) -> None:
        """Let go of the writer's connection (SQLite) and thread."""
        await self._writer.close()

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
            customer_rows = (
                await conn.execute(
                    select(routing_customer_agents).order_by(routing_customer_agents.c.customer_id)
                )
            ).all()
        if not task_rows and not agent_rows and not meta and not customer_rows:
            return None
        return model.RouterSnapshot(
            taken_at=float(meta.get("taken_at", 0.0)),
            agents=tuple(from_json(model.AgentRecord, r.record) for r in agent_rows),
            tasks=tuple(from_json(model.TaskRecord, r.record) for r in task_rows),
            last_agent_of_customer=tuple((r.customer_id, r.agent_id) for r in customer_rows),
            next_reservation=int(meta.get("next_reservation", 1)),
        )

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
