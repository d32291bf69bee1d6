"""Voice into routing: calls at the holding point become tasks; assignments
connect the caller to the agent's phone.

It listens to both sides:

* call events (``cti``): a caller alone at the holding context with no live
  task gets an interaction (customer looked up by caller ID) and a task; a
  caller back at the holding context while assigned is either transferred to
  a queue (``CALLWRIGHT_QUEUE`` set on the channel by
  ``CallService.transfer(to="queue")``: the agent's task completes, and a new
  interaction and task start in that queue) or came back because the agent's
  phone did not answer (the dialplan returns failed Dials there) and is
  requeued; once the assigned agent was connected, their leaving a call that
  goes on (a blind or attended transfer) completes their task, so they wrap
  up and take the next one; a call that ends cancels a waiting task
  (abandoned) or completes an assigned one; an agent's phone busy on a call
  that is not their routed task (a call Callwright did not route, or one
  transferred to them) marks the agent ``external_busy`` so no voice is
  offered meanwhile.
* the IVR (``ivr``, optional): a caller reaching the holding point for the
  first time after a FastAGI flow that ended ``queued`` gets the task that
  flow asked for: its queue (``CALLWRIGHT_QUEUE``, read and cleared like a
  transfer's, or the stored session's), priority, language, skills,
  attributes (everything collected) and the customer the IVR identified (the
  caller-ID match is the fallback). The session is linked to the call,
  interaction and task (``IvrHandoffs.linked``).
* routing events: ``TaskAssigned`` on a voice task redirects the caller to
  ``<agent_context>,<extension>``, which rings the agent's device.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from cti.calls.model import IVR_SESSION_VARIABLE, Call, CallEnded, CallEvent, CallStarted
from cti.errors import CtiError, UnknownCall
from routing import model
from routing.errors import RoutingError
from routing.service import RoutingService

__all__ = ["CustomerMatch", "IvrHandoff", "IvrHandoffs", "VoiceRouting"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomerMatch:
    id: int
    name: str


@dataclass(frozen=True)
class IvrHandoff:
    """What an IVR flow asked for a call it queued."""

    session_id: str
    queue: str
    priority: int = 0
    language: str | None = None
    skills: Mapping[str, int] = field(default_factory=dict)
    customer: CustomerMatch | None = None
    attributes: Mapping[str, model.AttributeValue] = field(default_factory=dict)


class IvrHandoffs(Protocol):
    async def for_call(self, call: Call) -> IvrHandoff | None: ...

    async def linked(
        self, handoff: IvrHandoff, call_id: str, interaction_id: int | None, task_id: str
    ) -> None: ...


class CallControl(Protocol):
    async def redirect(self, call_id: str, context: str, exten: str, priority: int = 1) -> None: ...

    async def requested_queue(self, call_id: str) -> str | None: ...


class Interactions(Protocol):
    async def voice_started(
        self, call: Call, customer: CustomerMatch | None, queue_id: str
    ) -> int: ...

    async def voice_assigned(self, interaction_id: int, agent_id: str) -> None: ...

    async def voice_ended(self, interaction_id: int, call: Call) -> None: ...


CustomerLookup = Callable[[str], Awaitable[CustomerMatch | None]]

LIVE = {"waiting", "reserved", "assigned"}


class VoiceRouting:
    def __init__(
        self,
        routing: RoutingService,
        calls: CallControl,
        *,
        lookup_customer: CustomerLookup,
        interactions: Interactions,
        extensions: Mapping[str, str],  # agent id -> PJSIP extension
        holding_context: str,
        agent_context: str,
        default_queue: str,
        active_calls: Callable[[], Sequence[Call]],
        ivr: IvrHandoffs | None = None,
    ) -> None:
        self.routing = routing
        self.calls = calls
        self.lookup_customer = lookup_customer
        self.interactions = interactions
        self.extensions = dict(extensions)
        self.agent_of_device = {f"PJSIP/{ext}": aid for aid, ext in extensions.items()}
        self.holding_context = holding_context
        self.agent_context = agent_context
        self.default_queue = default_queue
        self.active_calls = active_calls
        self.ivr = ivr
        self._task_of_call: dict[str, str] = {}
        self._call_of_task: dict[str, str] = {}
        self._interaction_of_task: dict[str, int] = {}
        self._connected: set[str] = set()  # tasks whose assigned agent was bridged
        # External busy, kept per call as its events come (not by walking every
        # active call on every event): call id -> agents on it not routed to it;
        # agent -> how many calls hold them so; what the router was last told.
        self._busy_on_call: dict[str, frozenset[str]] = {}
        self._busy_calls: Counter[str] = Counter()
        self._external_busy: set[str] = set()
        # The call service may hand events of different calls concurrently:
        # the router hears each agent's changes in the order they were decided.
        self._busy_lock = asyncio.Lock()
        self._connecting: set[asyncio.Task[None]] = set()  # callers being connected
        # call id -> (caller number, the caller-ID match started with the call)
        self._early: dict[str, tuple[str, asyncio.Future[CustomerMatch | None]]] = {}

    async def restore(self) -> None:
        """After a restart: re-link the live voice tasks to their calls."""
        for task_id in self.routing.router.task_ids():
            link = await self.routing.journal.task(task_id)
            if link is not None and link.call_id is not None:
                self._link(task_id, link.call_id, link.interaction_id)

    def _link(self, task_id: str, call_id: str, interaction_id: int | None) -> None:
        self._task_of_call[call_id] = task_id
        self._call_of_task[task_id] = call_id
        if interaction_id is not None:
            self._interaction_of_task[task_id] = interaction_id

    def task_for_call(self, call_id: str) -> str | None:
        return self._task_of_call.get(call_id)

    def _state(self, task_id: str) -> str:
        try:
            return self.routing.router.task_state(task_id).value
        except RoutingError:
            return "unknown"

    # -- call events -------------------------------------------------------

    async def on_call_event(self, event: CallEvent) -> None:
        call = event.call
        if isinstance(event, CallStarted):
            self._match_early(call)
        task_id = self._task_of_call.get(call.id)
        state = self._state(task_id) if task_id else None
        if isinstance(event, CallEnded):
            await self._call_ended(call, task_id, state)
        elif self._waiting_at_hold(call):
            if task_id is None:
                await self._first_task(call)
            elif state == "assigned":
                queue_id = await self._requested_queue(call)
                if queue_id is not None:
                    # Transferred to a queue: the agent is done with it.
                    await self._finish(task_id, call)
                    await self._new_task(call, queue_id)
                else:
                    # The caller is back at the holding point: the agent's
                    # phone did not answer. Requeue; that agent is not offered
                    # it again.
                    await self.routing.requeue(task_id, "agent_no_answer")
            elif state not in LIVE:
                # The task ended (its agent transferred the call away) and the
                # caller is waiting again: a new task, in the queue a transfer
                # asked for or the default one.
                queue_id = await self._requested_queue(call)
                interaction_id = self._interaction_of_task.get(task_id)
                self._retire(task_id, call)
                if interaction_id is not None:
                    await self.interactions.voice_ended(interaction_id, call)
                await self._new_task(call, queue_id)
        elif task_id is not None and state == "assigned":
            await self._assigned_call_changed(task_id, call)
        await self._update_external_busy(call, ended=isinstance(event, CallEnded))

    async def _assigned_call_changed(self, task_id: str, call: Call) -> None:
        agent_id = self._assigned_agent(task_id)
        if agent_id is None:
            return
        device = f"PJSIP/{self.extensions.get(agent_id, '')}"
        on_call = any(ch.device == device for ch in call.channels)
        if task_id not in self._connected:
            if on_call and call.bridged:
                self._connected.add(task_id)
                interaction_id = self._interaction_of_task.get(task_id)
                if interaction_id is not None:
                    await self.interactions.voice_assigned(interaction_id, agent_id)
        elif not on_call:
            # The agent left a call that goes on (transferred it): their task
            # is done; the interaction ends with the call.
            try:
                await self.routing.complete(task_id)
            except RoutingError:
                log.exception("completing task %s of transferred call %s", task_id, call.id)

    def _assigned_agent(self, task_id: str) -> str | None:
        try:
            return self.routing.router.task(task_id).agent_id
        except RoutingError:
            return None

    async def _requested_queue(self, call: Call) -> str | None:
        """The queue a transfer asked for, if it is one the router knows."""
        try:
            queue_id = await self.calls.requested_queue(call.id)
        except UnknownCall:
            return None  # the caller hung up meanwhile: CallEnded follows
        except CtiError as exc:
            log.warning("call %s: reading the transfer queue failed: %s", call.id, exc)
            return None
        if queue_id is None:
            return None
        if queue_id not in self.routing.router.queue_ids():
            log.warning("call %s: transfer to unknown queue %r; default queue", call.id, queue_id)
            return None
        return queue_id

    async def _finish(self, task_id: str, call: Call) -> None:
        """Complete an assigned task whose call goes on elsewhere, end its
        interaction and unlink it from the call."""
        try:
            await self.routing.complete(task_id)
        except RoutingError:
            log.exception("completing task %s of call %s", task_id, call.id)
        interaction_id = self._interaction_of_task.get(task_id)
        self._retire(task_id, call)
        if interaction_id is not None:
            await self.interactions.voice_ended(interaction_id, call)

    def _retire(self, task_id: str, call: Call) -> None:
        self._interaction_of_task.pop(task_id, None)
        self._call_of_task.pop(task_id, None)
        self._connected.discard(task_id)
        if self._task_of_call.get(call.id) == task_id:
            del self._task_of_call[call.id]

    def _waiting_at_hold(self, call: Call) -> bool:
        return (
            call.context == self.holding_context
            and not call.bridged
            and len(call.channels) == 1
            and call.ended_at is None
        )

    def _agent_on(self, call: Call) -> str | None:
        for channel in call.channels:
            agent_id = self.agent_of_device.get(channel.device or "")
            if agent_id is not None:
                return agent_id
        return None

    async def _first_task(self, call: Call) -> None:
        """A caller at the holding point for the first time: after an IVR flow,
        the task it asked for; else the default queue."""
        if self.ivr is None:
            await self._new_task(
                call, lookup=self._take_early_match(call, call.caller.number or "")
            )
            return
        # Three independent reads at once: the transfer variable (from the
        # call tracker; an AMI round trip only when the tracker cannot know
        # it), the IVR session (the store) and the caller-ID match (the store;
        # used when the IVR identified nobody).
        number = call.caller.number or ""
        lookup = self._take_early_match(call, number)
        try:
            if _never_in_ivr(call):
                # No session to read: no gather, whose tasks would cost the
                # offer event-loop passes.
                queue_id, handoff = await self._requested_queue(call), None
            else:
                queue_id, handoff = await asyncio.gather(
                    self._requested_queue(call),  # CALLWRIGHT_QUEUE, cleared
                    self._ivr_handoff(call),
                )
        except BaseException:
            if lookup is not None:
                lookup.add_done_callback(_ignore_outcome)
            raise
        if handoff is not None and queue_id is None and handoff.queue in self._queue_ids():
            queue_id = handoff.queue
        await self._new_task(call, queue_id, handoff, lookup=lookup)

    async def _ivr_handoff(self, call: Call) -> IvrHandoff | None:
        assert self.ivr is not None
        if _never_in_ivr(call):
            return None
        try:
            return await self.ivr.for_call(call)
        except Exception:
            log.exception("call %s: reading its IVR session failed; default routing", call.id)
            return None

    def _queue_ids(self) -> Sequence[str]:
        return list(self.routing.router.queue_ids())

    async def _new_task(
        self,
        call: Call,
        queue_id: str | None = None,
        handoff: IvrHandoff | None = None,
        *,
        lookup: asyncio.Future[CustomerMatch | None] | None = None,
    ) -> None:
        """``lookup``: the caller-ID match, already under way."""
        number = call.caller.number or ""
        customer = handoff.customer if handoff is not None else None
        if customer is None:
            if lookup is not None:
                customer = await result_or_in_line(lookup, lambda: self.lookup_customer(number))
            else:
                customer = await self.lookup_customer(number) if number else None
        elif lookup is not None:
            lookup.add_done_callback(_ignore_outcome)  # the IVR's match wins
        queue_id = queue_id or self.default_queue
        interaction_id = await self.interactions.voice_started(call, customer, queue_id)
        task_id = f"v-{uuid.uuid4().hex[:12]}"
        attributes: dict[str, model.AttributeValue] = {}
        if handoff is not None:
            attributes.update(handoff.attributes)
            attributes["ivr_session"] = handoff.session_id
        if number:
            attributes["caller_number"] = number
        spec = model.TaskSpec(
            id=task_id,
            queue_id=queue_id,
            channel="voice",
            priority=handoff.priority if handoff is not None else 0,
            customer_id=None if customer is None else str(customer.id),
            language=handoff.language if handoff is not None else None,
            required_skills=dict(handoff.skills) if handoff is not None else {},
            attributes=attributes,
        )
        self._link(task_id, call.id, interaction_id)
        if handoff is not None:
            try:
                await self.ivr_linked(handoff, call.id, interaction_id, task_id)
            except Exception:
                log.exception("call %s: linking its IVR session failed", call.id)
        try:
            await self.routing.submit(spec, interaction_id=interaction_id, call_id=call.id)
        except RoutingError:
            log.exception("voice call %s could not be routed", call.id)
            self._task_of_call.pop(call.id, None)
            self._call_of_task.pop(task_id, None)

    async def ivr_linked(
        self, handoff: IvrHandoff, call_id: str, interaction_id: int, task_id: str
    ) -> None:
        if self.ivr is not None:
            await self.ivr.linked(handoff, call_id, interaction_id, task_id)

    def _match_early(self, call: Call) -> None:
        """Start the caller-ID match as the call starts (a caller from the
        trunk, not an agent's phone): it is ready, or nearly, when the caller
        reaches the holding point after the IVR or the ringing."""
        number = call.caller.number or ""
        if not number or call.id in self._early or self._agent_on(call) is not None:
            return
        match = asyncio.ensure_future(self.lookup_customer(number))
        match.add_done_callback(_ignore_outcome)  # whoever takes it sees an error
        self._early[call.id] = (number, match)

    def _take_early_match(
        self, call: Call, number: str
    ) -> asyncio.Future[CustomerMatch | None] | None:
        early = self._early.pop(call.id, None)
        if early is not None and early[0] == number:
            return early[1]
        return asyncio.ensure_future(self.lookup_customer(number)) if number else None

    async def _call_ended(self, call: Call, task_id: str | None, state: str | None) -> None:
        self._early.pop(call.id, None)
        if task_id is not None:
            try:
                if state in ("waiting", "reserved"):
                    await self.routing.cancel(task_id, "caller_hangup")
                elif state == "assigned":
                    await self.routing.complete(task_id)
            except RoutingError:
                log.exception("ending task %s of call %s", task_id, call.id)
            interaction_id = self._interaction_of_task.get(task_id)
            self._retire(task_id, call)
            if interaction_id is not None:
                await self.interactions.voice_ended(interaction_id, call)

    def _not_routed_on(self, call: Call) -> frozenset[str]:
        """The agents whose phone is on ``call`` that is not their routed task."""
        found: set[str] = set()
        routed_to: str | None = None
        looked_up = False
        for channel in call.channels:
            agent_id = self.agent_of_device.get(channel.device or "")
            if agent_id is None:
                continue
            if not looked_up:
                task_id = self._task_of_call.get(call.id)
                routed_to = None if task_id is None else self._assigned_agent(task_id)
                looked_up = True
            if agent_id != routed_to:
                found.add(agent_id)
        return frozenset(found)

    async def _update_external_busy(self, call: Call, *, ended: bool) -> None:
        """Agents whose phone is on a call that is not their routed task: this
        call's share is updated; the router hears the agents whose state flips."""
        async with self._busy_lock:
            now = frozenset() if ended or call.ended_at is not None else self._not_routed_on(call)
            before = self._busy_on_call.get(call.id, frozenset())
            if now == before:
                return
            if now:
                self._busy_on_call[call.id] = now
            else:
                self._busy_on_call.pop(call.id, None)
            self._busy_calls.update(now - before)
            self._busy_calls.subtract(before - now)
            flips = []
            for agent_id in sorted(now ^ before):
                busy = self._busy_calls[agent_id] > 0
                if not busy:
                    del self._busy_calls[agent_id]
                if busy != (agent_id in self._external_busy):
                    flips.append((agent_id, busy))
            for agent_id, busy in flips:
                if busy:
                    self._external_busy.add(agent_id)
                else:
                    self._external_busy.discard(agent_id)
                try:
                    await self.routing.set_external_busy(agent_id, busy)
                except RoutingError:
                    continue

    # -- routing events ------------------------------------------------------

    async def on_routing_events(self, events: Sequence[model.RoutingEvent]) -> None:
        for event in events:
            if isinstance(event, model.TaskAssigned) and event.channel == "voice":
                # Not awaited: the routing service announces in command order,
                # and the next caller's offer must not wait for this PBX round
                # trip. A failure requeues the task (in _connect).
                task = asyncio.create_task(self._connect(event), name=f"connect-{event.task_id}")
                self._connecting.add(task)
                task.add_done_callback(self._connecting.discard)

    async def _connect(self, event: model.TaskAssigned) -> None:
        call_id = self._call_of_task.get(event.task_id)
        if call_id is None:
            # Not a call waiting on this PBX (a Twilio caller, say: its edge connects it).
            log.debug("task %s: no call of ours to connect", event.task_id)
            return
        extension = self.extensions.get(event.agent_id)
        if extension is None:
            log.error(
                "task %s assigned to %s: the agent has no extension to connect",
                event.task_id,
                event.agent_id,
            )
            return
        try:
            await self.calls.redirect(call_id, self.agent_context, extension)
        except UnknownCall:
            # The caller hung up in between: CallEnded completes the task.
            log.info("task %s: call %s already gone", event.task_id, call_id)
        except CtiError as exc:
            log.warning("task %s: connecting the caller failed: %s", event.task_id, exc)
            await self.routing.requeue(event.task_id, "connect_failed")


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    """Read the outcome of a read nobody waits for any more (no 'exception
    was never retrieved' warning)."""
    if not future.cancelled():
        future.exception()


def _never_in_ivr(call: Call) -> bool:
    """Known never to have been queued by a FastAGI flow (the tracker saw
    every VarSet of the call's channels): it has no IVR session to read."""
    return bool(call.channels) and all(
        ch.variable(IVR_SESSION_VARIABLE) == "" for ch in call.channels
    )


T = TypeVar("T")


async def result_or_in_line(future: asyncio.Future[T], again: Callable[[], Awaitable[T]]) -> T:
    """What ``future`` (work started ahead, such as the caller-ID match at the
    call's start) gives; but if it is a task that has not run yet, it is
    cancelled before it starts and ``again()`` does the work here. Awaiting a
    task costs two event-loop passes, during which whatever else is ready
    runs first, even when its work itself needs none (on SQLite, the store's
    reads run on the loop's thread). A caller who reaches the queue in the
    same breath as the call starts (no IVR) gets the match that way."""
    if (
        isinstance(future, asyncio.Task)
        and not future.done()
        and inspect.iscoroutine(coro := future.get_coro())
        and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
    ):
        future.cancel()
        return await again()
    return await future
