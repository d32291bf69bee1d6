"""Every role against every client event of ``/desk``, over real sockets.

Roles: agent A (who owns the subject: A's state, A's wrap-up, the offer made
to A, A's room), agent B, a supervisor, and an admin (the API token). A
connection without a valid token (none, forged, another key's, revoked) is
refused at the connect and can send no event at all: tests/desk/test_connect.py.

``EVENT_MATRIX`` is written by hand, independently of the policy the runtime
enforces (``agent_desk.authorization.POLICY``); a client event without a row (a new one in
``agent_desk.schemas.CLIENT_EVENTS`` or a new ``_do_`` handler) fails
``test_every_client_event_is_in_the_matrix``.

For each event and each role, on a fresh subject of A's: a refused role gets
``forbidden``, the refusal is in the audit log, and the subject is as it was;
an allowed role gets the service's answer, the change is made, and a change is
audited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from agent_desk.namespace import DeskNamespace
from agent_desk.schemas import CLIENT_EVENTS
from sim.pbx.server import PbxSimulator
from tests.desk.conftest import TOKEN, DeskClient, DeskStack, open_desk
from tests.integration.conftest import QUEUE

ROLES = ("agent A", "agent B", "supervisor", "admin")
OWNER_AND_SUPERVISORS = frozenset({"agent A", "supervisor", "admin"})
EVENT_MATRIX: dict[str, frozenset[str]] = {
    "set_state": OWNER_AND_SUPERVISORS,
    "end_wrap_up": OWNER_AND_SUPERVISORS,
    "accept": OWNER_AND_SUPERVISORS,
    "reject": OWNER_AND_SUPERVISORS,
    # A's room is A's alone: supervisors follow agents in ``supervisors``.
    "resync": frozenset({"agent A"}),
    "search_customers": frozenset(ROLES),
}
# The audit action of each event (None: never refused). A change is audited
# when allowed and when refused; a read (READS) only when refused.
ACTION = {
    "set_state": "agents.state",
    "end_wrap_up": "agents.state",
    "accept": "reservations.accept",
    "reject": "reservations.reject",
    "resync": "desk.resync",
    "search_customers": None,
}
READS = frozenset({"resync", "search_customers"})
ADA = "+15550100001"


def test_every_client_event_is_in_the_matrix() -> None:
    handlers = {name[len("_do_") :] for name in dir(DeskNamespace) if name.startswith("_do_")}
    assert set(CLIENT_EVENTS) == set(EVENT_MATRIX) == handlers == set(ACTION)


@dataclass
class Matrix:
    desk: DeskStack
    clients: dict[str, DeskClient]
    calls: int = 0

    @property
    def a(self) -> str:
        return self.desk.alice

    def state(self) -> str:
        assert self.desk.runtime.routing is not None
        return self.desk.runtime.routing.router.agent(self.a).state.value

    def reservation_state(self, rid: str) -> str:
        assert self.desk.runtime.routing is not None
        return self.desk.runtime.routing.router.reservation(rid).state.value

    async def set_a(self, state: str) -> None:
        assert self.desk.runtime.routing is not None
        await self.desk.runtime.routing.set_agent_state(self.a, state, None)

    async def offer_to_a(self) -> tuple[str, str]:
        """A new call offered to A (B stays offline): its reservation id and
        the customer's channel."""
        await self.set_a("available")
        alice = self.clients["agent A"]
        mark = len(alice.envelopes)
        self.calls += 1
        channel = await self.desk.sim.inbound_call(f"+1555020{self.calls:04d}", "Caller")
        offer = await alice.next_event("offer", after=mark)
        return str(offer["data"]["reservation_id"]), channel.name

    async def hang_up(self, channel: str) -> None:
        """The customer hangs up; A's wrap-up (if any) is ended."""
        if self.desk.sim.pbx.find(channel) is not None:
            await self.desk.sim.customer_hangup(channel)
        alice = self.clients["agent A"]
        await alice.wait(lambda: not any(c.name == channel for c in self.desk.sim.channels()))
        await alice.wait(lambda: self.state() != "busy")
        if self.state() == "wrap_up":
            assert self.desk.runtime.routing is not None
            await self.desk.runtime.routing.end_wrap_up(self.a)

    async def a_in_wrap_up(self) -> str:
        """A takes a call and the caller hangs up: A is in wrap-up."""
        rid, channel = await self.offer_to_a()
        assert self.desk.runtime.routing is not None
        await self.desk.runtime.routing.accept(rid)
        await self.clients["agent A"].wait(lambda: self.state() == "busy")
        await self.desk.sim.customer_hangup(channel)
        await self.clients["agent A"].wait(lambda: self.state() == "wrap_up")
        return channel

    async def audited(self, role: str, outcome: str) -> list[tuple[str, str | None]]:
        actor = self.clients[role].hello["principal"]["id"]
        rows = await self.desk.runtime.audit.query(actor=actor, outcome=outcome, limit=500)
        return [(r.action, r.subject) for r in rows]


@pytest.fixture
async def matrix(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[Matrix]:
    """The desk stack with a wrap-up that lasts (ended by hand here), and one
    connection per role."""
    data = tmp_path / "data"
    queue = replace(QUEUE, wrap_up_seconds=600.0)
    url = f"sqlite+aiosqlite:///{data / 'callwright.db'}"
    async with open_desk(sim, data, url, queue=queue) as desk:
        admin = desk.client()
        await admin.connect({"token": TOKEN})
        await admin.wait(lambda: admin.hellos)
        clients = {
            "agent A": await desk.connect("alice"),
            "agent B": await desk.connect("bob"),
            "supervisor": await desk.connect("sue"),
            "admin": admin,
        }
        yield Matrix(desk, clients)


# Each case: make a fresh subject of A's, send the event as ``role``, and
# check the subject: (payload, check_unchanged, check_changed, clean_up).
Case = tuple[
    dict[str, Any],
    Callable[[], Awaitable[None]],
    Callable[[dict[str, Any]], Awaitable[None]],
    Callable[[], Awaitable[None]],
]


async def case(m: Matrix, event: str) -> Case:
    a = m.a

    async def nothing() -> None:
        return None

    if event == "set_state":
        await m.set_a("available")

        async def unchanged() -> None:
            assert m.state() == "available"

        async def changed(ack: dict[str, Any]) -> None:
            assert ack["agent"]["agent_id"] == a and ack["agent"]["state"] == "break", ack
            assert m.state() == "break"

        payload = {"state": "break", "reason": "matrix", "agent_id": a}
        return payload, unchanged, changed, nothing

    if event == "end_wrap_up":
        channel = await m.a_in_wrap_up()

        async def unchanged() -> None:
            assert m.state() == "wrap_up"

        async def changed(ack: dict[str, Any]) -> None:
            assert ack["agent"]["agent_id"] == a, ack
            assert m.state() == "available"

        async def clean_up() -> None:
            await m.hang_up(channel)

        return {"agent_id": a}, unchanged, changed, clean_up

    if event in ("accept", "reject"):
        rid, channel = await m.offer_to_a()
        done = "accepted" if event == "accept" else "rejected"

        async def unchanged() -> None:
            assert m.reservation_state(rid) == "pending"

        async def changed(ack: dict[str, Any]) -> None:
            assert ack["reservation"]["id"] == rid and ack["reservation"]["state"] == done, ack
            assert m.reservation_state(rid) == done

        async def clean_up() -> None:
            await m.hang_up(channel)

        return {"reservation_id": rid}, unchanged, changed, clean_up

    if event == "resync":
        room = f"agent:{a}"
        await m.set_a("available")  # one more envelope in A's room
        seq = m.clients["agent A"].last_seqs()[room]

        async def changed(ack: dict[str, Any]) -> None:
            notifier = m.desk.runtime.desk.notifier
            assert notifier is not None
            assert ack["rooms"] == {room: notifier.rooms.seq(room)}
            assert ack["missed"], ack
            assert [e["room"] for e in ack["missed"]] == [room] * len(ack["missed"])

        return {"rooms": {room: max(seq - 1, 0)}}, nothing, changed, nothing

    assert event == "search_customers"
    if not await m.desk.runtime.customers.search("lovelace"):
        await m.desk.runtime.customers.create("Ada Lovelace", phones=[ADA])

    async def found(ack: dict[str, Any]) -> None:
        assert [c["name"] for c in ack["customers"]] == ["Ada Lovelace"], ack

    return {"text": "lovelace"}, nothing, found, nothing


@pytest.mark.parametrize("event", sorted(EVENT_MATRIX))
async def test_each_role_gets_what_the_matrix_says(matrix: Matrix, event: str) -> None:
    action = ACTION[event]
    for role in ROLES:
        payload, unchanged, changed, clean_up = await case(matrix, event)
        before = await matrix.audited(role, "allowed")
        ack = await matrix.clients[role].call(event, payload)
        if role in EVENT_MATRIX[event]:
            assert ack["ok"] is True, (role, ack)
            await changed(ack)
            if event not in READS:
                after = await matrix.audited(role, "allowed")
                assert len(after) == len(before) + 1, (role, after)
                assert after[0] == (action, matrix.a), (role, after)
        else:
            assert ack["ok"] is False and ack["error"] == "forbidden", (role, ack)
            await unchanged()
            assert action is not None, "a read every role may do cannot be refused"
            denied = await matrix.audited(role, "denied")
            subject = f"agent:{matrix.a}" if event == "resync" else matrix.a
            assert (action, subject) in denied, (role, denied)
        await clean_up()
