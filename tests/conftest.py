"""Fixtures shared by the test packages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sim.pbx.server import PbxSimulator


@pytest.fixture
async def sim() -> AsyncIterator[PbxSimulator]:
    """A started PBX simulator on a free port (tests/sim has its own, with AMI users)."""
    simulator = PbxSimulator(answer_delay=0.02, login_failure_delay=0)
    await simulator.start()
    yield simulator
    await simulator.stop()
