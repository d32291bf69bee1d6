"""Call control and the live call model: the shell around the pure tracker.

The service feeds AMI events into ``CallTracker`` (in wire order, from the
link's reader), queues the resulting domain events, and consumer tasks hand
each to the subscribers in order: the store first (so that a call is stored
before it is announced), then the notifiers. The events of one call reach the
subscribers one at a time, in order; with ``workers`` > 1 the events of
different calls are handled concurrently (one call's store round trip does not
hold up the next caller's offer). Events of callers on their way to an agent
go ahead of the rest (``cti.calls.lanes``), and a consumer lets the event
loop run after each of the rest (and between its subscribers), so a new
caller's event read meanwhile can go first.

Call control maps a request on a Callwright call to AMI actions on the right
channel. Which leg is which: the customer leg is the channel on the trunk
endpoint (``PJSIP/<trunk>``); the agent leg is any other channel of the call.

Listen, whisper, barge (``spy``): an Originate of the supervisor's phone to
Asterisk's ChanSpy application on the agent's leg of the call (never the
customer's); the sessions are followed through ChanSpyStart / ChanSpyStop
and the spy channel's Hangup (``spies()``).

Idempotency: ``originate``, ``transfer`` and ``spy`` take a key. The first request with
a key runs; a repeat with the same key waits for and returns the first one's
outcome and never sends a second action. If the first attempt's outcome is
unknown (the link dropped while it was in flight), a repeat is refused with
``OutcomeUnknown`` rather than risking a second call. With a ``key_store``
(``cti.keys``, set by the composition root) the keys are in the store: claimed
before the action is sent, the outcome stored after, so a repeat after a
restart (or on another node) answers the first outcome too; a key a crashed
run left in flight is refused as unknown.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Protocol

from cti.ami.messages import AmiAction, AmiEvent, AmiResponse
from cti.calls.lanes import Lanes
from cti.calls.model import QUEUE_VARIABLE, Call, CallEnded, CallEvent, CallState, ChannelInfo
from cti.calls.tracker import CallTracker
from cti.errors import (
    ActionFailed,
    CallControlError,
    CtiError,
    InvalidRequest,
    LinkLost,
    UnknownCall,
    WrongState,
)

__all__ = [
    "QUEUE_VARIABLE",
    "SPY_MODES",
    "AmiClient",
    "CallService",
    "DialplanSettings",
    "OriginateResult",
    "OutcomeUnknown",
    "SpySession",
    "TransferResult",
]

log = logging.getLogger(__name__)

Subscriber = Callable[[CallEvent], Awaitable[None] | None]

# How long an event of a call with an agent (a hangup, a bridge) may wait
# behind callers' events before it goes first all the same (cti.calls.lanes).
MAX_DEFER = 0.25


class AmiClient(Protocol):
    async def send(self, action: AmiAction, *, timeout: float | None = None) -> AmiResponse: ...

    async def send_list(
        self, action: AmiAction, *, timeout: float | None = None
    ) -> tuple[AmiResponse, list[AmiEvent]]: ...


class OutcomeUnknown(CallControlError):
    """An earlier request with this idempotency key was in flight when the AMI
    link dropped: it may or may not have happened, so it is not repeated."""


@dataclass(frozen=True)
class DialplanSettings:
    trunk_endpoint: str = "trunk"
    agent_context: str = "callwright-agent"
    outbound_context: str = "callwright-outbound"
    onhold_context: str = "callwright-onhold"
    agent_hold_context: str = "callwright-agent-hold"
    originate_timeout_ms: int = 30000
    holding_context: str = "callwright-hold"  # callers waiting for an agent
    payment_context: str = "callwright-payment"  # the card payment line ("": none)

    @property
    def trunk_device(self) -> str:
        """The device of every customer leg."""
        return f"PJSIP/{self.trunk_endpoint}"


@dataclass(frozen=True)
class OriginateResult:
    idempotency_key: str
    agent_device: str
    number: str
    action_id: str | None
    repeated: bool = False


@dataclass(frozen=True)
class TransferResult:
    idempotency_key: str
    call_id: str
    kind: str
    target: str
    repeated: bool = False


# Where ``transfer`` sends a caller (``to``).
TRANSFER_TO: Final = ("agent", "number", "queue", "payment")

# ChanSpy options per mode (Asterisk 22 app_chanspy): q no beep or name
# announcement, E leave when the spied-on channel hangs up, S stop when no
# channel is left to spy on (never wait on a silent line for another one), u
# the first argument is an exact channel name (no prefix match: never another
# agent's channel); w whisper to the agent only, B barge: talk to both parties.
SPY_MODES: Final[Mapping[str, str]] = {"listen": "qESu", "whisper": "qESuw", "barge": "qESuB"}


@dataclass(frozen=True)
class SpySession:
    """A supervisor's listen/whisper/barge session. ``spy_id`` is the spy
    channel's Uniqueid (assigned by Callwright in the Originate) and so also the
    call id the tracker gives the supervisor's own leg."""

    spy_id: str
    call_id: str  # the spied-on call
    mode: str
    device: str  # the supervisor's endpoint, "1009"
    spied_channel: str  # the agent's channel
    spy_channel: str | None = None  # the supervisor's channel, once it exists
    started: bool = False  # ChanSpyStart seen: the supervisor is listening
    idempotency_key: str = ""
    repeated: bool = False


# Extensions and numbers: digits, optionally a leading +, plus * and # for
# feature codes. Anything else never reaches a dialplan.
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_DEVICE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# A transfer to a queue: the customer's channel carries the queue id in
# QUEUE_VARIABLE (cti.calls.model) to the holding context, where voice routing
# reads it (and clears it): requested_queue.


def check_number(value: object, field: str) -> str:
    if not isinstance(value, str) or not _NUMBER.match(value.replace(" ", "")):
        raise InvalidRequest(f"{field}: expected a phone number or extension (digits, optional +)")
    return value.replace(" ", "")


def check_device(value: object, field: str) -> str:
    if not isinstance(value, str) or not _DEVICE.match(value):
        raise InvalidRequest(f"{field}: expected a device name such as 1001 (letters, digits, - _)")
    return value


def check_key(value: object, field: str = "idempotency_key") -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise InvalidRequest(f"{field}: expected 1-100 characters of letters, digits . _ : -")
    return value


class StoredOutcome(Protocol):
    @property
    def state(self) -> str: ...  # in_flight | done | unknown

    @property
    def result(self) -> Mapping[str, Any] | None: ...


class KeyStore(Protocol):
    """``cti.keys.CallControlKeys``: the idempotency keys, in the store."""

    async def claim(self, key: str) -> StoredOutcome | None: ...
    async def finish(self, key: str, result: dict[str, Any]) -> None: ...
    async def unknown(self, key: str) -> None: ...
    async def release(self, key: str) -> None: ...


# What a key's action gives, stored by its type's name (``KeyStore.finish``).
_OUTCOMES: Final[Mapping[str, type]] = {
    "OriginateResult": OriginateResult,
    "TransferResult": TransferResult,
    "SpySession": SpySession,
}


class _Idempotency:
    """Outcomes by key in this process, oldest forgotten first: concurrent
    repeats wait on the first request. What outlives a restart is in the
    ``KeyStore``."""

    def __init__(self, size: int = 10000) -> None:
        self.size = size
        self._entries: OrderedDict[str, asyncio.Future[object]] = OrderedDict()

    def get(self, key: str) -> asyncio.Future[object] | None:
        return self._entries.get(key)

    def begin(self, key: str) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._entries[key] = future
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return future

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


class CallService:
    def __init__(
        self,
        ami: AmiClient,
        *,
        dialplan: DialplanSettings | None = None,
        clock: Callable[[], float],
        tracker: CallTracker | None = None,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.ami = ami
        self.dialplan = dialplan or DialplanSettings()
        self.clock = clock
        self.tracker = tracker or CallTracker()
        self._subscribers: list[Subscriber] = []
        self._lanes: Lanes[CallEvent] = Lanes(MAX_DEFER)
        self._ready = asyncio.Event()  # set when the lanes hold an event
        self._unfinished = 0  # events queued and not yet through every subscriber
        self._finished = asyncio.Event()  # set when _unfinished is 0
        self._finished.set()
        # Calls whose caller had no agent at their last event: a CallEnded
        # (which has no channels left to tell by) of one of them is an
        # abandoned caller's, and goes in the first lane.
        self._callers_turn: set[str] = set()
        self._consumer: asyncio.Task[None] | None = None
        self._extra_consumers: list[asyncio.Task[None]] = []
        # Calls a consumer is handling -> their events taken from the queue
        # meanwhile (that consumer handles them next, in order).
        self._busy: dict[str, collections.deque[CallEvent]] = {}
        self._resyncing = False
        self._held_back: list[AmiEvent] = []
        self._keys = _Idempotency()
        # The keys in the store (cti.keys): a restart, or another node, does not
        # run a key's action again. None: in memory only.
        self.key_store: KeyStore | None = None
        # The routing queues a call may be transferred to (the composition root
        # sets it once routing exists); None: no transfer to a queue.
        self.queue_ids: Callable[[], Collection[str]] | None = None
        self.resyncs = 0
        self.subscriber_errors = 0
        # requested_queue reads that needed a Getvar (the tracker did not know
        # the value: a channel from a resync, or no VarSet events on the link).
        self.queue_getvars = 0
        # Agent legs parked in the agent-hold context whose customer is gone.
        # Calls with a channel in that context, as their events say (so a
        # Hangup looks at those, not at a snapshot of every live call).
        self._parked_calls: set[str] = set()
        self._released: set[str] = set()  # Uniqueids a Hangup was sent for
        self._releases: set[asyncio.Task[None]] = set()
        self.parked_released = 0
        # Listen/whisper/barge sessions by spy channel Uniqueid; the action ids
        # of their Originates; Originates that failed before their id was known.
        self._spies: dict[str, SpySession] = {}
        self._spy_actions: dict[str, str] = {}
        self._failed_originates: OrderedDict[str, None] = OrderedDict()

    # -- wiring ----------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        """Subscribers run in the order they subscribed, one event of a call at
        a time (events of different calls may be in flight together)."""
        self._subscribers.append(subscriber)

    def start(self) -> None:
        if self._consumer is None:
            self._consumer = asyncio.create_task(self._consume(), name="call-events")
            self._extra_consumers = [
                asyncio.create_task(self._consume(), name=f"call-events-{i}")
                for i in range(1, self.workers)
            ]

    async def stop(self) -> None:
        task, self._consumer = self._consumer, None
        tasks = [] if task is None else [task, *self._extra_consumers]
        self._extra_consumers = []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        releases, self._releases = self._releases, set()
        for release in releases:
            release.cancel()
        for release in releases:
            with contextlib.suppress(asyncio.CancelledError):
                await release

    async def drain(self) -> None:
        """Wait until every domain event so far has reached every subscriber."""
        await self._finished.wait()

    def backlog(self) -> int:
        """Domain events queued that no consumer has taken yet."""
        return len(self._lanes)

    def on_ami_event(self, event: AmiEvent) -> None:
        """The link's event callback: synchronous, in wire order."""
        if event.name in _SPY_EVENTS:
            self._follow_spies(event)
        if self._resyncing:
            self._held_back.append(event)
            return
        self._publish(self.tracker.feed(event, self.clock()))
        if event.name == "Hangup":
            self._release_parked_agents()

    async def resync(self) -> None:
        """Rebuild the model from the PBX (the link's ready callback)."""
        self._resyncing = True
        try:
            _, items = await self.ami.send_list(AmiAction.build("CoreShowChannels"))
            self._publish(self.tracker.resync(items, self.clock()))
            self._spies_from_snapshot(items)
            # Events that raced the snapshot: apply them on top of it.
            held, self._held_back = self._held_back, []
            now = self.clock()
            for event in held:
                self._publish(self.tracker.feed(event, now))
            self.resyncs += 1
            self._release_parked_agents()
        finally:
            self._resyncing = False
            for event in self._held_back:
                self._publish(self.tracker.feed(event, self.clock()))
            self._held_back = []

    def _publish(self, events: Sequence[CallEvent]) -> None:
        hold = self.dialplan.agent_hold_context
        trunk = self.dialplan.trunk_device
        now = asyncio.get_running_loop().time()
        for event in events:
            call = event.call
            if call.ended_at is None and any(ch.context == hold for ch in call.channels):
                self._parked_calls.add(call.id)
            else:
                self._parked_calls.discard(call.id)
            if isinstance(event, CallEnded):
                first = call.id in self._callers_turn
                self._callers_turn.discard(call.id)
            elif call.channels and all(ch.device == trunk for ch in call.channels):
                # Only the caller: ringing, in an IVR, waiting for an agent.
                first = True
                self._callers_turn.add(call.id)
            else:
                first = False
                self._callers_turn.discard(call.id)
            self._lanes.put(call.id, event, first=first, now=now)
            self._unfinished += 1
            self._finished.clear()
        if self._lanes:
            self._ready.set()

    def _release_parked_agents(self) -> None:
        for call_id in sorted(self._parked_calls):
            self._release_parked_agent(call_id)

    def _release_parked_agent(self, call_id: str) -> None:
        """A customer who hangs up while on Callwright's hold leaves the agent's
        leg in the agent-hold context (Wait, silence) with nothing to come
        back to: on Asterisk 22 it would stay there until the agent hangs up.
        When only parked agent legs (and their Local halves) are left, hang
        them up."""
        call = self.tracker.get(call_id)
        if call is None or call.ended_at is not None:
            return
        parked = [
            ch
            for ch in call.channels
            if ch.context == self.dialplan.agent_hold_context and ch.bridge_id is None
        ]
        if not parked:
            return
        halves = {_local_base(ch.name) for ch in parked} - {None}
        if any(ch not in parked and _local_base(ch.name) not in halves for ch in call.channels):
            return  # the customer (or someone else) is still there
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for ch in parked:
            if ch.uniqueid in self._released:
                continue
            self._released.add(ch.uniqueid)
            if len(self._released) > 10000:
                self._released.clear()
            task = loop.create_task(self._release(ch.name), name="release-parked-agent")
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    async def _release(self, channel: str) -> None:
        log.info("hanging up %s: parked on hold and its customer is gone", channel)
        try:
            await self.ami.send(AmiAction.build("Hangup", {"Channel": channel, "Cause": "16"}))
            self.parked_released += 1
        except CtiError as exc:  # gone already, or the link dropped: nothing to do
            log.debug("releasing parked %s: %s", channel, exc)

    def _task_done(self) -> None:
        self._unfinished -= 1
        if self._unfinished == 0:
            self._finished.set()

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            taken = self._lanes.take(loop.time())
            if taken is None:
                self._ready.clear()
                await self._ready.wait()
                continue
            event, callers = taken
            call_id = event.call.id
            later = self._busy.get(call_id)
            if later is not None:
                # Another consumer is on this call: it takes this one next, so
                # the call's events stay in order. (No await between the take
                # and this check: the lanes' order is the order handled.)
                later.append(event)
                continue
            later = self._busy[call_id] = collections.deque([event])
            try:
                while later:
                    await self._deliver(later.popleft(), pause=not callers)
            finally:
                del self._busy[call_id]
                for _ in later:  # cancelled (stop) with events left
                    self._task_done()
            if not callers:
                # Let the loop read what came meanwhile: a caller's event
                # then goes ahead of this consumer's next one. (Without
                # this, a consumer worked through the whole backlog in one
                # step of the loop, up to 31 ms at 50 calls/s.) A caller's
                # own events go on without the pause. (After the call is no
                # longer busy: its events that come meanwhile go through
                # the lanes.)
                await asyncio.sleep(0)

    async def _deliver(self, event: CallEvent, *, pause: bool = False) -> None:
        """``pause``: let the event loop run between two subscribers (an
        event no caller waits for: its subscribers' work, 2-4 ms for a
        hangup at 50 calls/s, does not hold up a caller's event read
        meanwhile for all of that time)."""
        try:
            for i, subscriber in enumerate(self._subscribers):
                if pause and i:
                    await asyncio.sleep(0)
                try:
                    result = subscriber(event)
                    if result is not None:
                        await result
                except Exception:
                    self.subscriber_errors += 1
                    log.exception("call event subscriber failed on %s", type(event).__name__)
        finally:
            self._task_done()

    # -- queries ---------------------------------------------------------

    def calls(self) -> list[Call]:
        return self.tracker.calls()

    def get(self, call_id: str) -> Call:
        call = self.tracker.get(call_id)
        if call is None or call.ended_at is not None:
            raise UnknownCall(f"no active call {call_id!r}")
        return call

    def customer_leg(self, call: Call) -> ChannelInfo:
        trunk = self.dialplan.trunk_device
        for channel in call.channels:
            if channel.device == trunk:
                return channel
        if not call.channels:
            raise UnknownCall(f"call {call.id!r} has no live channel")
        return call.channels[0]

    def agent_leg(self, call: Call) -> ChannelInfo:
        customer = self.customer_leg(call)
        for channel in call.channels:
            if channel.name != customer.name:
                return channel
        raise CallControlError(f"call {call.id!r} has no agent leg")

    # -- control ---------------------------------------------------------

    async def originate(
        self,
        agent_device: str,
        number: str,
        *,
        idempotency_key: str,
        caller_id: str | None = None,
    ) -> OriginateResult:
        """Click-to-dial: ring the agent's device first; when it answers, the
        dialplan dials the customer and bridges them."""
        device = check_device(agent_device, "agent_device")
        number = check_number(number, "number")
        key = check_key(idempotency_key)

        async def run() -> OriginateResult:
            action = AmiAction.build(
                "Originate",
                {
                    "Channel": f"PJSIP/{device}",
                    "Context": self.dialplan.outbound_context,
                    "Exten": number,
                    "Priority": "1",
                    "Timeout": str(self.dialplan.originate_timeout_ms),
                    "CallerID": caller_id or f"<{number}>",
                    "Async": "true",
                },
                variables={"CALLWRIGHT_KEY": key},
            )
            response = await self.ami.send(action)
            return OriginateResult(key, device, number, response.action_id)

        result = await self._once(key, run)
        assert isinstance(result, OriginateResult)
        return result

    async def hangup(self, call_id: str, *, cause: int = 16) -> None:
        call = self.get(call_id)
        # Hanging up the customer leg ends the call for everybody on it.
        channel = self.customer_leg(call)
        await self.ami.send(
            AmiAction.build("Hangup", {"Channel": channel.name, "Cause": str(cause)})
        )

    async def transfer(
        self,
        call_id: str,
        target: str,
        *,
        kind: str = "blind",
        to: str = "agent",
        idempotency_key: str,
    ) -> TransferResult:
        """Blind or attended transfer of the customer to an agent's extension
        (``to="agent"``) or an external number (``to="number"``); blind to a
        routing queue (``to="queue"``, target = the queue id): the customer goes
        back to the holding context carrying the queue in ``CALLWRIGHT_QUEUE``,
        and voice routing queues the call there. Blind to the card payment line
        (``to="payment"``, no target: ``DialplanSettings.payment_context``),
        whose flow pauses the recording while the card number is typed and
        then sends the caller back to their queue."""
        if kind not in ("blind", "attended"):
            raise InvalidRequest("kind: expected 'blind' or 'attended'")
        if to not in TRANSFER_TO:
            raise InvalidRequest("to: expected 'agent', 'number', 'queue' or 'payment'")
        if to == "queue":
            return await self._transfer_to_queue(call_id, target, kind, idempotency_key)
        if to == "payment":
            return await self._transfer_to_payment(call_id, target, kind, idempotency_key)
        target = check_number(target, "target")
        key = check_key(idempotency_key)
        call = self.get(call_id)
        agent = self.agent_leg(call)
        context = self.dialplan.agent_context if to == "agent" else self.dialplan.outbound_context

        async def run() -> TransferResult:
            name = "BlindTransfer" if kind == "blind" else "Atxfer"
            # Atxfer: '#' ends Asterisk's transfer digits at once (else it
            # waits transferdigittimeout, as "1003" could still grow).
            exten = target if kind == "blind" else f"{target}#"
            await self.ami.send(
                AmiAction.build(name, {"Channel": agent.name, "Context": context, "Exten": exten})
            )
            return TransferResult(key, call.id, kind, target)

        result = await self._once(key, run)
        assert isinstance(result, TransferResult)
        return result

    async def _transfer_to_payment(
        self, call_id: str, target: object, kind: str, idempotency_key: str
    ) -> TransferResult:
        context = self.dialplan.payment_context
        if not context:
            raise InvalidRequest("to: no payment line here ([pbx] payment_context is empty)")
        if kind != "blind":
            raise InvalidRequest("kind: a transfer to the payment line is blind")
        if target not in (None, "", "payment"):
            raise InvalidRequest("target: a transfer to the payment line takes no target")
        key = check_key(idempotency_key)
        call = self.get(call_id)
        agent = self.agent_leg(call)

        async def run() -> TransferResult:
            # The agent's leg hangs up; the caller runs the payment flow.
            await self.ami.send(
                AmiAction.build(
                    "BlindTransfer", {"Channel": agent.name, "Context": context, "Exten": "s"}
                )
            )
            return TransferResult(key, call.id, kind, "payment")

        result = await self._once(key, run)
        assert isinstance(result, TransferResult)
        return result

    async def _transfer_to_queue(
        self, call_id: str, target: object, kind: str, idempotency_key: str
    ) -> TransferResult:
        if kind != "blind":
            raise InvalidRequest("kind: a transfer to a queue is blind")
        known = None if self.queue_ids is None else set(self.queue_ids())
        if not isinstance(target, str) or not _QUEUE.match(target):
            raise InvalidRequest("target: expected a queue id (letters, digits, - _)")
        if known is None or target not in known:
            raise InvalidRequest(
                f"target: no queue {target!r} (queues: {', '.join(sorted(known or ())) or 'none'})"
            )
        key = check_key(idempotency_key)
        call = self.get(call_id)
        customer = self.customer_leg(call)
        agent = self.agent_leg(call)
        queue = target

        async def run() -> TransferResult:
            await self.ami.send(
                AmiAction.build(
                    "Setvar",
                    {"Channel": customer.name, "Variable": QUEUE_VARIABLE, "Value": queue},
                )
            )
            try:
                await self.ami.send(
                    AmiAction.build(
                        "BlindTransfer",
                        {
                            "Channel": agent.name,
                            "Context": self.dialplan.holding_context,
                            "Exten": "s",
                        },
                    )
                )
            except CtiError:
                # Refused: the customer stays with the agent; never leave the
                # variable behind to send a later requeue to this queue.
                with contextlib.suppress(CtiError):
                    await self._clear_queue_variable(customer.name)
                raise
            return TransferResult(key, call.id, kind, queue)

        result = await self._once(key, run)
        assert isinstance(result, TransferResult)
        return result

    async def requested_queue(self, call_id: str) -> str | None:
        """The queue a transfer asked for (``CALLWRIGHT_QUEUE`` on the customer's
        channel), read once: the variable is cleared. None when not set (or
        not a queue id).

        The value comes from the call tracker, which follows the variable
        through VarSet events, with no AMI round trip; only when the tracker
        does not know it (a channel learned through a resync, a link that
        delivers no VarSet events, a resync under way: the model is the one
        from before the link dropped) is it asked for with a Getvar."""
        call = self.get(call_id)
        customer = self.customer_leg(call)
        known = None if self._resyncing else customer.variable(QUEUE_VARIABLE)
        if known is None:
            self.queue_getvars += 1
            response = await self.ami.send(
                AmiAction.build("Getvar", {"Channel": customer.name, "Variable": QUEUE_VARIABLE})
            )
            known = response.get("Value") or ""
        value = known.strip()
        if not value:
            return None
        # Cleared in the tracker's view at once (a later read, before the
        # Setvar's VarSet comes back, must not see it again), then on the PBX.
        self.tracker.note_variable(customer.uniqueid, QUEUE_VARIABLE, "")
        await self._clear_queue_variable(customer.name)
        return value if _QUEUE.match(value) else None

    async def _clear_queue_variable(self, channel: str) -> None:
        await self.ami.send(
            AmiAction.build("Setvar", {"Channel": channel, "Variable": QUEUE_VARIABLE, "Value": ""})
        )

    async def complete_transfer(self, call_id: str) -> None:
        """Complete an attended transfer: the transferer (the agent) leaves."""
        call = self.get(call_id)
        agent = self.agent_leg(call)
        await self.ami.send(AmiAction.build("Hangup", {"Channel": agent.name, "Cause": "16"}))

    async def cancel_transfer(self, call_id: str) -> None:
        call = self.get(call_id)
        agent = self.agent_leg(call)
        await self.ami.send(AmiAction.build("CancelAtxfer", {"Channel": agent.name}))

    async def hold(self, call_id: str) -> None:
        """Customer to music, agent's leg parked in silence (one Redirect with
        ExtraChannel moves both legs out of the bridge together)."""
        call = self.get(call_id)
        if call.held:
            return
        customer = self.customer_leg(call)
        agent = self.agent_leg(call)
        await self.ami.send(
            AmiAction.build(
                "Redirect",
                {
                    "Channel": customer.name,
                    "Context": self.dialplan.onhold_context,
                    "Exten": "s",
                    "Priority": "1",
                    "ExtraChannel": agent.name,
                    "ExtraContext": self.dialplan.agent_hold_context,
                    "ExtraExten": "s",
                    "ExtraPriority": "1",
                },
            )
        )

    async def unhold(self, call_id: str) -> None:
        call = self.get(call_id)
        if not call.held:
            return
        customer = self.customer_leg(call)
        agent = self.agent_leg(call)
        if customer.bridge_id is not None and customer.bridge_id == agent.bridge_id:
            # Still bridged together: the hold is the phone's own (a Hold event
            # from its re-INVITE), not Callwright's double Redirect. Asterisk
            # 22's Bridge action on two channels that already share a bridge
            # moves the first into a new bridge, answers "Unable to add
            # Channel2 to bridge" and the call falls apart (both legs hang up).
            raise WrongState(
                "hold: this call was put on hold from the phone, not by Callwright; "
                "take it off hold on the phone"
            )
        if customer.bridge_id is not None or agent.bridge_id is not None:
            # Not Callwright's hold (both legs out of any bridge), e.g. an
            # attended transfer's consultation. Asterisk refuses the Bridge
            # ("Unable to add Channel1 to bridge") but stops the customer's
            # music on hold on the way.
            raise WrongState(
                "hold: this call is not on Callwright's hold (is an attended transfer "
                "in progress? complete or cancel it)"
            )
        await self.ami.send(
            AmiAction.build(
                "Bridge", {"Channel1": customer.name, "Channel2": agent.name, "Tone": "no"}
            )
        )

    async def redirect(self, call_id: str, context: str, exten: str, priority: int = 1) -> None:
        call = self.get(call_id)
        if not _DEVICE.match(context):
            raise InvalidRequest("context: expected a dialplan context name")
        exten = check_number(exten, "exten") if exten != "s" else exten
        await self.ami.send(
            AmiAction.build(
                "Redirect",
                {
                    "Channel": self.customer_leg(call).name,
                    "Context": context,
                    "Exten": exten,
                    "Priority": str(priority),
                },
            )
        )

    # -- listen, whisper, barge (ChanSpy) ----------------------------------

    def spies(self, call_id: str | None = None) -> list[SpySession]:
        """Live and starting spy sessions (of one spied-on call, or all)."""
        return [s for s in self._spies.values() if call_id is None or s.call_id == call_id]

    def spied_leg(self, call: Call) -> ChannelInfo:
        """The agent's channel of a call that is up: a phone (PJSIP, not the
        trunk) that answered. The customer's leg is never spied on."""
        if call.answered_at is None or call.state not in (CallState.UP, CallState.HELD):
            raise WrongState(f"call {call.id!r} is not answered yet ({call.state.value})")
        trunk = self.dialplan.trunk_device
        for channel in call.channels:
            device = channel.device or ""
            if device.startswith("PJSIP/") and device != trunk and channel.state == "Up":
                return channel
        raise WrongState(f"call {call.id!r} has no agent leg to listen to")

    async def spy(
        self, call_id: str, supervisor_device: str, mode: str, *, idempotency_key: str
    ) -> SpySession:
        """Ring ``supervisor_device``; when answered, Asterisk's ChanSpy listens
        to (``listen``), talks to the agent only (``whisper``) or to both
        parties (``barge``) on the agent's leg of ``call_id``. The
        supervisor's earlier session on this call, if any, is hung up first
        (this is how the mode is switched)."""
        if mode not in SPY_MODES:
            raise InvalidRequest(f"mode: expected one of {', '.join(SPY_MODES)}")
        device = check_device(supervisor_device, "device")
        key = check_key(idempotency_key)
        call = self.get(call_id)
        if call.id in self._spies:
            raise WrongState(f"call {call.id!r} is a listening session, not a call to listen to")
        agent = self.spied_leg(call)
        if agent.device == f"PJSIP/{device}":
            raise WrongState(f"device {device} is the agent's own phone on call {call.id!r}")

        async def run() -> SpySession:
            await self._stop_spies(call.id, device)
            spy_id = f"cw-spy-{uuid.uuid4().hex[:20]}"
            session = SpySession(spy_id, call.id, mode, device, agent.name, idempotency_key=key)
            extension = (agent.device or "").removeprefix("PJSIP/")
            action = AmiAction.build(
                "Originate",
                {
                    "Channel": f"PJSIP/{device}",
                    "Application": "ChanSpy",
                    "Data": f"{agent.name},{SPY_MODES[mode]}",
                    "Timeout": str(self.dialplan.originate_timeout_ms),
                    "CallerID": f'"{mode.title()} {extension}" <{extension}>',
                    "Async": "true",
                    "ChannelId": spy_id,
                },
                variables={"CALLWRIGHT_KEY": key},
            )
            # Known before the Originate goes out: its events may come first.
            self._spies[spy_id] = session
            try:
                response = await self.ami.send(action)
            except BaseException:
                self._spies.pop(spy_id, None)
                raise
            action_id = response.action_id
            if action_id is not None:
                if action_id in self._failed_originates:
                    del self._failed_originates[action_id]
                    self._spies.pop(spy_id, None)  # failed before we got here
                else:
                    self._spy_actions[action_id] = spy_id
            log.info(
                "spy %s: %s on %s (call %s) from %s", spy_id, mode, agent.name, call.id, device
            )
            return session

        result = await self._once(key, run)
        assert isinstance(result, SpySession)
        return self._spies.get(result.spy_id, result) if not result.repeated else result

    async def stop_spy(self, call_id: str, supervisor_device: str) -> list[str]:
        """Hang up ``supervisor_device``'s sessions on ``call_id``; returns
        their spy ids. ``WrongState`` if there is none."""
        device = check_device(supervisor_device, "device")
        stopped = await self._stop_spies(call_id, device)
        if not stopped:
            raise WrongState(f"device {device} is not listening to call {call_id!r}")
        return stopped

    async def _stop_spies(self, call_id: str, device: str) -> list[str]:
        stopped = []
        for session in self.spies(call_id):
            if session.device != device:
                continue
            # Asterisk finds a channel by name or by Uniqueid: a session whose
            # channel is not known yet is hung up by the id it was given.
            target = session.spy_channel or session.spy_id
            try:
                await self.ami.send(AmiAction.build("Hangup", {"Channel": target, "Cause": "16"}))
            except ActionFailed as exc:  # "No such channel": gone already
                log.debug("stopping spy %s: %s", session.spy_id, exc)
            self._spies.pop(session.spy_id, None)
            stopped.append(session.spy_id)
        return stopped

    def _follow_spies(self, event: AmiEvent) -> None:
        name = event.name
        if name == "ChanSpyStart":
            spy_id = event.get("SpyerUniqueid") or ""
            session = self._spies.get(spy_id)
            if session is None:
                # Started elsewhere (a feature code in the dialplan): shown anyway.
                spied = event.get("SpyeeChannel") or ""
                call = self.tracker.call_for_channel(spied)
                if not spy_id or call is None:
                    return
                session = SpySession(spy_id, call.id, "unknown", _device_of(event), spied)
            self._spies[spy_id] = replace(
                session, started=True, spy_channel=event.get("SpyerChannel")
            )
        elif name == "ChanSpyStop":
            session = self._spies.get(event.get("SpyerUniqueid") or "")
            if session is not None:
                self._spies[session.spy_id] = replace(session, started=False)
        elif name == "Newchannel":
            session = self._spies.get(event.get("Uniqueid") or "")
            if session is not None:
                self._spies[session.spy_id] = replace(session, spy_channel=event.get("Channel"))
        elif name == "Hangup":
            self._spies.pop(event.get("Uniqueid") or "", None)
        elif name == "OriginateResponse" and event.get("Response") == "Failure":
            action_id = event.get("ActionID") or ""
            failed = self._spy_actions.get(action_id)
            if failed is not None:
                del self._spy_actions[action_id]
                self._spies.pop(failed, None)
            elif action_id:
                self._failed_originates[action_id] = None
                while len(self._failed_originates) > 256:
                    self._failed_originates.popitem(last=False)
        if len(self._spy_actions) > 10000:
            self._spy_actions.clear()

    def _spies_from_snapshot(self, items: Sequence[AmiEvent]) -> None:
        """After a resync: sessions whose channel is gone are over; ChanSpy
        channels running without a session (started before a restart) get one."""
        running = {item.get("Uniqueid") or "": item for item in items}
        for spy_id, session in list(self._spies.items()):
            if spy_id not in running and session.spy_channel is not None:
                self._spies.pop(spy_id, None)
        for spy_id, item in running.items():
            if spy_id in self._spies or (item.get("Application") or "") != "ChanSpy":
                continue
            spied, _, options = (item.get("ApplicationData") or "").partition(",")
            call = self.tracker.call_for_channel(spied)
            if call is None:
                continue
            mode = "barge" if "B" in options else "whisper" if "w" in options else "listen"
            self._spies[spy_id] = SpySession(
                spy_id,
                call.id,
                mode,
                _device_of(item, prefix=""),
                spied,
                spy_channel=item.get("Channel"),
                started=True,
            )

    async def _once(
        self, key: str, run: Callable[[], Awaitable[OriginateResult | TransferResult | SpySession]]
    ) -> object:
        existing = self._keys.get(key)
        if existing is not None:
            try:
                result = await asyncio.shield(existing)
            except LinkLost:
                raise _unknown(key) from None
            if isinstance(result, OriginateResult | TransferResult | SpySession):
                return _repeated(result)
            return result
        future = self._keys.begin(key)  # before any await: a local repeat waits on it
        store = self.key_store
        claimed = False
        try:
            if store is not None:
                stored = await store.claim(key)
                if stored is not None:
                    # Claimed before: by an earlier run of Callwright, or another node.
                    outcome = _outcome(stored)
                    if outcome is None:
                        raise _unknown(key, elsewhere=True)
                    future.set_result(outcome)
                    return _repeated(outcome)
                claimed = True
            result = await run()
        except LinkLost as exc:
            if claimed and store is not None:
                await _quietly(store.unknown(key), key)
            future.set_exception(exc)
            future.exception()
            raise
        except OutcomeUnknown as exc:
            future.set_exception(exc)
            future.exception()
            raise
        except asyncio.CancelledError:
            self._keys.forget(key)
            if claimed and store is not None:
                await _quietly(store.release(key), key)
            future.cancel()
            raise
        except Exception as exc:
            # Refused or never sent: the key is free to try again.
            self._keys.forget(key)
            if claimed and store is not None:
                await _quietly(store.release(key), key)
            future.set_exception(exc)
            future.exception()
            raise
        if claimed and store is not None:
            # Sent: the outcome is stored for repeats (a failure to store it
            # leaves the key in flight there: a repeat after a restart is
            # refused as unknown, never sent twice).
            sent = {"type": type(result).__name__, **asdict(result)}
            await _quietly(store.finish(key, sent), key)
        future.set_result(result)
        return result


def _local_base(name: str) -> str | None:
    """ "Local/1001@agents-0000001b;1" -> "Local/1001@agents-0000001b" (None if not Local)."""
    if name.startswith("Local/") and name[-2:] in (";1", ";2"):
        return name[:-2]
    return None


_SPY_EVENTS: Final = frozenset(
    {"ChanSpyStart", "ChanSpyStop", "Newchannel", "Hangup", "OriginateResponse"}
)


def _device_of(event: AmiEvent, prefix: str = "Spyer") -> str:
    """ "PJSIP/1009-0000002a" -> "1009" (the channel's endpoint)."""
    name = event.get(f"{prefix}Channel") or ""
    tech, _, rest = name.partition("/")
    return rest.rpartition("-")[0] if tech and rest else name


def _unknown(key: str, *, elsewhere: bool = False) -> OutcomeUnknown:
    if elsewhere:
        return OutcomeUnknown(
            f"the request with idempotency key {key!r} was sent before and its outcome is "
            "unknown (Callwright restarted while it was in flight, or another node runs it); "
            "it is not repeated: check the active calls"
        )
    return OutcomeUnknown(
        f"the request with idempotency key {key!r} was in flight when the AMI link "
        "dropped; it is not repeated: check the active calls"
    )


def _outcome(stored: StoredOutcome) -> OriginateResult | TransferResult | SpySession | None:
    """The stored result of a key's action; None when it is not known."""
    data = dict(stored.result or {})
    kind = _OUTCOMES.get(str(data.pop("type", "")))
    if stored.state != "done" or kind is None:
        return None
    try:
        outcome: OriginateResult | TransferResult | SpySession = kind(**data)
    except TypeError:  # stored by another version of Callwright
        return None
    return outcome


async def _quietly(write: Awaitable[None], key: str) -> None:
    """A key store write whose failure must not change what the caller is told
    (the action's outcome stands); logged."""
    try:
        await write
    except Exception:
        log.exception("idempotency key %r: storing its state failed", key)


def _repeated(
    result: OriginateResult | TransferResult | SpySession,
) -> OriginateResult | TransferResult | SpySession:
    return replace(result, repeated=True)
