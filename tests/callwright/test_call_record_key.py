"""A call event writes the call's record only when what the record says
changed (callwright.runtime.record_key): the key holds every written field
but the time of the update."""

from __future__ import annotations

from dataclasses import fields, replace

from callwright.runtime import call_record, record_key
from cti.calls.model import Call, CallState, ChannelInfo, Party

CHANNEL = ChannelInfo(
    name="PJSIP/trunk-00000001",
    uniqueid="1700000000.1",
    linkedid="1700000000.1",
    state="Up",
    caller=Party("+15550001", "Caller 0001"),
    connected=Party(None, None),
    context="callwright-hold",
    exten="s",
    bridge_id=None,
    on_hold=False,
    created_at=1_700_000_000.0,
    device="PJSIP/trunk",
)

CALL = Call(
    id="1700000000.1",
    state=CallState.RINGING,
    channels=(CHANNEL,),
    caller=Party("+15550001", "Caller 0001"),
    callee=Party("5000", None),
    started_at=1_700_000_000.0,
    ringing_at=1_700_000_000.1,
    answered_at=None,
    ended_at=None,
    hangup_cause=None,
    hangup_cause_text=None,
    bridged=False,
    held=False,
    recording=False,
    transferred_to=None,
    queue=None,
    context="callwright-hold",
    exten="s",
)


def written(call: Call) -> tuple[object, ...]:
    record = call_record(call)
    return tuple(getattr(record, f.name) for f in fields(record) if f.name != "updated_at")


def test_a_change_the_record_does_not_hold_keeps_the_key() -> None:
    moved = replace(CALL, context="other", exten="1", queue="support", recording=True)
    assert written(moved) == written(CALL)
    assert record_key(moved) == record_key(CALL)


def test_every_change_the_record_holds_changes_the_key() -> None:
    changes = {
        "state": CallState.UP,
        "caller": Party("+15550002", "Caller 0001"),
        "callee": Party("5000", "Agent 1"),
        "started_at": 1_700_000_001.0,
        "answered_at": 1_700_000_002.0,
        "ended_at": 1_700_000_003.0,
        "hangup_cause": 16,
        "hangup_cause_text": "Normal Clearing",
        "channels": (CHANNEL, replace(CHANNEL, name="PJSIP/1001-00000002")),
    }
    for name, value in changes.items():
        changed = replace(CALL, **{name: value})
        assert written(changed) != written(CALL), name  # the record says it...
        assert record_key(changed) != record_key(CALL), name  # ...so it is written
