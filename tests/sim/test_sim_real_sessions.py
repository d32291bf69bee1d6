"""Callwright's own AMI sessions against a real Asterisk 22.10.1
(tests/fixtures/ami-real/ and tests/sim/fixtures/) replayed on the simulator
running the same lab dialplan: what the simulator sends back must be what
Asterisk sent (event names, header names and order, values, reply texts;
run-specific values normalised as in sim/replay.py). Each test compares the
window of events that follows one action's reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from real_lab import (
    PROBES,
    REAL,
    real_lab_simulator,
    replay_real,
    variable_problems,
    without_phone_answer_delay,
)

from cti.ami.messages import AmiEvent, AmiMessage, AmiResponse
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


async def test_hold_redirect_shows_the_targets_before_the_legs_leave_their_bridge(
    lab: PbxSimulator,
) -> None:
    result = await replay_real(lab, REAL / "02-hold-unhold.txt")

    # cw1-5: Redirect customer -> callwright-onhold, ExtraChannel agent ->
    # callwright-agent-hold. (The agent phone's own Wait comes 0.5 s after
    # its Answer on the lab's media-less Local channels: not compared.)
    customer, agent = "Local/5000@trunk-000000b0;2", "Local/1001@agents-000000b1;1"
    assert result.window("cw1-5", "cw1-6", keys=(customer, agent), variables=("BRIDGEPEER",)) == []
    seen = [
        (m.name, m.get("Channel"), m.get("Priority"), m.get("Application"))
        for m in _between(result.received[0], "cw1-5", "cw1-6")
        if m.name in ("Newexten", "BridgeLeave") and m.get("Channel") == customer
    ]
    assert seen == [
        ("Newexten", customer, "1", "Dial"),
        ("BridgeLeave", customer, "1", None),
        ("Newexten", customer, "2", "MusicOnHold"),
    ]


def _between(messages: list[AmiMessage], start: str, end: str) -> list[AmiEvent]:
    """The events after the reply to ``start`` and before the reply to ``end``."""
    out: list[AmiEvent] = []
    inside = False
    for msg in messages:
        if isinstance(msg, AmiResponse):
            if msg.action_id == end:
                break
            inside = inside or msg.action_id == start
        elif inside and isinstance(msg, AmiEvent):
            out.append(msg)
    return out


async def test_attended_transfer_moves_the_transferer_before_the_target_is_dialled(
    lab: PbxSimulator,
) -> None:
    result = await replay_real(lab, REAL / "04-attended-transfer-complete.txt")

    # cw1-5: Atxfer of the agent's channel to callwright-agent,1003
    problems = result.window("cw1-5", "cw1-6", variables=("BRIDGEPEER",))
    assert without_phone_answer_delay(problems) == []
    transferer = "Local/1001@agents-000000ca;1"
    consult_two = "Local/1003@callwright-agent-000000cb;2"
    order = [
        (m.name, m.get("Channel"))
        for m in _between(result.received[0], "cw1-5", "cw1-6")
        if (m.name, m.get("Channel")) in (("BridgeEnter", transferer), ("DialBegin", consult_two))
    ]
    assert order == [("BridgeEnter", transferer), ("DialBegin", consult_two)]


async def test_dial_caller_whose_callee_hangs_up_does_not_run_the_next_priority(
    lab: PbxSimulator,
) -> None:
    result = await replay_real(lab, REAL / "08-click-to-dial.txt")

    # cw1-5: Hangup of the dialed customer leg; the agent's leg ran
    # Dial(...,60,T) (no option g): SoftHangupRequest and Hangup, no Hangup().
    assert result.window("cw1-5") == []
    agent = "Local/1002@agents-000000bf;1"
    assert [
        m.name
        for m in _between(result.received[0], "cw1-5", "")
        if m.get("Channel") == agent and m.name in ("Newexten", "SoftHangupRequest", "Hangup")
    ] == ["SoftHangupRequest", "Hangup"]


BOOKKEEPING = (
    "BRIDGEPEER",
    "DIALSTATUS",
    "DIALEDPEERNAME",
    "DIALEDPEERNUMBER",
    "BLINDTRANSFER",
    "ATTENDEDTRANSFER",
    "TRANSFERERNAME",
)


@pytest.mark.parametrize(
    ("path", "skip"),
    [
        (REAL / "02-hold-unhold.txt", ()),
        (REAL / "03-blind-transfer.txt", ()),
        # The simulator optimises the consultation Local channel away after
        # the transfer (as Asterisk does with media); the lab's media-less
        # Local channels stay: the target's and the customer's BRIDGEPEER
        # then name different channels.
        (
            REAL / "04-attended-transfer-complete.txt",
            ("Local/1003@agents-000000cc;1", "Local/5000@trunk-000000c9;2"),
        ),
        (REAL / "06-attended-transfer-cancel.txt", ()),
        (REAL / "07-hangup-cause-17.txt", ()),
        (REAL / "08-click-to-dial.txt", ()),
        (REAL / "09-mixmonitor.txt", ()),
        (REAL / "10-bridge-already-bridged.txt", ()),
        (PROBES / "real-bridge-during-consultation.txt", ()),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else "",
)
async def test_asterisk_bookkeeping_variables_are_set_as_on_a_real_asterisk(
    lab: PbxSimulator, path: Path, skip: tuple[str, ...]
) -> None:
    result = await replay_real(lab, path)

    assert variable_problems(result, BOOKKEEPING, skip) == []
