"""Browser tests: the whole stack (the PBX simulator over TCP, the Callwright
runtime, SQLite in a temp directory) and the real pages in headless Chromium
(Debian's ``chromium`` package) driven by Playwright's async API.

Playwright never downloads a browser here: ``executable_path`` points at the
system Chromium. Screenshots go to ``test-artifacts/`` at the project root.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Dialog, Page, async_playwright
from playwright.async_api import expect as _expect

from callwright.config import RoutingConfig
from callwright.runtime import Runtime
from crm.repository import CustomerRepository, InteractionRepository
from routing.persistence import AgentRepository
from sim.pbx.server import PbxSimulator
from store import make_engine
from store.migrate import upgrade
from tests.integration.conftest import QUEUE, make_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery staple"
WAIT_MS = 15_000  # generous: a shared, noisy machine

# Web-first assertions retry until they hold or WAIT_MS passes.
expect = _expect
expect.set_options(timeout=WAIT_MS)

ADA = "+15550100001"
EVIL_NAME = "<script>alert(1)</script>"
EVIL_NUMBER = "+15550100666"


@dataclass
class Seeded:
    agents: dict[str, str]  # username -> agent id
    customers: dict[str, int]  # name -> customer id
    earlier_interaction: int  # Ada's earlier call, with a disposition and notes


@dataclass
class DeskStack:
    sim: PbxSimulator
    runtime: Runtime
    seeded: Seeded

    @property
    def url(self) -> str:
        return self.runtime.url


async def seed(url: str) -> Seeded:
    await upgrade(url)
    engine = make_engine(url)
    try:
        agents = AgentRepository(engine)
        ids: dict[str, str] = {}
        for username, name, ext, role, skills in (
            ("alice", "Alice Agent", "1001", "agent", {"support": 5}),
            ("bob", "Bob Agent", "1002", "agent", {"support": 5}),
            ("sue", "Sue Supervisor", "1009", "supervisor", {}),
        ):
            agent = await agents.create(
                username,
                name,
                ext,
                role=role,
                skills=skills,
                capacity={"voice": 1, "callback": 1, "email": 3},
            )
            await agents.set_password(agent.id, PASSWORD)
            ids[username] = str(agent.id)
        customers = CustomerRepository(engine)
        ada = await customers.create(
            "Ada Lovelace",
            phones=[ADA],
            emails=["ada@example.com"],
            account_number="ACC-1815",
            notes="Prefers e-mail follow-ups",
        )
        evil = await customers.create(EVIL_NAME, phones=[EVIL_NUMBER], notes="<b>bold</b>")
        interactions = InteractionRepository(engine)
        earlier = await interactions.create(
            channel="voice",
            direction="inbound",
            customer_id=ada.id,
            queue="support",
            started_at=datetime.now(UTC) - timedelta(days=2),
        )
        await interactions.set_disposition(earlier.id, "resolved", "Asked about invoice 42")
        return Seeded(ids, {ada.name: ada.id, evil.name: evil.id}, earlier.id)
    finally:
        await engine.dispose()


@pytest.fixture
async def desk_stack(sim: PbxSimulator, tmp_path: Path) -> AsyncIterator[DeskStack]:
    data = tmp_path / "data"
    seeded = await seed(f"sqlite+aiosqlite:///{data / 'callwright.db'}")
    config = make_config(sim.port, data)
    config = replace(config, routing=RoutingConfig(queues=(QUEUE,), voice_queue="support"))
    runtime = Runtime(config)
    await runtime.start()
    try:
        await runtime.link.wait_ready(10)
        yield DeskStack(sim, runtime, seeded)
    finally:
        await runtime.stop()


@dataclass
class Browsers:
    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def page(self) -> Page:
        """A page in its own context (its own sessionStorage: its own login)."""
        context = await self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.contexts.append(context)
        page = await context.new_page()

        async def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        return page


@pytest.fixture
async def browsers() -> AsyncIterator[Browsers]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        found = Browsers(browser)
        try:
            yield found
        finally:
            for context in found.contexts:
                await context.close()
            await browser.close()
    assert not found.errors, f"uncaught errors in the pages: {found.errors}"


async def log_in(page: Page, url: str, path: str, username: str) -> None:
    await page.goto(url + path)
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#banner")).to_have_text("live")


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = WAIT_MS / 1000
) -> None:
    """Poll a server-side condition (no page involved) until it holds."""
    import asyncio
    import inspect

    async def wait() -> None:
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


def agent_channels(pbx: PbxSimulator, extension: str) -> list[Any]:
    pattern = re.compile(rf"^PJSIP/{re.escape(extension)}-")
    return [ch for ch in pbx.channels() if pattern.match(ch.name) and not ch.hungup]
