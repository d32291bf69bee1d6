"""The whole stack over real sockets: the PBX simulator on a TCP port, the
Callwright runtime connected to it over AMI, SQLite in a temp directory, and an
HTTP client talking to the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callwright.config import AmiConfig, Config, Secret, ServerConfig, StoreConfig
from callwright.config import ApiConfig as ApiSettings
from callwright.runtime import Runtime
from sim.pbx.server import PbxSimulator

TOKEN = "integration-token"


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
        api=ApiSettings(token=Secret(TOKEN)),
    )


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    simulator = PbxSimulator(answer_delay=0.02, login_failure_delay=0)
    await simulator.start()
    yield simulator
    await simulator.stop()


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
