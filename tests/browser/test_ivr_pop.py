"""The desk in a real browser: a call that came through the sample IVR over
FastAGI pops the customer the IVR found with what the caller told it (the
language and the menu choice), while the caller waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Page

from callwright.config import IvrConfig, RoutingConfig
from callwright.runtime import Runtime
from ivr import load_flow
from sim.pbx.model import SimChannel
from sim.pbx.server import PbxSimulator
from tests.browser.conftest import (
    ADA,
    Browsers,
    DeskStack,
    expect,
    log_in,
    screenshot,
    seed,
)
from tests.integration.conftest import QUEUE, make_config

FLOW = load_flow(Path(__file__).resolve().parents[2] / "flows" / "support.toml")
OPEN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # Wednesday 12:00 in Paris
BILLING = replace(QUEUE, id="billing", target='"billing" in agent.skills')


@pytest.fixture
async def ivr_desk(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[DeskStack]:
    data = tmp_path / "data"
    seeded = await seed(f"sqlite+aiosqlite:///{data / 'callwright.db'}")
    config = make_config(sim.port, data)
    config = replace(
        config,
        routing=RoutingConfig(queues=(QUEUE, BILLING), voice_queue="support"),
        ivr=IvrConfig(flows={"support": FLOW}, agi_port=0),
    )
    runtime = Runtime(config)
    runtime.ivr.clock = lambda: OPEN  # the line is open whatever the time
    await runtime.start()
    try:
        await runtime.link.wait_ready(10)
        assert runtime.agi is not None
        sim.pbx.agi_url = f"{runtime.agi.url}/support"
        yield DeskStack(sim, runtime, seeded)
    finally:
        await runtime.stop()


async def go_available(page: Page) -> None:
    await page.get_by_role("button", name="Available").click()
    await expect(page.locator("#state-name")).to_have_text("available")


async def test_the_pop_shows_the_ivr_customer_and_the_callers_choices(
    ivr_desk: DeskStack, browsers: Browsers
) -> None:
    page = await browsers.page()
    await log_in(page, ivr_desk.url, "/desk", "alice")
    await go_available(page)
    sim = ivr_desk.sim
    call = asyncio.create_task(sim.inbound_call(ADA, "Ada"))

    def in_ivr(channels: list[SimChannel]) -> bool:
        return any(c.caller_num == ADA and c.application == "AGI" for c in channels)

    channels = await sim.wait_for_channels(in_ivr, timeout=10)
    caller = next(c for c in channels if c.caller_num == ADA)
    sim.send_dtmf(caller.name, "12")  # English, technical support
    await asyncio.wait_for(call, 10)

    offer = page.locator("article.offer")
    await expect(offer.locator(".customer-name")).to_have_text("Ada Lovelace")
    ivr = offer.locator("section.ivr")
    await expect(ivr.locator("h4")).to_have_text("In the IVR")
    await expect(ivr.locator("dt", has_text="Intent")).to_have_count(1)
    await expect(ivr.locator("dd", has_text="support")).to_have_count(1)
    await expect(ivr.locator("dd", has_text="en")).not_to_have_count(0)
    await screenshot(page, "desk-ivr-pop")
