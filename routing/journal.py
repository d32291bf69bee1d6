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

import json
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
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from routing import model
from routing.codec import event_from_json, event_to_json, from_json, to_json
from store.db import OneHop, metadata
from store.sql import Sql, db_time
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


# The write path is hand-written SQL: SQLAlchemy Core's per-statement Python
# overhead outweighed the database's work (store/sql.py's docstring). The values
# are bound as the tables' SQLAlchemy types bind them, so the readers below (and
# everything else) read them unchanged: JSON as ``json.dumps`` text (the
# engines set no other serializer), None in a JSON column as JSON ``null``
# (SQLAlchemy's JSON type does not store SQL NULL for it), times by ``db_time``.
# A new task's ``state`` and ``record`` are written as the literals 'new' and
# 'null'. Each is executed with all its rows (one executemany per table).
_INSERT_TASK = Sql(
    "INSERT INTO routing_tasks (id, channel, queue_id, state, record, interaction_id, call_id,"
    " created_at, updated_at) VALUES (?, ?, ?, 'new', 'null', ?, ?, ?, ?)"
)
_INSERT_EVENT = Sql(
    "INSERT INTO routing_events (at, type, queue_id, task_id, agent_id, payload)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_UPDATE_TASK = Sql(
    "UPDATE routing_tasks SET updated_at = ?, state = ?, record = ?,"
    " queue_id = coalesce(?, queue_id) WHERE id = ?"
)
_UPSERT_AGENT = Sql(
    "INSERT INTO routing_agent_states (agent_id, record, updated_at) VALUES (?, ?, ?)"
    " ON CONFLICT (agent_id) DO UPDATE SET record = excluded.record,"
    " updated_at = excluded.updated_at"
)
_UPSERT_CUSTOMER_AGENT = Sql(
    "INSERT INTO routing_customer_agents (customer_id, agent_id) VALUES (?, ?)"
    " ON CONFLICT (customer_id) DO UPDATE SET agent_id = excluded.agent_id"
)
_UPSERT_META = Sql(
    'INSERT INTO routing_meta ("key", value) VALUES (?, ?)'
    ' ON CONFLICT ("key") DO UPDATE SET value = excluded.value'
)


@dataclass(frozen=True)
class _Rows:
    """One transaction's parameter rows, one list per statement, in the
    statements' column order; the time (``now``, bound per dialect in the
    transaction) is added there: twice after a new task's row, before a
    task's and after an agent's."""

    now: datetime
    new_tasks: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    tasks: list[tuple[Any, ...]]
    agents: list[tuple[str, str]]
    customer_agents: list[tuple[str, str]]
    meta: list[tuple[str, str]]


class RoutingJournal:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # A command's outcome in one hop (store.db.OneHop: on SQLite,
        # four times faster than a statement at a time through aiosqlite).
        self._writer = OneHop(engine)

    async def write(self, events: Sequence[model.RoutingEvent], **rest: Any) -> None:
        """One transaction: the new tasks' rows, the events, the touched tasks
        (state, record or None once finished), the touched agents, the
        customers' last agents that changed, the counters. One statement per
        table, each with all its rows. The arguments: ``_rows``."""
        rows = self._rows(events, **rest)
        await self._writer.run(lambda conn: self._write(conn, rows))

    def write_now(self, events: Sequence[model.RoutingEvent], **rest: Any) -> bool:
        """``write`` on this thread, at once, when the store allows it without
        waiting (store.db.OneHop.run_now); False, with nothing written, when
        not: then ``write``."""
        if not self._writer.inline:
            return False
        rows = self._rows(events, **rest)
        done, _ = self._writer.run_now(lambda conn: self._write(conn, rows))
        return done

    @staticmethod
    def _rows(
        events: Sequence[model.RoutingEvent],
        *,
        tasks: Mapping[str, tuple[str, model.TaskRecord | None]],
        agents: Iterable[model.AgentRecord],
        meta: Mapping[str, Any],
        new_tasks: Sequence[NewTask] = (),
        customer_agents: Mapping[str, str] | None = None,
    ) -> _Rows:
        """What ``write`` stores: ``tasks`` maps a task id to its state and
        record (None once finished); ``meta`` is the counters."""
        return _Rows(
            now=utc_now(),
            new_tasks=[
                (t.id, t.channel, t.queue_id, t.interaction_id, t.call_id) for t in new_tasks
            ],
            events=[
                (
                    e.at,
                    type(e).__name__,
                    _queue_of(e),
                    getattr(e, "task_id", None),
                    getattr(e, "agent_id", None),
                    json.dumps(event_to_json(e)),
                )
                for e in events
            ],
            tasks=[
                (state, "null", None, task_id)
                if record is None
                else (state, json.dumps(to_json(record)), record.queue_id, task_id)
                for task_id, (state, record) in tasks.items()
            ],
            agents=[(a.config.id, json.dumps(to_json(a))) for a in agents],
            customer_agents=list((customer_agents or {}).items()),
            meta=[(k, json.dumps(v)) for k, v in meta.items()],
        )

    def _write(self, conn: Connection, rows: _Rows) -> None:
        """The statements of ``write``, in one transaction (the caller's)."""
        now = db_time(conn, rows.now)
        if rows.new_tasks:
            _INSERT_TASK.many(conn, [(*row, now, now) for row in rows.new_tasks])
        if rows.events:
            _INSERT_EVENT.many(conn, rows.events)
        if rows.tasks:
            _UPDATE_TASK.many(conn, [(now, *row) for row in rows.tasks])
        if rows.agents:
            _UPSERT_AGENT.many(conn, [(*row, now) for row in rows.agents])
        if rows.customer_agents:
            _UPSERT_CUSTOMER_AGENT.many(conn, rows.customer_agents)
        if rows.meta:
            _UPSERT_META.many(conn, rows.meta)

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
