from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from routing.persistence import AgentRepository
from store import DuplicateError, NotFoundError
from tests.store.conftest import FakeClock


@pytest.fixture
def repo(engine: AsyncEngine, clock: FakeClock) -> AgentRepository:
    return AgentRepository(engine, clock=clock)


async def test_agent_is_found_by_id_username_and_extension(
    repo: AgentRepository, clock: FakeClock
) -> None:
    alice = await repo.create("alice", "Alice Martin", "1001", email="Alice@Example.com")

    assert alice.role == "agent"
    assert alice.active
    assert alice.email == "alice@example.com"
    assert alice.created_at == clock()
    assert await repo.get(alice.id) == alice
    assert await repo.by_username("alice") == alice
    assert await repo.by_extension("1001") == alice
    assert await repo.by_extension("1999") is None


@pytest.mark.parametrize(
    ("username", "extension", "field"),
    [("alice", "1002", "username"), ("bob", "1001", "extension")],
)
async def test_username_and_extension_are_unique(
    repo: AgentRepository, username: str, extension: str, field: str
) -> None:
    await repo.create("alice", "Alice Martin", "1001")

    with pytest.raises(DuplicateError, match=field):
        await repo.create(username, "Someone", extension)


async def test_list_shows_active_agents_by_extension_unless_asked_for_all(
    repo: AgentRepository,
) -> None:
    carol = await repo.create("carol", "Carol Nguyen", "1003", role="supervisor")
    alice = await repo.create("alice", "Alice Martin", "1001")
    bob = await repo.create("bob", "Bob Okafor", "1002")

    bob = await repo.update(bob.id, active=False)

    assert await repo.list() == [alice, carol]
    assert await repo.list(active_only=False) == [alice, bob, carol]


async def test_update_changes_role_and_refuses_bad_values(repo: AgentRepository) -> None:
    alice = await repo.create("alice", "Alice Martin", "1001")
    await repo.create("bob", "Bob Okafor", "1002")

    promoted = await repo.update(alice.id, role="supervisor", display_name="Alice M.")
    assert (promoted.role, promoted.display_name) == ("supervisor", "Alice M.")

    with pytest.raises(ValueError, match="wizard"):
        await repo.update(alice.id, role="wizard")
    with pytest.raises(DuplicateError, match="extension"):
        await repo.update(alice.id, extension="1002")
    with pytest.raises(TypeError, match="id"):
        await repo.update(alice.id, id=5)
    with pytest.raises(NotFoundError):
        await repo.update(999, display_name="Ghost")
    assert await repo.get(alice.id) == promoted


async def test_unknown_role_is_refused_on_create(repo: AgentRepository) -> None:
    with pytest.raises(ValueError, match="root"):
        await repo.create("mallory", "Mallory", "1066", role="root")


async def test_concurrent_creates_on_one_extension_let_exactly_one_win(
    repo: AgentRepository,
) -> None:
    results = await asyncio.wait_for(
        asyncio.gather(
            *(repo.create(f"racer{n}", f"Racer {n}", "1050") for n in range(4)),
            return_exceptions=True,
        ),
        timeout=30,
    )

    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(losers) == 3
    assert all(isinstance(error, DuplicateError) for error in losers), losers
    assert [a.extension for a in await repo.list()] == ["1050"]
