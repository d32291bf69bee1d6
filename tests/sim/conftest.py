"""Fixtures for the PBX simulator tests: a started simulator and AMI clients
speaking over real TCP with the project's codec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from simtest_support import USERS, AmiClient, Connect

from sim.pbx import PbxSimulator


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    simulator = PbxSimulator(users=USERS, answer_delay=0.01, login_failure_delay=0.0)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def connect(sim: PbxSimulator) -> AsyncIterator[Connect]:
    clients: list[AmiClient] = []

    async def _connect(
        username: str | None = "callwright", secret: str | None = None, events: str | None = None
    ) -> AmiClient:
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        client = AmiClient(reader, writer)
        clients.append(client)
        await client.wait_banner()
        if username is not None:
            fields = {"Username": username, "Secret": secret or USERS[username].secret}
            if events is not None:
                fields["Events"] = events
            response = await client.request("Login", fields)
            assert response.ok, response
        return client

    yield _connect
    for client in clients:
        await client.close()


@pytest.fixture
async def ami(connect: Connect) -> AmiClient:
    """A client logged in as the ``callwright`` user with events on."""
    return await connect()
