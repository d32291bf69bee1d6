from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.demo_data import DEMO_CUSTOMERS, seed_demo
from crm.persistence import customers, interactions
from crm.repository import CustomerRepository, InteractionRepository
from routing.persistence import AgentRepository, agents


async def _counts(engine: AsyncEngine) -> tuple[int, ...]:
    counts = []
    async with engine.connect() as conn:
        for table in (customers, agents, interactions):
            query = select(func.count()).select_from(table)
            counts.append(int((await conn.execute(query)).scalar_one()))
    return tuple(counts)


async def test_seeding_twice_creates_the_demo_data_once(engine: AsyncEngine) -> None:
    await seed_demo(engine)
    first = await _counts(engine)
    await seed_demo(engine)

    assert await _counts(engine) == first
    assert first[0] == len(DEMO_CUSTOMERS) >= 10
    assert first[1] == 3
    assert first[2] >= 3


async def test_demo_agents_have_their_extensions_and_roles(engine: AsyncEngine) -> None:
    await seed_demo(engine)
    repo = AgentRepository(engine)

    found = {a.username: (a.extension, a.role) for a in await repo.list()}

    assert found == {
        "alice": ("1001", "agent"),
        "bob": ("1002", "agent"),
        "carol": ("1003", "supervisor"),
    }


async def test_demo_customers_pop_by_caller_id_with_their_history(engine: AsyncEngine) -> None:
    await seed_demo(engine)
    customers_repo = CustomerRepository(engine)

    maria = await customers_repo.find_by_phone("5550100001")
    joerg = await customers_repo.find_by_phone("+1 (555) 010-0003")
    markup = await customers_repo.find_by_phone("555-010-0008")

    assert maria is not None and maria.account_number == "ACC-10001"
    assert joerg is not None and joerg.name == "Jörg Müller"
    assert markup is not None and "<script>" in markup.name
    history = await InteractionRepository(engine).recent_for_customer(maria.id)
    assert [i.disposition for i in history] == ["callback", "resolved"]
    assert all(i.notes for i in history)
