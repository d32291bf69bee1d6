"""The supervisor wallboard in a real browser against the real stack: queue
figures and the agent grid live, the chart, forcing an agent's state."""

from __future__ import annotations

from tests.browser.conftest import Browsers, DeskStack, expect, log_in, screenshot


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
    await expect(row.locator(".abandoned")).to_have_text("1")
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
