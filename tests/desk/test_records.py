"""The desk's REST routes on the customer record, over the real stack: the
wrap-up (disposition and notes saved on the interaction), an unknown caller
created as a customer or linked to one (the pop refreshed on the desk), the
customer record with its history and open e-mails, and what each refuses.
On SQLite and on PostgreSQL."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest

from crm.mail.parse import parse_email
from tests.desk.conftest import DeskClient, DeskStack

UNKNOWN = "+15550199001"


@pytest.fixture
def desk(desk_on_each_store: DeskStack) -> DeskStack:
    return desk_on_each_store


ADA = "+15550100001"


async def request(
    desk: DeskStack, user: str, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {desk.tokens[user]}"}
    async with aiohttp.ClientSession() as http:
        async with http.request(
            method, desk.runtime.url + path, json=body, headers=headers
        ) as resp:
            return resp.status, await resp.json()


async def answered(desk: DeskStack, client: DeskClient, caller: str) -> dict[str, Any]:
    """A call from ``caller`` offered to the client's agent and accepted: the
    task as the desk got it (with its pop)."""
    ack = await client.call("set_state", {"state": "available"})
    assert ack["ok"], ack
    mark = len(client.envelopes)
    await desk.sim.inbound_call(caller, "Caller")
    offer = (await client.next_event("offer", after=mark))["data"]
    ack = await client.call("accept", {"reservation_id": offer["reservation_id"]})
    assert ack["ok"], ack
    task = await client.next_event(
        "task",
        lambda d: d["change"] == "assigned" and d["task_id"] == offer["task_id"],
        room=f"agent:{client.hello['principal']['id']}",
        after=mark,
    )
    data: dict[str, Any] = task["data"]
    return data


async def audited(desk: DeskStack, action: str) -> list[Any]:
    return [e for e in await desk.runtime.audit.query(limit=200) if e.action == action]


async def test_the_hello_names_the_configured_dispositions_and_queues(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    settings = alice.hello["settings"]
    assert settings["dispositions"] == [
        "resolved",
        "follow_up",
        "escalated",
        "no_answer",
        "wrong_number",
    ]
    assert settings["notes_max_chars"] == 2000
    assert settings["queues"] == [{"id": "support", "name": "support"}]


async def test_the_wrap_up_is_saved_on_the_interaction_and_shows_in_the_history(
    desk: DeskStack,
) -> None:
    ada = await desk.runtime.customers.create("Ada Lovelace", phones=[ADA])
    alice = await desk.connect("alice")
    task = await answered(desk, alice, ADA)
    interaction_id = task["pop"]["interaction_id"]
    path = f"/api/interactions/{interaction_id}/disposition"

    # Refused, and nothing saved: bad input names the field; Bob is not on it.
    for body, message in (
        ({"disposition": "sold_a_boat"}, "disposition: expected one of resolved, follow_up"),
        ({"notes": "no code"}, "disposition: expected one of"),
        ({"disposition": "resolved", "notes": "x" * 2001}, "notes: at most 2000 characters"),
        ({"disposition": "resolved", "notes": 42}, "notes: expected a string"),
        ({"disposition": "resolved", "agent": "me"}, "agent: unknown field"),
    ):
        status, answer = await request(desk, "alice", "POST", path, body)
        assert (status, answer["error"]) == (400, "invalid_request"), answer
        assert answer["message"].startswith(message), answer
    status, answer = await request(desk, "bob", "POST", path, {"disposition": "resolved"})
    assert (status, answer["error"]) == (403, "forbidden")
    stored = await desk.runtime.interactions.get(interaction_id)
    assert stored is not None and stored.disposition is None and stored.notes is None

    # The caller hangs up; Alice wraps up after the task ended: still hers.
    call_id = task["pop"]["call_id"]
    (channel,) = [c for c in desk.sim.channels() if c.name.startswith("PJSIP/trunk-")]
    await desk.sim.customer_hangup(channel.name)
    await alice.next_event("task", lambda d: d["change"] == "completed")
    status, answer = await request(
        desk,
        "alice",
        "POST",
        path,
        {"disposition": "follow_up", "notes": "Call back <b>Friday</b>"},
    )
    assert status == 200, answer
    assert answer["interaction"]["disposition"] == "follow_up"
    assert answer["interaction"]["notes"] == "Call back <b>Friday</b>"
    stored = await desk.runtime.interactions.get(interaction_id)
    assert stored is not None and stored.call_id == call_id
    assert (stored.disposition, stored.notes) == ("follow_up", "Call back <b>Friday</b>")
    (row,) = [e for e in await audited(desk, "interactions.disposition") if e.outcome == "allowed"]
    assert row.actor_id == desk.alice and row.subject == str(interaction_id)
    assert row.detail["disposition"] == "follow_up"
    assert "Friday" not in str(row.detail)  # the notes' text stays out of the log

    # The customer's record (any agent may read it) shows the call with its wrap-up.
    status, record = await request(desk, "bob", "GET", f"/api/customers/{ada.id}")
    assert status == 200, record
    assert record["customer"]["name"] == "Ada Lovelace"
    (latest,) = record["recent_interactions"]
    assert latest["id"] == interaction_id
    assert (latest["disposition"], latest["notes"]) == ("follow_up", "Call back <b>Friday</b>")
    # A supervisor may correct it.
    status, answer = await request(desk, "sue", "POST", path, {"disposition": "resolved"})
    assert status == 200 and answer["interaction"]["notes"] == "Call back <b>Friday</b>"


async def test_an_unknown_caller_becomes_a_new_customer_from_the_pop(desk: DeskStack) -> None:
    alice = await desk.connect("alice")
    task = await answered(desk, alice, UNKNOWN)
    assert task["pop"]["customer"] is None and task["pop"]["caller_number"] == UNKNOWN
    interaction_id = task["pop"]["interaction_id"]
    path = f"/api/interactions/{interaction_id}/customer"

    for body, status, message in (
        ({}, 400, "name: required"),
        ({"name": "   "}, 400, "name: must not be empty"),
        ({"name": "Grace", "phone": "call me"}, 400, "phone: expected a phone number in E.164"),
        ({"name": "Grace", "email": "not-an-address"}, 400, "email: expected an e-mail"),
        ({"name": "Grace", "colour": "blue"}, 400, "colour: unknown field"),
        ({"customer_id": 999999}, 404, "customer_id: no customer 999999"),
        ({"customer_id": "1"}, 400, "customer_id: expected a positive integer"),
        ({"customer_id": 2**70}, 400, "customer_id: expected a positive integer"),
    ):
        got, answer = await request(desk, "alice", "POST", path, body)
        assert (got, answer["message"][: len(message)]) == (status, message), answer
    got, answer = await request(desk, "bob", "POST", path, {"name": "Bob's friend"})
    assert (got, answer["error"]) == (403, "forbidden")
    assert await desk.runtime.customers.find_by_phone(UNKNOWN) is None
    stored = await desk.runtime.interactions.get(interaction_id)
    assert stored is not None and stored.customer_id is None

    mark = len(alice.envelopes)
    got, answer = await request(
        desk, "alice", "POST", path, {"name": "<b>Grace</b> Hopper", "account_number": "GH-1906"}
    )
    assert got == 201, answer
    customer = answer["customer"]
    assert customer["name"] == "<b>Grace</b> Hopper"  # data, kept as typed
    assert customer["phones"] == [UNKNOWN]  # the caller's number, unless another is given
    assert answer["created"] is True and answer["phone_added"] == UNKNOWN
    assert answer["interaction"]["id"] == interaction_id
    assert answer["pop"]["customer"]["id"] == customer["id"]
    stored = await desk.runtime.interactions.get(interaction_id)
    assert stored is not None and stored.customer_id == customer["id"]
    found = await desk.runtime.customers.find_by_phone(UNKNOWN)
    assert found is not None and found.id == customer["id"]
    # The desk hears it: the task's pop now holds the record.
    linked = await alice.next_event("task", lambda d: d["change"] == "customer_linked", after=mark)
    assert linked["data"]["pop"]["customer"]["name"] == "<b>Grace</b> Hopper"
    assert linked["data"]["customer_id"] == str(customer["id"])
    (row,) = [e for e in await audited(desk, "interactions.customer") if e.outcome == "allowed"]
    assert row.detail["created"] is True and row.detail["customer_id"] == customer["id"]
    # A reconnecting desk gets the refreshed pop in its snapshot.
    again = await desk.connect("alice")
    (mine,) = again.hello["snapshot"]["tasks"]
    assert mine["pop"]["customer"]["id"] == customer["id"]


async def test_an_unknown_caller_is_linked_to_an_existing_customer(desk: DeskStack) -> None:
    ada = await desk.runtime.customers.create("Ada Lovelace", phones=[ADA])
    alice = await desk.connect("alice")
    task = await answered(desk, alice, UNKNOWN)  # Ada, calling from another phone
    interaction_id = task["pop"]["interaction_id"]
    mark = len(alice.envelopes)
    got, answer = await request(
        desk,
        "alice",
        "POST",
        f"/api/interactions/{interaction_id}/customer",
        {"customer_id": ada.id},
    )
    assert got == 200, answer
    assert answer["created"] is False and answer["phone_added"] == UNKNOWN
    assert answer["customer"]["phones"] == [ADA, UNKNOWN]
    linked = await alice.next_event("task", lambda d: d["change"] == "customer_linked", after=mark)
    assert linked["data"]["pop"]["customer"]["name"] == "Ada Lovelace"
    # Her next call from that phone pops her record.
    found = await desk.runtime.customers.find_by_phone(UNKNOWN)
    assert found is not None and found.id == ada.id


async def test_the_pop_lists_the_callers_open_emails_and_their_threads_open(
    desk: DeskStack,
) -> None:
    ada = await desk.runtime.customers.create(
        "Ada Lovelace", phones=[ADA], emails=["ada@analytical.example"]
    )
    message = EmailMessage()
    message["From"] = "Ada Lovelace <ada@analytical.example>"
    message["To"] = "help@support.example"
    message["Subject"] = "Invoice <b>42</b>"
    message["Message-ID"] = "<open-1@analytical.example>"
    message.set_content("Still waiting for the invoice.\n")
    raw = bytes(message)
    mail = await desk.runtime.mail_store.store_inbound(parse_email(raw), raw)
    assert mail.customer_id == ada.id

    alice = await desk.connect("alice")
    task = await answered(desk, alice, ADA)
    (thread,) = task["pop"]["open_emails"]
    assert thread["id"] == mail.interaction_id and thread["subject"] == "Invoice <b>42</b>"
    # Alice, on a call with Ada, may open the thread; Bob may not.
    path = f"/api/interactions/{mail.interaction_id}/emails"
    status, body = await request(desk, "alice", "GET", path)
    assert status == 200, body
    assert body["messages"][0]["text"].startswith("Still waiting")
    status, body = await request(desk, "bob", "GET", path)
    assert (status, body["error"]) == (403, "forbidden")
    # The customer record lists it too.
    status, record = await request(desk, "bob", "GET", f"/api/customers/{ada.id}")
    assert status == 200 and [t["id"] for t in record["open_emails"]] == [mail.interaction_id]
    # Answered, it is no longer open.
    answer = EmailMessage()
    answer["From"] = "help@support.example"
    answer["To"] = "ada@analytical.example"
    answer["Subject"] = "Re: Invoice"
    answer["Message-ID"] = "<answer-1@support.example>"
    answer.set_content("Attached.\n")
    reply = await desk.runtime.mail_store.record_outbound(
        mail.interaction_id,
        parse_email(bytes(answer)),
        bytes(answer),
        envelope_from="help@support.example",
        envelope_to=["ada@analytical.example"],
    )
    await desk.runtime.mail_store.mark_sent(reply.id)
    status, record = await request(desk, "bob", "GET", f"/api/customers/{ada.id}")
    assert status == 200 and record["open_emails"] == []


async def test_a_customer_record_that_does_not_exist(desk: DeskStack) -> None:
    status, body = await request(desk, "alice", "GET", "/api/customers/424242")
    assert (status, body["error"]) == (404, "unknown_customer")
    status, body = await request(desk, "alice", "GET", "/api/customers/abc")
    assert (status, body["error"]) == (400, "invalid_request")
    assert body["message"] == "customer id: expected a positive integer"
