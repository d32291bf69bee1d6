"""Passwords, session token versions and the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk.audit import AuditLog
from routing.persistence import AgentRepository, agents
from store import NotFoundError
from tests.store.conftest import FakeClock

PASSWORD = "correct horse battery"


@pytest.fixture
def repo(engine: AsyncEngine, clock: FakeClock) -> AgentRepository:
    return AgentRepository(engine, clock=clock)


async def _stored_hash(engine: AsyncEngine, agent_id: int) -> str | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(agents.c.password_hash).where(agents.c.id == agent_id))
        ).one()
    return row.password_hash  # type: ignore[no-any-return]


async def test_the_store_keeps_an_argon2id_hash_and_never_the_password(
    engine: AsyncEngine, repo: AgentRepository
) -> None:
    alice = await repo.create("alice", "Alice Martin", "1001")
    assert await _stored_hash(engine, alice.id) is None

    await repo.set_password(alice.id, PASSWORD)

    stored = await _stored_hash(engine, alice.id)
    assert stored is not None and stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)
    assert "hash" not in repr(await repo.get(alice.id))


async def test_the_right_password_finds_the_agent_and_anything_else_finds_nobody(
    repo: AgentRepository,
) -> None:
    alice = await repo.create("alice", "Alice Martin", "1001")
    bob = await repo.create("bob", "Bob Okafor", "1002")  # no password: cannot log in
    await repo.set_password(alice.id, PASSWORD)

    found = await repo.verify_password("alice", PASSWORD)
    assert found is not None and found.id == alice.id
    assert await repo.verify_password("alice", PASSWORD.upper()) is None
    assert await repo.verify_password("alice", "") is None
    assert await repo.verify_password("mallory", PASSWORD) is None
    assert await repo.verify_password("bob", "") is None
    assert await repo.verify_password(bob.username, PASSWORD) is None


async def test_a_deactivated_agent_cannot_log_in(repo: AgentRepository) -> None:
    alice = await repo.create("alice", "Alice Martin", "1001")
    await repo.set_password(alice.id, PASSWORD)

    await repo.update(alice.id, active=False)

    assert await repo.verify_password("alice", PASSWORD) is None


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("pw-42", "too short"),
        ("123456789", "at least 10"),
        ("x" * 1025, "too long"),
    ],
)
async def test_weak_or_absurd_passwords_are_refused_with_a_clear_message(
    engine: AsyncEngine, repo: AgentRepository, password: str, message: str
) -> None:
    alice = await repo.create("alice", "Alice Martin", "1001")

    with pytest.raises(ValueError, match=message) as info:
        await repo.set_password(alice.id, password)

    assert password not in str(info.value)
    assert await _stored_hash(engine, alice.id) is None


async def test_setting_a_password_on_an_unknown_agent_is_not_found(repo: AgentRepository) -> None:
    with pytest.raises(NotFoundError):
        await repo.set_password(999, PASSWORD)


async def test_password_change_deactivation_role_change_and_revoke_bump_the_token_version(
    repo: AgentRepository,
) -> None:
    alice = await repo.create("alice", "Alice Martin", "1001")
    assert alice.token_version == 0

    versions = [(await repo.set_password(alice.id, PASSWORD)).token_version]
    versions.append((await repo.update(alice.id, display_name="Alice M.")).token_version)
    versions.append((await repo.update(alice.id, role="agent")).token_version)  # unchanged
    versions.append((await repo.update(alice.id, role="supervisor")).token_version)
    versions.append((await repo.update(alice.id, active=False)).token_version)
    versions.append((await repo.update(alice.id, active=False)).token_version)  # already
    versions.append((await repo.update(alice.id, active=True)).token_version)
    versions.append((await repo.revoke_sessions(alice.id)).token_version)

    assert versions == [1, 1, 1, 2, 3, 3, 3, 4]


async def test_audit_rows_are_filtered_by_actor_action_and_time_newest_first(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    audit = AuditLog(engine, clock=clock)

    class Who:
        def __init__(self, id: str, role: str) -> None:
            self.id = id
            self.role = role

    start = clock()
    await audit.record(actor=None, action="auth.login", outcome="failed", subject="alice")
    clock.advance(60)
    recorded = await audit.record(
        actor=Who("7", "agent"),
        action="calls.hangup",
        outcome="denied",
        subject="1700000000.1",
        detail={"reason": "not on this call"},
        client_ip="192.0.2.10",
    )
    clock.advance(60)
    await audit.record(actor=Who("8", "supervisor"), action="calls.hold", outcome="allowed")

    everything = await audit.query()
    assert [e.action for e in everything] == ["calls.hold", "calls.hangup", "auth.login"]
    (denied,) = await audit.query(actor="7")
    assert denied.outcome == "denied" and denied.actor_role == "agent"
    assert denied.detail == {"reason": "not on this call"}
    assert denied.client_ip == "192.0.2.10" and denied.at == start + timedelta(seconds=60)
    assert recorded == denied  # what record returns is what was stored
    assert [e.action for e in await audit.query(action="calls.*")] == [
        "calls.hold",
        "calls.hangup",
    ]
    assert [e.action for e in await audit.query(since=start + timedelta(seconds=30))] == [
        "calls.hold",
        "calls.hangup",
    ]
    page1 = await audit.query(limit=2)
    page2 = await audit.query(limit=2, before_id=page1[-1].id)
    assert [e.action for e in page1 + page2] == [e.action for e in everything]
    assert await audit.count() == 3


async def test_an_unknown_outcome_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="outcome"):
        await AuditLog(engine).record(actor=None, action="x", outcome="maybe")
