"""The agent desk in a real browser against the real stack: log in, the pop
before the phone rings, accept, transfer, the call in the customer's history;
the wrap-up found in the customer's record; an unknown caller created or
linked from the pop; the caller's open e-mails; a transfer into a queue;
the card payment line; click-to-dial from a record; customer text shown as text; a dropped
connection shown and caught up."""

from __future__ import annotations

import re
from email.message import EmailMessage

from playwright.async_api import Locator, Page, WebSocketRoute

from crm.mail.parse import parse_email
from routing.model import TaskSpec
from tests.browser.conftest import (
    ADA,
    EVIL_NAME,
    EVIL_NUMBER,
    Browsers,
    DeskStack,
    agent_channels,
    eventually,
    expect,
    log_in,
    screenshot,
)


async def go_available(page: Page) -> None:
    await page.get_by_role("button", name="Available").click()
    await expect(page.locator("#state-name")).to_have_text("available")


async def ada_answered_by_alice(desk_stack: DeskStack, page: Page) -> Locator:
    """Alice logs in, goes available and accepts Ada's call: the call's card."""
    await log_in(page, desk_stack.url, "/desk", "alice")
    await go_available(page)
    await desk_stack.sim.inbound_call(ADA, "Ada Lovelace")
    await page.locator("article.offer").get_by_role("button", name="Accept").click()
    task = page.locator("article.task[data-channel=voice]")
    await expect(task.locator(".call-state")).to_have_text("connected")
    return task


async def test_the_pop_comes_before_the_phone_rings_and_the_call_lands_in_the_history(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    sim = desk_stack.sim
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/desk", "alice")
    await expect(page.locator("#who")).to_contain_text("Alice Agent")
    await go_available(page)

    customer = await sim.inbound_call(ADA, "Ada Lovelace")
    offer = page.locator("article.offer")
    await expect(offer.locator(".customer-name")).to_have_text("Ada Lovelace")
    # The card is up and Alice's phone has not even been dialled.
    assert agent_channels(sim, "1001") == []
    await expect(offer).to_contain_text("ACC-1815")
    await expect(offer).to_contain_text(ADA)
    await expect(offer).to_contain_text("Prefers e-mail follow-ups")
    earlier = offer.locator(f'tr[data-interaction="{desk_stack.seeded.earlier_interaction}"]')
    await expect(earlier.locator(".disposition")).to_have_text("resolved")
    await expect(earlier.locator(".notes")).to_have_text("Asked about invoice 42")
    await expect(offer.locator(".countdown")).to_contain_text("answer within")
    await screenshot(page, "desk-offer")

    await offer.get_by_role("button", name="Accept").click()
    await expect(offer).to_have_count(0)
    task = page.locator("article.task[data-channel=voice]")
    await expect(task.locator(".call-state")).to_have_text("connected")
    await expect(task.locator(".customer-name")).to_have_text("Ada Lovelace")
    await expect(page.locator("#state-name")).to_have_text("busy")
    await screenshot(page, "desk-call")
    (call,) = [c for c in desk_stack.runtime.calls.calls() if c.caller.number == ADA]

    # Hold and resume through the REST API, as the buttons say.
    await task.get_by_role("button", name="Hold").click()
    await expect(task.locator(".call-state")).to_have_text("on hold")
    await task.get_by_role("button", name="Resume").click()
    await expect(task.locator(".call-state")).to_have_text("connected")

    # Blind transfer to Bob's extension: the caller ends up with Bob.
    await task.get_by_label("Transfer target").fill("1002")
    await task.get_by_label("Transfer to").select_option("agent")
    await task.get_by_role("button", name="Blind transfer").click()
    await eventually(
        lambda: any(
            c.id == call.id and c.bridged and "PJSIP/1002" in {ch.device for ch in c.channels}
            for c in desk_stack.runtime.calls.calls()
        ),
        "the caller bridged with extension 1002",
    )
    await expect(task.locator(".call-state")).not_to_have_text("connected")
    assert agent_channels(sim, "1001") == []

    await sim.customer_hangup(customer.name)
    interaction = await desk_stack.runtime.interactions.by_call_id(call.id)
    assert interaction is not None
    await eventually(
        lambda: (
            desk_stack.runtime.routing is not None
            and desk_stack.runtime.routing.router.agent(
                desk_stack.seeded.agents["alice"]
            ).state.value
            == "available"
        ),
        "Alice available again after the wrap-up",
    )
    await expect(page.locator("#state-name")).to_have_text("available")

    # Ada calls again: the pop's history holds the call Alice just handled.
    await sim.inbound_call(ADA, "Ada Lovelace")
    await expect(offer.locator(".customer-name")).to_have_text("Ada Lovelace")
    handled = offer.locator(f'tr[data-interaction="{interaction.id}"]')
    await expect(handled).to_contain_text("voice inbound")
    await expect(handled).to_contain_text("support")
    await expect(offer.locator("tbody tr")).to_have_count(2)
    await screenshot(page, "desk-history")

    # And the customer search finds her.
    await page.get_by_label("Search customers").fill("Lovelace")
    await page.get_by_role("button", name="Search").click()
    result = page.locator("#search-results li.customer")
    await expect(result).to_have_count(1)
    await expect(result.locator(".customer-name")).to_have_text("Ada Lovelace")


async def test_a_customer_name_holding_script_is_shown_as_text(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/desk", "alice")
    await go_available(page)
    await desk_stack.sim.inbound_call(EVIL_NUMBER, "Mallory")
    offer = page.locator("article.offer")
    await expect(offer.locator(".customer-name")).to_have_text(EVIL_NAME)
    await expect(offer.locator("dd", has_text="<b>bold</b>")).to_have_count(1)
    assert await offer.locator("script, b").count() == 0

    await page.get_by_label("Search customers").fill("script")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#search-results .customer-name")).to_have_text(EVIL_NAME)
    assert await page.locator("#search-results script").count() == 0
    await screenshot(page, "desk-script-name")
    assert browsers.dialogs == []


async def test_an_unknown_caller_is_shown_by_number(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/desk", "alice")
    await go_available(page)
    await desk_stack.sim.inbound_call("+15550199123", "Somebody")
    offer = page.locator("article.offer")
    await expect(offer.locator(".customer-name")).to_contain_text("+15550199123")
    await expect(offer.locator(".customer-name")).to_contain_text("unknown caller")
    await offer.get_by_role("button", name="Reject").click()
    await expect(offer).to_have_count(0)


async def test_the_desk_shows_a_dropped_connection_and_catches_up_on_reconnect(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    page = await browsers.page()
    # The page's WebSocket goes through a proxy that the test can cut.
    links: list[WebSocketRoute] = []

    def through_proxy(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        links.append(ws)

    await page.route_web_socket(re.compile(r"/socket\.io/"), through_proxy)
    await log_in(page, desk_stack.url, "/desk", "alice")
    await go_available(page)
    runtime = desk_stack.runtime
    assert runtime.routing is not None
    alice = desk_stack.seeded.agents["alice"]
    assert links, "the desk upgraded to a WebSocket"

    # The connection drops, and there is no way back in until we say so.
    await page.route("**/socket.io/**", lambda route: route.abort())
    for link in links:
        await link.close()
    await expect(page.locator("#banner")).to_have_text("disconnected")

    # Meanwhile the world moves on: Alice's state changes and a call queues.
    await runtime.routing.set_agent_state(alice, "break", "Coaching")
    await desk_stack.sim.inbound_call("+15550100777", "Waiting Caller")
    await eventually(
        lambda: (
            runtime.routing is not None
            and runtime.routing.stats.figures("support", runtime.routing.clock()).waiting == 1
        ),
        "a call waiting in support",
    )
    await expect(page.locator("#state-name")).to_have_text("available")  # stale, and says so

    await page.unroute("**/socket.io/**")
    await expect(page.locator("#banner")).to_have_text("live")
    await expect(page.locator("#state-name")).to_have_text("break")
    await expect(page.locator("#state-reason")).to_have_text("(Coaching)")
    await expect(page.locator('#queue-rows tr[data-queue="support"] .waiting')).to_have_text("1")
    # Caught up by replaying what was missed, not by a fresh snapshot.
    await expect(page.locator("html")).to_have_attribute("data-last-sync", "replay")


async def test_an_attended_transfer_is_completed_from_the_desk(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    sim, runtime = desk_stack.sim, desk_stack.runtime
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/desk", "alice")
    await go_available(page)
    await sim.inbound_call("+15550100888", "Consulted Caller")
    offer = page.locator("article.offer")
    await offer.get_by_role("button", name="Accept").click()
    task = page.locator("article.task[data-channel=voice]")
    await expect(task.locator(".call-state")).to_have_text("connected")

    await task.get_by_label("Transfer target").fill("1002")
    await task.get_by_role("button", name="Attended transfer").click()
    await eventually(
        lambda: any(ch.state == "Up" and ch.bridge for ch in agent_channels(sim, "1002")),
        "Bob answered the consultation call",
    )
    await task.get_by_role("button", name="Complete transfer").click()
    await eventually(
        lambda: (
            agent_channels(sim, "1001") == []
            and any(
                c.bridged and {ch.device for ch in c.channels} == {"PJSIP/trunk", "PJSIP/1002"}
                for c in runtime.calls.calls()
            )
        ),
        "the caller talking to Bob, Alice gone",
    )
    await expect(task.locator(".call-state")).not_to_have_text("connected")


async def open_record(page: Page, text: str, name: str) -> None:
    """Search the customers and open one's record on the side."""
    await page.get_by_label("Search customers").fill(text)
    await page.get_by_role("button", name="Search", exact=True).click()
    result = page.locator("#search-results li.customer", has_text=name)
    await result.get_by_role("button", name="Record").click()
    await expect(page.locator("#record .customer-name")).to_have_text(name)


async def test_an_agent_gets_the_pop_before_answering_transfers_wraps_up_and_finds_it(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    """The issue's path: log in, the pop while the phone has not answered,
    transfer, disposition with notes, the call in the customer's history."""
    sim, runtime = desk_stack.sim, desk_stack.runtime
    sim.set_device("1001", auto_answer=False)  # Alice picks up herself
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/desk", "alice")
    await go_available(page)

    customer = await sim.inbound_call(ADA, "Ada Lovelace")
    offer = page.locator("article.offer")
    await expect(offer.locator(".customer-name")).to_have_text("Ada Lovelace")
    assert agent_channels(sim, "1001") == []  # not even ringing
    await offer.get_by_role("button", name="Accept").click()
    task = page.locator("article.task[data-channel=voice]")
    await expect(task.locator(".customer-name")).to_have_text("Ada Lovelace")
    await eventually(lambda: agent_channels(sim, "1001") != [], "Alice's phone ringing")
    # The record is on screen and the phone still rings: nobody answered yet.
    (ringing,) = agent_channels(sim, "1001")
    assert ringing.state != "Up"
    await expect(task.locator(".customer-name")).to_have_text("Ada Lovelace")
    await expect(task).to_contain_text("ACC-1815")
    await screenshot(page, "desk-pop-while-ringing")
    assert await sim.device_answer("1001")
    await expect(task.locator(".call-state")).to_have_text("connected")
    (call,) = [c for c in runtime.calls.calls() if c.caller.number == ADA]
    interaction = await runtime.interactions.by_call_id(call.id)
    assert interaction is not None

    # Blind transfer to Bob: Ada talks to Bob, Alice is free for the next caller.
    await task.get_by_label("Transfer target").fill("1002")
    await task.get_by_label("Transfer to").select_option("agent")
    await task.get_by_role("button", name="Blind transfer").click()
    await eventually(
        lambda: any(
            c.id == call.id and c.bridged and "PJSIP/1002" in {ch.device for ch in c.channels}
            for c in runtime.calls.calls()
        ),
        "Ada bridged with Bob",
    )
    await expect(page.locator("#state-name")).to_have_text("available")

    # The wrap-up: codes from [desk] dispositions, notes kept as typed.
    card = page.locator(f'article.task[data-task="{interaction_task(desk_stack, call.id)}"]')
    await expect(card.get_by_label("Disposition").locator("option")).to_have_text(
        ["disposition…", "Resolved", "Follow up", "Escalated", "No answer", "Wrong number"]
    )
    await card.get_by_label("Disposition").select_option("follow_up")
    await card.get_by_label("Notes").fill("Refund for <b>invoice 42</b>; Bob takes it")
    await card.get_by_role("button", name="Save wrap-up").click()
    await expect(card.locator(".saved")).to_have_text("saved: Follow up")
    saved = await runtime.interactions.get(interaction.id)
    assert saved is not None and saved.disposition == "follow_up"

    # In Ada's record on the desk: the call, with its disposition and notes.
    await open_record(page, "Lovelace", "Ada Lovelace")
    row = page.locator(f'#record tr[data-interaction="{interaction.id}"]')
    await expect(row.locator(".disposition")).to_have_text("follow_up")
    await expect(row.locator(".notes")).to_have_text("Refund for <b>invoice 42</b>; Bob takes it")
    assert await page.locator("#record b").count() == 0
    await screenshot(page, "desk-wrap-up-in-history")
    await sim.customer_hangup(customer.name)


def interaction_task(desk_stack: DeskStack, call_id: str) -> str:
    voice = desk_stack.runtime.voice
    assert voice is not None
    task_id = voice.task_for_call(call_id)
    assert task_id is not None
    return task_id


async def take_unknown_call(desk_stack: DeskStack, page: Page, number: str) -> None:
    await log_in(page, desk_stack.url, "/desk", "alice")
    await go_available(page)
    await desk_stack.sim.inbound_call(number, "Somebody")
    offer = page.locator("article.offer")
    await expect(offer.locator(".customer-name")).to_contain_text("unknown caller")
    await offer.get_by_role("button", name="Accept").click()
    task = page.locator("article.task[data-channel=voice]")
    await expect(task.locator(".call-state")).to_have_text("connected")


async def test_an_unknown_caller_is_created_as_a_customer_from_the_pop(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    number = "+15550199123"
    page = await browsers.page()
    await take_unknown_call(desk_stack, page, number)
    task = page.locator("article.task[data-channel=voice]")
    await expect(task.get_by_label("New customer phone")).to_have_value(number)
    await task.get_by_role("button", name="Create customer").click()
    await expect(task.locator(".identify .error")).to_have_text("A new customer needs a name.")
    await task.get_by_label("New customer name").fill("<i>Grace</i> Hopper")
    await task.get_by_role("button", name="Create customer").click()

    await expect(task.locator(".customer-name")).to_have_text("<i>Grace</i> Hopper")
    await expect(task.locator(".facts")).to_contain_text(number)
    await expect(task.locator(".identify")).to_have_count(0)
    assert await task.locator("i").count() == 0
    found = await desk_stack.runtime.customers.find_by_phone(number)
    assert found is not None and found.name == "<i>Grace</i> Hopper"
    (call,) = [c for c in desk_stack.runtime.calls.calls() if c.caller.number == number]
    interaction = await desk_stack.runtime.interactions.by_call_id(call.id)
    assert interaction is not None and interaction.customer_id == found.id
    await screenshot(page, "desk-unknown-caller-created")


async def test_an_unknown_caller_is_linked_to_an_existing_customer_from_the_pop(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    number = "+15550199124"  # Ada, from a phone we did not know
    page = await browsers.page()
    await take_unknown_call(desk_stack, page, number)
    task = page.locator("article.task[data-channel=voice]")
    await task.get_by_label("Find customer to link").fill("Lovelace")
    await task.get_by_role("button", name="Find").click()
    match = task.locator(".link-results li.customer", has_text="Ada Lovelace")
    await match.get_by_role("button", name="Link").click()

    await expect(task.locator(".identify")).to_have_count(0)
    await expect(task.locator("h3.customer-name")).to_have_text("Ada Lovelace")
    await expect(task.locator(".facts")).to_contain_text(number)
    await expect(task.locator(".facts")).to_contain_text(ADA)
    earlier = task.locator(f'tr[data-interaction="{desk_stack.seeded.earlier_interaction}"]')
    await expect(earlier.locator(".disposition")).to_have_text("resolved")
    ada = desk_stack.seeded.customers["Ada Lovelace"]
    found = await desk_stack.runtime.customers.find_by_phone(number)
    assert found is not None and found.id == ada
    await screenshot(page, "desk-unknown-caller-linked")


async def test_the_pop_lists_the_callers_open_emails_and_opens_a_thread(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    message = EmailMessage()
    message["From"] = "Ada Lovelace <ada@example.com>"
    message["To"] = "help@support.example"
    message["Subject"] = "Refund <script>alert(1)</script>"
    message["Message-ID"] = "<refund-1@example.com>"
    message.set_content("Where is my refund?\n")
    raw = bytes(message)
    await desk_stack.runtime.mail_store.store_inbound(parse_email(raw), raw)

    page = await browsers.page()
    await log_in(page, desk_stack.url, "/desk", "alice")
    await go_available(page)
    await desk_stack.sim.inbound_call(ADA, "Ada Lovelace")
    offer = page.locator("article.offer")
    await offer.get_by_role("button", name="Accept").click()
    task = page.locator("article.task[data-channel=voice]")
    thread = task.locator(".open-emails li")
    await expect(thread).to_have_count(1)
    await thread.get_by_role("button", name="Refund <script>alert(1)</script>").click()
    await expect(thread.locator(".message .body")).to_have_text("Where is my refund?\n")
    assert await page.locator(".open-emails script").count() == 0
    await screenshot(page, "desk-open-emails")
    assert browsers.dialogs == []


async def test_a_call_is_transferred_into_a_queue_from_the_desk(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    runtime = desk_stack.runtime
    assert runtime.routing is not None
    page = await browsers.page()
    task = await ada_answered_by_alice(desk_stack, page)
    (call,) = [c for c in runtime.calls.calls() if c.caller.number == ADA]
    first = interaction_task(desk_stack, call.id)
    await runtime.routing.set_agent_state(desk_stack.seeded.agents["bob"], "available")

    await task.get_by_label("Transfer to").select_option("queue")
    await expect(task.get_by_role("button", name="Attended transfer")).to_be_disabled()
    await task.get_by_label("Transfer target").fill("support")
    await task.get_by_role("button", name="Blind transfer").click()

    # Ada waits in support again, as a new task, offered to Bob; Alice is free.
    routing = runtime.routing
    bob = desk_stack.seeded.agents["bob"]
    await eventually(
        lambda: any(
            routing.router.reservation(r).task_id not in (first,)
            for r in routing.router.agent(bob).reservation_ids
        ),
        "the call offered to Bob as a new task",
    )
    await expect(page.locator("#state-name")).to_have_text("available")
    assert agent_channels(desk_stack.sim, "1001") == []


async def test_the_card_payment_button_sends_the_caller_to_the_payment_line(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    runtime = desk_stack.runtime
    page = await browsers.page()
    task = await ada_answered_by_alice(desk_stack, page)
    (agent_leg,) = agent_channels(desk_stack.sim, "1001")

    await task.get_by_role("button", name="Card payment").click()

    # Alice's leg is blind-transferred to the payment line: she leaves the call
    # (the flow brings the caller back to her queue afterwards; tests/integration/
    # test_ivr_payment.py follows that part).
    await eventually(
        lambda: (
            [
                (a["Channel"], a["Context"], a["Exten"])
                for a in desk_stack.sim.ami_actions_received
                if a.name == "BlindTransfer"
            ]
            == [(agent_leg.name, "callwright-payment", "s")]
        ),
        "a BlindTransfer of Alice's leg to the payment line",
    )
    await eventually(lambda: agent_channels(desk_stack.sim, "1001") == [], "Alice off the call")
    await expect(task.locator(".call-state")).not_to_have_text("connected")
    await eventually(
        lambda: (
            runtime.routing is not None
            and runtime.routing.router.agent(desk_stack.seeded.agents["alice"]).state.value
            != "busy"
        ),
        "Alice's task done",
    )


async def test_click_to_dial_from_a_record_rings_the_agent_then_the_customer_and_wraps_up(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    sim, runtime = desk_stack.sim, desk_stack.runtime
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/desk", "alice")
    await open_record(page, "Lovelace", "Ada Lovelace")
    await page.locator("#record .phone", has_text=ADA).get_by_role("button", name="Call").click()
    await expect(page.locator("#dial-status")).to_have_text(
        f"dialing {ADA}: your phone rings first"
    )
    await eventually(
        lambda: any(
            c.bridged
            and "PJSIP/1001" in {ch.device for ch in c.channels}
            and "PJSIP/trunk" in {ch.device for ch in c.channels}
            and ADA.lstrip("+") in (c.callee.number or "") + (c.exten or "")
            for c in runtime.calls.calls()
        ),
        "Alice's phone bridged with Ada's number",
    )
    assert agent_channels(sim, "1001") != []
    # No task for it, but the desk shows the call with its controls.
    card = page.locator("article.call-only")
    await expect(card.locator(".call-state")).to_have_text("connected")
    await expect(card.locator(".parties")).to_contain_text(ADA.lstrip("+"))
    await screenshot(page, "desk-click-to-dial")
    await card.get_by_role("button", name="Hang up").click()
    await eventually(lambda: agent_channels(sim, "1001") == [], "the call hung up")
    # An outbound interaction: wrapped up on the card, then in Ada's history.
    await expect(card.locator(".call-state")).to_have_text("ended")
    await card.get_by_label("Disposition").select_option("no_answer")
    await card.get_by_label("Notes").fill("Left a voicemail")
    await card.get_by_role("button", name="Save wrap-up").click()
    await expect(card.locator(".saved")).to_have_text("saved: No answer")
    row = page.locator("#record tbody tr").first
    await expect(row).to_contain_text("voice outbound")
    await expect(row.locator(".disposition")).to_have_text("no_answer")
    await expect(row.locator(".notes")).to_have_text("Left a voicemail")
    await screenshot(page, "desk-click-to-dial-wrap-up")
    await card.get_by_role("button", name="Close").click()
    await expect(card).to_have_count(0)


async def test_a_voicemail_callback_is_called_back_and_done_from_the_desk(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    """The IVR's voicemail becomes a callback task with the number to call: the
    agent calls back from the card (their phone first), then marks it done."""
    runtime = desk_stack.runtime
    routing = runtime.routing
    assert routing is not None
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/desk", "alice")
    await go_available(page)
    await routing.submit(
        TaskSpec(
            "cb-voicemail",
            "support",
            "callback",
            attributes={
                "callback_number": "+15550100777",
                "voicemail": True,
                "recording_seconds": 12.4,
            },
        )
    )
    await page.locator("article.offer").get_by_role("button", name="Accept").click()
    task = page.locator("article.task[data-channel=callback]")
    await expect(task.locator(".voicemail")).to_have_text("The caller left a 12 s message.")
    await screenshot(page, "desk-voicemail-callback")

    await task.get_by_role("button", name="Call back +15550100777").click()
    await eventually(
        lambda: (
            [a["Exten"] for a in desk_stack.sim.ami_actions_received if a.name == "Originate"]
            == ["+15550100777"]
        ),
        "an Originate of Alice's phone then the number",
    )
    await task.get_by_role("button", name="Done").click()
    await eventually(
        lambda: routing.router.task_state("cb-voicemail").value == "completed", "task done"
    )
    await expect(task.get_by_role("button", name="Done")).to_be_hidden()
