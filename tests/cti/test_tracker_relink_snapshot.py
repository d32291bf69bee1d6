from cti.ami.messages import AmiEvent
from cti.calls.tracker import CallTracker


def event(name: str, **headers: str) -> AmiEvent:
    return AmiEvent.build(name, list(headers.items()))


def test_a_relink_and_a_new_caller_id_in_one_event_leave_no_stale_snapshot() -> None:
    tracker = CallTracker()
    tracker.feed(
        event(
            "Newchannel",
            Channel="PJSIP/a-1",
            ChannelState="4",
            ChannelStateDesc="Ring",
            CallerIDNum="100",
            Uniqueid="a1",
            Linkedid="a1",
        ),
        1.0,
    )
    tracker.feed(
        event(
            "Newchannel",
            Channel="PJSIP/b-1",
            ChannelState="6",
            ChannelStateDesc="Up",
            CallerIDNum="200",
            Uniqueid="b1",
            Linkedid="b1",
        ),
        2.0,
    )
    tracker.feed(
        event(
            "Newstate",
            Channel="PJSIP/b-1",
            ChannelState="6",
            ChannelStateDesc="Up",
            CallerIDNum="999",
            Uniqueid="b1",
            Linkedid="a1",
        ),
        3.0,
    )
    info = tracker.channel("PJSIP/b-1")
    assert info is not None
    assert info.caller.number == "999"
    assert info.linkedid == "a1"
