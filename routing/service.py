"""The routing service: the shell around the pure router.

Every command runs under one lock: the router fires what fell due
(``advance``), applies the command, and the outcome is written to the journal
in one transaction; only then are the events announced (listeners, the
desk's notifier) and the live statistics folded. Nothing is announced that
is not stored. A single timer sleeps until ``router.next_deadline()``: no
polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from routing import model
from routing.engine import Router
from routing.journal import RoutingJournal
from routing.stats import QueueStats

__all__ = ["RoutingListener", "RoutingService"]

log = logging.getLogger(__name__)

RoutingListener = Callable[[Sequence[model.RoutingEvent]], Awaitable[None] | None]
Command = Callable[[Router, float], list[model.RoutingEvent]]

TERMINAL = (model.TaskState.COMPLETED, model.TaskState.CANCELED)


class RoutingService:
    def __init__(
        self,
        router: Router,
        journal: RoutingJournal,
        queues: Sequence[model.QueueConfig],
        *,
        clock: Callable[[], float],
    ) -> None:
        self.router = router
        self.journal = journal
        self.queues = {q.id: q for q in queues}
        self.clock = clock
        self.stats = QueueStats(queues=[q.id for q in queues])
        self._lock = asyncio.Lock()
        self._listeners: list[RoutingListener] = []
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self.listener_errors = 0

    # -- lifecycle -------------------------------------------------------

    @classmethod
    async def open(
        cls,
        queues: Sequence[model.QueueConfig],
        journal: RoutingJournal,
        agents: Sequence[model.AgentConfig],
        *,
        clock: Callable[[], float],
    ) -> tuple[RoutingService, list[model.RoutingEvent]]:
        """Build the router from the journal (after a restart) or afresh, and
        bring its agents in line with ``agents`` (the store's profiles)."""
        now = clock()
        snapshot = await journal.load_snapshot()
        events: list[model.RoutingEvent] = []
        if snapshot is None:
            router = Router(queues)
        else:
            router, events = Router.restore(queues, snapshot, now)
        service = cls(router, journal, queues, clock=clock)
        # Today's statistics continue from the log: the same fold as history.
        for event in await journal.events(since=now - now % 86400):
            service.stats.apply(event)
        known = set(router.agent_ids())
        for agent in agents:
            if agent.id in known:
                events += router.update_agent(
                    agent.id,
                    skills=agent.skills,
                    languages=agent.languages,
                    capacity=agent.capacity,
                    auto_accept=agent.auto_accept,
                    attributes=agent.attributes,
                    now=now,
                )
            else:
                events += router.add_agent(agent, now)
        await service._commit(events)
        service._fold(events)
        return service, events

    def subscribe(self, listener: RoutingListener) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        if self._timer is None:
            self._closed = False
            self._timer = asyncio.create_task(self._run_timer(), name="routing-timer")

    async def stop(self) -> None:
        self._closed = True
        task, self._timer = self._timer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- commands ----------------------------------------------------------

    async def run(self, command: Command) -> list[model.RoutingEvent]:
        """Apply ``command`` to the router; store, then announce, its events.
        A command that raises has changed nothing (the router guarantees it)."""
        async with self._lock:
            now = self.clock()
            events = self.router.advance(now)
            try:
                events += command(self.router, now)
            finally:
                # What fell due is stored even when the command is refused.
                await self._commit(events)
        self._wake.set()
        await self._announce(events)
        return events

    async def submit(
        self,
        spec: model.TaskSpec,
        *,
        interaction_id: int | None = None,
        call_id: str | None = None,
    ) -> list[model.RoutingEvent]:
        """Store the task's row first, then hand it to the router."""
        await self.journal.create_task(
            spec.id,
            channel=spec.channel,
            queue_id=spec.queue_id,
            interaction_id=interaction_id,
            call_id=call_id,
        )
        try:
            return await self.run(lambda r, now: r.submit(spec, now))
        except Exception:
            await self.journal.discard_task(spec.id)
            raise

    async def accept(self, reservation_id: str) -> list[model.RoutingEvent]:
        return await self.run(lambda r, now: r.accept(reservation_id, now))

    async def reject(self, reservation_id: str) -> list[model.RoutingEvent]:
        return await self.run(lambda r, now: r.reject(reservation_id, now))

    async def cancel(self, task_id: str, reason: str = "caller_hangup") -> list[model.RoutingEvent]:
        return await self.run(lambda r, now: r.cancel(task_id, now, reason))

    async def complete(self, task_id: str) -> list[model.RoutingEvent]:
        return await self.run(lambda r, now: r.complete(task_id, now))

    async def requeue(self, task_id: str, reason: str) -> list[model.RoutingEvent]:
        return await self.run(lambda r, now: r.requeue(task_id, now, reason))

    async def set_agent_state(
        self, agent_id: str, state: str, reason: str | None = None
    ) -> list[model.RoutingEvent]:
        return await self.run(lambda r, now: r.set_agent_state(agent_id, state, now, reason))

    async def set_external_busy(self, agent_id: str, busy: bool) -> list[model.RoutingEvent]:
        return await self.run(lambda r, now: r.set_external_busy(agent_id, busy, now))

    async def end_wrap_up(self, agent_id: str) -> list[model.RoutingEvent]:
        return await self.run(lambda r, now: r.end_wrap_up(agent_id, now))

    # -- internals ---------------------------------------------------------

    async def _commit(self, events: Sequence[model.RoutingEvent]) -> None:
        tasks: dict[str, tuple[str, model.TaskRecord | None]] = {}
        agent_ids: set[str] = set()
        for event in events:
            task_id = getattr(event, "task_id", None)
            if isinstance(task_id, str) and task_id not in tasks:
                state = self.router.task_state(task_id)
                record = None if state in TERMINAL else self.router.task_record(task_id)
                tasks[task_id] = (state.value, record)
            agent_id = getattr(event, "agent_id", None)
            if isinstance(agent_id, str):
                agent_ids.add(agent_id)
        meta: dict[str, Any] = {"taken_at": self.clock()}
        if events:
            meta["next_reservation"] = self.router.next_reservation_number()
            meta["last_agent_of_customer"] = [
                list(pair) for pair in self.router.last_agent_of_customer()
            ]
        agents = [self.router.agent_record(a) for a in sorted(agent_ids)]
        await self.journal.write(events, tasks=tasks, agents=agents, meta=meta)

    def _fold(self, events: Sequence[model.RoutingEvent]) -> None:
        for event in events:
            self.stats.apply(event)

    async def _announce(self, events: Sequence[model.RoutingEvent]) -> None:
        if not events:
            return
        self._fold(events)
        for listener in self._listeners:
            try:
                result = listener(events)
                if result is not None:
                    await result
            except Exception:
                self.listener_errors += 1
                log.exception("routing listener failed")

    async def _run_timer(self) -> None:
        while not self._closed:
            deadline = self.router.next_deadline()
            self._wake.clear()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            due = self.router.next_deadline()
            if due is not None and due <= self.clock():
                try:
                    await self.run(lambda r, now: [])
                except Exception:
                    log.exception("routing timer failed")
