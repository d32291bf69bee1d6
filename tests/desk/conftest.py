"""The desk over real sockets: the PBX simulator, the whole runtime (routing,
calls, store) and real Socket.IO clients on TCP; tokens mapped to principals
until the accounts helper's session tokens are wired."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import socketio

from callwright.app import Principal
from callwright.runtime import Runtime
from sim.pbx.server import PbxSimulator
from tests.integration.conftest import Recorder, seed_agents, start_runtime

NS = "/desk"
ROOM_EVENTS = ("offer", "reservation", "task", "agent_state", "queue_stats", "call")
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
        self.sio.on("*", self._on_event, namespace=NS)
        self.sio.on("connect_error", self._on_connect_error, namespace=NS)
        self.sio.on("disconnect", self._on_disconnect, namespace=NS)

    def _on_event(self, event: str, data: Any) -> None:
        if event == "hello":
            self.hellos.append(data)
        elif event in ROOM_EVENTS:
            assert data["type"] == event
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
        self, type: str, where: Callable[[dict[str, Any]], bool] = lambda d: True, after: int = 0
    ) -> dict[str, Any]:
        """The first envelope of ``type`` (from index ``after``) whose data matches."""

        def find() -> dict[str, Any] | None:
            for envelope in self.envelopes[after:]:
                if envelope["type"] == type and where(envelope["data"]):
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
    tokens: dict[str, Principal]
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

    async def connect(self, token: str, **auth: Any) -> DeskClient:
        client = self.client()
        await client.connect({"token": token, **auth})
        await client.wait(lambda: client.hellos)
        return client


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    simulator = PbxSimulator(answer_delay=0.02, login_failure_delay=0)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def desk(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[DeskStack]:
    data = tmp_path / "data"
    agents = await seed_agents(f"sqlite+aiosqlite:///{data / 'callwright.db'}")
    runtime, recorder = await start_runtime(sim, data)
    tokens = {
        "alice-token": Principal(agents["1001"], "agent"),
        "bob-token": Principal(agents["1002"], "agent"),
        "supervisor-token": Principal("sup-1", "supervisor"),
        "service-token": Principal("svc", "service"),
        "stranger-token": Principal("999999", "agent"),
    }

    async def authenticate(token: str) -> Principal | None:
        return tokens.get(token)

    assert runtime.desk.namespace is not None
    runtime.desk.namespace.authenticate = authenticate
    stack = DeskStack(sim, runtime, recorder, agents, tokens)
    try:
        yield stack
    finally:
        for client in stack.clients:
            await client.close()
        await runtime.stop()
