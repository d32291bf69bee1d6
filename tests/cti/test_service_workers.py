"""CallService hands call events to its subscribers per call: a call's events
in order, one at a time; with several workers, another call's events are not
held up behind a slow one (a store round trip); a caller's events go ahead of
those of calls with an agent (cti.calls.lanes)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator

import pytest

from cti.ami.messages import AmiEvent
from cti.calls.model import CallEvent
from cti.calls.service import CallService


def newchannel(uid: str, number: str, device: str = "trunk") -> AmiEvent:
    return AmiEvent.build(
        "Newchannel",
        (
            ("Channel", f"PJSIP/{device}-{uid}"),
            ("ChannelStateDesc", "Ring"),
            ("CallerIDNum", number),
            ("CallerIDName", "Caller"),
            ("Context", "from-trunk"),
            ("Exten", "100"),
            ("Uniqueid", uid),
            ("Linkedid", uid),
        ),
    )


def newstate(uid: str, number: str, state: str, device: str = "trunk") -> AmiEvent:
    event = newchannel(uid, number, device)
    headers = [(k, state if k == "ChannelStateDesc" else v) for k, v in event.headers]
    return AmiEvent.build("Newstate", headers[1:])


def hangup(uid: str, number: str, device: str = "trunk") -> AmiEvent:
    event = newchannel(uid, number, device)
    return AmiEvent.build("Hangup", (*event.headers[1:], ("Cause", "16")))


class OneAtATime:
    """The calls whose subscriber was entered again before it had left."""

    def __init__(self) -> None:
        self.in_flight: set[str] = set()
        self.overlapped: list[str] = []

    @contextlib.contextmanager
    def entered(self, call_id: str) -> Iterator[None]:
        if call_id in self.in_flight:
            self.overlapped.append(call_id)
        self.in_flight.add(call_id)
        try:
            yield
        finally:
            self.in_flight.discard(call_id)


async def test_a_slow_call_does_not_hold_up_another_and_each_call_stays_in_order() -> None:
    service = CallService(object(), clock=lambda: 1000.0, workers=4)  # type: ignore[arg-type]
    seen: list[tuple[str, str]] = []
    once = OneAtATime()
    release = asyncio.Event()

    async def slow_store(event: CallEvent) -> None:
        call_id = event.call.id
        with once.entered(call_id):
            if call_id == "1.1":
                await release.wait()  # the first call's store is slow
            await asyncio.sleep(0)
            seen.append((call_id, type(event).__name__))

    service.subscribe(slow_store)
    service.start()
    try:
        for ami in (
            newchannel("1.1", "+15550001"),
            newchannel("2.1", "+15550002"),
            newstate("1.1", "+15550001", "Up"),
            newstate("2.1", "+15550002", "Up"),
            hangup("2.1", "+15550002"),
            hangup("1.1", "+15550001"),
        ):
            service.on_ami_event(ami)
        # The second call is handled to its end while the first waits.
        async with asyncio.timeout(5):
            while [k for c, k in seen if c == "2.1"][-1:] != ["CallEnded"]:
                await asyncio.sleep(0.01)
        assert [c for c, _ in seen] == ["2.1"] * len(seen)
        release.set()
        async with asyncio.timeout(5):
            await service.drain()
    finally:
        await service.stop()
    first = [k for c, k in seen if c == "1.1"]
    second = [k for c, k in seen if c == "2.1"]
    assert first == second == ["CallStarted", "CallAnswered", "CallEnded"]
    assert once.overlapped == []  # never two events of one call at once


async def handed_on(*amis: AmiEvent) -> list[tuple[str, str]]:
    """What one worker hands its subscriber for ``amis`` fed in one go."""
    service = CallService(object(), clock=lambda: 1000.0)  # type: ignore[arg-type]
    seen: list[tuple[str, str]] = []
    service.subscribe(lambda e: seen.append((e.call.id, type(e).__name__)))
    service.start()
    try:
        for ami in amis:
            service.on_ami_event(ami)
        async with asyncio.timeout(5):
            await service.drain()
    finally:
        await service.stop()
    return seen


async def test_one_worker_handles_the_calls_in_arrival_order() -> None:
    seen = await handed_on(
        newchannel("1.1", "+15550001"),
        newchannel("2.1", "+15550002"),
        hangup("1.1", "+15550001"),
    )
    assert seen == [("1.1", "CallStarted"), ("2.1", "CallStarted"), ("1.1", "CallEnded")]


async def test_a_callers_events_go_ahead_of_those_of_calls_with_an_agent() -> None:
    # An agent's own call (the agent's phone, not the trunk) and then a
    # caller on the trunk: the caller's event is handed on first.
    seen = await handed_on(
        newchannel("1.1", "1001", device="1001"),
        newstate("1.1", "1001", "Up", device="1001"),
        newchannel("2.1", "+15550002"),
        hangup("1.1", "1001", device="1001"),
    )
    assert seen == [
        ("2.1", "CallStarted"),
        ("1.1", "CallStarted"),
        ("1.1", "CallAnswered"),
        ("1.1", "CallEnded"),
    ]


@pytest.mark.parametrize("seed", range(8))
async def test_every_event_reaches_the_subscriber_once_in_its_calls_order(seed: int) -> None:
    # Calls of both lanes, events fed while the consumers are between two
    # events, subscribers that yield a varying number of times: nothing is
    # lost, nothing repeated, no call's events reordered or overlapped.
    rng = random.Random(seed)
    service = CallService(object(), clock=lambda: 1000.0, workers=4)  # type: ignore[arg-type]
    seen: dict[str, list[str]] = {}
    once = OneAtATime()

    async def subscriber(event: CallEvent) -> None:
        with once.entered(event.call.id):
            for _ in range(rng.choice((0, 0, 1, 3))):
                await asyncio.sleep(0)
            seen.setdefault(event.call.id, []).append(type(event).__name__)

    service.subscribe(subscriber)
    service.start()
    calls = [(f"{i}.1", f"+1555{i:04d}", rng.choice(("trunk", "1001"))) for i in range(40)]
    # Each call's events in order; the calls interleaved at random.
    steps = [[newchannel(u, n, d), newstate(u, n, "Up", d), hangup(u, n, d)] for u, n, d in calls]
    try:
        while any(steps):
            ami = rng.choice([s for s in steps if s]).pop(0)
            service.on_ami_event(ami)
            for _ in range(rng.choice((0, 1, 2))):
                await asyncio.sleep(0)
        async with asyncio.timeout(5):
            await service.drain()
    finally:
        await service.stop()
    assert once.overlapped == []
    assert seen == {u: ["CallStarted", "CallAnswered", "CallEnded"] for u, _, _ in calls}
    assert service.backlog() == 0


def test_workers_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        CallService(object(), clock=lambda: 0.0, workers=0)  # type: ignore[arg-type]
