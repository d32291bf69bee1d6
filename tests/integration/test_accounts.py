"""Accounts over the real stack: logging in, the login rate limit, passwords
kept out of the store, the logs and the audit log, token expiry, revocation
(password change, deactivation, role change, logout), and the audit API."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from agent_desk.auth import Sessions
from routing.persistence import Agent, agents
from tests.integration.conftest import SIGNING_KEY, TOKEN, Recorder, Stack

PASSWORD = "alice-has-a-long-password"
BOB_PASSWORD = "bob-has-another-password"


@dataclass
class Accounts:
    stack: Stack
    alice: Agent
    bob: Agent
    admin_token: str

    @property
    def url(self) -> str:
        return self.stack.url

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as http:
            async with http.request(method, self.url + path, json=body, headers=headers) as resp:
                data = await resp.json()
                return resp.status, data, resp

    async def login(self, username: str, password: str) -> tuple[int, dict[str, Any]]:
        status, body, _ = await self.call(
            "POST", "/api/login", {"username": username, "password": password}
        )
        return status, body

    async def token(self, username: str = "alice", password: str = PASSWORD) -> str:
        status, body = await self.login(username, password)
        assert status == 200, body
        return str(body["token"])

    async def audit(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        status, body, _ = await self.call("GET", f"/api/audit?{query}", token=TOKEN)
        assert status == 200, body
        return list(body["events"])


@pytest.fixture
async def accounts(routed: tuple[Stack, Recorder, dict[str, str]]) -> AsyncIterator[Accounts]:
    stack, _, ids = routed
    repo = stack.runtime.agents
    alice = await repo.set_password(int(ids["1001"]), PASSWORD)
    bob = await repo.set_password(int(ids["1002"]), BOB_PASSWORD)
    yield Accounts(stack, alice, bob, TOKEN)


async def test_login_gives_a_session_token_that_opens_the_api(accounts: Accounts) -> None:
    status, body = await accounts.login("alice", PASSWORD)

    assert status == 200, body
    assert body["agent"] == {
        "id": str(accounts.alice.id),
        "username": "alice",
        "display_name": "Alice",
        "role": "agent",
        "extension": "1001",
    }
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    lifetime = accounts.stack.runtime.config.api.session_seconds
    assert abs((expires - datetime.now(UTC)).total_seconds() - lifetime) < 120
    status, session, _ = await accounts.call("GET", "/api/session", token=body["token"])
    assert status == 200
    assert session["principal"] == {"id": str(accounts.alice.id), "role": "agent"}
    status, queues, _ = await accounts.call("GET", "/api/queues", token=body["token"])
    assert status == 200 and queues["queues"]
    (row,) = await accounts.audit(action="auth.login")
    assert (row["outcome"], row["subject"], row["actor"]["id"]) == (
        "allowed",
        "alice",
        str(accounts.alice.id),
    )
    assert row["client_ip"] == "127.0.0.1"


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(
    accounts: Accounts,
) -> None:
    wrong = await accounts.login("alice", "not-alice-password")
    unknown = await accounts.login("mallory", "not-alice-password")

    assert (
        wrong
        == unknown
        == (
            401,
            {"error": "invalid_credentials", "message": "wrong username or password"},
        )
    )
    rows = await accounts.audit(action="auth.login")
    assert [(r["subject"], r["outcome"], r["detail"]["reason"]) for r in rows] == [
        ("mallory", "failed", "bad_credentials"),
        ("alice", "failed", "bad_credentials"),
    ]
    assert all(r["actor"]["id"] is None for r in rows)


@pytest.mark.parametrize(
    "body",
    [None, {"username": "alice"}, {"username": "", "password": "x"}, ["alice", PASSWORD]],
)
async def test_a_malformed_login_is_400_and_counts_for_nothing(
    accounts: Accounts, body: Any
) -> None:
    status, answer, _ = await accounts.call("POST", "/api/login", body)

    assert (status, answer["error"]) == (400, "invalid_request")
    assert await accounts.audit(action="auth.login") == []


async def test_five_failures_lock_the_username_with_429_and_retry_after(
    accounts: Accounts,
) -> None:
    for _ in range(5):
        status, _ = await accounts.login("alice", "guess-guess-guess")
        assert status == 401

    # Locked: even the right password is not checked.
    status, body, response = await accounts.call(
        "POST", "/api/login", {"username": "alice", "password": PASSWORD}
    )
    assert status == 429, body
    assert body["error"] == "too_many_attempts"
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 300 and body["retry_after"] == retry_after
    # The username is locked, not the address: Bob still logs in from it.
    status, _ = await accounts.login("bob", BOB_PASSWORD)
    assert status == 200

    rows = [r for r in await accounts.audit(action="auth.login") if r["subject"] == "alice"]
    assert [r["outcome"] for r in rows] == ["denied"] + ["failed"] * 5
    assert rows[0]["detail"] == {
        "reason": "locked",
        "locked_by": "username",
        "retry_after": retry_after,
    }


async def test_a_success_clears_the_username_failures(accounts: Accounts) -> None:
    for _ in range(4):
        assert (await accounts.login("alice", "guess-guess-guess"))[0] == 401
    assert (await accounts.login("alice", PASSWORD))[0] == 200

    for _ in range(4):
        assert (await accounts.login("alice", "guess-guess-guess"))[0] == 401
    assert (await accounts.login("alice", PASSWORD))[0] == 200


async def test_passwords_never_reach_the_store_the_logs_or_the_audit_log(
    accounts: Accounts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    new_password = "alice-changed-her-password"
    admin_password = "set-by-the-admin-12345"

    await accounts.login("alice", "a-wrong-password-123")
    token = await accounts.token()
    status, _, _ = await accounts.call(
        "POST",
        "/api/account/password",
        {"current_password": PASSWORD, "new_password": new_password},
        token=token,
    )
    assert status == 200
    status, _, _ = await accounts.call(
        "POST", f"/api/agents/{accounts.bob.id}/password", {"password": admin_password}, TOKEN
    )
    assert status == 200
    status, body, _ = await accounts.call(
        "POST", f"/api/agents/{accounts.bob.id}/password", {"password": "short-1"}, TOKEN
    )
    assert status == 400 and "at least 10" in body["message"] and "short-1" not in body["message"]

    async with accounts.stack.runtime.engine.connect() as conn:
        stored = [r.password_hash for r in await conn.execute(select(agents.c.password_hash))]
    assert all(h.startswith("$argon2id$") for h in stored)
    audit = json.dumps(await accounts.audit(limit="500"))
    everything = caplog.text + audit + " ".join(stored)
    for secret in (PASSWORD, new_password, admin_password, "a-wrong-password-123", "short-1"):
        assert secret not in everything
    assert "alice" in audit  # the audit does name who tried


async def test_an_expired_token_is_refused(accounts: Accounts) -> None:
    lifetime = accounts.stack.runtime.config.api.session_seconds
    # Minted with the server's key by a clock one lifetime and a minute ago.
    old = Sessions(SIGNING_KEY, max_age=lifetime, clock=lambda: time.time() - lifetime - 60)
    token, expires_at = old.issue(accounts.alice)
    assert expires_at < time.time()

    status, body, _ = await accounts.call("GET", "/api/session", token=token)

    assert (status, body["error"]) == (401, "unauthenticated")
    fresh = Sessions(SIGNING_KEY, max_age=lifetime).issue(accounts.alice)[0]
    assert (await accounts.call("GET", "/api/session", token=fresh))[0] == 200


async def test_changing_the_password_revokes_earlier_tokens_and_hands_back_a_new_one(
    accounts: Accounts,
) -> None:
    first = await accounts.token()
    second = await accounts.token()

    status, body, _ = await accounts.call(
        "POST",
        "/api/account/password",
        {"current_password": PASSWORD, "new_password": "a-brand-new-password"},
        token=first,
    )

    assert status == 200, body
    for old in (first, second):
        assert (await accounts.call("GET", "/api/session", token=old))[0] == 401
    assert (await accounts.call("GET", "/api/session", token=body["token"]))[0] == 200
    assert (await accounts.login("alice", PASSWORD))[0] == 401
    assert (await accounts.login("alice", "a-brand-new-password"))[0] == 200


async def test_the_wrong_current_password_changes_nothing(accounts: Accounts) -> None:
    token = await accounts.token()

    status, body, _ = await accounts.call(
        "POST",
        "/api/account/password",
        {"current_password": "not-my-password", "new_password": "a-brand-new-password"},
        token=token,
    )

    assert (status, body["error"]) == (400, "wrong_password")
    assert (await accounts.call("GET", "/api/session", token=token))[0] == 200
    assert (await accounts.login("alice", PASSWORD))[0] == 200


async def test_an_admin_setting_a_password_revokes_the_agent_sessions(accounts: Accounts) -> None:
    token = await accounts.token()

    status, _, _ = await accounts.call(
        "POST", f"/api/agents/{accounts.alice.id}/password", {"password": "reset-by-admin-1"}, TOKEN
    )

    assert status == 200
    assert (await accounts.call("GET", "/api/session", token=token))[0] == 401
    assert (await accounts.login("alice", "reset-by-admin-1"))[0] == 200


async def test_deactivation_revokes_sessions_blocks_login_and_signs_out_of_routing(
    accounts: Accounts,
) -> None:
    token = await accounts.token()
    agent_id = str(accounts.alice.id)
    status, _, _ = await accounts.call(
        "POST", f"/api/agents/{agent_id}/state", {"state": "available"}, token=token
    )
    assert status == 200

    status, body, _ = await accounts.call(
        "POST", f"/api/agents/{agent_id}/active", {"active": False}, TOKEN
    )

    assert status == 200 and body["agent"]["active"] is False
    assert (await accounts.call("GET", "/api/queues", token=token))[0] == 401
    assert (await accounts.login("alice", PASSWORD))[0] == 401
    routing = accounts.stack.runtime.routing
    assert routing is not None and routing.router.agent(agent_id).state.value == "offline"
    # Back again: a new login works, the old token stays dead.
    await accounts.call("POST", f"/api/agents/{agent_id}/active", {"active": True}, TOKEN)
    assert (await accounts.login("alice", PASSWORD))[0] == 200
    assert (await accounts.call("GET", "/api/queues", token=token))[0] == 401


async def test_a_role_change_revokes_the_sessions(accounts: Accounts) -> None:
    token = await accounts.token()

    await accounts.stack.runtime.agents.update(accounts.alice.id, role="supervisor")

    assert (await accounts.call("GET", "/api/session", token=token))[0] == 401
    _, session, _ = await accounts.call("GET", "/api/session", token=await accounts.token())
    assert session["principal"]["role"] == "supervisor"


async def test_logout_ends_the_agents_sessions(accounts: Accounts) -> None:
    token = await accounts.token()

    status, body, _ = await accounts.call("POST", "/api/logout", token=token)

    assert (status, body) == (200, {"status": "logged_out"})
    assert (await accounts.call("GET", "/api/session", token=token))[0] == 401
    (row,) = await accounts.audit(action="auth.logout")
    assert (row["outcome"], row["actor"]["id"]) == ("allowed", str(accounts.alice.id))


async def test_a_forbidden_attempt_is_refused_audited_and_changes_nothing(
    accounts: Accounts,
) -> None:
    token = await accounts.token()
    bob = str(accounts.bob.id)

    status, body, _ = await accounts.call(
        "POST", f"/api/agents/{bob}/state", {"state": "available"}, token=token
    )

    assert status == 403
    assert body == {
        "error": "forbidden",
        "message": "agents.state: an agent may do this only for themself",
        "action": "agents.state",
    }
    routing = accounts.stack.runtime.routing
    assert routing is not None and routing.router.agent(bob).state.value == "offline"
    (row,) = await accounts.audit(outcome="denied")
    assert (row["actor"], row["action"], row["subject"]) == (
        {"id": str(accounts.alice.id), "role": "agent"},
        "agents.state",
        bob,
    )
    assert row["detail"]["path"] == f"/api/agents/{bob}/state"


async def test_the_audit_api_filters_by_actor_action_and_time_and_pages(
    accounts: Accounts,
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    token = await accounts.token()
    alice = str(accounts.alice.id)
    for state in ("available", "offline", "available"):
        status, _, _ = await accounts.call(
            "POST", f"/api/agents/{alice}/state", {"state": state}, token=token
        )
        assert status == 200
    await accounts.login("bob", "not-bob-password")

    mine = await accounts.audit(actor=alice)
    assert [r["action"] for r in mine] == ["agents.state"] * 3 + ["auth.login"]
    assert all(r["outcome"] == "allowed" for r in mine)
    assert [r["subject"] for r in await accounts.audit(action="auth.*")] == ["bob", "alice"]
    since = start.isoformat().replace("+00:00", "Z")
    assert len(await accounts.audit(since=since)) == 5
    assert await accounts.audit(since=str(time.time() + 60)) == []
    status, page, _ = await accounts.call("GET", "/api/audit?limit=2", token=TOKEN)
    assert status == 200 and len(page["events"]) == 2
    status, rest, _ = await accounts.call(
        "GET", f"/api/audit?limit=10&before={page['next_before']}", token=TOKEN
    )
    ids = [r["id"] for r in page["events"] + rest["events"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5
    for bad in ("since=yesterday", "limit=0", "limit=x", "outcome=maybe"):
        status, body, _ = await accounts.call("GET", f"/api/audit?{bad}", token=TOKEN)
        assert (status, body["error"]) == (400, "invalid_request"), bad
