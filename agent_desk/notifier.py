"""Domain events to room events: one method per outgoing event.

``DeskNotifier`` listens to the routing service (lists of routing events,
already stored) and to the call service (one ``CallEvent`` at a time), turns
them into room events and sends each one, wrapped in an ``Envelope`` with the
room's next sequence number (``rooms.RoomLog``), as a Socket.IO event named by
its type. Publishing and emitting are adjacent with no await in between, so
every client of a room receives its envelopes in sequence order.

Rooms: ``agent:{id}`` (that agent), ``queue:{id}`` (the supervisors, who are
in every queue room: each change of the queue's tasks and its figures),
``figures:{id}`` (the agents serving the queue: its figures only, at a lower
rate) and ``supervisors``. Queue-wide facts go to the queue room once, so a
supervisor gets each once. Agents are kept out of ``queue:{id}``: at 1,000
agents, every task change sent to all of them cost 1,000 websocket messages
(bench/RESULTS.md, "Screen-pop"), and an agent's desk shows only its own tasks.

Outgoing events (the envelope's ``data``; times are epoch seconds):

* ``offer`` -> ``agent:{id}``: a reservation offered, with the screen-pop.
* ``reservation`` -> ``agent:{id}``: the offer accepted, rejected, timed out or
  canceled.
* ``task`` -> ``queue:{id}`` (every change, for supervisors) and ``agent:{id}``
  (changes of a task reserved for, assigned to or wrapped by that agent; with
  the pop).
* ``agent_state`` -> ``supervisors`` and ``agent:{id}``.
* ``queue_stats`` -> ``queue:{id}``: the queue's live figures, at most
  ``stats_per_second`` times a second per queue; changes in between are
  coalesced into one trailing update carrying the latest figures. The same
  figures -> ``figures:{id}`` for the agents, at most
  ``agent_stats_per_second`` times a second, coalesced the same way, and only
  when what an agent's desk shows changed (the waiting count or the longest
  waiting caller).
* ``call`` -> ``supervisors`` and ``agent:{id}`` of every agent whose device is
  (or, for the event that takes it off, was) on the call.
* ``recording`` -> ``supervisors`` and ``agent:{id}`` of the call's agent: a
  call's recording state (``recordings.control``: started, paused, resumed,
  ended, stored, failed, or not recorded by policy).
* ``queue_interval`` -> ``supervisors``: the queue's figures for the current
  15-minute interval (``routing.intervals``: the wallboard's calls per 15
  minutes and service level over the day), sent with each ``queue_stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import socketio  # type: ignore[import-untyped]
from socketio.async_pubsub_manager import AsyncPubSubManager  # type: ignore[import-untyped]

from agent_desk.pops import ScreenPops
from agent_desk.rooms import Envelope, RoomLog, encode_data
from agent_desk.throttle import SEND, Coalescer
from crm.repository import Customer
from cti.calls import model as calls
from cti.http import call_to_json
from routing import model
from routing.codec import to_json
from routing.errors import RoutingError
from routing.intervals import IntervalStats, interval_json
from routing.service import RoutingService

__all__ = [
    "SUPERVISORS",
    "AgentInfo",
    "DeskNotifier",
    "agent_room",
    "figures_room",
    "queue_room",
]

log = logging.getLogger(__name__)

SUPERVISORS: Final = "supervisors"


def agent_room(agent_id: str) -> str:
    return f"agent:{agent_id}"


def queue_room(queue_id: str) -> str:
    return f"queue:{queue_id}"


# A paced send (``DeskNotifier._send_paced``): clients per step, and the
# pause between steps (1,000 agents: 50 steps over about a quarter second).
PACED_SLICE = 20
PACED_GAP = 0.005


def figures_room(queue_id: str) -> str:
    return f"figures:{queue_id}"


@dataclass(frozen=True)
class AgentInfo:
    name: str
    extension: str | None


CALL_EVENTS: Final[Mapping[type, str]] = {
    calls.CallStarted: "started",
    calls.CallRinging: "ringing",
    calls.CallAnswered: "answered",
    calls.CallBridged: "bridged",
    calls.CallUnbridged: "unbridged",
    calls.CallHeld: "held",
    calls.CallUnheld: "unheld",
    calls.CallTransferred: "transferred",
    calls.CallUpdated: "updated",
    calls.RecordingStarted: "recording_started",
    calls.RecordingStopped: "recording_stopped",
    calls.RecordingMuted: "recording_muted",
    calls.CallEnded: "ended",
}

RESERVATION_CLOSED: Final[Mapping[type, str]] = {
    model.ReservationRejected: "rejected",
    model.ReservationTimedOut: "timed_out",
    model.ReservationCanceled: "canceled",
}

ENDED: Final = (model.TaskCompleted, model.TaskCanceled)

INTERVAL: Final = 900  # seconds: the wallboard's chart


class DeskNotifier:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        rooms: RoomLog,
        *,
        routing: RoutingService,
        pops: ScreenPops,
        active_calls: Callable[[], Sequence[calls.Call]],
        directory: Mapping[str, AgentInfo],
        task_for_call: Callable[[str], str | None] = lambda call_id: None,
        interaction_for_call: Callable[[str], int | None] = lambda call_id: None,
        namespace: str = "/desk",
        stats_per_second: float = 4.0,
        agent_stats_per_second: float = 1.0,
    ) -> None:
        self.sio = sio
        self.rooms = rooms
        self.routing = routing
        self.pops = pops
        self.active_calls = active_calls
        self.directory = dict(directory)
        self.agent_of_device = {
            f"PJSIP/{info.extension}": agent_id
            for agent_id, info in self.directory.items()
            if info.extension
        }
        self.task_for_call = task_for_call
        self.interaction_for_call = interaction_for_call
        self.namespace = namespace
        self.clock = routing.clock
        self._stats = Coalescer(1.0 / stats_per_second)  # queue:{id}, supervisors
        self._agent_stats = Coalescer(1.0 / agent_stats_per_second)  # figures:{id}, agents
        # Per queue, what the agents were last sent (agents_queue_stats).
        self._agents_shown: dict[str, tuple[int, float | None]] = {}
        self._timers: set[asyncio.Task[None]] = set()
        self._call_agents: dict[str, frozenset[str]] = {}
        self._call_tasks: dict[str, str] = {}  # call id -> its task, kept until it ends
        self._call_interactions: dict[str, int] = {}  # click-to-dial: kept until it ends
        self._meta: dict[str, dict[str, Any]] = {}  # task id -> what stays the same
        self._closed = False
        self.sent = 0
        # The current and the previous interval, folded live (None until the
        # first routing events: then read back from the journal).
        self.intervals: IntervalStats | None = None

    async def stop(self) -> None:
        self._closed = True
        timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        for timer in timers:
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    # -- sending --------------------------------------------------------------

    async def _send(
        self, room: str, type: str, data: Any, *, data_text: str | None = None
    ) -> Envelope:
        envelope = self.rooms.publish(room, type, data, self.clock(), data_text=data_text)
        await self.sio.emit(type, envelope.raw(), to=room, namespace=self.namespace)
        self.sent += 1
        return envelope

    async def _send_each(self, rooms: Iterable[str], type: str, data: Any) -> None:
        """``_send`` of the same ``data`` to each room in turn, encoded once."""
        text = encode_data(data)
        for room in rooms:
            await self._send(room, type, data, data_text=text)

    async def _send_paced(self, room: str, type: str, data: Any) -> Envelope:
        """``_send`` to a large room in slices of ``PACED_SLICE`` clients,
        ``PACED_GAP`` seconds apart, the event loop free in between. Each
        client's message is a websocket frame and a socket write (50-80 us
        here): the figures of a queue with 1,000 agents sent in one step held
        up the offers of that moment, once a second (the slowest tenth of the
        pops at 50 calls/s came in a cluster each second). Same envelope
        and sequence number for all; a later send to the room reaches each
        client after this one. With a message-queue manager (several nodes)
        the room is sent whole: only the queue knows every node's clients."""
        if isinstance(self.sio.manager, AsyncPubSubManager):
            return await self._send(room, type, data)
        envelope = self.rooms.publish(room, type, data, self.clock())
        payload = envelope.raw()
        sids = [sid for sid, _ in self.sio.manager.get_participants(self.namespace, room)]
        for start in range(0, len(sids), PACED_SLICE):
            if start:
                await asyncio.sleep(PACED_GAP)
            await self.sio.emit(
                type, payload, to=sids[start : start + PACED_SLICE], namespace=self.namespace
            )
        self.sent += 1
        return envelope

    # -- routing events -----------------------------------------------------

    async def on_routing_events(self, events: Sequence[model.RoutingEvent]) -> None:
        await self._follow_intervals(events)
        touched: dict[str, None] = {}
        for event in events:
            try:
                await self._routing_event(event, touched)
            except Exception:
                log.exception("desk: %s not sent", type(event).__name__)
        for queue_id in touched:
            await self.queue_stats_changed(queue_id)

    async def _routing_event(self, event: model.RoutingEvent, touched: dict[str, None]) -> None:
        if isinstance(event, model.AgentStateChanged):
            await self.agent_state(event)
            touched.update(dict.fromkeys(event.queues))
            return
        if isinstance(event, model.TaskOverflowed):
            touched[event.from_queue] = None
            touched[event.to_queue] = None
        else:
            touched[event.queue_id] = None
        if isinstance(event, model.TaskQueued):
            view = self._view(event.task_id)
            if view is not None:
                self._remember(view)
                await self.pops.for_task(view)
            await self.task_changed(event, "queued", "waiting", agent_id=None)
        elif isinstance(event, model.ReservationOffered):
            await self.offer(event)
            await self.task_changed(
                event, "offered", "reserved", agent_id=event.agent_id, to_agent=False
            )
        elif isinstance(event, tuple(RESERVATION_CLOSED)):
            state = RESERVATION_CLOSED[type(event)]
            reason = getattr(event, "reason", None)
            await self.reservation(event, state, reason)
            if reason != "caller_hangup":
                await self.task_changed(event, f"offer_{state}", "waiting", agent_id=None)
        elif isinstance(event, model.TaskAssigned):
            await self.reservation(event, "accepted", None)
            await self.task_changed(event, "assigned", "assigned", agent_id=event.agent_id)
        elif isinstance(event, model.TaskRequeued):
            await self.task_changed(event, "requeued", "waiting", agent_id=None)
        elif isinstance(event, model.TaskWrapping):
            await self.task_changed(event, "wrapping", "wrapping", agent_id=event.agent_id)
        elif isinstance(event, model.TaskCompleted):
            await self.task_changed(event, "completed", "completed", agent_id=event.agent_id)
        elif isinstance(event, model.TaskCanceled):
            await self.task_changed(event, "canceled", "canceled", agent_id=None)
        elif isinstance(event, model.TaskOverflowed):
            await self.task_changed(event, "overflowed", "waiting", agent_id=None)
        elif isinstance(event, model.TaskTargetChanged):
            await self.task_changed(event, "target_changed", None, agent_id=None)
        elif isinstance(event, model.CallbackOffered):
            await self.task_changed(event, "callback_offered", None, agent_id=None)
        if isinstance(event, ENDED):
            self.pops.forget(event.task_id)
            self._meta.pop(event.task_id, None)

    def _view(self, task_id: str) -> model.TaskView | None:
        try:
            return self.routing.router.task(task_id)
        except RoutingError:
            return None

    def _remember(self, view: model.TaskView) -> dict[str, Any]:
        meta = self._meta.get(view.id)
        if meta is None:
            meta = self._meta[view.id] = {
                "channel": view.channel,
                "priority": view.priority,
                "arrived_at": view.arrived_at,
                "customer_id": view.customer_id,
                "attributes": to_json(view.attributes),
            }
        return meta

    def _task_meta(self, task_id: str) -> dict[str, Any]:
        meta = self._meta.get(task_id)
        if meta is None:
            view = self._view(task_id)
            if view is None:
                return {}
            meta = self._remember(view)
        return meta

    async def offer(self, event: model.ReservationOffered) -> None:
        pop = self.pops.get(event.task_id)
        if pop is None:
            view = self._view(event.task_id)
            pop = None if view is None else await self.pops.for_task(view)
        meta = self._task_meta(event.task_id)
        data = {
            "reservation_id": event.reservation_id,
            "task_id": event.task_id,
            "agent_id": event.agent_id,
            "queue_id": event.queue_id,
            "queue_name": self._queue_name(event.queue_id),
            "channel": event.channel,
            "offered_at": event.at,
            "expires_at": event.expires_at,
            "reoffer": event.reoffer,
            "priority": meta.get("priority"),
            "arrived_at": meta.get("arrived_at"),
            "attributes": meta.get("attributes", {}),
            "pop": pop,
        }
        await self._send(agent_room(event.agent_id), "offer", data)

    async def reservation(self, event: Any, state: str, reason: str | None) -> None:
        data = {
            "reservation_id": event.reservation_id,
            "task_id": event.task_id,
            "agent_id": event.agent_id,
            "queue_id": event.queue_id,
            "state": state,
            "reason": reason,
        }
        await self._send(agent_room(event.agent_id), "reservation", data)

    async def task_changed(
        self,
        event: Any,
        change: str,
        state: str | None,
        *,
        agent_id: str | None,
        to_agent: bool = True,
    ) -> None:
        """``state`` is the task's state right after this event (``None``: unchanged)."""
        task_id: str = event.task_id
        queue_id: str = (
            event.to_queue if isinstance(event, model.TaskOverflowed) else event.queue_id
        )
        if state is None:
            view = self._view(task_id)
            state = None if view is None else view.state.value
        data: dict[str, Any] = {
            "task_id": task_id,
            "change": change,
            "state": state,
            "queue_id": queue_id,
            "agent_id": agent_id,
            "reservation_id": getattr(event, "reservation_id", None),
            **self._task_meta(task_id),
            "details": self._details(event),
        }
        await self._send(queue_room(queue_id), "task", data)
        if isinstance(event, model.TaskOverflowed):
            await self._send(queue_room(event.from_queue), "task", data)
        owner = getattr(event, "agent_id", None)
        if to_agent and isinstance(owner, str):
            mine = dict(data, pop=self.pops.get(task_id))
            await self._send(agent_room(owner), "task", mine)

    async def customer_linked(self, task_id: str, customer: Customer) -> dict[str, Any] | None:
        """An unknown caller identified from the desk: the task's pop is made
        again with the customer's record and sent to the agent who holds the
        task (a ``task`` event, change ``customer_linked``). Returns the pop."""
        pop = await self.pops.rebuild(task_id, customer)
        view = self._view(task_id)
        if pop is None or view is None:
            return pop
        meta = self._task_meta(task_id)
        meta["customer_id"] = str(customer.id)
        if view.agent_id is not None and view.state.value in ("assigned", "wrapping"):
            data = {
                "task_id": task_id,
                "change": "customer_linked",
                "state": view.state.value,
                "queue_id": view.queue_id,
                "agent_id": view.agent_id,
                "reservation_id": view.reservation_id,
                **meta,
                "details": {"customer_id": customer.id},
                "pop": pop,
            }
            await self._send(agent_room(view.agent_id), "task", data)
        return pop

    @staticmethod
    def _details(event: Any) -> dict[str, Any]:
        skip = {"at", "task_id", "agent_id", "queue_id", "reservation_id", "channel"}
        details = to_json(event)
        assert isinstance(details, dict)
        return {k: v for k, v in details.items() if k not in skip}

    async def agent_state(self, event: model.AgentStateChanged) -> None:
        try:
            view: model.AgentView | None = self.routing.router.agent(event.agent_id)
        except RoutingError:
            view = None
        data = self._agent_json(
            event.agent_id,
            state=event.state.value,
            previous=None if event.previous is None else event.previous.value,
            presence=event.presence.value,
            reason=event.reason,
            since=event.at,
            queues=list(event.queues),
            view=view,
        )
        await self._send_each((SUPERVISORS, agent_room(event.agent_id)), "agent_state", data)

    def _agent_json(
        self,
        agent_id: str,
        *,
        state: str,
        previous: str | None,
        presence: str,
        reason: str | None,
        since: float,
        queues: list[str],
        view: model.AgentView | None,
    ) -> dict[str, Any]:
        info = self.directory.get(agent_id)
        return {
            "agent_id": agent_id,
            "name": None if info is None else info.name,
            "extension": None if info is None else info.extension,
            "state": state,
            "previous": previous,
            "presence": presence,
            "reason": reason,
            "since": since,
            "queues": queues,
            "external_busy": None if view is None else view.external_busy,
            "load": {} if view is None else dict(view.load),
            "task_ids": [] if view is None else list(view.task_ids),
            "reservation_ids": [] if view is None else list(view.reservation_ids),
        }

    def agent_view_json(self, view: model.AgentView) -> dict[str, Any]:
        return self._agent_json(
            view.id,
            state=view.state.value,
            previous=None,
            presence=view.presence.value,
            reason=view.reason,
            since=view.state_since,
            queues=list(view.queues),
            view=view,
        )

    # -- queue statistics (throttled) -------------------------------------------

    def _queue_name(self, queue_id: str) -> str:
        queue = self.routing.queues.get(queue_id)
        return queue_id if queue is None or not queue.name else queue.name

    def queue_json(self, queue_id: str, now: float) -> dict[str, Any]:
        queue = self.routing.queues.get(queue_id)
        return {
            "queue_id": queue_id,
            "name": self._queue_name(queue_id),
            "service_level_seconds": None if queue is None else queue.service_level_seconds,
            "figures": to_json(self.routing.stats.figures(queue_id, now)),
        }

    async def queue_stats_changed(self, queue_id: str) -> None:
        if self._closed:
            return
        await self._throttled(self._stats, queue_id, self.queue_stats)
        await self._throttled(self._agent_stats, queue_id, self.agents_queue_stats)

    async def _throttled(
        self,
        coalescer: Coalescer,
        queue_id: str,
        send: Callable[[str], Awaitable[None]],
    ) -> None:
        decision = coalescer.request(queue_id, self.clock())
        if decision is None:
            return  # an update is already due; it will carry this change
        if decision == SEND:
            await send(queue_id)
            return
        assert isinstance(decision, float)
        task = asyncio.create_task(
            self._send_at(coalescer, queue_id, decision, send), name="desk-queue-stats"
        )
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _send_at(
        self,
        coalescer: Coalescer,
        queue_id: str,
        at: float,
        send: Callable[[str], Awaitable[None]],
    ) -> None:
        await asyncio.sleep(max(0.0, at - self.clock()))
        coalescer.sent(queue_id, self.clock())
        await send(queue_id)

    async def agents_queue_stats(self, queue_id: str) -> None:
        """The queue's figures to its agents, when what an agent's desk shows
        of them changed: the waiting count, or who has waited longest (the
        desk counts that wait up by itself). A desk that connects or resyncs
        gets the figures of the moment in its snapshot."""
        try:
            shown = self.routing.stats.waiting(queue_id)
            if self._agents_shown.get(queue_id) == shown:
                return
            self._agents_shown[queue_id] = shown
            data = self.queue_json(queue_id, self.clock())
            await self._send_paced(figures_room(queue_id), "queue_stats", data)
        except Exception:
            log.exception("desk: queue_stats for the agents of %s not sent", queue_id)

    async def queue_stats(self, queue_id: str) -> None:
        try:
            await self._send(
                queue_room(queue_id), "queue_stats", self.queue_json(queue_id, self.clock())
            )
            interval = self.interval_json(queue_id, self.clock())
            if interval is not None:
                await self._send(SUPERVISORS, "queue_interval", interval)
        except Exception:
            log.exception("desk: queue_stats for %s not sent", queue_id)

    # -- queue figures per interval (the wallboard's chart) ----------------------

    async def _follow_intervals(self, events: Sequence[model.RoutingEvent]) -> None:
        stats = self.routing.stats
        if self.intervals is None:
            # Stored before announced: the journal already holds ``events``.
            now = self.clock()
            since = now - now % INTERVAL - INTERVAL
            try:
                stored = await self.routing.journal.events(since=since)
            except Exception:
                log.exception("desk: the current interval's figures could not be read")
                return
            self.intervals = IntervalStats.fold(
                stored,
                seconds=INTERVAL,
                formula=stats.formula,
                short_abandon_seconds=stats.short_abandon_seconds,
                queues=list(self.routing.queues),
            )
            return
        for event in events:
            self.intervals.apply(event)
        self.intervals.forget_before(self.clock() - 2 * INTERVAL)

    def interval_json(self, queue_id: str, now: float) -> dict[str, Any] | None:
        if self.intervals is None:
            return None
        start = self.intervals.start_of(now)
        figures = self.intervals.figures(queue_id, start)
        return {
            "queue_id": queue_id,
            "interval_seconds": INTERVAL,
            **interval_json(start, INTERVAL, figures),
        }

    # -- call events ----------------------------------------------------------

    def agents_on(self, call: calls.Call) -> frozenset[str]:
        found = set()
        for channel in call.channels:
            agent_id = self.agent_of_device.get(channel.device or "")
            if agent_id is not None:
                found.add(agent_id)
        return frozenset(found)

    def call_json(self, call: calls.Call, agents: Iterable[str]) -> dict[str, Any]:
        return {
            "call": call_to_json(call),
            "task_id": self.task_for_call(call.id),
            "agent_ids": sorted(agents),
            "interaction_id": self.interaction_for_call(call.id),
        }

    async def on_call_event(self, event: calls.CallEvent) -> None:
        try:
            await self.call(event)
        except Exception:
            log.exception("desk: call event %s not sent", type(event).__name__)

    async def call(self, event: calls.CallEvent) -> None:
        call_ = event.call
        now_on = self.agents_on(call_)
        before = self._call_agents.get(call_.id, frozenset())
        task_id = self.task_for_call(call_.id) or self._call_tasks.get(call_.id)
        ended = isinstance(event, calls.CallEnded)
        interaction_id = self.interaction_for_call(call_.id) or self._call_interactions.get(
            call_.id
        )
        if ended:
            self._call_agents.pop(call_.id, None)
            self._call_tasks.pop(call_.id, None)
            self._call_interactions.pop(call_.id, None)
        else:
            if interaction_id is not None:
                self._call_interactions[call_.id] = interaction_id
            if now_on:
                self._call_agents[call_.id] = now_on
            else:
                self._call_agents.pop(call_.id, None)
            if task_id is not None:
                self._call_tasks[call_.id] = task_id
        # An ended call has no channels left: name who was on it.
        data = {
            "call": call_to_json(call_),
            "task_id": task_id,
            "agent_ids": sorted(now_on | before if ended else now_on),
            "event": CALL_EVENTS.get(type(event), "updated"),
            "interaction_id": interaction_id,
        }
        rooms = [SUPERVISORS, *(agent_room(a) for a in sorted(now_on | before))]
        await self._send_each(rooms, "call", data)

    # -- recordings ---------------------------------------------------------------

    async def recording(self, data: Mapping[str, Any], agent_id: str | None) -> None:
        """A call's recording state changed (``recordings.control``): to the
        supervisors, to the agent who handled the call, and to every agent whose
        device is on it now (one the call was transferred to pauses it for a
        card payment, and sees that on their desk)."""
        agents = set(self._call_agents.get(str(data.get("call_id")), ()))
        if agent_id is not None:
            agents.add(agent_id)
        rooms = [SUPERVISORS, *(agent_room(a) for a in sorted(agents))]
        await self._send_each(rooms, "recording", dict(data))

    # -- snapshots (synchronous: built from memory) ------------------------------

    def rooms_for(self, agent_id: str | None, supervisor: bool) -> list[str]:
        if supervisor:
            return [SUPERVISORS, *(queue_room(q) for q in self.routing.queues)]
        assert agent_id is not None
        view = self.routing.router.agent(agent_id)  # UnknownAgent for a stranger
        return [agent_room(agent_id), *(figures_room(q) for q in view.queues)]

    async def prepare_agent(self, agent_id: str) -> None:
        """Build (from the store) the pops an agent's snapshot will show and
        that are not cached yet (tasks restored after a restart)."""
        try:
            view = self.routing.router.agent(agent_id)
        except RoutingError:
            return
        task_ids = set(view.task_ids)
        for rid in view.reservation_ids:
            with contextlib.suppress(RoutingError):
                task_ids.add(self.routing.router.reservation(rid).task_id)
        for task_id in sorted(task_ids):
            task = self._view(task_id)
            if task is not None and self.pops.get(task_id) is None:
                await self.pops.for_task(task)

    def _task_json(self, view: model.TaskView, *, pop: bool) -> dict[str, Any]:
        self._remember(view)
        data = {
            "task_id": view.id,
            "state": view.state.value,
            "queue_id": view.queue_id,
            "agent_id": view.agent_id,
            "reservation_id": view.reservation_id,
            **self._task_meta(view.id),
            "queued_at": view.queued_at,
            "assigned_at": view.assigned_at,
            "wrap_up_until": view.wrap_up_until,
        }
        if pop:
            data["pop"] = self.pops.get(view.id)
        return data

    def agent_snapshot(self, agent_id: str, now: float) -> dict[str, Any]:
        router = self.routing.router
        view = router.agent(agent_id)
        offers = []
        for rid in view.reservation_ids:
            res = router.reservation(rid)
            task = self._view(res.task_id)
            if task is None:
                continue
            meta = self._task_meta(task.id)
            offers.append(
                {
                    "reservation_id": res.id,
                    "task_id": res.task_id,
                    "agent_id": agent_id,
                    "queue_id": res.queue_id,
                    "queue_name": self._queue_name(res.queue_id),
                    "channel": res.channel,
                    "offered_at": res.offered_at,
                    "expires_at": res.expires_at,
                    "reoffer": False,
                    "priority": meta.get("priority"),
                    "arrived_at": meta.get("arrived_at"),
                    "attributes": meta.get("attributes", {}),
                    "pop": self.pops.get(task.id),
                }
            )
        tasks = [
            self._task_json(task, pop=True)
            for task in (self._view(t) for t in view.task_ids)
            if task is not None
        ]
        active = [
            self.call_json(c, self.agents_on(c))
            for c in self.active_calls()
            if agent_id in self.agents_on(c)
        ]
        return {
            "agent": self.agent_view_json(view),
            "offers": offers,
            "tasks": tasks,
            "calls": active,
            "queues": [self.queue_json(q, now) for q in view.queues],
        }

    def supervisor_snapshot(self, now: float) -> dict[str, Any]:
        router = self.routing.router
        agents = []
        for agent_id in router.agent_ids():
            with contextlib.suppress(RoutingError):
                agents.append(self.agent_view_json(router.agent(agent_id)))
        waiting = []
        for task_id in router.task_ids():
            task = self._view(task_id)
            if task is not None and task.state in (
                model.TaskState.WAITING,
                model.TaskState.RESERVED,
            ):
                waiting.append(self._task_json(task, pop=False))
        waiting.sort(key=lambda t: (t["queued_at"], t["task_id"]))
        return {
            "queues": [self.queue_json(q, now) for q in self.routing.queues],
            "agents": agents,
            "waiting": waiting,
            "calls": [self.call_json(c, self.agents_on(c)) for c in self.active_calls()],
        }
