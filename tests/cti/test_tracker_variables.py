"""The call tracker follows the watched channel variables (CALLWRIGHT_QUEUE)
through VarSet events: known values, known-empty and unknown channels, and
VarSet events that announce nothing."""

from __future__ import annotations

import pytest

from cti.ami.messages import AmiEvent
from cti.calls.model import QUEUE_VARIABLE, UNKNOWN_PARTY, WATCHED_VARIABLES, ChannelInfo
from cti.calls.tracker import CallTracker
from tests.cti.test_tracker_rules import Leg, Pbx, inbound_call, listing


def varset(pbx: Pbx, leg: Leg, variable: str, value: str) -> None:
    # Asterisk's layout: the channel snapshot, then Variable and Value last.
    assert pbx.event("VarSet", leg, ("Variable", variable), ("Value", value)) == []


def info(pbx: Pbx, leg: Leg) -> ChannelInfo:
    found = pbx.tracker.channel(leg.name)
    assert found is not None and found.uniqueid == leg.uid
    return found


def queue_of(pbx: Pbx, leg: Leg) -> str | None:
    return info(pbx, leg).variable(QUEUE_VARIABLE)


def caller_at_hold(pbx: Pbx) -> Leg:
    """A trunk caller seen from its Newchannel, with the dialplan's own
    VarSet on the way (this link delivers VarSet events)."""
    caller = pbx.leg("PJSIP/trunk-00000001", state="Ring", num="5551234")
    pbx.new(caller)
    varset(pbx, caller, "CALLWRIGHT_DID", "5000")
    caller.context, caller.exten = "callwright-hold", "s"
    pbx.event("Newexten", caller)
    return caller


def test_the_queue_variable_is_watched() -> None:
    assert QUEUE_VARIABLE == "CALLWRIGHT_QUEUE"
    assert QUEUE_VARIABLE in WATCHED_VARIABLES


def test_a_caller_seen_from_its_start_has_the_variable_known_empty() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    assert queue_of(pbx, caller) == ""
    call = pbx.tracker.get(caller.linkedid)
    assert call is not None
    assert call.channels[0].variable(QUEUE_VARIABLE) == ""
    assert call.channels[0].variables == tuple((name, "") for name in WATCHED_VARIABLES)


def test_a_varset_gives_the_value_and_an_empty_value_clears_it() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    emitted = len(pbx.emitted)
    varset(pbx, caller, QUEUE_VARIABLE, "billing")
    assert queue_of(pbx, caller) == "billing"
    call = pbx.tracker.get(caller.linkedid)
    assert call is not None and call.channels[0].variable(QUEUE_VARIABLE) == "billing"
    varset(pbx, caller, QUEUE_VARIABLE, "")
    assert queue_of(pbx, caller) == ""
    assert len(pbx.emitted) == emitted  # announced nothing


def test_inheritance_prefixes_set_the_same_variable() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    varset(pbx, caller, "__CALLWRIGHT_QUEUE", "sales")
    assert queue_of(pbx, caller) == "sales"
    varset(pbx, caller, "_CALLWRIGHT_QUEUE", "support")
    assert queue_of(pbx, caller) == "support"
    varset(pbx, caller, "___CALLWRIGHT_QUEUE", "nope")  # not a prefix Asterisk strips
    assert queue_of(pbx, caller) == "support"


def test_variable_names_are_case_sensitive_as_in_asterisk() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    varset(pbx, caller, "callwright_queue", "billing")
    assert queue_of(pbx, caller) == ""


def test_header_names_in_another_case_are_understood() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    event = AmiEvent(
        (
            ("event", "VarSet"),
            ("uniqueid", caller.uid),
            ("VARIABLE", QUEUE_VARIABLE),
            ("value", "billing"),
            ("Privilege", "dialplan,all"),
        )
    )
    assert pbx.send(event) == []
    assert queue_of(pbx, caller) == "billing"


def test_an_unwatched_varset_leaves_the_snapshot_as_it_was() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    before = info(pbx, caller)
    varset(pbx, caller, "BRIDGEPEER", "PJSIP/1001-00000002")
    varset(pbx, caller, "DIALSTATUS", "ANSWER")
    assert info(pbx, caller) is before  # the cached snapshot was not even rebuilt
    varset(pbx, caller, QUEUE_VARIABLE, "billing")
    after = info(pbx, caller)
    assert after is not before and after.variable(QUEUE_VARIABLE) == "billing"
    varset(pbx, caller, QUEUE_VARIABLE, "billing")  # the same value again
    assert info(pbx, caller) is after


def test_varset_events_announce_nothing_through_a_whole_call() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)
    emitted = len(pbx.emitted)
    for leg in (caller, agent):
        for variable, value in (
            ("BRIDGEPEER", "x"),
            (QUEUE_VARIABLE, "billing"),
            ("__CALLWRIGHT_QUEUE", "sales"),
            (QUEUE_VARIABLE, ""),
            ("MIXMONITOR_FILENAME", "/tmp/a.wav"),
        ):
            varset(pbx, leg, variable, value)
    assert len(pbx.emitted) == emitted


def test_before_any_varset_on_the_link_nothing_is_known() -> None:
    """An AMI user without the dialplan read class gets no VarSet at all: an
    empty value would then be a guess."""
    pbx = Pbx()
    caller = pbx.leg("PJSIP/trunk-00000001", state="Ring", num="5551234")
    pbx.new(caller)
    assert queue_of(pbx, caller) is None
    other = pbx.leg("PJSIP/trunk-00000002", state="Ring")
    pbx.new(other)
    varset(pbx, other, "CALLWRIGHT_DID", "5000")  # VarSet events do arrive
    assert queue_of(pbx, caller) == ""
    assert queue_of(pbx, other) == ""


def test_after_a_resync_every_channel_is_unknown_until_a_varset_names_it() -> None:
    pbx = Pbx()
    caller, agent = inbound_call(pbx)
    varset(pbx, caller, QUEUE_VARIABLE, "billing")
    assert queue_of(pbx, caller) == "billing" and queue_of(pbx, agent) == ""

    # The link dropped: the VarSet clearing it (or setting another) may be lost.
    pbx.tracker.resync(listing(pbx.tracker), 100.0)
    assert queue_of(pbx, caller) is None and queue_of(pbx, agent) is None

    # A channel new after the resync: empty once VarSet events are seen again.
    late = pbx.leg("PJSIP/trunk-00000009", state="Ring")
    pbx.new(late)
    assert queue_of(pbx, late) is None
    varset(pbx, late, "CALLWRIGHT_DID", "5000")
    assert queue_of(pbx, late) == ""
    assert queue_of(pbx, caller) is None  # still unknown: no VarSet named it

    varset(pbx, caller, QUEUE_VARIABLE, "support")
    assert queue_of(pbx, caller) == "support"
    varset(pbx, agent, QUEUE_VARIABLE, "")
    assert queue_of(pbx, agent) == ""


def test_channels_first_seen_in_a_resync_are_unknown() -> None:
    tracker = CallTracker()
    row = AmiEvent.build(
        "CoreShowChannel",
        [
            ("Channel", "PJSIP/trunk-00000007"),
            ("ChannelStateDesc", "Up"),
            ("Context", "callwright-hold"),
            ("Exten", "s"),
            ("Uniqueid", "7.7"),
            ("Linkedid", "7.7"),
            ("Duration", "00:00:30"),
        ],
    )
    tracker.resync([row], 10.0)
    tracker.feed(
        AmiEvent.build("VarSet", [("Uniqueid", "7.7"), ("Variable", "X"), ("Value", "1")]), 11.0
    )
    found = tracker.channel("PJSIP/trunk-00000007")
    assert found is not None and found.variable(QUEUE_VARIABLE) is None


def test_a_renamed_channel_is_unknown() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    pbx.event("Rename", caller, ("Newname", "PJSIP/trunk-0000000a"))
    caller.name = "PJSIP/trunk-0000000a"
    assert queue_of(pbx, caller) is None


def test_a_dialed_channel_inherits_only_what_could_be_inherited() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    varset(pbx, caller, QUEUE_VARIABLE, "billing")  # not inheritable
    agent = pbx.leg("PJSIP/1001-00000002", caller.linkedid)
    pbx.new(agent)
    pbx.dial(caller, agent)
    assert queue_of(pbx, agent) == ""

    varset(pbx, caller, "__CALLWRIGHT_QUEUE", "sales")  # Dial copies this one
    second = pbx.leg("PJSIP/1002-00000003", caller.linkedid)
    pbx.new(second)
    pbx.dial(caller, second)
    assert queue_of(pbx, second) is None
    varset(pbx, second, "__CALLWRIGHT_QUEUE", "sales")  # Asterisk's VarSet for the copy
    assert queue_of(pbx, second) == "sales"

    # A dial with no caller (an Originate) copies nothing.
    alone = pbx.leg("PJSIP/1003-00000004")
    pbx.new(alone)
    pbx.dial(None, alone)
    assert queue_of(pbx, alone) == ""


def test_a_dial_from_a_channel_of_unknown_values_makes_the_dialed_one_unknown() -> None:
    pbx = Pbx()
    caller, _agent = inbound_call(pbx)
    pbx.tracker.resync(listing(pbx.tracker), 100.0)
    varset(pbx, caller, "CALLWRIGHT_DID", "5000")  # VarSet events flow again
    consult = pbx.leg("PJSIP/1003-00000005", caller.linkedid)
    pbx.new(consult)
    assert queue_of(pbx, consult) == ""
    pbx.dial(caller, consult)
    assert queue_of(pbx, consult) is None


def test_note_variable_records_a_value_callwright_sets() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    varset(pbx, caller, QUEUE_VARIABLE, "billing")
    emitted = len(pbx.emitted)
    assert pbx.tracker.note_variable(caller.uid, QUEUE_VARIABLE, "") is True
    assert queue_of(pbx, caller) == ""
    assert len(pbx.emitted) == emitted
    # Also on a channel whose value was unknown.
    pbx.tracker.resync(listing(pbx.tracker), 100.0)
    assert queue_of(pbx, caller) is None
    assert pbx.tracker.note_variable(caller.uid, QUEUE_VARIABLE, "") is True
    assert queue_of(pbx, caller) == ""
    assert pbx.tracker.note_variable("no.such", QUEUE_VARIABLE, "") is False


def test_note_variable_refuses_an_unwatched_name_and_changes_nothing() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    varset(pbx, caller, QUEUE_VARIABLE, "billing")
    before = info(pbx, caller)
    with pytest.raises(ValueError, match="'callwright_queue' is not a watched variable"):
        pbx.tracker.note_variable(caller.uid, "callwright_queue", "")
    assert info(pbx, caller) is before and before.variable(QUEUE_VARIABLE) == "billing"


def test_bad_varset_events_are_counted_and_change_nothing() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    varset(pbx, caller, QUEUE_VARIABLE, "billing")
    stats = pbx.tracker.stats
    malformed, orphans = stats.malformed, stats.orphans
    assert pbx.event("VarSet", caller, ("Variable", QUEUE_VARIABLE)) == []  # no Value
    assert pbx.raw("VarSet", ("Variable", QUEUE_VARIABLE), ("Value", "x")) == []  # no Uniqueid
    assert stats.malformed == malformed + 2
    ghost = Leg("PJSIP/ghost-00000001", "404.1", caller.linkedid)
    varset(pbx, ghost, QUEUE_VARIABLE, "x")
    assert stats.orphans == orphans + 1
    assert pbx.raw("VarSet", ("Uniqueid", caller.uid)) == []  # no Variable: ignored
    assert queue_of(pbx, caller) == "billing"
    assert stats.internal_errors == 0


def test_a_channel_without_a_tracker_snapshot_knows_nothing() -> None:
    bare = ChannelInfo(
        name="PJSIP/trunk-1",
        uniqueid="1.1",
        linkedid="1.1",
        state="Up",
        caller=UNKNOWN_PARTY,
        connected=UNKNOWN_PARTY,
        context=None,
        exten=None,
        bridge_id=None,
        on_hold=False,
        created_at=0.0,
        device="PJSIP/trunk",
    )
    assert bare.variable(QUEUE_VARIABLE) is None
    assert bare.variable("ANYTHING") is None


def test_a_new_channel_after_a_resynced_leg_hung_up_is_known_empty() -> None:
    """The sequence the state machine found: a resync lists two legs, one hangs
    up, a Newchannel comes with its name and Uniqueid, then a VarSet. The new
    channel was seen from its Newchannel on a link that delivers VarSet events
    (it is known empty); the resynced leg that no VarSet named stays unknown."""
    pbx = Pbx()
    first = pbx.leg("PJSIP/new-00000001", state="Up")
    second = pbx.leg("PJSIP/new-00000002", state="Up")
    pbx.new(first)
    pbx.new(second)
    pbx.tracker.resync(listing(pbx.tracker), 10.0)
    assert queue_of(pbx, first) is None and queue_of(pbx, second) is None

    pbx.hangup(first, cause=0, text="Unknown")
    assert pbx.tracker.channel(first.name) is None
    pbx.new(first)  # a new channel: nothing of the resynced one carries over
    assert queue_of(pbx, first) is None  # no VarSet on this link since the resync

    varset(pbx, second, "CALLWRIGHT_DID", "5000")
    assert queue_of(pbx, first) == ""
    assert queue_of(pbx, second) is None  # learned through the resync, never named
    varset(pbx, second, QUEUE_VARIABLE, "")
    assert queue_of(pbx, second) == ""


def test_a_varset_for_a_channel_that_is_not_live_sets_nothing() -> None:
    pbx = Pbx()
    caller = caller_at_hold(pbx)
    pbx.hangup(caller)
    orphans = pbx.tracker.stats.orphans
    varset(pbx, caller, QUEUE_VARIABLE, "billing")
    assert pbx.tracker.stats.orphans == orphans + 1
    assert pbx.tracker.channel(caller.name) is None
    # A later Newchannel with that Uniqueid is a new channel (Asterisk never
    # reuses one): the orphan VarSet is not its value.
    pbx.new(caller)
    assert queue_of(pbx, caller) == ""
