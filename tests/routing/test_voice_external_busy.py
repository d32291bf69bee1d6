"""VoiceRouting marks an agent external-busy while their phone is on any call
routing did not give them, and clears it when the last such call is over;
the router hears each change once, whatever the calls' interleaving."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cti.ami.messages import AmiEvent
from cti.calls.model import CallEvent
from cti.calls.tracker import CallTracker
from routing.errors import RoutingError
from routing.voice import VoiceRouting


class _Router:
    def task(self, task_id: str) -> Any:
        raise RoutingError(task_id)


@dataclass
class _Routing:
    told: list[tuple[str, bool]] = field(default_factory=list)
    router: _Router = field(default_factory=_Router)

    async def set_external_busy(self, agent_id: str, busy: bool) -> None:
        self.told.append((agent_id, busy))


class _Unused:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"not expected: {name}")


async def _no_customer(number: str) -> None:
    return None


def leg_event(name: str, channel: str, uid: str, *extra: tuple[str, str]) -> AmiEvent:
    return AmiEvent.build(
        name,
        (
            ("Channel", channel),
            ("ChannelStateDesc", "Up"),
            ("CallerIDNum", "1001"),
            ("CallerIDName", "Alice"),
            ("Context", "callwright-agents"),
            ("Exten", "5550199"),
            ("Uniqueid", uid),
            ("Linkedid", uid),
            *extra,
        ),
    )


async def test_busy_from_the_first_unrouted_call_until_the_last_one_ends() -> None:
    routing = _Routing()
    voice = VoiceRouting(
        routing,  # type: ignore[arg-type]
        _Unused(),  # type: ignore[arg-type]
        lookup_customer=_no_customer,  # matched early for any caller not on an agent's phone
        interactions=_Unused(),  # type: ignore[arg-type]
        extensions={"a1": "1001", "a2": "1002"},
        holding_context="callwright-hold",
        agent_context="callwright-agents",
        default_queue="support",
        active_calls=list,
    )
    tracker = CallTracker()
    now = 1000.0

    async def feed(event: AmiEvent) -> None:
        nonlocal now
        now += 1
        out: list[CallEvent] = tracker.feed(event, now)
        for call_event in out:
            await voice.on_call_event(call_event)

    await feed(leg_event("Newchannel", "PJSIP/1001-00000001", "1.1"))
    assert routing.told == [("a1", True)]
    # A second call of the same phone (call waiting) changes nothing ...
    await feed(leg_event("Newchannel", "PJSIP/1001-00000002", "1.2"))
    await feed(leg_event("Newchannel", "PJSIP/9999-00000003", "1.3"))  # not an agent
    assert routing.told == [("a1", True)]
    # ... nor does the first one ending while the second goes on.
    await feed(leg_event("Hangup", "PJSIP/1001-00000001", "1.1", ("Cause", "16")))
    assert routing.told == [("a1", True)]
    await feed(leg_event("Hangup", "PJSIP/1001-00000002", "1.2", ("Cause", "16")))
    assert routing.told == [("a1", True), ("a1", False)]
    # Another agent's phone: their own change, told once.
    await feed(leg_event("Newchannel", "PJSIP/1002-00000004", "1.4"))
    await feed(leg_event("Hangup", "PJSIP/1002-00000004", "1.4", ("Cause", "16")))
    assert routing.told == [("a1", True), ("a1", False), ("a2", True), ("a2", False)]
