from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.repository import CustomerRepository, InteractionRepository
from routing.persistence import AgentRepository
from store import NotFoundError
from tests.store.conftest import FakeClock

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def repo(engine: AsyncEngine, clock: FakeClock) -> InteractionRepository:
    return InteractionRepository(engine, clock=clock)


async def _customer(engine: AsyncEngine) -> int:
    customer = await CustomerRepository(engine).create("Maria Gonzalez")
    return customer.id


async def test_inbound_call_is_recorded_and_found_by_call_id(
    engine: AsyncEngine, repo: InteractionRepository
) -> None:
    customer_id = await _customer(engine)
    agent = await AgentRepository(engine).create("alice", "Alice Martin", "1001")

    created = await repo.create(
        channel="voice",
        direction="inbound",
        customer_id=customer_id,
        call_id="1700000000.42",
        queue="support",
        agent_id=agent.id,
        started_at=T0,
    )

    assert created.customer_id == customer_id
    assert created.agent_id == agent.id
    assert created.started_at == T0
    assert created.answered_at is None
    assert created.disposition is None
    assert await repo.by_call_id("1700000000.42") == created
    assert await repo.get(created.id) == created
    assert await repo.by_call_id("no-such-call") is None


async def test_wrap_up_sets_disposition_and_notes(repo: InteractionRepository) -> None:
    interaction = await repo.create(channel="voice", direction="inbound", started_at=T0)
    interaction = await repo.update(
        interaction.id, answered_at=T0 + timedelta(seconds=12), ended_at=T0 + timedelta(minutes=5)
    )

    done = await repo.set_disposition(interaction.id, "resolved", "Reset the router.")

    assert done.disposition == "resolved"
    assert done.notes == "Reset the router."
    assert done.answered_at == T0 + timedelta(seconds=12)
    assert done.ended_at == T0 + timedelta(minutes=5)
    assert await repo.get(interaction.id) == done


async def test_changing_only_the_disposition_keeps_the_notes(repo: InteractionRepository) -> None:
    interaction = await repo.create(channel="voice", direction="inbound", started_at=T0)
    await repo.set_disposition(interaction.id, "callback", "Call back after 5pm.")

    changed = await repo.set_disposition(interaction.id, "resolved")

    assert changed.disposition == "resolved"
    assert changed.notes == "Call back after 5pm."


async def test_recent_for_customer_lists_newest_first_up_to_the_limit(
    engine: AsyncEngine, repo: InteractionRepository
) -> None:
    customer_id = await _customer(engine)
    other_id = (await CustomerRepository(engine).create("Someone Else")).id
    for days in (3, 1, 2, 5):
        await repo.create(
            channel="voice",
            direction="inbound",
            customer_id=customer_id,
            started_at=T0 - timedelta(days=days),
        )
    await repo.create(channel="email", direction="inbound", customer_id=other_id, started_at=T0)

    recent = await repo.recent_for_customer(customer_id, limit=3)

    assert [i.started_at for i in recent] == [T0 - timedelta(days=d) for d in (1, 2, 3)]
    assert all(i.customer_id == customer_id for i in recent)


async def test_email_interaction_keeps_its_subject(repo: InteractionRepository) -> None:
    interaction = await repo.create(
        channel="email", direction="outbound", started_at=T0, subject="Your ticket #12 ✓"
    )

    assert (await repo.get(interaction.id)) == interaction
    assert interaction.subject == "Your ticket #12 ✓"


async def test_times_come_back_as_the_same_instant_in_utc(repo: InteractionRepository) -> None:
    paris = timezone(timedelta(hours=1))
    started = datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=paris)

    interaction = await repo.create(channel="voice", direction="inbound", started_at=started)
    stored = await repo.get(interaction.id)

    assert stored is not None
    assert stored.started_at == started
    assert stored.started_at.utcoffset() == timedelta(0)
    assert stored.started_at.microsecond == 123456


async def test_naive_datetime_is_refused(repo: InteractionRepository) -> None:
    with pytest.raises(ValueError, match="naive"):
        await repo.create(channel="voice", direction="inbound", started_at=datetime(2025, 3, 1))


@pytest.mark.parametrize(("channel", "direction"), [("fax", "inbound"), ("voice", "sideways")])
async def test_unknown_channel_or_direction_is_refused(
    repo: InteractionRepository, channel: str, direction: str
) -> None:
    with pytest.raises(ValueError):
        await repo.create(channel=channel, direction=direction, started_at=T0)  # type: ignore[arg-type]


async def test_unknown_customer_or_agent_is_refused(repo: InteractionRepository) -> None:
    with pytest.raises(NotFoundError, match="customer"):
        await repo.create(channel="voice", direction="inbound", customer_id=999, started_at=T0)
    with pytest.raises(NotFoundError, match="agent"):
        await repo.create(channel="voice", direction="inbound", agent_id=999, started_at=T0)


async def test_update_refuses_unknown_fields_and_missing_rows(repo: InteractionRepository) -> None:
    interaction = await repo.create(channel="voice", direction="inbound", started_at=T0)

    with pytest.raises(TypeError, match="created_at"):
        await repo.update(interaction.id, created_at=T0)
    with pytest.raises(NotFoundError):
        await repo.update(999, disposition="resolved")
