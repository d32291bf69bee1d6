"""Every role against every REST route, over the real stack.

Roles: no token, a garbage token, a token signed with another key, an expired
token, a revoked token (agent A's, from before A's sessions were revoked),
agent A (who owns the subject: A's call, task, offer, e-mail), agent B, a
supervisor, an admin, and the API token (the service principal).

The routes are read from the application's router: a route without a row in
``MATRIX`` (and so without a decision written down here) fails
``test_every_api_route_is_in_the_matrix_and_the_policy``. ``MATRIX`` is written
by hand, independently of ``agent_desk.authorization.POLICY``.

For each route: everyone refused answers 401 or 403 on a subject of A's, the
refusals that matter are in the audit log (forbidden attempts, and
state-changing requests with a token that is forged, expired or revoked; not
anonymous noise), and nothing changed (calls, routing, accounts, mail). Then
each allowed principal acts on a fresh subject of A's and gets the service's
own answer, audited when the request changes state.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from agent_desk.auth import Sessions
from agent_desk.authorization import POLICY, ROUTE_ACTIONS
from callwright.config import EmailConfig, OutboundMailConfig, RecordingsConfig, RoutingConfig
from callwright.runtime import Runtime
from crm.mail.persistence import email_messages
from routing import model
from routing.model import QueueConfig
from routing.persistence import Agent, AgentRepository, agents
from sim.pbx.server import PbxSimulator
from store import make_engine
from store.migrate import upgrade
from tests.integration.conftest import SIGNING_KEY, TOKEN, Recorder, make_config
from tests.integration.test_email_routing import Sink, customer_mail, send, sink  # noqa: F401

QUEUE = QueueConfig(
    id="support",
    target='"support" in agent.skills',
    reservation_timeout_seconds=60.0,
    wrap_up_seconds=0.0,
)
CAPACITY = {"voice": 1, "callback": 1, "chat": 10, "email": 10}

UNAUTHENTICATED = ("anonymous", "garbage", "forged", "expired", "revoked")
AUTHENTICATED = ("owner", "other", "supervisor", "admin", "service")
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Expect:
    """Who passes authorization on a subject of agent A's."""

    owner: bool
    other: bool
    supervisor: bool
    admin: bool = True

    def allows(self, role: str) -> bool:
        if role == "service":
            return self.admin
        return bool(getattr(self, role))


EVERYONE = Expect(owner=True, other=True, supervisor=True)
OWN = Expect(owner=True, other=False, supervisor=True)
SUPERVISORS = Expect(owner=False, other=False, supervisor=True)
ADMINS = Expect(owner=False, other=False, supervisor=False)

MATRIX: dict[tuple[str, str], Expect | None] = {
    # None: public (login)
    ("POST", "/api/login"): None,
    ("POST", "/api/logout"): EVERYONE,
    ("GET", "/api/session"): EVERYONE,
    ("POST", "/api/account/password"): EVERYONE,
    ("POST", "/api/agents/{agent_id}/password"): ADMINS,
    ("POST", "/api/agents/{agent_id}/active"): ADMINS,
    ("GET", "/api/audit"): SUPERVISORS,
    ("GET", "/api/calls"): EVERYONE,  # an agent: only the calls they are on
    ("POST", "/api/calls"): OWN,  # from A's own device
    ("GET", "/api/calls/{call_id}"): OWN,
    ("POST", "/api/calls/{call_id}/hangup"): OWN,
    ("POST", "/api/calls/{call_id}/transfer"): OWN,
    ("POST", "/api/calls/{call_id}/transfer/complete"): OWN,
    ("POST", "/api/calls/{call_id}/transfer/cancel"): OWN,
    ("POST", "/api/calls/{call_id}/hold"): OWN,
    ("POST", "/api/calls/{call_id}/unhold"): OWN,
    ("POST", "/api/calls/{call_id}/spy"): SUPERVISORS,  # listen, whisper, barge
    ("POST", "/api/calls/{call_id}/spy/stop"): SUPERVISORS,
    ("GET", "/api/spies"): SUPERVISORS,
    ("GET", "/api/calls/{call_id}/recording"): OWN,
    ("POST", "/api/calls/{call_id}/recording/pause"): OWN,
    ("POST", "/api/calls/{call_id}/recording/resume"): OWN,
    ("POST", "/api/tasks"): SUPERVISORS,
    ("GET", "/api/tasks/{task_id}"): OWN,
    ("POST", "/api/tasks/{task_id}/complete"): OWN,
    ("GET", "/api/queues"): EVERYONE,
    ("GET", "/api/reports/queues"): SUPERVISORS,
    ("GET", "/api/reports/agents"): SUPERVISORS,
    ("GET", "/api/reports/surveys"): SUPERVISORS,
    ("GET", "/api/reports/queues/intervals"): SUPERVISORS,
    ("GET", "/api/agents/{agent_id}"): OWN,
    ("POST", "/api/agents/{agent_id}/state"): OWN,
    ("POST", "/api/agents/{agent_id}/wrap-up/end"): OWN,
    ("POST", "/api/reservations/{reservation_id}/accept"): OWN,
    ("POST", "/api/reservations/{reservation_id}/reject"): OWN,
    ("GET", "/api/interactions/{interaction_id}/emails"): OWN,
    ("POST", "/api/interactions/{interaction_id}/reply"): OWN,
    ("POST", "/api/interactions/{interaction_id}/disposition"): OWN,
    ("POST", "/api/interactions/{interaction_id}/customer"): OWN,
    ("GET", "/api/customers/{customer_id}"): EVERYONE,
    ("GET", "/api/interactions"): SUPERVISORS,
    # The agent who handled a call plays or lists it only with [recordings]
    # agent_may_play (off here: tests/recordings/test_playback.py covers it on).
    ("GET", "/api/recordings"): SUPERVISORS,
    ("GET", "/api/recordings/{recording_id}/playback"): SUPERVISORS,
    ("GET", "/api/recordings/access"): EVERYONE,
    # GDPR erasure: admins only; legal holds: supervisors.
    ("POST", "/api/customers/{customer_id}/erase"): ADMINS,
    ("GET", "/api/legal-holds"): SUPERVISORS,
    ("POST", "/api/legal-holds"): SUPERVISORS,
    ("POST", "/api/legal-holds/{hold_id}/release"): SUPERVISORS,
}


# -- the world: the full stack, five accounts, tokens for every role ----------


@dataclass
class World:
    runtime: Runtime
    recorder: Recorder
    sink: Sink
    http: aiohttp.ClientSession
    accounts: dict[str, Agent]
    tokens: dict[str, str | None] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    keys: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return self.runtime.url

    @property
    def a(self) -> Agent:
        return self.accounts["owner"]

    def principal_id(self, role: str) -> str:
        return "api-token" if role == "service" else str(self.accounts[role].id)

    async def request(
        self, role: str, method: str, path: str, body: Any = None
    ) -> tuple[int, dict[str, Any]]:
        token = self.tokens[role]
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with self.http.request(
            method, self.url + path, json=body, headers=headers
        ) as response:
            data = await response.json()
            assert isinstance(data, dict), data
            return response.status, data

    def key(self) -> str:
        return f"k-{next(self.keys)}"

    async def wait(self, predicate: Callable[[], bool], what: str) -> None:
        async def poll() -> None:
            while not predicate():
                await asyncio.sleep(0.01)

        try:
            await asyncio.wait_for(poll(), 10)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    # subjects owned by agent A ------------------------------------------------

    async def own_call(self) -> str:
        """A call from A's device (PJSIP/1001), answered and bridged."""
        calls = self.runtime.calls
        known = {c.id for c in calls.calls()}
        await calls.originate(self.a.extension, "5550100002", idempotency_key=self.key())

        def bridged() -> bool:
            return any(c.id not in known and c.bridged for c in calls.calls())

        await self.wait(bridged, "A's call to be bridged")
        (call,) = [c for c in calls.calls() if c.id not in known and c.bridged]
        assert any(ch.device == f"PJSIP/{self.a.extension}" for ch in call.channels)
        return call.id

    async def offer_to_a(self, channel: str = "chat") -> model.ReservationOffered:
        routing = self.runtime.routing
        assert routing is not None
        task = model.TaskSpec(id=f"t-{self.key()}", queue_id="support", channel=channel)
        await routing.submit(task)
        event = await self.recorder.wait_for(
            lambda e: (
                isinstance(e, model.ReservationOffered)
                and e.task_id == task.id
                and e.agent_id == str(self.a.id)
            )
        )
        assert isinstance(event, model.ReservationOffered)
        return event

    async def own_task(self) -> str:
        offer = await self.offer_to_a()
        routing = self.runtime.routing
        assert routing is not None
        await routing.accept(offer.reservation_id)
        return offer.task_id

    async def own_recording(self) -> str:
        """A stored recording (a real WAV file) of a call A handled."""
        from tests.recordings.test_playback import store_recording, wav_bytes

        runtime = self.runtime
        interaction = await runtime.interactions.create(
            channel="voice",
            direction="inbound",
            started_at=datetime.now(UTC),
            agent_id=self.a.id,
            queue="support",
        )
        rec = await store_recording(
            runtime.recordings,
            runtime.recording_storage,
            runtime.config.recordings.spool_dir,
            interaction_id=interaction.id,
            agent_id=self.a.id,
            customer_id=None,
            data=wav_bytes(0.2),
        )
        return rec.id

    async def own_email(self) -> int:
        """An e-mail interaction whose task is assigned to A."""
        listener = self.runtime.mail_listener
        assert listener is not None
        number = next(self.keys)
        await send(
            listener.port,
            customer_mail(f"Question {number}", "Hello?", message_id=f"<q{number}@example.com>"),
        )
        offer = await self.recorder.wait_for(
            lambda e: (
                isinstance(e, model.ReservationOffered)
                and e.channel == "email"
                and e.task_id not in self.used
            )
        )
        assert isinstance(offer, model.ReservationOffered)
        self.used.add(offer.task_id)
        routing = self.runtime.routing
        assert routing is not None
        await routing.accept(offer.reservation_id)
        link = await routing.journal.task(offer.task_id)
        assert link is not None and link.interaction_id is not None
        return link.interaction_id

    # what must not change when a request is refused --------------------------

    async def snapshot(self) -> dict[str, Any]:
        routing = self.runtime.routing
        assert routing is not None
        router = routing.router
        tasks = sorted(
            (t, router.task(t).state.value, router.task(t).agent_id) for t in router.task_ids()
        )
        agent_states = sorted(
            (str(a.id), router.agent(str(a.id)).state.value, router.agent(str(a.id)).reason)
            for a in self.accounts.values()
        )
        calls = sorted(
            (
                c.id,
                c.state.value,
                c.held,
                c.bridged,
                c.transferred_to,
                tuple(ch.name for ch in c.channels),
            )
            for c in self.runtime.calls.calls()
        )
        async with self.runtime.engine.connect() as conn:
            accounts = sorted(
                (r.id, r.active, r.role, r.token_version, r.password_hash)
                for r in await conn.execute(select(agents))
            )
            mails = (
                await conn.execute(select(func.count()).select_from(email_messages))
            ).scalar_one()
        return {
            "tasks": tasks,
            "agents": agent_states,
            "calls": calls,
            "accounts": accounts,
            "mails": mails,
            "sent": len(self.sink.messages),
        }


async def _seed(url: str) -> dict[str, Agent]:
    await upgrade(url)
    engine = make_engine(url)
    repo = AgentRepository(engine)
    accounts = {}
    for role, (username, ext, account_role) in {
        "owner": ("alice", "1001", "agent"),
        "other": ("bob", "1002", "agent"),
        "supervisor": ("carol", "1003", "supervisor"),
        "admin": ("dave", "1004", "admin"),
    }.items():
        accounts[role] = await repo.create(
            username,
            username.title(),
            ext,
            role=account_role,
            skills={"support": 5} if role == "owner" else {},
            capacity=CAPACITY,
        )
    await engine.dispose()
    return accounts


@pytest.fixture
async def world(
    sim: PbxSimulator,
    sink: tuple[Sink, int],  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[World]:
    data = tmp_path / "data"
    accounts = await _seed(f"sqlite+aiosqlite:///{data / 'callwright.db'}")
    config = make_config(sim.port, data)
    config = replace(
        config,
        routing=RoutingConfig(queues=(QUEUE,), voice_queue="support", email_queue="support"),
        email=EmailConfig(
            enabled=True,
            listen_port=0,
            outbound=OutboundMailConfig(
                host="127.0.0.1", port=sink[1], from_address="help@support.example"
            ),
        ),
        recordings=RecordingsConfig(dir=data / "recordings", spool_dir=data / "spool"),
    )
    runtime = Runtime(config)
    await runtime.start()
    await runtime.link.wait_ready(10)
    recorder = Recorder()
    assert runtime.routing is not None
    runtime.routing.subscribe(recorder)
    http = aiohttp.ClientSession()
    w = World(runtime, recorder, sink[0], http, accounts)

    # Tokens as the server mints them (login itself is tested on its own).
    auth = runtime.auth
    revoked = auth.issue(accounts["owner"])[0]
    accounts["owner"] = await runtime.agents.revoke_sessions(accounts["owner"].id)
    ttl = config.api.session_seconds
    past = Sessions(SIGNING_KEY, max_age=ttl, clock=lambda: time.time() - 2 * ttl)
    other_key = Sessions("another-signing-key-0123456789abcdef", max_age=ttl)
    w.tokens = {
        "anonymous": None,
        "garbage": "not-a-token",
        "forged": other_key.issue(accounts["owner"])[0],
        "expired": past.issue(accounts["owner"])[0],
        "revoked": revoked,
        "service": TOKEN,
        **{role: auth.issue(agent)[0] for role, agent in accounts.items()},
    }
    # Only A takes work: every offer is A's.
    await runtime.routing.set_agent_state(str(accounts["owner"].id), "available")
    try:
        yield w
    finally:
        await http.close()
        await runtime.stop()


# -- the scenarios: a request on a subject of A's, and the allowed answer ------

Make = Callable[[World], Awaitable[tuple[str, Any]]]


@dataclass(frozen=True)
class Scenario:
    make: Make  # -> (path, body), on a fresh subject of A's
    ok: int  # the status an allowed principal gets
    ok_error: str | None = None  # ... and the error code, when the service refuses
    service_ok: tuple[int, str | None] | None = None  # the API token's answer, if different
    fresh: bool = True  # a new subject for each allowed principal


def fixed(path: str, body: Any = None) -> Make:
    async def make(w: World) -> tuple[str, Any]:
        return path.format(a=w.a.id), body

    return make


def on_call(suffix: str, body: Callable[[World], Any] = lambda w: None) -> Make:
    async def make(w: World) -> tuple[str, Any]:
        return f"/api/calls/{await w.own_call()}{suffix}", body(w)

    return make


def on_task(suffix: str) -> Make:
    async def make(w: World) -> tuple[str, Any]:
        return f"/api/tasks/{await w.own_task()}{suffix}", None

    return make


def on_offer(verb: str) -> Make:
    async def make(w: World) -> tuple[str, Any]:
        return f"/api/reservations/{(await w.offer_to_a()).reservation_id}/{verb}", None

    return make


def on_email(suffix: str, body: Any = None) -> Make:
    async def make(w: World) -> tuple[str, Any]:
        return f"/api/interactions/{await w.own_email()}{suffix}", body

    return make


def on_recording(suffix: str) -> Make:
    async def make(w: World) -> tuple[str, Any]:
        return f"/api/recordings/{await w.own_recording()}{suffix}", None

    return make


async def originate(w: World) -> tuple[str, Any]:
    return "/api/calls", {
        "agent_device": w.a.extension,
        "number": "5550100003",
        "idempotency_key": w.key(),
    }


async def a_customer(w: World) -> tuple[str, Any]:
    customer = await w.runtime.customers.create(f"Customer {w.key()}", phones=["+15550100077"])
    return f"/api/customers/{customer.id}", None


async def erase_customer(w: World) -> tuple[str, Any]:
    customer = await w.runtime.customers.create(f"Erasable {w.key()}", phones=["+15550100078"])
    return f"/api/customers/{customer.id}/erase", None


async def hold_customer(w: World) -> tuple[str, Any]:
    customer = await w.runtime.customers.create(f"Held {w.key()}")
    return "/api/legal-holds", {"customer_id": customer.id, "reason": "matrix"}


async def release_hold(w: World) -> tuple[str, Any]:
    customer = await w.runtime.customers.create(f"Released {w.key()}")
    hold = await w.runtime.recordings.add_hold(reason="matrix", customer_id=customer.id)
    return f"/api/legal-holds/{hold.id}/release", None


async def set_state(w: World) -> tuple[str, Any]:
    """Break, available, break...: each request is a change."""
    body = {"state": "break", "reason": "lunch"} if next(w.keys) % 2 else {"state": "available"}
    return f"/api/agents/{w.a.id}/state", body


SCENARIOS: dict[tuple[str, str], Scenario] = {
    ("POST", "/api/logout"): Scenario(
        fixed("/api/logout"), 200, service_ok=(400, "invalid_request"), fresh=False
    ),
    ("GET", "/api/session"): Scenario(fixed("/api/session"), 200, fresh=False),
    ("POST", "/api/account/password"): Scenario(
        fixed(
            "/api/account/password",
            {"current_password": "not-the-password", "new_password": "a-new-long-password"},
        ),
        400,
        "wrong_password",
        service_ok=(400, "invalid_request"),
        fresh=False,
    ),
    ("POST", "/api/agents/{agent_id}/password"): Scenario(
        fixed("/api/agents/{a}/password", {"password": "set-by-an-admin-1"}), 200, fresh=False
    ),
    ("POST", "/api/agents/{agent_id}/active"): Scenario(
        fixed("/api/agents/{a}/active", {"active": False}), 200, fresh=False
    ),
    ("GET", "/api/audit"): Scenario(fixed("/api/audit"), 200, fresh=False),
    ("GET", "/api/calls"): Scenario(fixed("/api/calls"), 200, fresh=False),
    ("POST", "/api/calls"): Scenario(originate, 202),
    ("GET", "/api/calls/{call_id}"): Scenario(on_call(""), 200, fresh=False),
    ("POST", "/api/calls/{call_id}/hangup"): Scenario(on_call("/hangup"), 202),
    ("POST", "/api/calls/{call_id}/transfer"): Scenario(
        on_call("/transfer", lambda w: {"target": "1003", "idempotency_key": w.key()}), 202
    ),
    # No attended transfer under way: the PBX is asked anyway (202).
    ("POST", "/api/calls/{call_id}/transfer/complete"): Scenario(
        on_call("/transfer/complete"), 202
    ),
    ("POST", "/api/calls/{call_id}/transfer/cancel"): Scenario(on_call("/transfer/cancel"), 202),
    ("POST", "/api/calls/{call_id}/hold"): Scenario(
        on_call("/hold", lambda w: {"hold": True}), 202
    ),
    ("POST", "/api/calls/{call_id}/unhold"): Scenario(on_call("/unhold"), 202),
    # From the supervisor's phone (1003) for everyone: the API token has none.
    ("POST", "/api/calls/{call_id}/spy"): Scenario(
        on_call("/spy", lambda w: {"mode": "listen", "device": "1003", "idempotency_key": w.key()}),
        202,
    ),
    ("POST", "/api/calls/{call_id}/spy/stop"): Scenario(
        on_call("/spy/stop", lambda w: {"device": "1003"}), 409, "wrong_state", fresh=False
    ),
    ("GET", "/api/spies"): Scenario(fixed("/api/spies"), 200, fresh=False),
    # A's call (click-to-dial, not routed) is not recorded: the state says so and
    # a pause or resume is refused by the service, after authorization.
    ("GET", "/api/calls/{call_id}/recording"): Scenario(on_call("/recording"), 200, fresh=False),
    ("POST", "/api/calls/{call_id}/recording/pause"): Scenario(
        on_call("/recording/pause"), 409, "not_recording", fresh=False
    ),
    ("POST", "/api/calls/{call_id}/recording/resume"): Scenario(
        on_call("/recording/resume"), 409, "not_recording", fresh=False
    ),
    ("POST", "/api/tasks"): Scenario(
        fixed("/api/tasks", {"channel": "callback", "queue": "support"}), 201, fresh=False
    ),
    ("GET", "/api/tasks/{task_id}"): Scenario(on_task(""), 200, fresh=False),
    ("POST", "/api/tasks/{task_id}/complete"): Scenario(on_task("/complete"), 200),
    ("GET", "/api/queues"): Scenario(fixed("/api/queues"), 200, fresh=False),
    ("GET", "/api/reports/queues"): Scenario(fixed("/api/reports/queues"), 200, fresh=False),
    ("GET", "/api/reports/agents"): Scenario(fixed("/api/reports/agents"), 200, fresh=False),
    ("GET", "/api/reports/surveys"): Scenario(fixed("/api/reports/surveys"), 200, fresh=False),
    ("GET", "/api/reports/queues/intervals"): Scenario(
        fixed("/api/reports/queues/intervals"), 200, fresh=False
    ),
    ("GET", "/api/agents/{agent_id}"): Scenario(fixed("/api/agents/{a}"), 200, fresh=False),
    ("POST", "/api/agents/{agent_id}/state"): Scenario(set_state, 200),
    ("POST", "/api/agents/{agent_id}/wrap-up/end"): Scenario(
        fixed("/api/agents/{a}/wrap-up/end"), 409, "invalid_transition", fresh=False
    ),
    ("POST", "/api/reservations/{reservation_id}/accept"): Scenario(on_offer("accept"), 200),
    ("POST", "/api/reservations/{reservation_id}/reject"): Scenario(on_offer("reject"), 200),
    ("GET", "/api/interactions/{interaction_id}/emails"): Scenario(
        on_email("/emails"), 200, fresh=False
    ),
    ("POST", "/api/interactions/{interaction_id}/reply"): Scenario(
        on_email("/reply", {"text": "Thanks, sorted.", "complete": False}), 201
    ),
    ("POST", "/api/interactions/{interaction_id}/disposition"): Scenario(
        on_email("/disposition", {"disposition": "resolved", "notes": "Answered."}), 200
    ),
    ("POST", "/api/interactions/{interaction_id}/customer"): Scenario(
        on_email("/customer", {"name": "Grace Hopper", "phone": "+15550100042"}), 201
    ),
    ("GET", "/api/customers/{customer_id}"): Scenario(a_customer, 200, fresh=False),
    ("GET", "/api/interactions"): Scenario(fixed("/api/interactions"), 200, fresh=False),
    ("GET", "/api/recordings"): Scenario(fixed("/api/recordings"), 200, fresh=False),
    ("GET", "/api/recordings/{recording_id}/playback"): Scenario(
        on_recording("/playback"), 200, fresh=False
    ),
    ("GET", "/api/recordings/access"): Scenario(fixed("/api/recordings/access"), 200, fresh=False),
    ("POST", "/api/customers/{customer_id}/erase"): Scenario(erase_customer, 200),
    ("GET", "/api/legal-holds"): Scenario(fixed("/api/legal-holds"), 200, fresh=False),
    ("POST", "/api/legal-holds"): Scenario(hold_customer, 201),
    ("POST", "/api/legal-holds/{hold_id}/release"): Scenario(release_hold, 200),
}


def _api_routes(runtime: Runtime) -> set[tuple[str, str]]:
    routes = set()
    for route in runtime.app.router.routes():
        resource = route.resource
        if resource is None or not resource.canonical.startswith("/api/"):
            continue
        if route.method != "HEAD":
            routes.add((route.method, resource.canonical))
    return routes


async def test_every_api_route_is_in_the_matrix_and_the_policy(world: World) -> None:
    routes = _api_routes(world.runtime)

    assert routes - set(MATRIX) == set(), "routes without a row in MATRIX"
    assert set(MATRIX) - routes == set(), "MATRIX rows for routes that no longer exist"
    assert routes - set(ROUTE_ACTIONS) == set(), "routes without a policy action"
    assert {ROUTE_ACTIONS[r] for r in routes} <= set(POLICY), "actions without a rule"
    assert set(SCENARIOS) == {r for r, expect in MATRIX.items() if expect is not None}


async def _audited_since(w: World, last_id: int) -> list[Any]:
    return [e for e in await w.runtime.audit.query(limit=500) if e.id > last_id][::-1]


async def _last_audit_id(w: World) -> int:
    events = await w.runtime.audit.query(limit=1)
    return events[0].id if events else 0


@pytest.mark.parametrize("route", sorted(SCENARIOS), ids=lambda r: f"{r[0]} {r[1]}")
async def test_each_role_gets_what_the_matrix_says(world: World, route: tuple[str, str]) -> None:
    method, _ = route
    expect = MATRIX[route]
    assert expect is not None
    scenario = SCENARIOS[route]
    action = ROUTE_ACTIONS[route]
    mutating = method in MUTATING
    path, body = await scenario.make(world)
    before = await world.snapshot()
    mark = await _last_audit_id(world)

    # Refused: nobody without a valid token, and every role the matrix keeps out.
    refused = list(UNAUTHENTICATED) + [r for r in AUTHENTICATED if not expect.allows(r)]
    for role in refused:
        status, answer = await world.request(role, method, path, body)
        audited = await _audited_since(world, mark)
        mark = audited[-1].id if audited else mark
        if role in UNAUTHENTICATED:
            assert (status, answer["error"]) == (401, "unauthenticated"), (role, answer)
            if role == "anonymous" or not mutating:
                assert audited == [], (role, audited)
            else:
                (row,) = audited
                assert (row.action, row.outcome) == (action, "denied"), role
                assert (
                    row.detail["token"]
                    == {
                        "garbage": "invalid",
                        "forged": "invalid",
                        "expired": "expired",
                        "revoked": "revoked",
                    }[role]
                )
                claimed = None if role in ("garbage", "forged") else str(world.a.id)
                assert row.actor_id == claimed
        else:
            assert (status, answer["error"]) == (403, "forbidden"), (role, answer)
            assert answer["action"] == action
            (row,) = audited
            assert (row.action, row.outcome) == (action, "denied"), role
            assert row.actor_id == world.principal_id(role)
            assert row.client_ip == "127.0.0.1"
    assert await world.snapshot() == before, "a refused request changed something"

    # Allowed: each on a fresh subject of A's; the service's own answer.
    first = True
    for role in [r for r in AUTHENTICATED if expect.allows(r)]:
        if scenario.fresh and not first:
            path, body = await scenario.make(world)
        first = False
        mark = await _last_audit_id(world)
        status, answer = await world.request(role, method, path, body)
        want = (scenario.ok, scenario.ok_error)
        if role == "service" and scenario.service_ok is not None:
            want = scenario.service_ok
        assert (status, answer.get("error")) == want, (role, answer)
        audited = [e for e in await _audited_since(world, mark) if e.action == action]
        if mutating:
            (row,) = audited
            assert row.outcome == ("allowed" if status < 400 else "failed"), role
            assert row.actor_id == world.principal_id(role)
        else:
            assert audited == []
