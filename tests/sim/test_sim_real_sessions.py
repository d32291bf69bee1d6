"""Callwright's own AMI sessions against a real Asterisk 22.10.1
(tests/fixtures/ami-real/ and tests/sim/fixtures/) replayed on the simulator
running the same lab dialplan: what the simulator sends back must be what
Asterisk sent (event names, header names and order, values, reply texts;
run-specific values normalised as in sim/replay.py). Each test compares the
window of events that follows one action's reply."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from real_lab import PROBES, REAL, real_lab_simulator, replay_real

from sim.pbx import PbxSimulator


@pytest.fixture
async def lab() -> AsyncIterator[PbxSimulator]:
    sim = real_lab_simulator()
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def test_bridge_during_a_consultation_is_refused_and_moves_nobody(
    lab: PbxSimulator,
) -> None:
    result = await replay_real(lab, PROBES / "real-bridge-during-consultation.txt")

    # cw1-6: Bridge Channel1=customer Channel2=transferer
    assert result.window("cw1-6") == []
    customer = lab.channel("Local/5000@trunk-00000134;2")
    transferer = lab.channel("Local/1001@agents-00000135;1")
    consult = lab.channel("Local/1003@callwright-agent-00000136;1")
    assert customer is not None and transferer is not None and consult is not None
    assert customer.bridge is not None and customer.bridge.channels == [customer]
    assert transferer.bridge is not None and transferer.bridge is consult.bridge


async def test_unhold_bridge_sends_what_asterisk_sends_without_a_surrogate_channel(
    lab: PbxSimulator,
) -> None:
    result = await replay_real(lab, REAL / "02-hold-unhold.txt")

    # cw1-6: Bridge Channel1=customer Channel2=agent (unhold), up to the Hangup
    assert result.window("cw1-6", "cw1-7", variables=("BRIDGEPEER",)) == []
    names = {
        msg.get("Channel") for received in result.received for msg in received if msg.get("Channel")
    }
    assert not {n for n in names if n and ("Surrogate/" in n or "<ZOMBIE>" in n)}
