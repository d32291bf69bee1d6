"""Recording tests run on SQLite and on the real PostgreSQL (the store fixtures), with
real files in tmp_path. ``seeded`` gives an agent, a customer and an interaction to hang
recordings on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.repository import CustomerRepository, InteractionRepository
from recordings.repository import RecordingRepository
from routing.persistence import AgentRepository
from tests.integration.conftest import stack
from tests.store.conftest import FakeClock, clock, empty_engine, engine

__all__ = ["FakeClock", "Seeded", "clock", "empty_engine", "engine", "stack"]

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seeded:
    engine: AsyncEngine
    agent_id: int
    customer_id: int
    interaction_id: int
    customers: CustomerRepository
    interactions: InteractionRepository


@pytest.fixture
async def seeded(engine: AsyncEngine) -> Seeded:
    agent = await AgentRepository(engine).create("alice", "Alice Agent", "1001")
    customers = CustomerRepository(engine)
    customer = await customers.create(
        "Jörg Kunde", phones=["+14155550100"], emails=["jorg@example.com"], notes="VIP"
    )
    interactions = InteractionRepository(engine)
    interaction = await interactions.create(
        channel="voice",
        direction="inbound",
        started_at=T0,
        customer_id=customer.id,
        queue="billing",
        agent_id=agent.id,
        call_id="call-1",
    )
    return Seeded(engine, agent.id, customer.id, interaction.id, customers, interactions)


@pytest.fixture
def repo(engine: AsyncEngine, clock: FakeClock) -> RecordingRepository:
    return RecordingRepository(engine, clock=clock)
