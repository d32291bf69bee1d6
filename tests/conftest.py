"""Fixtures shared by the test packages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import uvloop

from sim.pbx.server import PbxSimulator


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every test runs on the event loop the server runs on (``[server]
    event_loop``, uvloop by default; tests/callwright/test_event_loop.py runs
    the asyncio fallback too)."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    """A started PBX simulator on a free port (tests/sim has its own, with AMI users)."""
    simulator = PbxSimulator(answer_delay=0.02, login_failure_delay=0)
    await simulator.start()
    yield simulator
    await simulator.stop()
