"""The supervisor wallboard in a real browser against the real stack: queue
figures and the agent grid live, the chart, forcing an agent's state, the
day's post-call survey answers per queue."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from tests.browser.conftest import (
    ADA,
    Browsers,
    DeskStack,
    agent_channels,
    eventually,
    expect,
    log_in,
    screenshot,
)
from tests.ivr.helpers import answer_survey


async def test_the_waiting_count_follows_a_call_that_queues_and_hangs_up(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/wallboard", "sue")
    row = page.locator('#queue-rows tr[data-queue="support"]')
    await expect(row.locator(".waiting")).to_have_text("0")
    await expect(row.locator(".offered")).to_have_text("0")
    alice = page.locator("#agents [data-agent] .name", has_text="Alice Agent")
    await expect(alice).to_have_count(1)

    # Nobody is available: the call waits in the queue.
    caller = await desk_stack.sim.inbound_call("+15550100321", "Queued Caller")
    await expect(row.locator(".waiting")).to_have_text("1")
    await expect(row.locator(".offered")).to_have_text("1")
    await expect(page.locator("#waiting li[data-task]")).to_have_count(1)
    await expect(page.locator("#chart")).to_have_attribute("data-calls", "1")
    await screenshot(page, "wallboard-waiting")

    await desk_stack.sim.customer_hangup(caller.name)
    await expect(row.locator(".waiting")).to_have_text("0")
    # A caller who left within seconds is a short abandon too, shown apart (it
    # is not in the service level); the server's figures say which it was.
    routing = desk_stack.runtime.routing
    assert routing is not None
    figures = routing.stats.figures("support", routing.clock())
    assert figures.abandoned == 1
    short = " (1 short)" if figures.short_abandoned else ""
    await expect(row.locator(".abandoned")).to_have_text(f"1{short}")
    await expect(page.locator("#waiting li[data-task]")).to_have_count(0)


async def test_a_supervisor_forces_an_agents_state_and_the_agent_sees_it(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    desk = await browsers.page()
    await log_in(desk, desk_stack.url, "/desk", "alice")
    await desk.get_by_role("button", name="Available").click()
    await expect(desk.locator("#state-name")).to_have_text("available")

    board = await browsers.page()
    await log_in(board, desk_stack.url, "/wallboard", "sue")
    alice = board.locator(f'#agents [data-agent="{desk_stack.seeded.agents["alice"]}"]')
    await expect(alice.locator(".state")).to_have_text("available")
    await alice.get_by_label("Force state").select_option("break")
    await alice.get_by_label("Reason").fill("Team meeting")
    await alice.get_by_role("button", name="Force").click()
    await expect(alice.locator(".state")).to_have_text("break")
    await expect(alice.locator(".reason")).to_have_text("(Team meeting)")
    await expect(desk.locator("#state-name")).to_have_text("break")
    await expect(desk.locator("#state-reason")).to_have_text("(Team meeting)")
    await screenshot(board, "wallboard-agents")


async def test_an_agent_is_sent_to_the_desk_from_the_wallboard(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    page = await browsers.page()
    await page.goto(desk_stack.url + "/wallboard")
    await page.get_by_label("Username").fill("bob")
    await page.get_by_label("Password").fill("correct horse battery staple")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#login-error")).to_contain_text("for supervisors")
    await expect(page.locator("#board")).to_be_hidden()


NONE = "\N{EN DASH}"  # the page's "no figure yet"


async def connect_alice(desk_stack: DeskStack, number: str, name: str) -> Any:
    """A caller routed to Alice, who takes it: the bridged call."""
    routing = desk_stack.runtime.routing
    assert routing is not None
    alice = desk_stack.seeded.agents["alice"]
    await routing.set_agent_state(alice, "available")
    await desk_stack.sim.inbound_call(number, name)
    await eventually(lambda: bool(routing.router.agent(alice).reservation_ids), "offer to Alice")
    (reservation,) = routing.router.agent(alice).reservation_ids
    await routing.accept(reservation)

    def bridged() -> Any:
        for call in desk_stack.runtime.calls.calls():
            if call.caller.number == number and call.bridged:
                if any(ch.device == "PJSIP/1001" for ch in call.channels):
                    return call
        return None

    await eventually(lambda: bridged() is not None, "the call bridged with Alice")
    return bridged()


async def test_a_supervisor_listens_whispers_and_stops_from_the_wallboard(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    sim = desk_stack.sim
    sim.add_endpoint("1009")  # Sue's phone
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/wallboard", "sue")
    call = await connect_alice(desk_stack, ADA, "Ada Lovelace")
    (alice_leg,) = agent_channels(sim, "1001")

    row = page.locator(f'#call-rows tr[data-call="{call.id}"]')
    await expect(row).to_contain_text("Ada Lovelace")
    await expect(row).to_contain_text("Alice Agent")
    await row.get_by_role("button", name="Listen").click()
    await expect(row.locator(".session")).to_have_text("listen")
    await eventually(
        lambda: [(s.spyee.name, s.mode) for s in sim.spies()] == [(alice_leg.name, "listen")],
        "a ChanSpy channel listening to Alice's leg",
    )
    (session,) = sim.spies()
    assert session.spyer.name.startswith("PJSIP/1009-")  # Sue's own phone
    await screenshot(page, "wallboard-listening")

    # Whisper instead: Sue's phone rings again, now whispering to Alice.
    await row.get_by_role("button", name="Whisper").click()
    await expect(row.locator(".session")).to_have_text("whisper")
    await eventually(
        lambda: [(s.spyee.name, s.mode) for s in sim.spies()] == [(alice_leg.name, "whisper")],
        "the session in whisper mode",
    )

    # A reload finds the session again (GET /api/spies).
    await page.reload()
    await expect(page.locator("#banner")).to_have_text("live")
    await expect(row.locator(".session")).to_have_text("whisper")

    await row.get_by_role("button", name="Stop").click()
    await expect(row.get_by_role("button", name="Barge")).to_be_visible()
    await eventually(lambda: sim.spies() == [], "no ChanSpy left")
    assert any(c.id == call.id and c.bridged for c in desk_stack.runtime.calls.calls())
    await expect(page.locator("#call-error")).to_have_text("")


async def test_the_figures_and_the_chart_follow_a_call_that_is_answered_and_ends(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/wallboard", "sue")
    chart = page.locator("#chart")
    row = page.locator('#queue-rows tr[data-queue="support"]')
    await expect(chart).to_have_attribute("data-calls", "0")
    await expect(chart).to_have_attribute("data-answered", "0")
    await expect(row.locator(".asa")).to_have_text(NONE)
    call = await connect_alice(desk_stack, "+15550100777", "Answered Caller")
    await expect(chart).to_have_attribute("data-calls", "1")
    await expect(chart).to_have_attribute("data-answered", "1")
    await expect(chart).to_have_attribute("data-service-level", "100")
    await expect(row.locator(".answered")).to_have_text("1")
    await expect(row.locator(".sl")).to_have_text("100%")
    await expect(row.locator(".asa")).to_have_text(re.compile(r"^\d+:\d\d$"))
    await expect(row.locator(".aht")).to_have_text(NONE)  # nothing handled yet

    # Alice's time in state ticks on the page.
    since = page.locator(f'#agents [data-agent="{desk_stack.seeded.agents["alice"]}"] .since')
    await expect(since).to_have_text(re.compile(r"^\d+:\d\d$"))
    first = await since.text_content()
    await expect(since).not_to_have_text(first or "")

    # The caller hangs up: after Alice's wrap-up the call counts as handled.
    customer = next(ch.name for ch in call.channels if ch.device == "PJSIP/trunk")
    await desk_stack.sim.customer_hangup(customer)
    await expect(row.locator(".aht")).to_have_text(re.compile(r"^\d+:\d\d$"))
    await expect(page.locator(f'#call-rows tr[data-call="{call.id}"]')).to_have_count(0)
    # A page opened now reads the same day back from the interval report.
    later = await browsers.page()
    await log_in(later, desk_stack.url, "/wallboard", "sue")
    await expect(later.locator("#chart")).to_have_attribute("data-answered", "1")
    await expect(later.locator("#chart")).to_have_attribute("data-service-level", "100")
    await screenshot(later, "wallboard-chart")


async def test_the_queue_row_shows_todays_post_call_survey_answers(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    runtime = desk_stack.runtime
    page = await browsers.page()
    await log_in(page, desk_stack.url, "/wallboard", "sue")
    row = page.locator('#queue-rows tr[data-queue="support"]')
    await expect(row.locator(".survey")).to_have_text("\u2013")  # an en dash: no answer yet

    # Two callers of support answered the post-call survey (the IVR stores it so).
    for score in (4, 5):
        interaction = await runtime.interactions.create(
            channel="voice", direction="inbound", started_at=datetime.now(UTC), queue="support"
        )
        await answer_survey(runtime.ivr_sessions, interaction.id, score, call_ref=f"s-{score}")

    await page.reload()  # read at start (and every minute)
    await expect(row.locator(".survey")).to_have_text("4.5 (2)")


async def test_each_agent_card_shows_todays_occupancy(
    desk_stack: DeskStack, browsers: Browsers
) -> None:
    """Alice was available, then on a call: part of her ready time was handling
    work. Bob was never ready: no occupancy."""
    runtime = desk_stack.runtime
    routing = runtime.routing
    assert routing is not None
    alice_id = desk_stack.seeded.agents["alice"]
    await routing.set_agent_state(alice_id, "available")
    await asyncio.sleep(0.3)  # some time available
    await desk_stack.sim.inbound_call(ADA, "Ada Lovelace")
    await eventually(lambda: bool(routing.router.agent(alice_id).reservation_ids), "an offer")
    (rid,) = routing.router.agent(alice_id).reservation_ids
    await routing.accept(rid)
    await eventually(lambda: routing.router.agent(alice_id).state.value == "busy", "busy")
    await asyncio.sleep(0.3)  # some time handling

    page = await browsers.page()
    await log_in(page, desk_stack.url, "/wallboard", "sue")
    alice = page.locator(f'#agents [data-agent="{alice_id}"] .occupancy')
    await expect(alice).to_have_text(re.compile(r"^occupancy today ([1-9]\d?|100)%$"))
    bob = page.locator(f'#agents [data-agent="{desk_stack.seeded.agents["bob"]}"] .occupancy')
    await expect(bob).to_have_text("occupancy today \u2013")  # an en dash: never ready
