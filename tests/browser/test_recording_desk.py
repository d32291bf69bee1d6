"""The recording on the agent desk, in a real browser: a routed call answered
from the desk shows "Recording"; the agent pauses it (the simulator's
MixMonitor is muted, both directions; the supervisor's wallboard shows it
paused), resumes it, and the pause is stored with its times, the desk as its
source and the agent as its actor; after the hangup the recording is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Page

from callwright.config import RecordingPolicy, RecordingsConfig, RoutingConfig
from callwright.runtime import Runtime
from sim.pbx.server import PbxSimulator
from tests.browser.conftest import (
    ADA,
    Browsers,
    DeskStack,
    eventually,
    expect,
    log_in,
    screenshot,
    seed,
)
from tests.integration.conftest import QUEUE, make_config


@pytest.fixture
async def rec_stack(tmp_path: Path) -> AsyncIterator[DeskStack]:
    spool = tmp_path / "spool"
    sim = PbxSimulator(answer_delay=0.02, login_failure_delay=0, spool_dir=str(spool))
    await sim.start()
    data = tmp_path / "data"
    seeded = await seed(f"sqlite+aiosqlite:///{data / 'callwright.db'}")
    config = replace(
        make_config(sim.port, data),
        routing=RoutingConfig(queues=(QUEUE,), voice_queue="support"),
        recordings=RecordingsConfig(
            enabled=True,
            dir=tmp_path / "recordings",
            spool_dir=spool / "monitor",
            default=RecordingPolicy(record="all"),
        ),
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        await runtime.link.wait_ready(10)
        yield DeskStack(sim, runtime, seeded)
    finally:
        await runtime.stop()
        await sim.stop()


def mixmonitor(stack: DeskStack, channel: str) -> object | None:
    ch = stack.sim.pbx.find(channel)
    return ch.mixmonitors[0] if ch is not None and ch.mixmonitors else None


async def answer(page: Page) -> None:
    await page.get_by_role("button", name="Available").click()
    await expect(page.locator("#state-name")).to_have_text("available")


async def test_the_agent_pauses_and_resumes_the_recording_from_the_desk(
    rec_stack: DeskStack, browsers: Browsers
) -> None:
    stack = rec_stack
    wallboard = await browsers.page()
    await log_in(wallboard, stack.url, "/wallboard", "sue")
    page = await browsers.page()
    await log_in(page, stack.url, "/desk", "alice")
    await answer(page)
    customer = await stack.sim.inbound_call(ADA, "Ada Lovelace")
    offer = page.locator("article.offer")
    await offer.get_by_role("button", name="Accept").click()
    task = page.locator("article.task[data-channel=voice]")
    await expect(task.locator(".call-state")).to_have_text("connected")
    state = task.locator(".recording-state")
    await expect(state).to_have_text("● Recording")
    await expect(state).to_have_attribute("data-recording", "recording")
    await eventually(lambda: mixmonitor(stack, customer.name) is not None, "MixMonitor running")
    rec = mixmonitor(stack, customer.name)
    assert rec is not None
    assert not rec.muted_read and not rec.muted_write  # type: ignore[attr-defined]

    await task.get_by_role("button", name="Pause recording").click()
    await expect(state).to_have_text("Recording paused")
    await expect(state).to_have_attribute("data-recording", "paused")
    # the PBX's recording is muted in both directions: the card number is not recorded
    await eventually(
        lambda: rec.muted_read and rec.muted_write,  # type: ignore[attr-defined]
        "MixMonitor muted",
    )
    await screenshot(page, "desk-recording-paused")
    # the supervisor sees it on the wallboard's call row
    (call,) = [c for c in stack.runtime.calls.calls() if c.caller.number == ADA]
    badge = wallboard.locator(f'#call-rows tr[data-call="{call.id}"] .rec')
    await expect(badge).to_have_text("recording paused")
    await screenshot(wallboard, "wallboard-recording-paused")
    # a reloaded desk reads the state back: still paused, still resumable
    await page.reload()
    await expect(page.locator("#banner")).to_have_text("live")
    await expect(state).to_have_text("Recording paused")

    await task.get_by_role("button", name="Resume recording").click()
    await expect(state).to_have_text("● Recording")
    await expect(task.get_by_role("button", name="Pause recording")).to_be_visible()
    assert not rec.muted_read and not rec.muted_write  # type: ignore[attr-defined]
    await expect(badge).to_have_text("recording")

    status = await stack.runtime.recording_control.state(call.id)
    recording_id = status["recording_id"]
    pauses = await stack.runtime.recordings.pauses(recording_id)
    assert [(p.source, p.actor_id) for p in pauses] == [("desk", stack.seeded.agents["alice"])]
    (pause,) = pauses
    assert pause.resumed_at is not None and pause.paused_at <= pause.resumed_at

    await stack.sim.customer_hangup(customer.name)

    async def stored() -> bool:
        row = await stack.runtime.recordings.get(recording_id)
        return row is not None and row.state == "stored"

    await eventually(stored, "recording stored after the hangup")
    row = await stack.runtime.recordings.get(recording_id)
    assert row is not None and row.size_bytes and row.sha256 and row.duration_ms is not None
