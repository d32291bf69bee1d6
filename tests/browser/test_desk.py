"""The agent desk in a real browser against the real stack: log in, the pop
before the phone rings, accept, transfer, the call in the customer's history;
customer text shown as text; a dropped connection shown and caught up."""

from __future__ import annotations

import re

from playwright.async_api import Page, WebSocketRoute

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
