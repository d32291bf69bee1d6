"""Queue statistics as a fold over the router's events.

The live wallboard and the historical report are the same computation: fold
the events (live, as the router emits them; or history, as stored) and read
``figures(queue_id, now)``. Both use the definitions below, so they cannot
disagree. The fold needs no configuration from the queues: each event
carries what it needs (the wait, whether it was within the queue's threshold
at that time, the queue it counts for).

Definitions (per queue):

* offered: tasks that entered the queue (``TaskQueued``: submitted, or
  overflowed in from another queue).
* answered: tasks assigned to an agent from this queue (``TaskAssigned``).
  Wait = time from entering this queue to the assignment. A task requeued
  because the caller never reached the agent (``TaskRequeued``) is taken out
  of answered again and waits on (``requeued`` counts these).
* abandoned: tasks canceled with reason ``caller_hangup`` while waiting or
  offered, with their wait. ``short_abandoned`` are those that waited less than
  ``short_abandon_seconds`` (5 s by default): reported apart and left out of
  the service-level denominators. Other cancels count as ``canceled``.
* overflowed: tasks that left for another queue by an overflow step.
* service level (percent), with the formula named in ``service_level_formula``:

  - ``answered_and_abandoned`` (default): answered within T /
    (answered + abandoned - short abandoned)
  - ``answered_and_late_abandoned``: answered within T / (answered +
    abandoned after T)
  - ``offered``: answered within T / offered

  where T is the queue's ``service_level_seconds`` when the task was answered.
* average speed of answer (ASA): total wait of answered tasks / answered.
* average handle time (AHT): (talk + wrap-up) / handled, over tasks completed
  from this queue (``TaskCompleted``; hold time is part of talk time here).
* waiting and longest wait: tasks in the queue not yet answered (waiting or
  offered), and the age in this queue of the oldest, at ``now``.
* agents by state: agents whose latest ``AgentStateChanged`` lists the queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from routing.model import (
    AgentStateChanged,
    CallbackOffered,
    RoutingEvent,
    TaskAssigned,
    TaskCanceled,
    TaskCompleted,
    TaskOverflowed,
    TaskQueued,
    TaskRequeued,
)

__all__ = ["SERVICE_LEVEL_FORMULAS", "QueueFigures", "QueueStats"]

SERVICE_LEVEL_FORMULAS: Final[Mapping[str, str]] = {
    "answered_and_abandoned": "answered within T / (answered + abandoned, short abandons excluded)",
    "answered_and_late_abandoned": "answered within T / (answered + abandoned after T)",
    "offered": "answered within T / offered",
}


@dataclass(frozen=True, slots=True)
class QueueFigures:
    queue_id: str
    waiting: int
    longest_wait: float  # seconds; 0 when nothing waits
    agents_by_state: Mapping[str, int]
    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    short_abandoned: int
    abandoned_within_threshold: int
    canceled: int  # canceled for another reason than the caller leaving
    requeued: int  # answers undone: the caller never reached the agent
    overflowed: int
    callbacks_offered: int
    handled: int
    service_level: float | None  # percent; None when the denominator is 0
    service_level_formula: str
    average_speed_of_answer: float | None
    average_handle_time: float | None
    average_abandon_wait: float | None


class _Acc:
    __slots__ = (
        "abandon_wait",
        "abandoned",
        "abandoned_within",
        "answered",
        "answered_within",
        "callbacks",
        "canceled",
        "handle_time",
        "handled",
        "offered",
        "overflowed",
        "requeued",
        "short_abandoned",
        "total_wait",
        "waiting",
    )

    def __init__(self) -> None:
        self.offered = 0
        self.answered = 0
        self.answered_within = 0
        self.total_wait = 0.0
        self.abandoned = 0
        self.short_abandoned = 0
        self.abandoned_within = 0
        self.abandon_wait = 0.0
        self.canceled = 0
        self.requeued = 0
        self.overflowed = 0
        self.callbacks = 0
        self.handled = 0
        self.handle_time = 0.0
        self.waiting: dict[str, float] = {}  # task id -> entered this queue at


class QueueStats:
    """Fold routing events into per-queue figures. ``apply`` is O(1) per event."""

    def __init__(
        self,
        *,
        formula: str = "answered_and_abandoned",
        short_abandon_seconds: float = 5.0,
        queues: Iterable[str] = (),
    ) -> None:
        if formula not in SERVICE_LEVEL_FORMULAS:
            raise ValueError(
                f"unknown service level formula {formula!r} "
                f"(expected {', '.join(SERVICE_LEVEL_FORMULAS)})"
            )
        self.formula = formula
        self.short_abandon_seconds = float(short_abandon_seconds)
        self._queues: dict[str, _Acc] = {q: _Acc() for q in queues}
        self._agents: dict[str, tuple[str, tuple[str, ...]]] = {}
        # answered and not completed yet: task -> (queue, wait, within threshold, entered)
        self._answered: dict[str, tuple[str, float, bool, float]] = {}

    @classmethod
    def fold(
        cls,
        events: Iterable[RoutingEvent],
        *,
        formula: str = "answered_and_abandoned",
        short_abandon_seconds: float = 5.0,
        queues: Iterable[str] = (),
    ) -> QueueStats:
        stats = cls(formula=formula, short_abandon_seconds=short_abandon_seconds, queues=queues)
        stats.apply_all(events)
        return stats

    def _acc(self, queue_id: str) -> _Acc:
        acc = self._queues.get(queue_id)
        if acc is None:
            acc = self._queues[queue_id] = _Acc()
        return acc

    def apply_all(self, events: Iterable[RoutingEvent]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: RoutingEvent) -> None:
        if isinstance(event, TaskQueued):
            acc = self._acc(event.queue_id)
            acc.offered += 1
            acc.waiting[event.task_id] = event.queued_at
        elif isinstance(event, TaskAssigned):
            acc = self._acc(event.queue_id)
            acc.answered += 1
            acc.total_wait += event.waited
            if event.within_threshold:
                acc.answered_within += 1
            entered = acc.waiting.pop(event.task_id, event.at - event.waited)
            self._answered[event.task_id] = (
                event.queue_id,
                event.waited,
                event.within_threshold,
                entered,
            )
        elif isinstance(event, TaskRequeued):
            answered = self._answered.pop(event.task_id, None)
            if answered is not None:
                queue_id, waited, within, entered = answered
                acc = self._acc(queue_id)
                acc.answered -= 1
                acc.total_wait -= waited
                if within:
                    acc.answered_within -= 1
                acc.requeued += 1
                acc.waiting[event.task_id] = entered
        elif isinstance(event, TaskCanceled):
            acc = self._acc(event.queue_id)
            acc.waiting.pop(event.task_id, None)
            if event.abandoned:
                acc.abandoned += 1
                acc.abandon_wait += event.waited
                if event.waited < self.short_abandon_seconds:
                    acc.short_abandoned += 1
                if event.within_threshold:
                    acc.abandoned_within += 1
            else:
                acc.canceled += 1
        elif isinstance(event, TaskOverflowed):
            acc = self._acc(event.from_queue)
            acc.overflowed += 1
            acc.waiting.pop(event.task_id, None)
        elif isinstance(event, TaskCompleted):
            self._answered.pop(event.task_id, None)
            acc = self._acc(event.queue_id)
            acc.handled += 1
            acc.handle_time += event.talk_time + event.wrap_time
        elif isinstance(event, CallbackOffered):
            self._acc(event.queue_id).callbacks += 1
        elif isinstance(event, AgentStateChanged):
            self._agents[event.agent_id] = (event.state.value, event.queues)
            for q in event.queues:
                self._acc(q)

    def queue_ids(self) -> tuple[str, ...]:
        return tuple(self._queues)

    def figures(self, queue_id: str, now: float) -> QueueFigures:
        acc = self._queues.get(queue_id) or _Acc()
        by_state: dict[str, int] = {}
        for state, queues in self._agents.values():
            if queue_id in queues:
                by_state[state] = by_state.get(state, 0) + 1
        longest = max((now - t for t in acc.waiting.values()), default=0.0)
        counted_abandons = acc.abandoned - acc.short_abandoned
        if self.formula == "answered_and_abandoned":
            denominator = acc.answered + counted_abandons
        elif self.formula == "answered_and_late_abandoned":
            denominator = acc.answered + (acc.abandoned - acc.abandoned_within)
        else:
            denominator = acc.offered
        return QueueFigures(
            queue_id=queue_id,
            waiting=len(acc.waiting),
            longest_wait=max(longest, 0.0),
            agents_by_state=by_state,
            offered=acc.offered,
            answered=acc.answered,
            answered_within_threshold=acc.answered_within,
            abandoned=acc.abandoned,
            short_abandoned=acc.short_abandoned,
            abandoned_within_threshold=acc.abandoned_within,
            canceled=acc.canceled,
            requeued=acc.requeued,
            overflowed=acc.overflowed,
            callbacks_offered=acc.callbacks,
            handled=acc.handled,
            service_level=100.0 * acc.answered_within / denominator if denominator else None,
            service_level_formula=self.formula,
            average_speed_of_answer=acc.total_wait / acc.answered if acc.answered else None,
            average_handle_time=acc.handle_time / acc.handled if acc.handled else None,
            average_abandon_wait=acc.abandon_wait / acc.abandoned if acc.abandoned else None,
        )

    def waiting(self, queue_id: str) -> tuple[int, float | None]:
        """How many tasks of the queue wait, and when the longest waiting one
        arrived (None: none waits)."""
        acc = self._queues.get(queue_id)
        if acc is None:
            return 0, None
        return len(acc.waiting), min(acc.waiting.values(), default=None)

    def report(self, now: float) -> dict[str, QueueFigures]:
        return {q: self.figures(q, now) for q in self._queues}
