"""The route guard and the audit middleware on a small app: a route nobody
wrote a policy for is refused (admins excepted), a role the action can never
admit is refused before the handler runs, both audited."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent_desk.audit import AuditLog
from agent_desk.auth import SessionAuthenticator, Sessions
from agent_desk.authorization import HttpAuthorization, Ownership, Policy
from callwright.app import auth_middleware, json_errors
from cti.calls.service import CallService
from cti.link import AmiLink, LinkSettings
from routing.persistence import AgentRepository
from store import make_engine, sqlite_url
from store.migrate import upgrade

KEY = "route-guard-signing-key-0123456789abcdef"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, dict[str, str], AuditLog]]:
    url = sqlite_url(tmp_path / "data")
    await upgrade(url)
    engine = make_engine(url)
    repo = AgentRepository(engine)
    sessions = Sessions(KEY, max_age=3600)
    tokens = {}
    for name, ext, role in (
        ("alice", "1001", "agent"),
        ("carol", "1003", "supervisor"),
        ("dave", "1004", "admin"),
    ):
        tokens[role] = sessions.issue(await repo.create(name, name.title(), ext, role=role))[0]
    calls = CallService(AmiLink(LinkSettings("127.0.0.1", 1, "u", "s")), clock=time.time)
    audit = AuditLog(engine)
    guard = HttpAuthorization(
        Policy(Ownership(calls=calls, routing=lambda: None, interaction_agent=_nobody)), audit
    )
    app = web.Application(
        middlewares=[
            json_errors,
            guard.audit_middleware,
            auth_middleware(SessionAuthenticator(repo, sessions)),
            guard.route_guard,
        ]
    )

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"ran": True})

    app.router.add_post("/api/unheard-of", handler)
    app.router.add_get("/api/reports/queues", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, tokens, audit
    finally:
        await client.close()
        await engine.dispose()


async def _nobody(interaction_id: int) -> int | None:
    return None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_route_without_a_policy_entry_is_refused_to_all_but_admins(
    client: tuple[TestClient, dict[str, str], AuditLog],
) -> None:
    http, tokens, audit = client
    for role in ("agent", "supervisor"):
        response = await http.post("/api/unheard-of", headers=bearer(tokens[role]))
        assert response.status == 403
        body = await response.json()
        assert body["error"] == "forbidden" and "no policy" in body["message"]

    response = await http.post("/api/unheard-of", headers=bearer(tokens["admin"]))
    assert (response.status, await response.json()) == (200, {"ran": True})

    rows = await audit.query()
    assert [(r.actor_role, r.outcome) for r in rows] == [
        ("admin", "allowed"),
        ("supervisor", "denied"),
        ("agent", "denied"),
    ]
    assert {r.action for r in rows} == {"POST /api/unheard-of"}


async def test_a_role_the_action_never_admits_is_refused_before_the_handler(
    client: tuple[TestClient, dict[str, str], AuditLog],
) -> None:
    http, tokens, audit = client

    response = await http.get("/api/reports/queues", headers=bearer(tokens["agent"]))

    assert response.status == 403
    assert (await response.json())["message"] == "reports.read is for supervisors and admins"
    (row,) = await audit.query()
    assert (row.action, row.outcome, row.actor_role) == ("reports.read", "denied", "agent")
    response = await http.get("/api/reports/queues", headers=bearer(tokens["supervisor"]))
    assert response.status == 200
    assert len(await audit.query()) == 1  # an allowed read is not audited
