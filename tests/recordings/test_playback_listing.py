"""The recordings and interactions lists on SQLite and on PostgreSQL: filters,
paging (a cursor for recordings, pages for interactions), an agent's list narrowed
to their own, bad parameters refused naming the parameter. Served by the real
middlewares (session tokens, route guard, audit) on a small app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk.audit import AuditLog
from agent_desk.auth import SessionAuthenticator, Sessions
from agent_desk.authorization import HttpAuthorization, Ownership, Policy
from callwright.app import PRINCIPAL, auth_middleware, json_errors
from crm.repository import CustomerRepository, InteractionRepository
from cti.calls.service import CallService
from cti.link import AmiLink, LinkSettings
from ivr.repository import IvrRepository
from recordings.listing import listing_routes
from recordings.repository import RecordingRepository
from routing.persistence import AgentRepository
from tests.ivr.helpers import answer_survey

KEY = "listing-signing-key-0123456789abcdef"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Listing:
    http: TestClient[Any, Any]
    tokens: dict[str, str]
    agents: dict[str, int]
    customers: dict[str, int]
    interactions: list[int]  # oldest first
    recordings: dict[int, list[str]]  # interaction id -> recording ids
    engine: AsyncEngine

    async def get(self, role: str, path: str) -> tuple[int, Any]:
        resp = await self.http.get(path, headers={"Authorization": f"Bearer {self.tokens[role]}"})
        return resp.status, await resp.json()


async def _nobody(interaction_id: int) -> int | None:
    return None


@pytest.fixture(params=[False, True], ids=["agents-may-not-play", "agents-may-play"])
async def listing(engine: AsyncEngine, request: pytest.FixtureRequest) -> AsyncIterator[Listing]:
    may_play: bool = request.param
    agents_repo = AgentRepository(engine)
    sessions = Sessions(KEY, max_age=3600)
    agents, tokens = {}, {}
    accounts = (
        ("alice", "1001", "agent"),
        ("bob", "1002", "agent"),
        ("carol", "1003", "supervisor"),
    )
    for name, ext, role in accounts:
        agent = await agents_repo.create(name, name.title(), ext, role=role)
        agents[name] = agent.id
        tokens[name] = sessions.issue(agent)[0]
    customers = CustomerRepository(engine)
    ada = await customers.create("Ada Lovelace", phones=["+15550100001"])
    grace = await customers.create("Grace Hopper", phones=["+15550100002"])
    interactions = InteractionRepository(engine)
    repo = RecordingRepository(engine)
    made: list[int] = []
    recs: dict[int, list[str]] = {}
    # Six calls an hour apart: Ada's with Alice, Grace's with Bob, alternately; every
    # call but the last recorded; an e-mail at the end.
    for n in range(6):
        alice_turn = n % 2 == 0
        inter = await interactions.create(
            channel="voice",
            direction="inbound",
            started_at=T0 + timedelta(hours=n),
            customer_id=ada.id if alice_turn else grace.id,
            agent_id=agents["alice" if alice_turn else "bob"],
            queue="support" if n < 4 else "billing",
        )
        made.append(inter.id)
        if n < 5:
            rec = await repo.create(
                interaction_id=inter.id,
                agent_id=inter.agent_id,
                customer_id=inter.customer_id,
                queue=inter.queue,
                started_at=T0 + timedelta(hours=n, seconds=5),
            )
            recs[inter.id] = [rec.id]
    mail = await interactions.create(
        channel="email", direction="inbound", started_at=T0 + timedelta(hours=7)
    )
    made.append(mail.id)

    calls = CallService(AmiLink(LinkSettings("127.0.0.1", 1, "u", "s")), clock=time.time)
    audit = AuditLog(engine)

    async def recording_agent(recording_id: str) -> int | None:
        found = await repo.get(recording_id)
        return None if found is None else found.agent_id

    guard = HttpAuthorization(
        Policy(
            Ownership(
                calls=calls,
                routing=lambda: None,
                interaction_agent=_nobody,
                recording_agent=recording_agent,
                agent_may_play=may_play,
            )
        ),
        audit,
    )
    app = web.Application(
        middlewares=[
            json_errors,
            guard.audit_middleware,
            auth_middleware(SessionAuthenticator(agents_repo, sessions)),
            guard.route_guard,
        ]
    )
    app.add_routes(
        listing_routes(
            repo, engine, guard.authorize, lambda r: r[PRINCIPAL], agent_may_play=may_play
        )
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Listing(
            client, tokens, agents, {"ada": ada.id, "grace": grace.id}, made, recs, engine
        )
    finally:
        await client.close()


async def test_a_supervisor_pages_through_recordings_newest_first(listing: Listing) -> None:
    expected = [listing.recordings[i][0] for i in reversed(listing.interactions[:5])]
    seen: list[str] = []
    path = "/api/recordings?limit=2"
    while True:
        status, body = await listing.get("carol", path)
        assert status == 200, body
        seen += [r["id"] for r in body["recordings"]]
        if body["next_before"] is None:
            break
        path = f"/api/recordings?limit=2&before={body['next_before']}"
    assert seen == expected


async def test_recordings_are_filtered(listing: Listing) -> None:
    first, second, third = listing.interactions[:3]

    async def ids(query: str) -> list[str]:
        status, body = await listing.get("carol", f"/api/recordings?{query}")
        assert status == 200, body
        return [r["id"] for r in body["recordings"]]

    assert await ids(f"interaction_id={second}") == listing.recordings[second]
    by_ada = await ids(f"customer_id={listing.customers['ada']}")
    assert by_ada == [listing.recordings[i][0] for i in (listing.interactions[4], third, first)]
    assert await ids(f"agent_id={listing.agents['bob']}") == [
        listing.recordings[i][0] for i in (listing.interactions[3], second)
    ]
    assert len(await ids("queue=billing")) == 1
    since = quote((T0 + timedelta(hours=1)).isoformat())  # "+00:00" in a query: %2B
    until = (T0 + timedelta(hours=3)).timestamp()
    assert await ids(f"from={since}&to={until}") == [
        listing.recordings[i][0] for i in (third, second)
    ]
    assert await ids("state=stored") == []
    assert len(await ids("state=recording")) == 5


async def test_an_agents_list_is_their_own_or_refused(listing: Listing) -> None:
    status, body = await listing.get("alice", "/api/recordings")
    status_access, access = await listing.get("alice", "/api/recordings/access")
    assert status_access == 200
    if access["may_play"] == "none":
        assert (status, body["error"]) == (403, "forbidden")
        return
    assert access == {"may_play": "own"}
    assert status == 200
    alices = {listing.recordings[i][0] for i in listing.interactions[:5:2]}
    assert {r["id"] for r in body["recordings"]} == alices
    # Filters narrow within her own; naming Bob is refused.
    status, body = await listing.get(
        "alice", f"/api/recordings?customer_id={listing.customers['grace']}"
    )
    assert (status, body["recordings"]) == (200, [])
    status, body = await listing.get("alice", f"/api/recordings?agent_id={listing.agents['bob']}")
    assert (status, body["error"]) == (403, "forbidden")


async def test_bad_list_parameters_are_refused_by_name(listing: Listing) -> None:
    for query, name in (
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("agent_id=x", "agent_id"),
        ("state=lost", "state"),
        ("from=soon", "from"),
        ("before=2025-03-01T09:00:00~nothex", "before"),
        ("before=yesterday~" + "0" * 32, "before"),
        ("queue=" + "q" * 65, "queue"),
    ):
        status, body = await listing.get("carol", f"/api/recordings?{query}")
        assert (status, body["error"]) == (400, "invalid_request"), query
        assert body["message"].startswith(f"{name}:"), (query, body)


async def test_the_interaction_list_pages_and_filters(listing: Listing) -> None:
    status, body = await listing.get("carol", "/api/interactions?per_page=3")
    assert status == 200
    assert body["total"] == 7 and body["page"] == 1
    assert [i["id"] for i in body["interactions"]] == listing.interactions[::-1][:3]
    status, body = await listing.get("carol", "/api/interactions?per_page=3&page=3")
    assert [i["id"] for i in body["interactions"]] == [listing.interactions[0]]
    status, body = await listing.get("carol", "/api/interactions?recorded=false")
    assert [i["id"] for i in body["interactions"]] == listing.interactions[:4:-1]
    status, body = await listing.get("carol", "/api/interactions?recorded=true&channel=voice")
    assert body["total"] == 5
    first = body["interactions"][-1]
    assert first["customer"] == {"id": listing.customers["ada"], "name": "Ada Lovelace"}
    assert first["agent"] == {"id": str(listing.agents["alice"]), "display_name": "Alice"}
    assert [r["id"] for r in first["recordings"]] == listing.recordings[first["id"]]
    status, body = await listing.get(
        "carol", f"/api/interactions?customer_id={listing.customers['grace']}&queue=support"
    )
    assert [i["id"] for i in body["interactions"]] == [
        listing.interactions[3],
        listing.interactions[1],
    ]
    status, body = await listing.get("carol", "/api/interactions?recorded=maybe")
    assert (status, body["message"]) == (400, "recorded: expected true or false")
    status, body = await listing.get("bob", "/api/interactions")
    assert (status, body["error"]) == (403, "forbidden")


async def test_the_interaction_list_shows_the_callers_survey_answer(listing: Listing) -> None:
    """The post-call survey is stored as an IVR run of its own, linked to the interaction;
    a supervisor reads the score on the interaction list (the latest answer if two)."""
    surveyed = listing.interactions[0]
    ivr = IvrRepository(listing.engine)
    for score in (2, 4):
        await answer_survey(ivr, surveyed, score, call_ref=f"survey-{score}")
    status, body = await listing.get("carol", "/api/interactions?per_page=50")
    assert status == 200
    scores = {i["id"]: i["survey_score"] for i in body["interactions"]}
    assert scores[surveyed] == 4
    assert all(score is None for iid, score in scores.items() if iid != surveyed)
