"""Recordings in a real browser against the real stack: a supervisor opens the
interaction list, plays a recording (a real WAV file written with the standard
library) in the page's <audio> element through a signed URL, and seeks (Range
requests); an agent is kept off the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Request, Response

from callwright.config import RecordingsConfig, RoutingConfig
from callwright.runtime import Runtime
from recordings.repository import Recording
from sim.pbx.server import PbxSimulator
from tests.browser.conftest import (
    ADA,
    EVIL_NAME,
    PASSWORD,
    QUEUE,
    Browsers,
    DeskStack,
    eventually,
    expect,
    log_in,
    screenshot,
    seed,
)
from tests.integration.conftest import make_config
from tests.recordings.test_playback import store_recording, wav_bytes

# 19 MB at 16 kB/s: far more than a browser reads ahead of the play position (Chromium:
# a few MB for a low bit rate), so a seek near the end must ask for a new range.
SECONDS = 1200
BYTES_PER_SECOND = 16_000


@pytest.fixture
async def rec_stack(
    sim: PbxSimulator,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[DeskStack]:
    """The desk stack with recordings; ``agent_may_play`` from an indirect parameter."""
    data = tmp_path / "data"
    seeded = await seed(f"sqlite+aiosqlite:///{data / 'callwright.db'}")
    config = make_config(sim.port, data)
    config = replace(
        config,
        routing=RoutingConfig(queues=(QUEUE,), voice_queue="support"),
        recordings=RecordingsConfig(
            enabled=True,
            dir=data / "recordings",
            spool_dir=data / "spool",
            agent_may_play=getattr(request, "param", False),
        ),
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        await runtime.link.wait_ready(10)
        yield DeskStack(sim, runtime, seeded)
    finally:
        await runtime.stop()


async def record_earlier_call(stack: DeskStack, seconds: float) -> Recording:
    """A stored recording of Ada's earlier call (handled by Alice)."""
    runtime = stack.runtime
    return await store_recording(
        runtime.recordings,
        runtime.recording_storage,
        runtime.config.recordings.spool_dir,
        interaction_id=stack.seeded.earlier_interaction,
        agent_id=int(stack.seeded.agents["alice"]),
        customer_id=stack.seeded.customers["Ada Lovelace"],
        data=wav_bytes(seconds),
    )


async def test_a_supervisor_plays_a_recording_from_the_interaction_list_and_seeks(
    rec_stack: DeskStack, browsers: Browsers
) -> None:
    runtime = rec_stack.runtime
    rec = await record_earlier_call(rec_stack, SECONDS)
    other = await runtime.interactions.create(
        channel="voice",
        direction="inbound",
        started_at=datetime.now(UTC),
        customer_id=rec_stack.seeded.customers[EVIL_NAME],
        queue="support",
    )
    page = await browsers.page()
    media_requests: list[str | None] = []  # the Range header of each media request
    media_statuses: list[int] = []

    def on_request(request: Request) -> None:
        if "/recordings/media/" in request.url:
            media_requests.append(request.headers.get("range"))

    def on_response(response: Response) -> None:
        if "/recordings/media/" in response.url:
            media_statuses.append(response.status)

    page.on("request", on_request)
    page.on("response", on_response)

    # From the wallboard's link.
    await log_in(page, rec_stack.url, "/wallboard", "sue")
    await page.get_by_role("link", name="Interactions and recordings").click()
    await expect(page.locator("#banner")).to_have_text("live")
    await expect(page.locator("#rows tr")).to_have_count(2)
    # A customer's name in a script tag stays text.
    evil = page.locator(f'#rows tr[data-interaction="{other.id}"] .customer')
    await expect(evil).to_have_text(EVIL_NAME)
    # Ada's history: her interactions only.
    row = page.locator(f'#rows tr[data-interaction="{rec_stack.seeded.earlier_interaction}"]')
    await row.locator(".customer").get_by_role("button", name="Ada Lovelace").click()
    await expect(page.locator("#history-of")).to_have_text("history of Ada Lovelace")
    await expect(page.locator("#rows tr")).to_have_count(1)
    await expect(row.locator(".disposition")).to_have_text("resolved")

    await row.get_by_role("button", name="Play").click()
    player = page.locator("#player")
    await expect(player).to_have_attribute("data-recording", rec.id)
    await page.wait_for_function(
        "() => { const a = document.getElementById('player');"
        " return a.readyState >= 1 && a.duration > 0; }"
    )
    duration = await player.evaluate("a => a.duration")
    assert abs(duration - SECONDS) < 0.5, duration
    assert media_requests and media_requests[0] is not None  # the element asks by range
    await screenshot(page, "recordings-playing")

    # Seek near the end: the element asks for the bytes from there.
    await player.evaluate(
        """a => new Promise((resolve) => {
            a.addEventListener('seeked', resolve, { once: true });
            a.currentTime = a.duration - 5;
        })"""
    )
    assert await player.evaluate("a => a.currentTime") > SECONDS - 10

    def starts() -> list[int]:
        return [int(r.split("=")[1].split("-")[0]) for r in media_requests if r]

    await eventually(
        lambda: any(start > BYTES_PER_SECOND * (SECONDS - 60) for start in starts()),
        f"a range request from near the end (requests: {media_requests})",
    )
    assert 206 in media_statuses, media_statuses
    played = await runtime.audit.query(action="recordings.played")
    assert [(e.actor_id, e.subject) for e in played] == [(rec_stack.seeded.agents["sue"], rec.id)]


async def test_an_agent_is_kept_off_the_interaction_list(
    rec_stack: DeskStack, browsers: Browsers
) -> None:
    page = await browsers.page()
    await page.goto(rec_stack.url + "/interactions")
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#login-error")).to_contain_text("for supervisors")
    await expect(page.locator("#page")).to_be_hidden()


@pytest.mark.parametrize("rec_stack", [True], indirect=True, ids=["agent_may_play"])
async def test_an_agent_plays_a_call_they_handled_from_the_callers_history(
    rec_stack: DeskStack, browsers: Browsers
) -> None:
    rec = await record_earlier_call(rec_stack, 3)  # Alice handled Ada's earlier call
    page = await browsers.page()
    await log_in(page, rec_stack.url, "/desk", "alice")
    await page.get_by_role("button", name="Available").click()
    await expect(page.locator("#state-name")).to_have_text("available")

    await rec_stack.sim.inbound_call(ADA, "Ada Lovelace")
    offer = page.locator("article.offer")
    earlier = offer.locator(f'tr[data-interaction="{rec_stack.seeded.earlier_interaction}"]')
    await expect(earlier.locator(".disposition")).to_have_text("resolved")
    await earlier.get_by_role("button", name="Play").click()
    audio = offer.locator(".pop-player audio")
    await expect(audio).to_have_attribute("data-recording", rec.id)
    await page.wait_for_function(
        "() => { const a = document.querySelector('.pop-player audio');"
        " return a && a.readyState >= 1 && a.duration > 0; }"
    )
    duration = await audio.evaluate("a => a.duration")
    assert abs(duration - 3) < 0.1, duration
    (played,) = await rec_stack.runtime.audit.query(action="recordings.played")
    assert (played.actor_id, played.subject) == (rec_stack.seeded.agents["alice"], rec.id)
    await screenshot(page, "desk-pop-recording")


async def test_an_agent_sees_no_play_button_when_agents_may_not_play(
    rec_stack: DeskStack, browsers: Browsers
) -> None:
    await record_earlier_call(rec_stack, 1)
    page = await browsers.page()
    await log_in(page, rec_stack.url, "/desk", "alice")
    await page.get_by_role("button", name="Available").click()
    await expect(page.locator("#state-name")).to_have_text("available")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/recordings" in r.url else None)
    async with page.expect_response(lambda r: "/api/recordings/access" in r.url) as access:
        await rec_stack.sim.inbound_call(ADA, "Ada Lovelace")
    assert await (await access.value).json() == {"may_play": "none"}
    offer = page.locator("article.offer")
    earlier = offer.locator(f'tr[data-interaction="{rec_stack.seeded.earlier_interaction}"]')
    await expect(earlier.locator(".disposition")).to_have_text("resolved")
    await expect(earlier.locator("td")).to_have_count(5)
    assert all("/api/recordings/access" in url for url in asked), asked
    await expect(offer.get_by_role("button", name="Play")).to_have_count(0)
    # The desk asked what it may do, and so never asked for the list in vain.
    assert await rec_stack.runtime.audit.query(action="recordings.list") == []
