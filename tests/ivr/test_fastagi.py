"""The FastAGI adapter (ivr/fastagi.py) over TCP, with the AGI driver playing
Asterisk 22 (sim/agi_driver.run_fastagi: the agi_* block, the recorded reply
texts): the commands each step becomes, garbage keys, timeouts, a caller
hanging up mid-flow, a connection that closes early, an unknown flow, a
transfer and a voicemail; the session stored in SQLite after every step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm.repository import CustomerRepository, InteractionRepository
from ivr import load_flow
from ivr.agi import AgiServer
from ivr.fastagi import FastAgiIvr
from ivr.repository import IvrRepository, IvrSessionRow
from ivr.runner import IvrRunner
from sim.agi_driver import DEFAULT_ENV, AgiTranscript, env_block, run_fastagi
from store import make_engine, sqlite_url
from store.migrate import upgrade

SAMPLE = Path(__file__).resolve().parents[2] / "flows" / "support.toml"
FLOW = load_flow(SAMPLE)
SAMPLE_TEXT = SAMPLE.read_text()
OPEN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # Wednesday 12:00 in Paris
CLOSED = datetime(2026, 6, 3, 20, 0, tzinfo=UTC)


class Tasks:
    def __init__(self) -> None:
        self.specs: list[object] = []

    async def submit(
        self, spec: object, *, interaction_id: int | None = None, call_id: str | None = None
    ) -> list[object]:
        self.specs.append(spec)
        return []


@dataclass
class Agi:
    server: AgiServer
    runner: IvrRunner
    repo: IvrRepository
    tasks: Tasks
    now: list[datetime]

    def url(self, script: str = "support") -> str:
        return f"{self.server.url}/{script}"

    async def run(self, digits: str = "", **kw: object) -> AgiTranscript:
        env = {**DEFAULT_ENV, "callerid": kw.pop("callerid", "5553000")}  # type: ignore[dict-item]
        return await asyncio.wait_for(
            run_fastagi(self.url(str(kw.pop("script", "support"))), env, digits=digits, **kw),  # type: ignore[arg-type]
            20,
        )

    async def only_row(self) -> IvrSessionRow:
        row = await self.repo.latest_for_call_ref(DEFAULT_ENV["uniqueid"])
        assert row is not None
        return row


@pytest.fixture
async def agi(tmp_path: Path) -> AsyncIterator[Agi]:
    url = sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    now = [OPEN]
    repo = IvrRepository(engine)
    tasks = Tasks()
    runner = IvrRunner(
        {"support": FLOW},
        repo,
        customers=CustomerRepository(engine),
        interactions=InteractionRepository(engine),
        tasks=lambda: tasks,
        clock=lambda: now[0],
    )
    server = AgiServer(FastAgiIvr(runner).handle, header_timeout=2.0)
    await server.start("127.0.0.1", 0)
    try:
        yield Agi(server, runner, repo, tasks, now)
    finally:
        await server.stop()
        await engine.dispose()


async def test_the_sample_flow_hands_the_caller_to_the_holding_point(agi: Agi) -> None:
    transcript = await agi.run("21")  # français, billing (unknown caller: account next)
    commands = transcript.commands
    assert commands[0] == "SET VARIABLE CHANNEL(language) en"
    assert "SET VARIABLE CHANNEL(language) fr" in commands
    assert commands.count("WAIT FOR DIGIT 5000") == 1  # the language menu
    assert "WAIT FOR DIGIT 6000" in commands  # the main menu
    # the account number: no key left, so three timeouts, then the failure branch
    assert commands.count("WAIT FOR DIGIT 8000") == 3
    assert commands[-3:] == [
        "SET VARIABLE CALLWRIGHT_QUEUE billing",
        f"SET VARIABLE CALLWRIGHT_IVR_SESSION {(await agi.only_row()).id}",
        "SET VARIABLE CALLWRIGHT_IVR queued",
    ]
    assert transcript.closed_by == "server" and not transcript.hung_up
    assert all(r.startswith("200 ") for r in transcript.replies)
    row = await agi.only_row()
    assert row.outcome == "queued" and row.queue == "billing"
    assert row.data is not None and row.data["task"]["attributes"]["intent"] == "billing"
    assert row.session.language == "fr"


async def test_prompts_with_a_sound_are_streamed_and_a_key_interrupts_them(
    agi: Agi, tmp_path: Path
) -> None:
    text = SAMPLE_TEXT.replace(
        'prompt = { en = "For English, press 1.", fr = "Pour le français, appuyez sur 2." }',
        'prompt = { en = "For English, press 1.", fr = "Pour le français, appuyez sur 2.", '
        'sound = "callwright/language" }',
    )
    path = tmp_path / "flow.toml"
    path.write_text(text)
    agi.runner.flows["support"] = load_flow(path)
    transcript = await agi.run("10")
    assert "STREAM FILE callwright/language 0123456789*#" in transcript.commands
    index = transcript.commands.index("STREAM FILE callwright/language 0123456789*#")
    assert transcript.replies[index] == "200 result=49 endpos=8000"  # "1" pressed
    assert transcript.commands[index + 1] != "WAIT FOR DIGIT 5000"  # the key counted
    assert (await agi.only_row()).outcome == "queued"


async def test_garbage_keys_and_silence_take_the_menus_failure_branch(agi: Agi) -> None:
    transcript = await agi.run("1*9#")  # English; then three wrong keys at the main menu
    assert "SET VARIABLE CALLWRIGHT_QUEUE support" in transcript.commands
    row = await agi.only_row()
    assert row.outcome == "queued" and row.data is not None
    assert row.data["task"]["attributes"]["operator"] is True
    assert "intent" not in row.data["task"]["attributes"]


async def test_caller_hanging_up_mid_menu_is_abandoned_at_that_node(agi: Agi) -> None:
    probe = await agi.run("1")
    main_menu = probe.commands.index("WAIT FOR DIGIT 6000")
    # A new caller who hangs up while the main menu waits for a key.
    transcript = await agi.run("1", hangup_after=main_menu + 1)
    assert transcript.replies[main_menu] == "200 result=-1"
    assert transcript.hung_up
    row = await agi.only_row()
    assert (row.outcome, row.abandoned_node) == ("abandoned", "main_menu")
    assert not transcript.commands[main_menu + 1 :] or transcript.commands[main_menu + 1] == "NOOP"


async def test_a_connection_closed_early_is_abandoned_and_the_server_goes_on(agi: Agi) -> None:
    reader, writer = await asyncio.open_connection(agi.server.host, agi.server.port)
    writer.write(env_block(agi.url()))
    await writer.drain()
    first = await reader.readline()
    assert first == b"SET VARIABLE CHANNEL(language) en\n"
    writer.close()  # Asterisk gone (crash, network) before answering
    await writer.wait_closed()

    async def abandoned() -> IvrSessionRow:
        while True:
            row = await agi.repo.latest_for_call_ref(DEFAULT_ENV["uniqueid"])
            if row is not None and row.outcome == "abandoned":
                return row
            await asyncio.sleep(0.02)

    row = await asyncio.wait_for(abandoned(), 10)
    assert row.abandoned_node == "language"
    transcript = await agi.run("10")  # the next caller is served
    assert "SET VARIABLE CALLWRIGHT_IVR queued" in transcript.commands
    assert agi.server.stats.errors == 0


async def test_an_unknown_flow_marks_the_channel_and_returns(agi: Agi) -> None:
    transcript = await agi.run(script="nosuch")
    assert transcript.commands == [
        "VERBOSE \"Callwright: no IVR flow named 'nosuch'\" 1",
        "SET VARIABLE CALLWRIGHT_IVR failed",
    ]
    assert transcript.closed_by == "server"
    assert await agi.repo.latest_for_call_ref(DEFAULT_ENV["uniqueid"]) is None


async def test_transfer_sends_the_caller_to_the_transfer_context(agi: Agi) -> None:
    transcript = await agi.run("13")  # English; the hardware partner
    assert transcript.commands[-6:] == [
        "SET VARIABLE CALLWRIGHT_TRANSFER +15555550100",
        "SET VARIABLE CALLWRIGHT_TRANSFER_TIMEOUT 30",
        "SET CONTEXT callwright-ivr-transfer",
        "SET EXTENSION +15555550100",
        "SET PRIORITY 1",
        "SET VARIABLE CALLWRIGHT_IVR transferred",
    ]
    assert "HANGUP" not in transcript.commands
    assert (await agi.only_row()).outcome == "transferred"


async def test_voicemail_when_closed_records_and_makes_a_callback_task(agi: Agi) -> None:
    agi.now[0] = CLOSED
    transcript = await agi.run("11#", callerid="+33612345678")
    record = [c for c in transcript.commands if c.startswith("RECORD FILE")]
    row = await agi.only_row()
    assert record == [f"RECORD FILE callwright/voicemail/{row.id} wav # 120000 BEEP"]
    assert transcript.commands[-1] == "SET VARIABLE CALLWRIGHT_IVR voicemail"
    assert "HANGUP" in transcript.commands
    assert row.outcome == "voicemail" and row.task_id is not None
    (spec,) = agi.tasks.specs
    attributes = spec.attributes  # type: ignore[attr-defined]
    assert attributes["recording"] == f"callwright/voicemail/{row.id}.wav"
    assert (
        attributes["recording_seconds"] == 5.0 and attributes["callback_number"] == "+33612345678"
    )


async def test_hanging_up_during_the_voicemail_still_leaves_the_message(agi: Agi) -> None:
    agi.now[0] = CLOSED
    probe = await agi.run("11#")
    record = next(i for i, c in enumerate(probe.commands) if c.startswith("RECORD FILE"))
    transcript = await agi.run("11", hangup_after=record + 1)
    assert transcript.replies[record] == "200 result=-1 (hangup) endpos=0"
    row = await agi.only_row()
    assert row.outcome == "abandoned" and row.abandoned_node == "voicemail"


def test_the_fastagi_address_is_configured_and_checked(tmp_path: Path) -> None:
    from callwright.config import ConfigError, load_config

    good = tmp_path / "good.toml"
    good.write_text('[ami]\nsecret = "s"\n[ivr]\nagi_host = "0.0.0.0"\nagi_port = 4600\n')
    ivr = load_config(good).ivr
    assert (ivr.agi_host, ivr.agi_port) == ("0.0.0.0", 4600)
    bad = tmp_path / "bad.toml"
    bad.write_text('[ami]\nsecret = "s"\n[ivr]\nagi_port = 70000\n')
    with pytest.raises(ConfigError, match=r"ivr\.agi_port: expected an integer 0-65535"):
        load_config(bad)


async def test_random_keys_and_hangups_always_end_the_session_cleanly(agi: Agi) -> None:
    """Any keys, open or closed, hung up at any command: the handler never
    fails, the caller is never left in a session that is still in progress."""
    import random

    rng = random.Random(20261130)
    for n in range(40):
        agi.now[0] = rng.choice((OPEN, CLOSED))
        keys = "".join(rng.choice("0123456789*#") for _ in range(rng.randrange(0, 12)))
        hangup = rng.choice((None, rng.randrange(1, 30)))
        uniqueid = f"1796.{n}"
        env = {**DEFAULT_ENV, "uniqueid": uniqueid, "callerid": rng.choice(("", "+33612345678"))}
        transcript = await asyncio.wait_for(
            run_fastagi(agi.url(), env, digits=keys, hangup_after=hangup), 20
        )
        assert transcript.closed_by == "server", (keys, hangup)
        row = await agi.repo.latest_for_call_ref(uniqueid)
        assert row is not None and row.outcome != "in_progress", (keys, hangup, row)
        if row.outcome == "abandoned":
            assert row.abandoned_node
    assert agi.server.stats.errors == 0
    assert agi.server.stats.sessions == 40
