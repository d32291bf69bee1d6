"""The call records are stored before each call event is announced, with the
call as the tracker knows it then: the first events of a caller, read
together, are stored in one write of the answered call."""

from __future__ import annotations

import asyncio

from cti.ami.messages import AmiEvent
from cti.calls.model import CallEvent

from .conftest import Stack

UID = "1800000000.1"
CHANNEL = f"PJSIP/trunk-{UID}"


def event(name: str, state: str, **extra: str) -> AmiEvent:
    headers = {
        "Channel": CHANNEL,
        "ChannelStateDesc": state,
        "CallerIDNum": "+15550123",
        "CallerIDName": "Ada Caller",
        "Context": "from-trunk",
        "Exten": "5000",
        "Uniqueid": UID,
        "Linkedid": UID,
        **extra,
    }
    return AmiEvent.build(name, tuple(headers.items()))


async def test_a_callers_first_events_read_together_are_stored_in_one_write(stack: Stack) -> None:
    runtime = stack.runtime
    announced: list[tuple[str, str | None]] = []

    async def after_the_store(e: CallEvent) -> None:
        if e.call.id == UID:
            record = await runtime.call_records.get(UID)
            announced.append((type(e).__name__, None if record is None else record.state))

    runtime.calls.subscribe(after_the_store)
    writes = runtime.call_writer.transactions
    # One read of the AMI socket: the caller's channel, answered, on to the
    # next step of its dialplan (not the holding point: no routing here).
    for ami in (
        event("Newchannel", "Ring"),
        event("Newstate", "Up"),
        event("Newexten", "Up", Exten="s"),
    ):
        runtime.calls.on_ami_event(ami)
    async with asyncio.timeout(5):
        await runtime.calls.drain()
    assert runtime.call_writer.transactions - writes == 1
    # Each event was announced with a stored record at least as new as it.
    assert [name for name, _ in announced][:2] == ["CallStarted", "CallAnswered"]
    assert all(state == "up" for _, state in announced)
    record = await runtime.call_records.get(UID)
    assert record is not None and record.answered_at is not None
    assert record.caller_num == "+15550123"

    # The hangup is written on its own, and the record says it ended.
    runtime.calls.on_ami_event(event("Hangup", "Up", Cause="16"))
    async with asyncio.timeout(5):
        await runtime.calls.drain()
    assert runtime.call_writer.transactions - writes == 2
    record = await runtime.call_records.get(UID)
    assert record is not None and record.ended_at is not None and record.hangup_cause == 16
