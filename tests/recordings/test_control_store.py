"""Recording control on both stores (SQLite and the real PostgreSQL): the row
is stored before MixMonitor goes out (over AMI to the simulator), pauses are
stored with their times and actor, a call's state is found by its call id, and
the end of the call moves the simulator's WAV file into storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callwright.config import RecordingPolicy, RecordingsConfig
from crm.repository import InteractionRepository
from cti.ami.messages import AmiAction
from cti.calls.model import Call, CallState, ChannelInfo, Party
from cti.link import AmiLink, LinkSettings
from recordings.control import RecordingControl
from recordings.ingest import Ingestor
from recordings.repository import RecordingRepository
from recordings.storage import LocalStorage
from routing.persistence import AgentRepository
from sim.pbx.server import PbxSimulator
from tests.store.conftest import empty_engine, engine  # noqa: F401 (fixtures)

NOBODY = Party(None, None)


def call_on(channel: str, call_id: str, *, ended: bool = False) -> Call:
    leg = ChannelInfo(
        channel,
        "1.1",
        "1.1",
        "Up",
        NOBODY,
        NOBODY,
        "callwright-hold",
        "s",
        None,
        False,
        0.0,
        "PJSIP/trunk",
    )
    return Call(
        call_id,
        CallState.ENDED if ended else CallState.UP,
        () if ended else (leg,),
        NOBODY,
        NOBODY,
        0.0,
        None,
        0.0,
        1.0 if ended else None,
        None,
        None,
        False,
        False,
        False,
        None,
        None,
        None,
        None,
    )


class OneCall:
    """The call service's two lookups, for one live call on the simulator."""

    def __init__(self, call: Call) -> None:
        self.call = call

    def get(self, call_id: str) -> Call:
        return self.call

    def customer_leg(self, call: Call) -> ChannelInfo:
        return self.call.channels[0]


async def connect_to_agent(link: AmiLink, sim: PbxSimulator, customer: Any) -> None:
    """Connected to agent 1001, as voice routing does (MixMonitor b: bridged audio only)."""
    await link.send(
        AmiAction.build(
            "Redirect",
            {
                "Channel": customer.name,
                "Context": "callwright-agent",
                "Exten": "1001",
                "Priority": "1",
            },
        )
    )
    await sim.pbx.wait_for(
        lambda: customer.bridge is not None and len(customer.bridge.channels) == 2, 10
    )


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[PbxSimulator]:
    simulator = PbxSimulator(
        answer_delay=0.0, login_failure_delay=0, spool_dir=str(tmp_path / "spool")
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def link(sim: PbxSimulator) -> AsyncIterator[AmiLink]:
    ami = AmiLink(
        LinkSettings(
            host=sim.host, port=sim.port, username="callwright", secret="callwright-secret"
        )
    )
    ami.start()
    await ami.wait_ready(10)
    yield ami
    await ami.close()


async def test_record_pause_resume_and_store_on_both_stores(
    engine: AsyncEngine,  # noqa: F811
    sim: PbxSimulator,
    link: AmiLink,
    tmp_path: Path,
) -> None:
    agent = await AgentRepository(engine).create("alice", "Alice", "1001")
    interactions = InteractionRepository(engine)
    customer = await sim.inbound_call("+15550100009", "Ada")
    await connect_to_agent(link, sim, customer)
    interaction = await interactions.create(
        channel="voice",
        direction="inbound",
        call_id="call-9",
        queue="billing",
        agent_id=agent.id,
        started_at=datetime.now(UTC),
    )
    repo = RecordingRepository(engine)
    config = RecordingsConfig(
        enabled=True,
        dir=tmp_path / "store",
        spool_dir=tmp_path / "spool" / "monitor",
        default=RecordingPolicy(record="none"),
        queues={"billing": RecordingPolicy(record="all", retention_days=90)},
    )
    storage = LocalStorage(config.dir)
    published: list[dict[str, Any]] = []

    async def publish(data: dict[str, Any], agent_id: str | None) -> None:
        published.append(data)

    control = RecordingControl(
        repo,
        calls=OneCall(call_on(customer.name, "call-9")),
        ami=link,
        interactions=interactions,
        policies=config,
        spool_dir=config.spool_dir,
        ingestor=Ingestor(repo, storage, config.spool_dir, retention_days=config.retention_days),
        publish=publish,
    )
    await control.call_answered(interaction.id, str(agent.id))
    (row,) = await repo.list_for_interaction(interaction.id)
    assert row.state == "recording" and row.queue == "billing" and row.agent_id == agent.id
    mixmon = customer.mixmonitors[0]
    assert row.external_id == mixmon.id and mixmon.path.endswith(row.spool_name or "?")
    assert (await control.state("call-9"))["recording_id"] == row.id

    await control.pause("call-9", source="api", actor_id="api-token")
    assert mixmon.muted_read and mixmon.muted_write
    await control.resume("call-9", source="api", actor_id="api-token")
    assert not mixmon.muted_read
    (pause,) = await repo.pauses(row.id)
    assert pause.actor_id == "api-token" and pause.resumed_at is not None

    assert mixmon.writer is not None
    writer = mixmon.writer

    async def audio() -> None:
        while writer.frames_written <= 800:  # the file grows on the simulator's timer
            await asyncio.sleep(0.02)

    await asyncio.wait_for(audio(), 10)
    await sim.customer_hangup(customer.name)
    await control.call_ended(interaction.id, call_on(customer.name, "call-9", ended=True))
    await control.drain()
    stored = await repo.get(row.id)
    assert stored is not None and stored.state == "stored", stored
    assert stored.size_bytes == 44 + 2 * mixmon.writer.frames_written
    assert stored.retain_until is not None  # billing keeps 90 days
    assert [d["state"] for d in published] == [
        "recording",
        "paused",
        "recording",
        "ended",
        "stored",
    ]
    assert (await control.state("call-9"))["state"] == "stored"  # found by call id after the call


async def test_an_interaction_ending_while_the_call_goes_on_stops_its_mixmonitor(
    engine: AsyncEngine,  # noqa: F811
    sim: PbxSimulator,
    link: AmiLink,
    tmp_path: Path,
) -> None:
    """A transfer to a queue ends the interaction but not the call: its
    recording is stopped (StopMixMonitor) and stored, so the next interaction
    gets a file of its own."""
    interactions = InteractionRepository(engine)
    customer = await sim.inbound_call("+15550100010", "Ada")
    await connect_to_agent(link, sim, customer)
    interaction = await interactions.create(
        channel="voice",
        direction="inbound",
        call_id="call-10",
        queue="support",
        started_at=datetime.now(UTC),
    )
    repo = RecordingRepository(engine)
    config = RecordingsConfig(
        enabled=True, dir=tmp_path / "store", spool_dir=tmp_path / "spool" / "monitor"
    )
    live = call_on(customer.name, "call-10")
    control = RecordingControl(
        repo,
        calls=OneCall(live),
        ami=link,
        interactions=interactions,
        policies=config,
        spool_dir=config.spool_dir,
        ingestor=Ingestor(repo, LocalStorage(config.dir), config.spool_dir),
    )
    await control.call_answered(interaction.id, None)
    (row,) = await repo.list_for_interaction(interaction.id)
    assert customer.mixmonitors and row.state == "recording"
    await control.call_ended(interaction.id, live)  # the call itself is still up
    assert not customer.mixmonitors  # stopped on the PBX
    assert [
        a.get("MixMonitorID") for a in sim.ami_actions_received if a.name == "StopMixMonitor"
    ] == [row.external_id]
    await control.drain()
    stored = await repo.get(row.id)
    assert stored is not None and stored.state == "stored" and stored.size_bytes
    assert not customer.hungup
