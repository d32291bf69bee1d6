"""The desk over real sockets: the PBX simulator, the whole runtime (routing,
calls, store, accounts) and real Socket.IO clients on TCP, authenticated with
session tokens as ``POST /api/login`` issues them."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import socketio
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from callwright.config import RoutingConfig
from callwright.runtime import Runtime
from routing.model import QueueConfig
from routing.persistence import AgentRepository
from sim.pbx.server import PbxSimulator
from store import make_engine
from tests.integration.conftest import QUEUE, TOKEN, Recorder, make_config, seed_agents

__all__ = ["NS", "TOKEN", "DeskClient", "DeskStack"]

NS = "/desk"
PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ROOM_EVENTS = (
    "offer",
    "reservation",
    "task",
    "agent_state",
    "queue_stats",
    "queue_interval",
    "call",
    "recording",
)
TIMEOUT = 10.0


class DeskClient:
    """A Socket.IO client of /desk that records every room event it gets."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.envelopes: list[dict[str, Any]] = []  # room events, in arrival order
        self.hellos: list[dict[str, Any]] = []
        self.connect_errors: list[Any] = []
        self.disconnects: list[Any] = []
        self.changed = asyncio.Event()
        # Called with each room event as it arrives (to look at the world then).
        self.probe: Callable[[dict[str, Any]], None] | None = None
        self.sio.on("*", self._on_event, namespace=NS)
        self.sio.on("connect_error", self._on_connect_error, namespace=NS)
        self.sio.on("disconnect", self._on_disconnect, namespace=NS)

    def _on_event(self, event: str, data: Any) -> None:
        if event == "hello":
            self.hellos.append(data)
        elif event in ROOM_EVENTS:
            assert data["type"] == event
            if self.probe is not None:
                self.probe(data)
            self.envelopes.append(data)
        self.changed.set()

    def _on_connect_error(self, data: Any) -> None:
        self.connect_errors.append(data)
        self.changed.set()

    def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnects.append(reason)
        self.changed.set()

    async def connect(self, auth: Any) -> None:
        await self.sio.connect(
            self.url, auth=auth, namespaces=[NS], transports=["websocket"], wait_timeout=TIMEOUT
        )

    @property
    def hello(self) -> dict[str, Any]:
        assert self.hellos, "no hello received"
        return self.hellos[-1]

    async def call(self, event: str, *payload: Any) -> Any:
        data: Any = payload[0] if len(payload) == 1 else (tuple(payload) if payload else None)
        return await self.sio.call(event, data, namespace=NS, timeout=TIMEOUT)

    async def wait(self, predicate: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
        async def loop() -> Any:
            while True:
                result = predicate()
                if result:
                    return result
                self.changed.clear()
                await self.changed.wait()

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            kinds = [(e["type"], e["room"], e["seq"]) for e in self.envelopes]
            raise AssertionError(f"condition not met; received: {kinds}") from None

    async def next_event(
        self,
        type: str,
        where: Callable[[dict[str, Any]], bool] = lambda d: True,
        *,
        room: str | None = None,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first envelope of ``type`` (in ``room``, from index ``after``)
        whose data matches."""

        def find() -> dict[str, Any] | None:
            for envelope in self.envelopes[after:]:
                if (
                    envelope["type"] == type
                    and (room is None or envelope["room"] == room)
                    and where(envelope["data"])
                ):
                    return envelope
            return None

        found: dict[str, Any] = await self.wait(find)
        return found

    def of(self, type: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.envelopes if e["type"] == type]

    def last_seqs(self) -> dict[str, int]:
        seqs = dict(self.hello["rooms"])
        for envelope in self.envelopes:
            seqs[envelope["room"]] = max(seqs.get(envelope["room"], 0), envelope["seq"])
        return seqs

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


@dataclass
class DeskStack:
    sim: PbxSimulator
    runtime: Runtime
    recorder: Recorder
    agents: dict[str, str]  # extension -> agent id
    tokens: dict[str, str]  # username -> session token
    clients: list[DeskClient] = field(default_factory=list)

    @property
    def alice(self) -> str:
        return self.agents["1001"]

    @property
    def bob(self) -> str:
        return self.agents["1002"]

    def client(self) -> DeskClient:
        client = DeskClient(self.runtime.url)
        self.clients.append(client)
        return client

    async def connect(self, user: str, **auth: Any) -> DeskClient:
        client = self.client()
        await client.connect({"token": self.tokens[user], **auth})
        await client.wait(lambda: client.hellos)
        return client

    async def token_for(self, agent_id: str) -> str:
        agent = await self.runtime.agents.get(int(agent_id))
        assert agent is not None
        token, _ = self.runtime.auth.issue(agent)
        return token


async def seed_supervisor(url: str) -> str:
    engine = make_engine(url)
    try:
        agent = await AgentRepository(engine).create(
            "sue", "Sue Supervisor", "1009", role="supervisor", skills={}, capacity={}
        )
    finally:
        await engine.dispose()
    return str(agent.id)


@contextlib.asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on the local server (its URL), dropped after."""
    name = f"cw_desk_{secrets.token_hex(6)}"
    admin = make_engine(PG_ADMIN_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@contextlib.asynccontextmanager
async def open_desk(
    sim: PbxSimulator, data: Path, url: str, queue: QueueConfig = QUEUE
) -> AsyncIterator[DeskStack]:
    agents = await seed_agents(url, capacity={"voice": 1, "email": 3})
    sue = await seed_supervisor(url)
    config = replace(
        make_config(sim.port, data, "" if url.startswith("sqlite") else url),
        routing=RoutingConfig(queues=(queue,), voice_queue="support"),
    )
    runtime = Runtime(config)
    await runtime.start()
    recorder = Recorder()
    stack = DeskStack(sim, runtime, recorder, agents, {})
    try:
        await runtime.link.wait_ready(10)
        assert runtime.routing is not None
        runtime.routing.subscribe(recorder)
        for user, agent_id in (("alice", agents["1001"]), ("bob", agents["1002"]), ("sue", sue)):
            stack.tokens[user] = await stack.token_for(agent_id)
        yield stack
    finally:
        for client in stack.clients:
            await client.close()
        await runtime.stop()


@pytest.fixture
async def desk(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[DeskStack]:
    """Alice (1001) and Bob (1002), agents in queue support; Sue, a supervisor;
    a session token for each (as ``POST /api/login`` would give). SQLite."""
    data = tmp_path / "data"
    async with open_desk(sim, data, f"sqlite+aiosqlite:///{data / 'callwright.db'}") as stack:
        yield stack


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def desk_on_each_store(
    request: pytest.FixtureRequest, sim: PbxSimulator, tmp_path: Path
) -> AsyncIterator[DeskStack]:
    """``desk`` on SQLite, then on a fresh PostgreSQL database."""
    data = tmp_path / "data"
    if request.param == "sqlite":
        async with open_desk(sim, data, f"sqlite+aiosqlite:///{data / 'callwright.db'}") as stack:
            yield stack
        return
    async with fresh_postgres() as url, open_desk(sim, data, url) as stack:
        yield stack
