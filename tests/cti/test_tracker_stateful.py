"""Property test: plausible and implausible AMI event sequences never break the
call tracker's invariants.

The machine plays a sloppy PBX: channels appear (plain and Local pairs), change
state, dial, enter and leave bridges, are held, re-linked, transferred and
recorded, hang up (sometimes twice), and it also sends events for channels
that never existed, unknown events, events missing headers, and resyncs with a
random subset of its channels. After every step:

* no exception escaped and none was caught by the tracker's guard;
* an ended call stays ended: never listed by ``calls()``, ``get`` shows it
  ENDED with no channels, and no event is ever emitted for it again;
* every live channel belongs to exactly one live call, and ``channel()`` /
  ``call_for_channel()`` agree with ``calls()``;
* ``calls()`` holds no ended and no empty call; ``held`` and ``bridged`` agree
  with the channels;
* a channel's CALLWRIGHT_QUEUE is the value the last VarSet for it gave, unknown
  (None) after a resync or a rename that no VarSet followed, else "" or None.
  A Newchannel for a Uniqueid the tracker does not hold (the machine replays
  ones of hung-up or resynced-away legs) starts a new channel: nothing the
  model knew about the earlier one applies to it.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from cti.ami.messages import AmiEvent
from cti.calls.model import QUEUE_VARIABLE, CallEnded, CallEvent, CallState
from cti.calls.tracker import CallTracker
from tests.cti.test_tracker_rules import Leg

STATES = ["Down", "Ring", "Ringing", "Up", "Busy"]
BRIDGES = ["b1", "b2", "b3"]
CAUSES = ["0", "16", "17", "21", "", "junk"]


class TrackerMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.tracker = CallTracker()
        self.now = 0.0
        self.seq = 0
        self.live: list[Leg] = []  # what the fake PBX believes is up
        self.dead: list[Leg] = []  # hung up (for duplicates and late events)
        self.ended: set[str] = set()  # ids announced by CallEnded
        # Uniqueid -> CALLWRIGHT_QUEUE as the last VarSet set it, or None when
        # it must be unknown (a resync or a rename since).
        self.queue: dict[str, str | None] = {}

    # -- plumbing ------------------------------------------------------------

    def uid(self) -> str:
        self.seq += 1
        return f"1700000000.{self.seq}"

    def send(self, name: str, headers: list[tuple[str, str]]) -> None:
        self.now += 1.0
        self.record(self.tracker.feed(AmiEvent.build(name, headers), self.now))

    def record(self, events: list[CallEvent]) -> None:
        for event in events:
            assert event.call.id not in self.ended, f"{type(event).__name__} after CallEnded"
            if isinstance(event, CallEnded):
                assert event.call.state is CallState.ENDED
                assert event.call.channels == ()
                self.ended.add(event.call.id)
            else:
                assert event.call.state is not CallState.ENDED

    @staticmethod
    def snapshot(leg: Leg, prefix: str = "") -> list[tuple[str, str]]:
        return [
            (prefix + "Channel", leg.name),
            (prefix + "ChannelStateDesc", leg.state),
            (prefix + "CallerIDNum", leg.num),
            (prefix + "CallerIDName", leg.cid_name),
            (prefix + "Context", leg.context),
            (prefix + "Exten", leg.exten),
            (prefix + "Uniqueid", leg.uid),
            (prefix + "Linkedid", leg.linkedid),
        ]

    def any_leg(self, data: st.DataObject) -> Leg:
        return data.draw(st.sampled_from(self.live + self.dead))

    # -- plausible events ----------------------------------------------------------

    @rule(
        data=st.data(),
        local=st.booleans(),
        state=st.sampled_from(STATES),
        join=st.booleans(),
        own_linkedid=st.booleans(),
    )
    def new_channel(
        self, data: st.DataObject, local: bool, state: str, join: bool, own_linkedid: bool
    ) -> None:
        uid = self.uid()
        linkedid = uid
        if join and (self.live or self.dead):
            linkedid = self.any_leg(data).linkedid  # a dialed leg, or a reused linkedid
        if local:
            base = f"Local/agent{self.seq}@agents-{self.seq:08x}"
            one = Leg(base + ";1", uid, linkedid, state="Down")
            two_uid = self.uid()
            two = Leg(base + ";2", two_uid, two_uid if own_linkedid else linkedid, state="Ring")
            for leg in (one, two):
                self.live.append(leg)
                self.send("Newchannel", self.snapshot(leg))
            self.send(
                "LocalBridge",
                [("LocalOneUniqueid", one.uid), ("LocalTwoUniqueid", two.uid)],
            )
        else:
            leg = Leg(f"PJSIP/{self.seq}-{self.seq:08x}", uid, linkedid, state=state)
            self.live.append(leg)
            self.send("Newchannel", self.snapshot(leg))

    @precondition(lambda self: self.live)
    @rule(data=st.data(), rename=st.booleans())
    def reuse_a_live_name(self, data: st.DataObject, rename: bool) -> None:
        """Two live channels never share a name in Asterisk; a broken peer may try."""
        taken = data.draw(st.sampled_from(self.live))
        if rename and len(self.live) >= 2:
            leg = data.draw(st.sampled_from([x for x in self.live if x is not taken]))
            self.send("Rename", [*self.snapshot(leg), ("Newname", taken.name)])
            leg.name = taken.name
            self.queue[leg.uid] = None
        else:
            uid = self.uid()
            leg = Leg(taken.name, uid, data.draw(st.sampled_from([uid, taken.linkedid])))
            self.live.append(leg)
            self.send("Newchannel", self.snapshot(leg))
        self.live.remove(taken)  # displaced: the tracker dropped it
        self.dead.append(taken)

    @precondition(lambda self: self.live or self.dead)
    @rule(data=st.data(), state=st.sampled_from(STATES))
    def new_state(self, data: st.DataObject, state: str) -> None:
        leg = self.any_leg(data)
        leg.state = state
        self.send("Newstate", self.snapshot(leg))

    @precondition(lambda self: self.live or self.dead)
    @rule(
        data=st.data(),
        num=st.sampled_from(["5551234", "<unknown>", "", "1001"]),
        context=st.sampled_from(["default", "callwright-hold", "transfer"]),
    )
    def caller_id_or_dialplan(self, data: st.DataObject, num: str, context: str) -> None:
        leg = self.any_leg(data)
        leg.num, leg.context = num, context
        self.send(data.draw(st.sampled_from(["NewCallerid", "Newexten"])), self.snapshot(leg))

    @precondition(lambda self: self.live or self.dead)
    @rule(data=st.data(), with_source=st.booleans())
    def dial(self, data: st.DataObject, with_source: bool) -> None:
        dest = self.any_leg(data)
        source = self.snapshot(self.any_leg(data)) if with_source else []
        self.send("DialBegin", source + self.snapshot(dest, "Dest"))

    @precondition(lambda self: self.live or self.dead)
    @rule(data=st.data(), bridge=st.sampled_from(BRIDGES), swap=st.booleans())
    def bridge_enter(self, data: st.DataObject, bridge: str, swap: bool) -> None:
        leg = self.any_leg(data)
        extra = [("SwapUniqueid", self.any_leg(data).uid)] if swap else []
        self.send("BridgeEnter", [("BridgeUniqueid", bridge), *self.snapshot(leg), *extra])

    @precondition(lambda self: self.live or self.dead)
    @rule(data=st.data(), bridge=st.sampled_from(BRIDGES))
    def bridge_leave(self, data: st.DataObject, bridge: str) -> None:
        leg = self.any_leg(data)
        self.send("BridgeLeave", [("BridgeUniqueid", bridge), *self.snapshot(leg)])

    @rule(bridge=st.sampled_from(BRIDGES))
    def bridge_destroy(self, bridge: str) -> None:
        self.send("BridgeDestroy", [("BridgeUniqueid", bridge)])

    @precondition(lambda self: self.live or self.dead)
    @rule(
        data=st.data(),
        name=st.sampled_from(["Hold", "Unhold", "MusicOnHoldStart", "MusicOnHoldStop"]),
    )
    def hold(self, data: st.DataObject, name: str) -> None:
        self.send(name, self.snapshot(self.any_leg(data)))

    @precondition(lambda self: self.live or self.dead)
    @rule(
        data=st.data(),
        name=st.sampled_from(["MixMonitorStart", "MixMonitorStop", "MixMonitorMute", "VarSet"]),
    )
    def recording(self, data: st.DataObject, name: str) -> None:
        extra = [("Variable", "MIXMONITOR_FILENAME"), ("Value", "/tmp/x.wav")]
        self.send(name, [*self.snapshot(self.any_leg(data)), *extra, ("State", "1")])

    @precondition(lambda self: self.live or self.dead)
    @rule(
        data=st.data(),
        variable=st.sampled_from(
            ["CALLWRIGHT_QUEUE", "_CALLWRIGHT_QUEUE", "__CALLWRIGHT_QUEUE", "DIALSTATUS"]
        ),
        value=st.sampled_from(["", "billing", "support"]),
    )
    def set_variable(self, data: st.DataObject, variable: str, value: str) -> None:
        leg = self.any_leg(data)
        self.send("VarSet", [*self.snapshot(leg), ("Variable", variable), ("Value", value)])
        if variable.lstrip("_") == QUEUE_VARIABLE:
            self.queue[leg.uid] = value

    @precondition(lambda self: self.live or self.dead)
    @rule(data=st.data(), cause=st.sampled_from(CAUSES))
    def hangup(self, data: st.DataObject, cause: str) -> None:
        leg = self.any_leg(data)  # a dead one makes a duplicate Hangup
        self.send("Hangup", [*self.snapshot(leg), ("Cause", cause), ("Cause-txt", "x")])
        if leg in self.live:
            self.live.remove(leg)
            self.dead.append(leg)

    @precondition(lambda self: len(self.live) >= 2)
    @rule(data=st.data())
    def relink(self, data: st.DataObject) -> None:
        """Asterisk re-links a bridged channel to the oldest linkedid."""
        leg = data.draw(st.sampled_from(self.live))
        leg.linkedid = data.draw(st.sampled_from(self.live)).linkedid
        self.send("Newexten", self.snapshot(leg))

    @precondition(lambda self: self.live or self.dead)
    @rule(data=st.data(), attended=st.booleans(), ok=st.booleans())
    def transfer(self, data: st.DataObject, attended: bool, ok: bool) -> None:
        transferer, transferee = self.any_leg(data), self.any_leg(data)
        headers = [
            ("Result", "Success" if ok else "Fail"),
            ("TransfererUniqueid", transferer.uid),
            ("OrigTransfererUniqueid", transferer.uid),
            ("TransfereeUniqueid", transferee.uid),
            ("TransferTargetChannel", "Local/203@transfer-00000005;1"),
            ("Extension", "agent2"),
        ]
        self.send("AttendedTransfer" if attended else "BlindTransfer", headers)

    @precondition(lambda self: any(leg.name.startswith("Local/") for leg in self.live))
    @rule(data=st.data(), begin=st.booleans())
    def local_optimization(self, data: st.DataObject, begin: bool) -> None:
        one = data.draw(st.sampled_from([x for x in self.live if x.name.startswith("Local/")]))
        sibling = one.name[:-1] + ("2" if one.name.endswith("1") else "1")
        two = next((x for x in self.live + self.dead if x.name == sibling), one)
        name = "LocalOptimizationBegin" if begin else "LocalOptimizationEnd"
        self.send(name, [("LocalOneUniqueid", one.uid), ("LocalTwoUniqueid", two.uid)])

    # -- implausible events ----------------------------------------------------------

    @rule(
        name=st.sampled_from(["Newstate", "Hangup", "BridgeEnter", "Hold", "DialBegin"]),
        uid=st.text(min_size=1, max_size=12),
    )
    def unknown_channel(self, name: str, uid: str) -> None:
        ghost = Leg("PJSIP/ghost-00000000", uid, uid, state="Up")
        self.send(name, [*self.snapshot(ghost), ("BridgeUniqueid", "b1"), ("DestUniqueid", uid)])

    @rule(
        name=st.sampled_from(["Newchannel", "Hangup", "BridgeEnter", "MixMonitorStart"]),
        drop=st.sampled_from(["Uniqueid", "Channel", "Linkedid", "BridgeUniqueid"]),
        data=st.data(),
    )
    def missing_header(self, name: str, drop: str, data: st.DataObject) -> None:
        leg = self.any_leg(data) if self.live or self.dead else Leg("PJSIP/x-1", "x.1", "x.1")
        headers = [*self.snapshot(leg), ("BridgeUniqueid", "b2")]
        held = self.tracker._chans.get(leg.uid)
        self.send(name, [(k, v) for k, v in headers if k != drop])
        if name == "Newchannel" and self.tracker._chans.get(leg.uid) is not held:
            # A complete Newchannel (BridgeUniqueid is no header of it) for a
            # Uniqueid the tracker no longer held: a new channel, seen from its
            # start. What a resync or a VarSet said of the old one is void.
            self.queue.pop(leg.uid, None)

    @rule(name=st.text(max_size=20), value=st.text(max_size=50))
    def unknown_event(self, name: str, value: str) -> None:
        self.send(name, [("Uniqueid", value), ("Channel", value)])

    @rule(data=st.data(), extra=st.integers(min_value=0, max_value=2))
    def resync(self, data: st.DataObject, extra: int) -> None:
        kept: list[Leg] = []
        if self.live:
            kept = data.draw(st.lists(st.sampled_from(self.live), unique_by=lambda x: x.uid))
        for leg in list(self.live):
            if leg not in kept:
                self.live.remove(leg)
                self.dead.append(leg)
        for _ in range(extra):
            uid = self.uid()
            leg = Leg(f"PJSIP/new-{self.seq:08x}", uid, uid, state="Up")
            joins: bool = data.draw(st.booleans())
            if kept and joins:
                leg.linkedid = data.draw(st.sampled_from(kept)).linkedid
            kept.append(leg)
            self.live.append(leg)
        rows = [
            AmiEvent.build(
                "CoreShowChannel",
                [
                    *self.snapshot(leg),
                    ("Duration", "00:00:07"),
                    ("BridgeId", data.draw(st.sampled_from(["", *BRIDGES]))),
                ],
            )
            for leg in kept
        ]
        twice: bool = data.draw(st.booleans())
        if rows and twice:
            rows.insert(0, data.draw(st.sampled_from(rows)))  # a row listed twice
        rows.append(AmiEvent.build("CoreShowChannelsComplete", [("ListItems", str(len(rows)))]))
        self.now += 1.0
        self.record(self.tracker.resync(rows, self.now))
        self.queue = {leg.uid: None for leg in kept}

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def nothing_raised(self) -> None:
        assert self.tracker.stats.internal_errors == 0

    @invariant()
    def live_calls_are_consistent(self) -> None:
        calls = self.tracker.calls()
        ids = [call.id for call in calls]
        assert len(ids) == len(set(ids))
        names = Counter(ch.name for call in calls for ch in call.channels)
        assert all(n == 1 for n in names.values()), "a channel in two calls"
        bridges = Counter(ch.bridge_id for call in calls for ch in call.channels if ch.bridge_id)
        for call in calls:
            assert call.state is not CallState.ENDED and call.id not in self.ended
            assert call.channels, "a live call without channels"
            assert call.held == (call.state is CallState.HELD)
            assert call.bridged == any(bridges[ch.bridge_id or ""] >= 2 for ch in call.channels)
            assert call.ended_at is None
            for ch in call.channels:
                assert self.tracker.channel(ch.name) == ch
                found = self.tracker.call_for_channel(ch.name)
                assert found is not None and found.id == call.id

    @invariant()
    def channel_snapshots_are_current(self) -> None:
        # The tracker caches each channel's ChannelInfo: it must equal a fresh one.
        tracker = self.tracker
        for chan in tracker._by_name.values():
            assert tracker._info(chan) == CallTracker._build_info(chan)

    @invariant()
    def watched_variables_are_what_the_varsets_said(self) -> None:
        for chan in self.tracker._by_name.values():
            value = self.tracker._info(chan).variable(QUEUE_VARIABLE)
            if chan.uid in self.queue:
                assert value == self.queue[chan.uid], chan.name
            else:
                assert value in ("", None), chan.name

    @invariant()
    def ended_calls_stay_ended(self) -> None:
        for call_id in self.ended:
            call = self.tracker.get(call_id)
            if call is not None:  # it may have aged out of the ended list
                assert call.state is CallState.ENDED
                assert call.channels == () and call.ended_at is not None


TrackerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_tracker_state_machine = TrackerMachine.TestCase
