"""The whole stack over real sockets: the PBX simulator on a TCP port, the
Callwright runtime connected to it over AMI, SQLite in a temp directory, and an
HTTP client talking to the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callwright.config import AmiConfig, Config, RoutingConfig, Secret, ServerConfig, StoreConfig
from callwright.config import ApiConfig as ApiSettings
from callwright.runtime import Runtime
from routing import model
from routing.model import QueueConfig
from routing.persistence import AgentRepository
from sim.pbx.server import PbxSimulator
from store import make_engine
from store.migrate import upgrade

TOKEN = "integration-token"
SIGNING_KEY = "integration-signing-key-0123456789abcdef"


@dataclass
class Stack:
    sim: PbxSimulator
    runtime: Runtime
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.runtime.url

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.get(self.url + path, **kw) as resp:
            return resp.status, await resp.json()

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        async with self.http.post(self.url + path, json=body, **kw) as resp:
            return resp.status, await resp.json()

    async def calls(self) -> list[dict[str, Any]]:
        status, body = await self.get("/api/calls")
        assert status == 200, body
        return list(body["calls"])

    async def wait_calls(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Poll the API until ``predicate(calls)`` holds (what a client would see)."""
        calls: list[dict[str, Any]] = []

        async def wait() -> None:
            nonlocal calls
            while True:
                calls = await self.calls()
                if predicate(calls):
                    return
                await asyncio.sleep(0.02)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"condition not met; calls were: {calls}") from None
        return calls


def make_config(sim_port: int, data_dir: Path, store_url: str = "") -> Config:
    return Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        store=StoreConfig(url=store_url, data_dir=data_dir),
        ami=AmiConfig(
            host="127.0.0.1",
            port=sim_port,
            username="callwright",
            secret=Secret("callwright-secret"),
            reconnect_min=0.05,
            reconnect_max=0.2,
            action_timeout=5.0,
        ),
        api=ApiSettings(token=Secret(TOKEN), signing_key=Secret(SIGNING_KEY)),
    )


@pytest.fixture
async def stack(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[Stack]:
    runtime = Runtime(make_config(sim.port, tmp_path / "data"))
    await runtime.start()
    await runtime.link.wait_ready(10)
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        yield Stack(sim, runtime, http)
    finally:
        await http.close()
        await runtime.stop()


# -- routing: agents in the store, the runtime, a recorder of routing events --

QUEUE = QueueConfig(
    id="support",
    target='"support" in agent.skills',
    reservation_timeout_seconds=30.0,
    wrap_up_seconds=0.5,
    service_level_seconds=20.0,
)


class Recorder:
    """What the desk would receive: every routing event, in order."""

    def __init__(self) -> None:
        self.events: list[model.RoutingEvent] = []
        self.changed = asyncio.Event()

    def __call__(self, events: Sequence[model.RoutingEvent]) -> None:
        self.events.extend(events)
        self.changed.set()

    async def wait_for(
        self, predicate: Callable[[model.RoutingEvent], bool], timeout: float = 10.0
    ) -> model.RoutingEvent:
        async def wait() -> model.RoutingEvent:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout)


async def seed_agents(url: str, capacity: dict[str, int] | None = None) -> dict[str, str]:
    await upgrade(url)
    engine = make_engine(url)
    repo = AgentRepository(engine)
    ids = {}
    for username, ext in (("alice", "1001"), ("bob", "1002")):
        agent = await repo.create(
            username,
            username.title(),
            ext,
            skills={"support": 5},
            capacity=capacity or {"voice": 1, "callback": 1, "chat": 2},
        )
        ids[ext] = str(agent.id)
    await engine.dispose()
    return ids


async def start_runtime(sim: PbxSimulator, data: Path) -> tuple[Runtime, Recorder]:
    config = make_config(sim.port, data)
    config = replace(config, routing=RoutingConfig(queues=(QUEUE,), voice_queue="support"))
    runtime = Runtime(config)
    await runtime.start()
    await runtime.link.wait_ready(10)
    recorder = Recorder()
    assert runtime.routing is not None
    runtime.routing.subscribe(recorder)
    return runtime, recorder


@pytest.fixture
async def routed(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[tuple[Stack, Recorder, dict]]:
    data = tmp_path / "data"
    agents = await seed_agents(f"sqlite+aiosqlite:///{data / 'callwright.db'}")
    runtime, recorder = await start_runtime(sim, data)
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        yield Stack(sim, runtime, http), recorder, agents
    finally:
        await http.close()
        await runtime.stop()


def offered_to(agent_id: str) -> Callable[[model.RoutingEvent], bool]:
    return lambda e: isinstance(e, model.ReservationOffered) and e.agent_id == agent_id


async def queue_stats(stack: Stack) -> dict[str, Any]:
    status, body = await stack.get("/api/queues")
    assert status == 200, body
    (queue,) = body["queues"]
    return dict(queue["statistics"])
