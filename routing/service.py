"""The routing service: the shell around the pure router.

A command runs on the router at once (the router fires what fell due with
``advance``, then applies the command: pure, no await in between, so commands
never interleave), and its outcome is staged for the journal. Outcomes are
written by group commit: one transaction at a time, holding every outcome
staged while the previous one was in flight, in the order the commands ran.
Only once a command's transaction has committed are its events announced
(listeners, the desk's notifier) and the live statistics folded: nothing is
announced that is not stored. Announcements follow the order of the
commands; a command run by a listener while it handles an announcement is
announced inside it. A single timer sleeps until ``router.next_deadline()``:
no polling.

Why group commit: at 50 new calls a second the router runs a few hundred
commands a second; one transaction each, one after the other, was the
slowest step on the way to an agent's screen-pop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from routing import model
from routing.agent_stats import AgentClock
from routing.engine import Router
from routing.journal import NewTask, RoutingJournal
from routing.stats import QueueStats
from store.group_commit import GroupCommit

__all__ = ["RoutingListener", "RoutingService"]

log = logging.getLogger(__name__)

RoutingListener = Callable[[Sequence[model.RoutingEvent]], Awaitable[None] | None]
Command = Callable[[Router, float], list[model.RoutingEvent]]

TERMINAL = (model.TaskState.COMPLETED, model.TaskState.CANCELED)

# Most outcomes one transaction holds (the rest wait for the next one).
MAX_BATCH = 256

# Set while listeners handle an announcement: a command they run is announced
# inside it instead of waiting for its turn (which would wait for itself).
_ANNOUNCING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "routing_announcing", default=False
)


@dataclass
class _Staged:
    """One command's outcome, waiting for its transaction."""

    events: list[model.RoutingEvent]
    tasks: dict[str, tuple[str, model.TaskRecord | None]]
    agents: dict[str, model.AgentRecord]
    customer_agents: dict[str, str]
    meta: dict[str, Any]
    new_task: NewTask | None


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
        # Agents' time by state today (UTC), live: the wallboard's occupancy.
        now = clock()
        self.agent_clock = AgentClock(now - now % 86400)
        self._commits: GroupCommit[_Staged] = GroupCommit(
            self._write, max_batch=MAX_BATCH, name="routing-journal", write_now=self._write_now
        )
        self._turn: asyncio.Future[None] | None = None  # the last announcement's
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
            service.agent_clock.apply(event)
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
        await service._stage(events)
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
        await self._commits.drain()  # what is staged is written before the service stops

    # -- commands ----------------------------------------------------------

    async def run(
        self, command: Command, *, new_task: NewTask | None = None
    ) -> list[model.RoutingEvent]:
        """Apply ``command`` to the router; store, then announce, its events.
        A command that raises has changed nothing (the router guarantees it);
        what fell due before it is still stored and announced, then the
        error is raised. ``new_task``: the row of the task ``command`` submits,
        stored in the same transaction (not when the command raises)."""
        now = self.clock()
        events = self.router.advance(now)
        error: Exception | None = None
        try:
            events += command(self.router, now)
        except Exception as exc:
            error, new_task = exc, None
        stored = self._stage(events, new_task)
        previous, mine = None, None
        if not _ANNOUNCING.get():
            previous, self._turn = self._turn, asyncio.get_running_loop().create_future()
            mine = self._turn
        try:
            await stored
            self._wake.set()
            if previous is not None and not previous.done():
                await asyncio.shield(previous)
            await self._announce(events)
        finally:
            if mine is not None:
                mine.set_result(None)
                if self._turn is mine:
                    self._turn = None
        if error is not None:
            raise error
        return events

    async def submit(
        self,
        spec: model.TaskSpec,
        *,
        interaction_id: int | None = None,
        call_id: str | None = None,
    ) -> list[model.RoutingEvent]:
        """The task's row and the router's outcome, stored together."""
        row = NewTask(spec.id, spec.channel, spec.queue_id, interaction_id, call_id)
        return await self.run(lambda r, now: r.submit(spec, now), new_task=row)

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

    def _stage(
        self, events: Sequence[model.RoutingEvent], new_task: NewTask | None = None
    ) -> asyncio.Future[None]:
        """Take what the journal must hold after ``events`` (the router's state
        now) and queue it for the next transaction; the future is done when
        that transaction has committed."""
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
        return self._commits.submit(
            _Staged(
                events=list(events),
                tasks=tasks,
                agents={a: self.router.agent_record(a) for a in sorted(agent_ids)},
                customer_agents=self.router.take_customer_agent_changes(),
                meta=meta,
                new_task=new_task,
            )
        )

    async def _write(self, batch: list[_Staged]) -> None:
        """One transaction for the outcomes staged while the previous one was
        in flight (store.group_commit), in command order: later states win."""
        await self.journal.write(**_merged(batch))

    def _write_now(self, batch: list[_Staged]) -> bool:
        return self.journal.write_now(**_merged(batch))

    def _fold(self, events: Sequence[model.RoutingEvent]) -> None:
        for event in events:
            self.stats.apply(event)
            if isinstance(event, model.AgentStateChanged):
                self.agents_today(event.at)  # a new day starts afresh
                self.agent_clock.apply(event)

    def agents_today(self, now: float) -> AgentClock:
        """The live agent times, rolled to a new period at each UTC midnight."""
        day = now - now % 86400
        if day > self.agent_clock.since:
            self.agent_clock.roll(day)
        return self.agent_clock

    async def _announce(self, events: Sequence[model.RoutingEvent]) -> None:
        if not events:
            return
        self._fold(events)
        token = _ANNOUNCING.set(True)
        try:
            await self._call_listeners(events)
        finally:
            _ANNOUNCING.reset(token)

    async def _call_listeners(self, events: Sequence[model.RoutingEvent]) -> None:
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


def _merged(batch: list[_Staged]) -> dict[str, Any]:
    """The journal write of a batch of staged outcomes, in command order:
    later states win."""
    events: list[model.RoutingEvent] = []
    tasks: dict[str, tuple[str, model.TaskRecord | None]] = {}
    agents: dict[str, model.AgentRecord] = {}
    customer_agents: dict[str, str] = {}
    meta: dict[str, Any] = {}
    for staged in batch:
        events += staged.events
        tasks.update(staged.tasks)
        agents.update(staged.agents)
        customer_agents.update(staged.customer_agents)
        meta.update(staged.meta)
    return {
        "events": events,
        "tasks": tasks,
        "agents": agents.values(),
        "meta": meta,
        "new_tasks": [s.new_task for s in batch if s.new_task is not None],
        "customer_agents": customer_agents,
    }
