"""Replay Callwright's own AMI sessions against a real Asterisk 22.10.1
(tests/fixtures/ami-real/) through the call tracker: the calls must come out
as an operator watching the PBX would describe them.

In that lab every party is a Local channel pair: the customer's leg is the ;2
half of ``Local/5000@trunk`` (inbound) or the ;1 half of
``Local/<number>@customers`` (click-to-dial); agents are ``Local/<ext>@agents``.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from cti.ami.framing import CLOSED, NEED_DATA, AmiConnection, Role
from cti.ami.messages import AmiEvent
from cti.calls.model import (
    QUEUE_VARIABLE,
    Call,
    CallBridged,
    CallEvent,
    CallHeld,
    CallState,
    CallTransferred,
    CallUnheld,
    Party,
    RecordingStarted,
    RecordingStopped,
)
from cti.calls.tracker import CallTracker
from sim.transcripts import read_transcript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami-real"
CONSULT = re.compile(r"Local/1003@callwright-agent-[0-9a-f]{8};1")


def events_of(name: str) -> list[AmiEvent]:
    events: list[AmiEvent] = []
    for connection in read_transcript(FIXTURES / name):
        codec = AmiConnection(Role.CLIENT)
        codec.receive_data(connection.received())
        codec.receive_data(b"")
        while (message := codec.next_message()) not in (NEED_DATA, CLOSED):
            if isinstance(message, AmiEvent):
                events.append(message)
    return events


def replay(name: str) -> tuple[CallTracker, list[CallEvent], list[AmiEvent]]:
    tracker = CallTracker()
    clock = (float(n) for n in itertools.count(1))
    events = events_of(name)
    out: list[CallEvent] = []
    for event in events:
        out.extend(tracker.feed(event, next(clock)))
    assert tracker.stats.internal_errors == 0
    assert tracker.stats.malformed == 0
    return tracker, out, events


def only_call(out: list[CallEvent]) -> Call:
    ids = {e.call.id for e in out}
    assert len(ids) == 1, ids
    last = out[-1].call
    return last


def test_resync_on_connect_sees_the_bridged_call_and_the_waiting_caller() -> None:
    rows = [e for e in events_of("01-resync-on-connect.txt") if e.name == "CoreShowChannel"]
    tracker = CallTracker()
    tracker.resync(rows, 100.0)

    calls = sorted(tracker.calls(), key=lambda c: c.caller.number or "")
    assert [c.caller for c in calls] == [
        Party("+15550100001", "Ada Lovelace"),
        Party("+15550100009", "Waiting Wendy"),
    ]
    talking, waiting = calls
    assert talking.state is CallState.UP and talking.bridged and not talking.held
    assert len(talking.channels) == 4
    assert waiting.state is CallState.UP and not waiting.bridged and not waiting.held
    assert waiting.context == "callwright-hold"


def test_channels_learned_in_the_resync_on_connect_have_unknown_variables() -> None:
    rows = [e for e in events_of("01-resync-on-connect.txt") if e.name == "CoreShowChannel"]
    tracker = CallTracker()
    tracker.resync(rows, 100.0)
    channels = [ch for call in tracker.calls() for ch in call.channels]
    assert channels and all(ch.variable(QUEUE_VARIABLE) is None for ch in channels)


@pytest.mark.parametrize(
    "name",
    [
        "02-hold-unhold.txt",
        "03-blind-transfer.txt",
        "04-attended-transfer-complete.txt",
        "05-attended-transfer-no-target.txt",
        "06-attended-transfer-cancel.txt",
        "07-hangup-cause-17.txt",
        "09-mixmonitor.txt",
        "10-bridge-already-bridged.txt",
    ],
)
def test_callers_reach_the_hold_with_the_queue_variable_known_empty(name: str) -> None:
    """Voice routing reads CALLWRIGHT_QUEUE when a caller reaches the holding
    context: with the VarSet events of a real Asterisk 22 (read class
    ``dialplan``), the tracker knows it is empty there, so no Getvar is needed."""
    tracker = CallTracker()
    at_hold = []
    for n, event in enumerate(events_of(name)):
        tracker.feed(event, float(n))
        if event.name == "Newexten" and event.get("Context") == "callwright-hold":
            channel = tracker.channel(event.get("Channel") or "")
            assert channel is not None
            at_hold.append(channel.variable(QUEUE_VARIABLE))
    assert at_hold and set(at_hold) == {""}
    assert tracker.stats.internal_errors == tracker.stats.malformed == 0


def test_callwright_hold_and_unhold_on_a_real_asterisk() -> None:
    _, out, _ = replay("02-hold-unhold.txt")

    kinds = [type(e) for e in out]
    held_at = kinds.index(CallHeld)
    unheld_at = kinds.index(CallUnheld)
    assert held_at < unheld_at
    held = out[held_at].call
    assert not held.bridged and held.state is CallState.HELD
    customer = next(ch for ch in held.channels if ch.name.endswith(";2") and "@trunk" in ch.name)
    assert customer.context == "callwright-onhold" and customer.on_hold
    # The Bridge action reconnects the two legs.
    assert any(isinstance(e, CallBridged) for e in out[unheld_at:])
    end = only_call(out)
    assert end.state is CallState.ENDED and end.hangup_cause == 16


def test_blind_transfer_moves_the_customer_to_the_new_agent() -> None:
    _, out, _ = replay("03-blind-transfer.txt")

    transfer = next(e for e in out if isinstance(e, CallTransferred))
    assert (transfer.kind, transfer.target) == ("blind", "1002")
    after = next(e.call for e in out[out.index(transfer) :] if isinstance(e, CallBridged))
    assert {ch.device for ch in after.channels} == {"Local/5000@trunk", "Local/1002@agents"}
    assert only_call(out).transferred_to == "1002"


def test_attended_transfer_names_the_target_when_asterisk_sends_it() -> None:
    _, out, events = replay("04-attended-transfer-complete.txt")

    header = next(e for e in events if e.name == "AttendedTransfer").get("TransferTargetChannel")
    transfer = next(e for e in out if isinstance(e, CallTransferred))
    assert transfer.kind == "attended"
    assert transfer.target == header
    assert transfer.target is not None and CONSULT.fullmatch(transfer.target)


def test_attended_transfer_names_the_target_when_asterisk_leaves_it_out() -> None:
    _, out, events = replay("05-attended-transfer-no-target.txt")

    event = next(e for e in events if e.name == "AttendedTransfer")
    assert event.get("TransferTargetChannel") is None  # what this recording is about
    transfer = next(e for e in out if isinstance(e, CallTransferred))
    assert transfer.target is not None and CONSULT.fullmatch(transfer.target)
    assert only_call(out).transferred_to == transfer.target


def test_cancelled_attended_transfer_is_back_with_the_first_agent() -> None:
    _, out, _ = replay("06-attended-transfer-cancel.txt")

    assert not any(isinstance(e, CallTransferred) for e in out)
    kinds = [type(e) for e in out]
    assert kinds.index(CallHeld) < kinds.index(CallUnheld)
    back = out[kinds.index(CallUnheld)].call
    assert back.bridged and not back.held
    customer = next(ch for ch in back.channels if ch.device == "Local/5000@trunk" and ch.bridge_id)
    peers = {ch.device for ch in back.channels if ch.bridge_id == customer.bridge_id} - {
        customer.device
    }
    assert peers == {"Local/1001@agents"}


def test_hangup_cause_17_is_the_calls_cause() -> None:
    _, out, _ = replay("07-hangup-cause-17.txt")

    end = only_call(out)
    assert end.state is CallState.ENDED
    assert (end.hangup_cause, end.hangup_cause_text) == (17, "User busy")


def test_click_to_dial_is_one_call_bridged_with_the_dialed_number() -> None:
    _, out, _ = replay("08-click-to-dial.txt")

    bridged = next(e.call for e in out if isinstance(e, CallBridged))
    assert {ch.device for ch in bridged.channels} == {
        "Local/1002@agents",
        "Local/5550100002@customers",
    }
    assert bridged.state is CallState.UP
    assert only_call(out).state is CallState.ENDED


def test_mixmonitor_start_and_stop_carry_the_file() -> None:
    _, out, _ = replay("09-mixmonitor.txt")

    started = next(e for e in out if isinstance(e, RecordingStarted))
    stopped = next(e for e in out if isinstance(e, RecordingStopped))
    assert started.file == stopped.file == "/var/spool/asterisk/monitor/cw-lab-test.wav"
    assert started.channel == stopped.channel
    assert started.call.recording and not stopped.call.recording


def test_bridge_on_an_already_bridged_pair_tears_the_call_down() -> None:
    _, out, _ = replay("10-bridge-already-bridged.txt")

    end = only_call(out)
    assert end.state is CallState.ENDED and end.hangup_cause == 16
