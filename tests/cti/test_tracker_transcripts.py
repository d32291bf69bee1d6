"""Replay the recorded Asterisk 22 transcripts through the call tracker and check
the calls a telephony engineer expects from reading them.

03 -> 04 -> 05 are one PBX session (the call originated in 03 is redirected to
an agent in 04 and hung up in 05), so they are fed into one tracker in order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from cti.ami.framing import CLOSED, NEED_DATA, AmiConnection, Role
from cti.ami.messages import AmiEvent
from cti.calls.model import (
    Call,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallEvent,
    CallHeld,
    CallStarted,
    CallState,
    CallTransferred,
    CallUnbridged,
    CallUnheld,
    CallUpdated,
    Party,
    RecordingMuted,
    RecordingStarted,
    RecordingStopped,
)
from cti.calls.tracker import CallTracker
from sim.transcripts import read_transcript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
MONITOR = "/var/spool/asterisk/monitor/"


def transcript_events(name: str) -> list[AmiEvent]:
    """Every event Asterisk sent in a transcript, decoded by our client codec."""
    events: list[AmiEvent] = []
    for connection in read_transcript(FIXTURES / name):
        codec = AmiConnection(Role.CLIENT)
        codec.receive_data(connection.received())
        codec.receive_data(b"")
        while (message := codec.next_message()) not in (NEED_DATA, CLOSED):
            if isinstance(message, AmiEvent):
                events.append(message)
    return events


class Replay:
    """A tracker fed with a monotone fake clock, keeping every domain event."""

    def __init__(self) -> None:
        self.tracker = CallTracker()
        self.clock: Iterator[float] = (float(n) for n in itertools.count(1))
        self.events: list[CallEvent] = []

    def feed(self, *names: str) -> list[CallEvent]:
        emitted: list[CallEvent] = []
        for name in names:
            for event in transcript_events(name):
                emitted.extend(self.tracker.feed(event, next(self.clock)))
        self.events.extend(emitted)
        return emitted

    def of(self, call_id: str, kind: type | None = None) -> list[CallEvent]:
        return [
            e for e in self.events if e.call.id == call_id and (kind is None or isinstance(e, kind))
        ]

    def ended(self, call_id: str) -> Call:
        call = self.tracker.get(call_id)
        assert call is not None
        assert call.state is CallState.ENDED
        return call


def assert_clean(tracker: CallTracker) -> None:
    assert tracker.stats.internal_errors == 0
    assert tracker.stats.malformed == 0


# -- 03: Originate, caller parked in inbound,hold ---------------------------------

ORIGINATED = "1796006921.4"


def test_originate_makes_one_answered_call_parked_in_the_holding_context() -> None:
    replay = Replay()
    replay.feed("03-originate-hold.txt")

    live = replay.tracker.calls()
    assert [c.id for c in live] == [ORIGINATED]
    call = live[0]
    assert call.state is CallState.UP
    assert call.caller == Party("5551234", "Test Caller")
    assert (call.context, call.exten) == ("inbound", "hold")
    assert [ch.name for ch in call.channels] == [
        "Local/100@inbound-00000002;1",
        "Local/100@inbound-00000002;2",
    ]
    assert {ch.device for ch in call.channels} == {"Local/100@inbound"}
    assert {ch.linkedid for ch in call.channels} == {ORIGINATED}
    # Music on hold in the holding context, before any agent: waiting, not held.
    assert not call.held and not call.bridged
    assert call.answered_at is not None and call.ringing_at is not None
    assert call.started_at < call.ringing_at < call.answered_at

    kinds = [type(e) for e in replay.of(ORIGINATED)]
    assert kinds[0] is CallStarted
    assert kinds.count(CallStarted) == 1 and kinds.count(CallAnswered) == 1
    assert CallEnded not in kinds
    assert_clean(replay.tracker)
    assert replay.tracker.stats.orphans == 0


def test_failing_originate_leaves_no_live_call() -> None:
    replay = Replay()
    replay.feed("03-originate-hold.txt")

    failed = replay.ended("1796006922.6")
    assert failed.channels == ()
    assert (failed.hangup_cause, failed.hangup_cause_text) == (0, "Unknown")
    assert failed.answered_at is None
    assert replay.tracker.channel("Local/999@inbound-00000003;1") is None
    assert "1796006922.6" not in {c.id for c in replay.tracker.calls()}


def test_originate_with_channel_id_uses_it_as_the_call_id() -> None:
    replay = Replay()
    replay.feed("03-originate-hold.txt")

    call = replay.ended("cti-chan-0003")
    assert call.answered_at is not None
    assert [type(e) for e in replay.of("cti-chan-0003")][-1] is CallEnded


# -- 04: Redirect to connect,agent1 -> bridged with the agent ------------------------


def test_redirect_bridges_the_held_caller_with_agent1() -> None:
    replay = Replay()
    replay.feed("03-originate-hold.txt")
    emitted = replay.feed("04-redirect-bridge.txt")

    bridged = [e for e in emitted if isinstance(e, CallBridged)]
    assert len(bridged) == 1
    event = bridged[0]
    assert event.call.id == ORIGINATED
    assert event.bridge_id == "60320e72-5c46-4a8a-86b7-9d500941d58c"

    (call,) = replay.tracker.calls()  # the agent legs joined the caller's call
    assert call.id == ORIGINATED
    assert call.bridged and call.state is CallState.UP and not call.held
    assert call.callee.number == "agent1"
    assert (call.context, call.exten) == ("connect", "agent1")
    assert len(call.channels) == 4
    agent = replay.tracker.channel("Local/agent1@agents-00000005;1")
    assert agent is not None
    assert agent.bridge_id == event.bridge_id and agent.device == "Local/agent1@agents"
    found = replay.tracker.call_for_channel("Local/agent1@agents-00000005;2")
    assert found is not None and found.id == ORIGINATED
    assert_clean(replay.tracker)
    assert replay.tracker.stats.orphans == 0


# -- 05: Hangup with Cause 16, by regex with 21, without a cause ----------------------


def test_hangup_ends_the_bridged_call_with_normal_clearing() -> None:
    replay = Replay()
    replay.feed("03-originate-hold.txt", "04-redirect-bridge.txt")
    replay.feed("05-hangup.txt")

    kinds = [type(e) for e in replay.of(ORIGINATED)]
    assert kinds[-2:] == [CallUnbridged, CallEnded]
    call = replay.ended(ORIGINATED)
    assert (call.hangup_cause, call.hangup_cause_text) == (16, "Normal Clearing")
    assert call.channels == () and not call.bridged
    assert call.ended_at is not None and call.ended_at > call.answered_at  # type: ignore[operator]
    # What the call was stays readable after the end.
    assert call.caller == Party("5551234", "Test Caller")
    assert call.callee.number == "agent1"
    for name in ("Local/100@inbound-00000002;1", "Local/agent1@agents-00000005;2"):
        assert replay.tracker.channel(name) is None
        assert replay.tracker.call_for_channel(name) is None


def test_regex_hangup_with_cause_21_and_hangup_without_cause() -> None:
    replay = Replay()
    replay.feed("03-originate-hold.txt", "04-redirect-bridge.txt", "05-hangup.txt")

    rejected = replay.ended("1796006930.12")
    assert (rejected.hangup_cause, rejected.hangup_cause_text) == (21, "Call Rejected")
    no_cause = replay.ended("1796006932.14")
    assert (no_cause.hangup_cause, no_cause.hangup_cause_text) == (0, "Unknown")
    assert replay.tracker.calls() == []
    assert_clean(replay.tracker)


# -- 06: transfers ------------------------------------------------------------------

TRANSFERRED = "1796007117.0"
BAD_EXTEN = "1796007141.18"


@pytest.fixture(scope="module")
def transfers() -> Replay:
    replay = Replay()
    replay.feed("06-transfers.txt")
    return replay


def test_blind_then_attended_transfer_are_reported_in_order(transfers: Replay) -> None:
    done = [e for e in transfers.events if isinstance(e, CallTransferred)]
    assert [(e.call.id, e.kind, e.target) for e in done] == [
        (TRANSFERRED, "blind", "agent2"),
        (TRANSFERRED, "attended", "Local/203@transfer-00000005;1"),
        (BAD_EXTEN, "blind", "nosuchexten"),
    ]
    for event in done:
        assert event.call.state is CallState.TRANSFERRED
        assert event.call.transferred_to == event.target


def test_blind_transfer_keeps_the_call_and_bridges_the_caller_with_agent2(
    transfers: Replay,
) -> None:
    events = transfers.of(TRANSFERRED)
    blind = next(i for i, e in enumerate(events) if isinstance(e, CallTransferred))
    after = events[blind + 1 :]
    # The caller leaves agent1's bridge, then is bridged with agent2.
    assert isinstance(after[0], CallUnbridged)
    assert after[0].call.state is CallState.UP
    rebridged = next(e for e in after if isinstance(e, CallBridged))
    assert rebridged.call.callee.number == "agent2"
    assert rebridged.call.state is CallState.UP
    assert (rebridged.call.context, rebridged.call.exten) == ("transfer", "agent2")
    names = {ch.name for ch in rebridged.call.channels}
    assert "Local/agent1@agents-00000001;1" not in names  # Asterisk hung the transferer up
    assert "Local/agent2@agents-00000002;1" in names


def test_atxfer_holds_the_call_and_cancel_resumes_it(transfers: Replay) -> None:
    events = transfers.of(TRANSFERRED)
    kinds = [type(e) for e in events]
    held = kinds.index(CallHeld)
    assert CallUnheld in kinds[held:]
    held_call = events[held].call
    assert held_call.held and held_call.state is CallState.HELD
    holding = [ch for ch in held_call.channels if ch.on_hold]
    assert [ch.name for ch in holding] == ["Local/agent2@agents-00000002;1"]


def test_attended_transfer_connects_the_caller_to_the_target(transfers: Replay) -> None:
    events = transfers.of(TRANSFERRED)
    attended = next(
        i for i, e in enumerate(events) if isinstance(e, CallTransferred) and e.kind == "attended"
    )
    settled = events[attended].call
    assert settled.bridged and settled.callee.number == "203"
    # Local/203@transfer is optimised away: agent03 takes its place in the bridge.
    swap = next(e for e in events[attended + 1 :] if isinstance(e, CallUpdated))
    assert swap.changed == ("callee",)
    call = swap.call
    assert call.state is CallState.UP and call.bridged and not call.held
    assert call.callee.number == "203"
    caller_leg = next(ch for ch in call.channels if ch.name == "Local/100@inbound-00000000;2")
    agent03 = next(ch for ch in call.channels if ch.name == "Local/agent03@agents-00000006;1")
    assert caller_leg.bridge_id == agent03.bridge_id == "8c4a6e01-0069-4b74-b397-cde300f230c6"
    # Then the optimised halves hang up: by the next Atxfer only four legs remain.
    later = next(e for e in events[attended + 1 :] if isinstance(e, CallHeld))
    assert sorted(ch.name for ch in later.call.channels) == [
        "Local/100@inbound-00000000;1",
        "Local/100@inbound-00000000;2",
        "Local/agent03@agents-00000006;1",
        "Local/agent03@agents-00000006;2",
    ]
    # Optimising the Local pair away made no call of its own.
    assert {e.call.id for e in transfers.events} == {TRANSFERRED, BAD_EXTEN}


def test_every_transferred_call_ends_with_no_live_channel(transfers: Replay) -> None:
    first = transfers.ended(TRANSFERRED)
    assert (first.hangup_cause, first.hangup_cause_text) == (16, "Normal Clearing")
    assert first.transferred_to == "Local/203@transfer-00000005;1"
    assert first.caller == Party("5551234", "Test Caller")
    assert first.channels == ()

    # BlindTransfer to an extension that does not exist: Asterisk hangs the caller up.
    bad = transfers.of(BAD_EXTEN)
    kinds = [type(e) for e in bad]
    assert kinds[kinds.index(CallTransferred) :] == [CallTransferred, CallUnbridged, CallEnded]
    call = transfers.ended(BAD_EXTEN)
    assert call.transferred_to == "nosuchexten" and call.hangup_cause == 16

    assert transfers.tracker.calls() == []
    assert_clean(transfers.tracker)
    # Asterisk reports a NewCallerid on three channels after their Hangup.
    assert transfers.tracker.stats.orphans == 3


# -- 08: MixMonitor -------------------------------------------------------------------

RECORDED = "1796006973.32"


def test_mixmonitor_start_mute_stop_are_reported_with_the_file() -> None:
    replay = Replay()
    replay.feed("08-mixmonitor.txt")
    caller_leg = "Local/100@inbound-00000010;2"

    recording = [
        e
        for e in replay.of(RECORDED)
        if isinstance(e, RecordingStarted | RecordingStopped | RecordingMuted)
    ]
    summary = [
        (type(e).__name__, e.channel, getattr(e, "file", None), getattr(e, "muted", None))
        for e in recording
    ]
    assert summary == [
        ("RecordingStarted", caller_leg, MONITOR + "ami-test-1.wav", None),
        ("RecordingMuted", caller_leg, None, True),
        ("RecordingMuted", caller_leg, None, False),
        ("RecordingStopped", caller_leg, MONITOR + "ami-test-1.wav", None),
        ("RecordingStarted", caller_leg, MONITOR + "ami-test-2.wav", None),
        ("RecordingStopped", caller_leg, MONITOR + "ami-test-2.wav", None),
        ("RecordingStarted", caller_leg, MONITOR + "ami-test-3.wav", None),
        # left running: it stops when the channel hangs up
        ("RecordingStopped", caller_leg, MONITOR + "ami-test-3.wav", None),
    ]
    assert [e.call.recording for e in recording] == [
        True,
        True,
        True,
        False,
        True,
        False,
        True,
        False,
    ]
    muted = [e for e in recording if isinstance(e, RecordingMuted)]
    assert {e.direction for e in muted} == {"both"}
    kinds = [type(e) for e in replay.of(RECORDED)]
    assert kinds[-2:] == [RecordingStopped, CallEnded]
    assert not replay.ended(RECORDED).recording


def test_mixmonitor_from_the_dialplan_is_reported_too() -> None:
    replay = Replay()
    replay.feed("08-mixmonitor.txt")
    solo = [e for e in replay.of("1796006983.38") if isinstance(e, RecordingStarted)]
    assert [e.file for e in solo] == [MONITOR + "solo-1796006983.39.wav"]
    assert replay.tracker.calls() == []
    assert_clean(replay.tracker)


# -- 11: FastAGI calls seen on AMI ---------------------------------------------------


def test_agi_calls_show_the_ivr_caller_and_end() -> None:
    replay = Replay()
    replay.feed("11-fastagi-ami-events.txt")
    for call_id in ("1796007019.60", "1796007025.62"):
        call = replay.ended(call_id)
        assert call.caller == Party("5553000", "IVR Caller")
        assert (call.context, call.exten) == ("inbound", "102")
        assert call.hangup_cause == 0
    assert replay.tracker.calls() == []
    assert_clean(replay.tracker)
    assert replay.tracker.stats.orphans == 0
    # AGIExecStart/End, DeviceStateChange...: ignored with one lookup each.
    assert replay.tracker.stats.ignored > 60


# -- 07: a queue call ------------------------------------------------------------------


def test_queue_events_name_the_queue_of_the_call() -> None:
    replay = Replay()
    replay.feed("07-queue.txt")
    answered = replay.ended("1796006963.26")
    assert answered.queue == "support" and answered.caller.number == "5552000"
    assert any(isinstance(e, CallBridged) for e in replay.of("1796006963.26"))
    abandoned = replay.ended("1796006968.30")
    assert abandoned.queue == "support" and abandoned.answered_at is not None
    assert not any(isinstance(e, CallBridged) for e in replay.of("1796006968.30"))


# -- 02: CoreShowChannels as a resync snapshot ---------------------------------------


def core_show_channels(action_id: str) -> list[AmiEvent]:
    return [e for e in transcript_events("02-core-status.txt") if e.action_id == action_id]


def test_core_show_channels_snapshot_builds_the_bridged_call() -> None:
    tracker = CallTracker()
    listing = core_show_channels("csc-2")
    assert [e.name for e in listing].count("CoreShowChannel") == 4

    emitted = tracker.resync(listing, 100.0)

    assert [type(e) for e in emitted] == [CallStarted]
    (call,) = tracker.calls()
    assert call == emitted[0].call
    assert call.id == "1796006918.0"
    assert call.state is CallState.UP and call.bridged
    assert call.caller == Party("5551234", "Test Caller")
    assert (call.context, call.exten) == ("connect", "agent1")
    assert call.callee.number == "agent1"
    assert len(call.channels) == 4
    bridged = sorted(ch.name for ch in call.channels if ch.bridge_id)
    assert bridged == ["Local/100@inbound-00000000;2", "Local/agent1@agents-00000001;1"]
    assert call.answered_at == 100.0

    # The same listing again changes nothing.
    assert tracker.resync(listing, 101.0) == []
    assert [c.id for c in tracker.calls()] == ["1796006918.0"]

    # An empty listing: the call is gone from the PBX.
    emitted = tracker.resync(core_show_channels("csc-3"), 102.0)
    assert [type(e) for e in emitted] == [CallEnded]
    lost = emitted[0].call
    assert lost.id == "1796006918.0" and lost.state is CallState.ENDED
    assert (lost.hangup_cause, lost.hangup_cause_text) == (None, "lost during resync")
    assert tracker.calls() == []
    assert_clean(tracker)


def test_resync_replaces_calls_the_pbx_no_longer_has() -> None:
    replay = Replay()
    replay.feed("03-originate-hold.txt")
    emitted = replay.tracker.resync(core_show_channels("csc-2"), 1000.0)

    ended = [e for e in emitted if isinstance(e, CallEnded)]
    started = [e for e in emitted if isinstance(e, CallStarted)]
    assert [e.call.id for e in ended] == [ORIGINATED]
    assert ended[0].call.hangup_cause_text == "lost during resync"
    assert [e.call.id for e in started] == ["1796006918.0"]
    assert [c.id for c in replay.tracker.calls()] == ["1796006918.0"]
    # Late events for the dropped call's channels are orphans; it stays ended.
    before = replay.tracker.stats.orphans
    replay.feed("04-redirect-bridge.txt")
    assert replay.tracker.stats.orphans > before
    assert replay.ended(ORIGINATED).channels == ()
