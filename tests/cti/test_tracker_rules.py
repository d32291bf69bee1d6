"""The call tracker's rules on hand-made event sequences: hold, Local channels,
linkedid changes, hangup causes, resync, and bad input."""

from __future__ import annotations

from dataclasses import dataclass, field

from cti.ami.messages import AmiEvent
from cti.calls.model import (
    CallAnswered,
    CallBridged,
    CallEnded,
    CallEvent,
    CallHeld,
    CallStarted,
    CallState,
    CallUnbridged,
    ChannelInfo,
    Party,
)
from cti.calls.tracker import MAX_ENDED, TRANSITIONS, CallTracker, Trigger

# -- a tiny fake PBX that writes the events Asterisk would -----------------------


@dataclass
class Leg:
    name: str
    uid: str
    linkedid: str
    state: str = "Down"
    num: str = "<unknown>"
    cid_name: str = "<unknown>"
    context: str = "default"
    exten: str = "s"


@dataclass
class Pbx:
    tracker: CallTracker = field(default_factory=CallTracker)
    now: float = 0.0
    seq: int = 0
    emitted: list[CallEvent] = field(default_factory=list)

    def send(self, event: AmiEvent) -> list[CallEvent]:
        self.now += 1.0
        out = self.tracker.feed(event, self.now)
        self.emitted.extend(out)
        return out

    def raw(self, name: str, *headers: tuple[str, str]) -> list[CallEvent]:
        return self.send(AmiEvent.build(name, headers))

    def headers(self, leg: Leg, prefix: str = "") -> list[tuple[str, str]]:
        return [
            (prefix + "Channel", leg.name),
            (prefix + "ChannelStateDesc", leg.state),
            (prefix + "CallerIDNum", leg.num),
            (prefix + "CallerIDName", leg.cid_name),
            (prefix + "ConnectedLineNum", "<unknown>"),
            (prefix + "ConnectedLineName", "<unknown>"),
            (prefix + "Context", leg.context),
            (prefix + "Exten", leg.exten),
            (prefix + "Uniqueid", leg.uid),
            (prefix + "Linkedid", leg.linkedid),
        ]

    def event(self, name: str, leg: Leg, *extra: tuple[str, str]) -> list[CallEvent]:
        return self.raw(name, *self.headers(leg), *extra)

    def leg(self, name: str, linkedid: str | None = None, **fields: str) -> Leg:
        self.seq += 1
        uid = f"1700000000.{self.seq}"
        return Leg(name, uid, linkedid or uid, **fields)

    def new(self, leg: Leg) -> list[CallEvent]:
        return self.event("Newchannel", leg)

    def state(self, leg: Leg, state: str) -> list[CallEvent]:
        leg.state = state
        return self.event("Newstate", leg)

    def dial(self, source: Leg | None, dest: Leg) -> list[CallEvent]:
        mine = self.headers(source) if source is not None else []
        return self.raw("DialBegin", *mine, *self.headers(dest, "Dest"), ("DialString", "x"))

    def enter(self, bridge: str, leg: Leg, *extra: tuple[str, str]) -> list[CallEvent]:
        return self.event("BridgeEnter", leg, ("BridgeUniqueid", bridge), *extra)

    def leave(self, bridge: str, leg: Leg) -> list[CallEvent]:
        return self.event("BridgeLeave", leg, ("BridgeUniqueid", bridge))

    def hangup(self, leg: Leg, cause: int = 16, text: str = "Normal Clearing") -> list[CallEvent]:
        return self.event("Hangup", leg, ("Cause", str(cause)), ("Cause-txt", text))


def kinds(events: list[CallEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def inbound_call(pbx: Pbx) -> tuple[Leg, Leg]:
    """A trunk call answered and bridged with agent 1001."""
    caller = pbx.leg("PJSIP/trunk-00000001", state="Ring", num="5551234", cid_name="Alice")
    pbx.new(caller)
    pbx.state(caller, "Up")
    agent = pbx.leg("PJSIP/1001-00000002", caller.linkedid, num="1001", cid_name="Agent One")
    pbx.new(agent)
    pbx.dial(caller, agent)
    pbx.state(agent, "Ringing")
    pbx.state(agent, "Up")
    pbx.enter("b1", agent)
    pbx.enter("b1", caller)
    return caller, agent


def core_show_channel(info: ChannelInfo, duration: str = "00:00:05") -> AmiEvent:
    return AmiEvent.build(
        "CoreShowChannel",
        [
            ("ActionID", "csc"),
            ("Channel", info.name),
            ("ChannelStateDesc", info.state),
            ("CallerIDNum", info.caller.number or "<unknown>"),
            ("CallerIDName", info.caller.name or "<unknown>"),
            ("ConnectedLineNum", info.connected.number or "<unknown>"),
            ("ConnectedLineName", info.connected.name or "<unknown>"),
            ("Context", info.context or ""),
            ("Exten", info.exten or ""),
            ("Uniqueid", info.uniqueid),
            ("Linkedid", info.linkedid),
            ("Duration", duration),
            ("BridgeId", info.bridge_id or ""),
        ],
    )


def listing(tracker: CallTracker) -> list[AmiEvent]:
    return [core_show_channel(ch) for call in tracker.calls() for ch in call.channels]


# -- the table -------------------------------------------------------------------


def test_transition_table_is_total_over_states_and_ended_is_terminal() -> None:
    assert set(TRANSITIONS) == set(CallState)
    assert TRANSITIONS[CallState.ENDED] == {}
    for state, row in TRANSITIONS.items():
        if state is not CallState.ENDED:
            assert row[Trigger.END] is CallState.ENDED


# -- lifecycle ---------------------------------------------------------------------


def test_inbound_call_rings_answers_bridges_and_ends() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)
    assert kinds(pbx.emitted) == ["CallStarted", "CallAnswered", "CallBridged"]
    call = pbx.tracker.calls()[0]
    assert call.caller == Party("5551234", "Alice")
    assert call.callee == Party("1001", "Agent One")
    assert {ch.device for ch in call.channels} == {"PJSIP/trunk", "PJSIP/1001"}

    pbx.leave("b1", agent)
    out = pbx.hangup(agent)
    assert kinds(out) == []  # the caller had already been unbridged
    out = pbx.hangup(caller, cause=0, text="Unknown")
    assert kinds(out) == ["CallEnded"]
    ended = out[0].call
    assert (ended.hangup_cause, ended.hangup_cause_text) == (16, "Normal Clearing")
    assert ended.callee == Party("1001", "Agent One")


def test_outbound_dial_rings_before_it_is_answered() -> None:
    pbx = Pbx()
    agent = pbx.leg("PJSIP/1001-00000001", state="Down", num="1001")
    assert kinds(pbx.new(agent)) == ["CallStarted"]
    customer = pbx.leg("PJSIP/trunk-00000002", agent.linkedid, num="5550000")
    pbx.new(customer)
    out = pbx.dial(agent, customer)
    assert kinds(out) == ["CallRinging"]
    assert out[0].call.state is CallState.RINGING
    assert kinds(pbx.state(customer, "Ringing")) == []  # already ringing
    out = pbx.state(customer, "Up")
    assert kinds(out) == ["CallAnswered"]
    call = out[0].call
    assert call.ringing_at is not None and call.answered_at is not None
    assert call.callee.number == "5550000"  # the party it dialed


def test_channel_created_up_starts_an_answered_call() -> None:
    pbx = Pbx()
    out = pbx.new(pbx.leg("PJSIP/1001-00000001", state="Up"))
    assert kinds(out) == ["CallStarted", "CallAnswered"]


def test_hangup_while_ringing_ends_the_call_unanswered() -> None:
    pbx = Pbx()
    agent = pbx.leg("PJSIP/1001-00000001", state="Ring")
    pbx.new(agent)
    customer = pbx.leg("PJSIP/trunk-00000002", agent.linkedid)
    pbx.new(customer)
    pbx.dial(agent, customer)
    pbx.hangup(customer, 17, "User busy")
    out = pbx.hangup(agent, 16)
    assert kinds(out) == ["CallEnded"]
    call = out[0].call
    assert call.answered_at is None and call.ringing_at is not None
    assert (call.hangup_cause, call.hangup_cause_text) == (17, "User busy")


def test_hangup_cause_is_the_last_one_when_all_are_zero() -> None:
    pbx = Pbx()
    a = pbx.leg("Local/a@x-00000001;1")
    b = pbx.leg("Local/a@x-00000001;2", a.linkedid)
    pbx.new(a)
    pbx.new(b)
    pbx.hangup(a, 0, "Unknown")
    out = pbx.hangup(b, 0, "Unknown again")
    assert (out[0].call.hangup_cause, out[0].call.hangup_cause_text) == (0, "Unknown again")


def test_causes_of_legs_that_left_before_the_call_was_bridged_again_are_forgotten() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)
    consult = pbx.leg("PJSIP/1002-00000003", caller.linkedid)
    pbx.new(consult)
    pbx.hangup(consult, 17, "User busy")  # a consult call that failed
    pbx.leave("b1", agent)
    pbx.hangup(agent, 16)
    second = pbx.leg("PJSIP/1003-00000004", caller.linkedid)
    pbx.new(second)
    pbx.state(second, "Up")
    pbx.enter("b2", second)
    pbx.leave("b1", caller)
    pbx.enter("b2", caller)
    pbx.hangup(caller, 16)
    out = pbx.hangup(second, 0, "Unknown")
    assert out[0].call.hangup_cause == 16


# -- hold ---------------------------------------------------------------------------


def test_music_on_hold_before_any_bridge_is_waiting_not_held() -> None:
    pbx = Pbx()
    caller = pbx.leg("PJSIP/trunk-00000001", state="Up", context="callwright-hold")
    pbx.new(caller)
    assert kinds(pbx.event("MusicOnHoldStart", caller, ("Class", "default"))) == []
    call = pbx.tracker.calls()[0]
    assert call.state is CallState.UP and not call.held
    assert call.context == "callwright-hold"
    assert not call.channels[0].on_hold


def test_music_on_hold_after_a_bridge_is_the_cti_hold() -> None:
    pbx = Pbx()
    caller, _agent = inbound_call(pbx)
    out = pbx.event("MusicOnHoldStart", caller, ("Class", "default"))
    assert kinds(out) == ["CallHeld"]
    assert out[0].call.held and out[0].call.state is CallState.HELD
    assert kinds(pbx.event("MusicOnHoldStop", caller)) == ["CallUnheld"]
    assert pbx.tracker.calls()[0].state is CallState.UP


def test_hold_and_unhold_events() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)
    assert kinds(pbx.event("Hold", agent)) == ["CallHeld"]
    assert kinds(pbx.event("MusicOnHoldStart", caller)) == []  # already held
    assert kinds(pbx.event("Unhold", agent)) == []  # the caller still hears music
    assert kinds(pbx.event("MusicOnHoldStop", caller)) == ["CallUnheld"]


def test_held_leg_hanging_up_resumes_the_call() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)
    extra = pbx.leg("PJSIP/1002-00000009", caller.linkedid, state="Up")
    pbx.new(extra)
    pbx.event("Hold", agent)
    pbx.leave("b1", agent)
    out = pbx.hangup(agent)
    assert "CallUnheld" in kinds(out)
    assert pbx.tracker.calls()[0].state is CallState.UP


# -- Local channels and linkedids ---------------------------------------------------


def test_local_halves_with_different_linkedids_make_one_call() -> None:
    pbx = Pbx()
    one = pbx.leg("Local/agent1@agents-0000001b;1")
    two = pbx.leg("Local/agent1@agents-0000001b;2")  # its own linkedid
    pbx.new(one)
    out = pbx.new(two)
    assert kinds(out) == []
    (call,) = pbx.tracker.calls()
    assert [ch.name for ch in call.channels] == [one.name, two.name]
    # A channel made later with the ;2 half's linkedid joins the same call.
    three = pbx.leg("PJSIP/1001-00000001", two.linkedid)
    pbx.new(three)
    assert len(pbx.tracker.calls()) == 1


def test_local_optimization_swap_is_an_update_not_an_unbridge() -> None:
    pbx = Pbx()
    caller = pbx.leg("PJSIP/trunk-00000001", state="Up", num="5551234")
    pbx.new(caller)
    one = pbx.leg("Local/agent1@agents-00000002;1", caller.linkedid, state="Up", num="agent1")
    two = pbx.leg("Local/agent1@agents-00000002;2", caller.linkedid, state="Up")
    phone = pbx.leg("PJSIP/1001-00000003", caller.linkedid, state="Up", num="1001")
    for leg in (one, two, phone):
        pbx.new(leg)
    pbx.enter("b1", one)
    pbx.enter("b1", caller)
    pbx.enter("b2", phone)
    pbx.enter("b2", two)
    assert pbx.tracker.calls()[0].callee.number == "1001"  # seen through the Local pair
    pbx.raw(
        "LocalOptimizationBegin",
        ("LocalOneChannel", one.name),
        ("LocalOneUniqueid", one.uid),
        ("LocalTwoChannel", two.name),
        ("LocalTwoUniqueid", two.uid),
        ("SourceUniqueid", phone.uid),
    )
    out = pbx.leave("b2", phone) + pbx.leave("b1", one)
    assert "CallUnbridged" not in kinds(out)
    out = pbx.enter("b1", phone, ("SwapUniqueid", one.uid))
    assert kinds(out) == ["CallUpdated"]
    assert out[0].changed == ("callee",)  # type: ignore[union-attr]
    pbx.raw("LocalOptimizationEnd", ("LocalOneUniqueid", one.uid), ("LocalTwoUniqueid", two.uid))
    pbx.leave("b2", two)
    pbx.hangup(one)
    pbx.hangup(two)
    (call,) = pbx.tracker.calls()
    assert [ch.name for ch in call.channels] == [caller.name, phone.name]
    assert call.bridged and call.callee.number == "1001"


def test_linkedid_change_moves_the_channel_and_merges_the_emptied_call() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)  # call A (older)
    consult = pbx.leg("PJSIP/1001-00000005", state="Up")  # call B
    target = pbx.leg("PJSIP/1002-00000006", consult.linkedid, state="Up", num="1002")
    pbx.new(consult)
    pbx.new(target)
    pbx.enter("b2", consult)
    pbx.enter("b2", target)
    assert len(pbx.tracker.calls()) == 2

    # The transfer swaps the target into A's bridge; Asterisk re-links it to A.
    pbx.leave("b2", target)
    pbx.leave("b1", agent)
    target.linkedid = caller.linkedid
    out = pbx.enter("b1", target)
    assert [(k, e.call.id) for k, e in zip(kinds(out), out, strict=True)] == [
        ("CallBridged", caller.linkedid)
    ]
    a = pbx.tracker.call_for_channel(target.name)
    assert a is not None and a.id == caller.linkedid and a.callee.number == "1002"

    pbx.hangup(agent)
    out = pbx.hangup(consult)
    assert kinds(out) == ["CallEnded"] and out[0].call.id == consult.linkedid
    assert [c.id for c in pbx.tracker.calls()] == [caller.linkedid]

    # If every channel of a call moves away, that call ends as merged.
    lone = pbx.leg("PJSIP/1003-00000007", state="Up")
    pbx.new(lone)
    lone.linkedid = caller.linkedid
    out = pbx.event("Newexten", lone)
    ended = [e for e in out if isinstance(e, CallEnded)]
    assert [e.call.hangup_cause_text for e in ended] == [f"merged into {caller.linkedid}"]
    assert [c.id for c in pbx.tracker.calls()] == [caller.linkedid]


# -- ended calls stay ended ----------------------------------------------------------


def test_late_events_for_an_ended_call_are_orphans_and_change_nothing() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)
    pbx.hangup(agent)
    pbx.hangup(caller)
    final = pbx.tracker.get(caller.linkedid)
    assert final is not None and final.state is CallState.ENDED
    before = pbx.tracker.stats.orphans
    for late in ("Newstate", "NewCallerid", "Hold", "MusicOnHoldStart", "BridgeEnter", "Hangup"):
        assert pbx.event(late, caller, ("BridgeUniqueid", "b1")) == []
    assert pbx.tracker.stats.orphans == before + 6
    assert pbx.tracker.get(caller.linkedid) == final
    assert pbx.tracker.calls() == []


def test_new_channel_with_an_ended_calls_linkedid_starts_a_new_call() -> None:
    pbx = Pbx()
    leg = pbx.leg("PJSIP/1001-00000001", state="Up")
    pbx.new(leg)
    pbx.hangup(leg)
    again = Leg("PJSIP/1001-00000002", "1700000099.1", leg.linkedid, state="Up")
    out = pbx.new(again)
    assert kinds(out) == ["CallStarted", "CallAnswered"]
    assert out[0].call.id == f"{leg.linkedid}#2"
    old = pbx.tracker.get(leg.linkedid)
    assert old is not None and old.state is CallState.ENDED and old.channels == ()


def test_only_the_last_thousand_ended_calls_are_kept() -> None:
    pbx = Pbx()
    ids = []
    for n in range(MAX_ENDED + 5):
        leg = Leg(f"PJSIP/1001-{n:08x}", f"9.{n}", f"9.{n}", state="Up")
        pbx.new(leg)
        pbx.hangup(leg)
        ids.append(leg.linkedid)
    assert all(pbx.tracker.get(i) is None for i in ids[:5])
    assert all(pbx.tracker.get(i) is not None for i in ids[5:])


# -- bad input -------------------------------------------------------------------------


def test_bad_events_are_counted_and_leave_other_calls_untouched() -> None:
    pbx = Pbx()
    caller, _agent = inbound_call(pbx)
    before = pbx.tracker.calls()
    stats = pbx.tracker.stats
    ignored, orphans, malformed = stats.ignored, stats.orphans, stats.malformed

    assert pbx.raw("Newchannel", ("Channel", "PJSIP/x-1"), ("Linkedid", "1.1")) == []
    assert pbx.raw("Newchannel", ("Uniqueid", "2.2"), ("Linkedid", "2.2")) == []
    assert pbx.raw("Hangup", ("Channel", caller.name), ("Cause", "16")) == []  # no Uniqueid
    assert pbx.raw("BridgeEnter", ("Uniqueid", caller.uid)) == []  # no BridgeUniqueid
    assert pbx.raw("DialBegin", ("Channel", caller.name)) == []  # no DestUniqueid
    assert pbx.raw("LocalOptimizationBegin", ("LocalOneChannel", "Local/x")) == []
    assert stats.malformed == malformed + 6

    assert pbx.raw("FancyNewEvent", ("Uniqueid", caller.uid)) == []
    assert pbx.send(AmiEvent(())) == []  # no headers at all
    assert pbx.raw("") == []
    assert stats.ignored == ignored + 3

    ghost = Leg("PJSIP/ghost-00000001", "404.1", caller.linkedid, state="Up")
    for name in ("Newstate", "Hangup", "Hold", "MixMonitorStart", "BridgeLeave"):
        assert pbx.event(name, ghost, ("BridgeUniqueid", "b1")) == []
    assert pbx.dial(caller, ghost) == []
    assert stats.orphans == orphans + 6

    assert pbx.tracker.calls() == before
    assert stats.internal_errors == 0


def test_huge_and_unparsable_values_do_not_raise() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)
    huge = "9" * 100_000
    caller.cid_name = "A" * 200_000
    out = pbx.event("NewCallerid", caller)
    assert kinds(out) == ["CallUpdated"]
    assert out[0].call.caller.name == caller.cid_name
    caller.exten = huge
    out = pbx.event("Newexten", caller)
    assert kinds(out) == ["CallUpdated"] and out[0].call.exten == huge
    malformed = pbx.tracker.stats.malformed
    pbx.leave("b1", agent)
    pbx.event("Hangup", agent, ("Cause", "sixteen"))
    assert pbx.tracker.stats.malformed == malformed + 1
    out = pbx.event("Hangup", caller, ("Cause", huge), ("Cause-txt", huge))
    assert kinds(out) == ["CallEnded"]
    assert out[0].call.hangup_cause is None  # neither cause could be read
    assert pbx.tracker.stats.malformed == malformed + 2
    assert pbx.tracker.stats.internal_errors == 0


def test_header_names_in_another_case_are_understood() -> None:
    tracker = CallTracker()
    event = AmiEvent(
        (
            ("event", "Newchannel"),
            ("channel", "PJSIP/1001-00000001"),
            ("UNIQUEID", "5.5"),
            ("linkedid", "5.5"),
            ("channelstatedesc", "Up"),
        )
    )
    out = tracker.feed(event, 1.0)
    assert [type(e) for e in out] == [CallStarted, CallAnswered]
    assert out[0].call.channels[0].uniqueid == "5.5"


# -- resync -----------------------------------------------------------------------------


def test_resync_with_the_same_channels_changes_nothing_and_keeps_ids() -> None:
    pbx = Pbx()
    inbound_call(pbx)
    before = pbx.tracker.calls()
    assert pbx.tracker.resync(listing(pbx.tracker), 50.0) == []
    assert pbx.tracker.calls() == before


def test_resync_updates_survivors_adds_and_drops_channels() -> None:
    pbx = Pbx()
    caller = pbx.leg("PJSIP/trunk-00000001", state="Ring", num="5551234")
    pbx.new(caller)
    agent = pbx.leg("PJSIP/1001-00000002", caller.linkedid, state="Ringing")
    pbx.new(agent)
    gone = pbx.leg("PJSIP/1002-00000003", state="Up")
    pbx.new(gone)
    assert {c.id for c in pbx.tracker.calls()} == {caller.linkedid, gone.linkedid}

    # Meanwhile (while we were disconnected) the agent answered and was bridged,
    # the other call hung up, and a new one arrived.
    snapshot = [
        AmiEvent.build(
            "CoreShowChannel",
            [
                ("Channel", leg.name),
                ("ChannelStateDesc", "Up"),
                ("CallerIDNum", leg.num),
                ("Context", "default"),
                ("Exten", "s"),
                ("Uniqueid", leg.uid),
                ("Linkedid", leg.linkedid),
                ("Duration", "00:01:00"),
                ("BridgeId", "b9"),
            ],
        )
        for leg in (caller, agent)
    ]
    snapshot.append(
        AmiEvent.build(
            "CoreShowChannel",
            [
                ("Channel", "PJSIP/trunk-00000009"),
                ("ChannelStateDesc", "Ring"),
                ("CallerIDNum", "5559999"),
                ("Uniqueid", "77.1"),
                ("Linkedid", "77.1"),
                ("Duration", "00:00:30"),
                ("BridgeId", ""),
            ],
        )
    )
    snapshot.append(AmiEvent.build("CoreShowChannelsComplete", [("ListItems", "3")]))
    out = pbx.tracker.resync(snapshot, 1000.0)

    by_kind = {(type(e), e.call.id) for e in out}
    assert (CallAnswered, caller.linkedid) in by_kind
    assert (CallBridged, caller.linkedid) in by_kind
    assert (CallEnded, gone.linkedid) in by_kind
    assert (CallStarted, "77.1") in by_kind
    survivor = pbx.tracker.get(caller.linkedid)
    assert survivor is not None
    assert survivor.state is CallState.UP and survivor.bridged
    assert [ch.name for ch in survivor.channels] == [caller.name, agent.name]
    new = pbx.tracker.get("77.1")
    assert new is not None and new.state is CallState.DIALING
    assert new.started_at == 970.0  # now - Duration
    lost = pbx.tracker.get(gone.linkedid)
    assert lost is not None and lost.hangup_cause_text == "lost during resync"
    assert lost.hangup_cause is None


def test_resync_skips_malformed_rows() -> None:
    tracker = CallTracker()
    rows = [
        AmiEvent.build("CoreShowChannel", [("Channel", "PJSIP/a-1"), ("Linkedid", "1.1")]),
        AmiEvent.build("CoreShowChannel", [("Uniqueid", "2.2"), ("Linkedid", "2.2")]),
    ]
    assert tracker.resync(rows, 1.0) == []
    assert tracker.stats.malformed == 2


def test_unbridge_and_hold_events_are_per_call() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)
    other_caller = pbx.leg("PJSIP/trunk-00000011", state="Up")
    pbx.new(other_caller)
    assert [(type(e), e.call.id) for e in pbx.event("Hold", agent)] == [(CallHeld, caller.linkedid)]
    assert [(type(e), e.call.id) for e in pbx.leave("b1", caller)] == [
        (CallUnbridged, caller.linkedid)
    ]
    other = pbx.tracker.get(other_caller.linkedid)
    assert other is not None and not other.held and not other.bridged
    assert other.state is CallState.UP
