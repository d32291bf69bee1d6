"""Queue figures per interval (15 minutes by default): the wallboard's "calls
per 15 minutes" and "service level over the day".

The same fold as the live figures (``routing.stats.QueueStats``), one per
interval: each event counts in the interval its time (``at``) falls in, with
the definitions of ``routing.stats``. So an interval's offered are the tasks
that entered the queue in it, its answered those assigned in it (with their
wait: ASA and service level), its abandoned those whose caller left in it,
its handle time that of tasks completed in it. A ``TaskRequeued`` (the caller
never reached the agent) undoes the answer in the interval it was counted in.

Intervals start at multiples of ``seconds`` since the epoch; every time zone
offset in use is a multiple of 15 minutes, so 15-minute (and 5-minute)
intervals are also aligned on the local clock.

Pure: no I/O, no clock; the caller folds stored or live events in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from routing.codec import to_json
from routing.model import (
    AgentStateChanged,
    RoutingEvent,
    TaskAssigned,
    TaskCanceled,
    TaskCompleted,
    TaskRequeued,
)
from routing.stats import SERVICE_LEVEL_FORMULAS, QueueFigures, QueueStats

__all__ = ["INTERVAL_SECONDS", "IntervalStats", "interval_json"]

INTERVAL_SECONDS: Final = (300, 900, 1800, 3600)

# Live-only figures: meaningless for an interval that is over.
_LIVE_ONLY: Final = ("waiting", "longest_wait", "agents_by_state")


class IntervalStats:
    def __init__(
        self,
        *,
        seconds: int = 900,
        formula: str = "answered_and_abandoned",
        short_abandon_seconds: float = 5.0,
        queues: Iterable[str] = (),
    ) -> None:
        if seconds not in INTERVAL_SECONDS:
            raise ValueError(
                f"interval seconds: expected one of {', '.join(map(str, INTERVAL_SECONDS))}"
            )
        if formula not in SERVICE_LEVEL_FORMULAS:
            raise ValueError(
                f"unknown service level formula {formula!r} "
                f"(expected {', '.join(SERVICE_LEVEL_FORMULAS)})"
            )
        self.seconds = seconds
        self.formula = formula
        self.short_abandon_seconds = short_abandon_seconds
        self.queues: tuple[str, ...] = tuple(queues)
        self._intervals: dict[float, QueueStats] = {}
        self._answered_in: dict[str, float] = {}  # task id -> interval of its answer

    @classmethod
    def fold(cls, events: Iterable[RoutingEvent], **options: Any) -> IntervalStats:
        stats = cls(**options)
        for event in events:
            stats.apply(event)
        return stats

    def start_of(self, t: float) -> float:
        return float(t - t % self.seconds)

    def apply(self, event: RoutingEvent) -> float | None:
        """Count ``event``; returns the start of the interval it counted in."""
        if isinstance(event, AgentStateChanged):
            return None  # agents by state: a live figure only
        if isinstance(event, TaskRequeued):
            answered = self._answered_in.pop(event.task_id, None)
            if answered is None:
                return None
            start = answered
        else:
            start = self.start_of(event.at)
            if isinstance(event, TaskAssigned):
                self._answered_in[event.task_id] = start
            elif isinstance(event, TaskCompleted | TaskCanceled):
                self._answered_in.pop(event.task_id, None)
        stats = self._intervals.get(start)
        if stats is None:
            stats = self._intervals[start] = QueueStats(
                formula=self.formula,
                short_abandon_seconds=self.short_abandon_seconds,
                queues=self.queues,
            )
        stats.apply(event)
        return start

    def figures(self, queue_id: str, start: float) -> QueueFigures:
        """The interval starting at ``start`` (zeros if nothing happened in it)."""
        start = self.start_of(start)
        stats = self._intervals.get(start) or QueueStats(formula=self.formula)
        return stats.figures(queue_id, start + self.seconds)

    def series(self, queue_id: str, since: float, until: float) -> list[tuple[float, QueueFigures]]:
        """Every interval that starts in [``since``, ``until``), in order."""
        first = self.start_of(since)
        if first < since:
            first += self.seconds
        out = []
        start = first
        while start < until:
            out.append((start, self.figures(queue_id, start)))
            start += self.seconds
        return out

    def forget_before(self, t: float) -> None:
        """Drop the intervals that ended before ``t`` (a live fold's memory)."""
        ended = [s for s in self._intervals if s + self.seconds <= t]
        if not ended:
            # Every answer is counted in an interval still kept (``apply``
            # makes the interval as it records the answer): nothing to drop,
            # and no walk over the answered tasks, called at every routing
            # event as this is.
            return
        for start in ended:
            del self._intervals[start]
        stale = [task for task, start in self._answered_in.items() if start + self.seconds <= t]
        for task in stale:
            del self._answered_in[task]


def interval_json(start: float, seconds: int, figures: QueueFigures) -> dict[str, Any]:
    data = to_json(figures)
    assert isinstance(data, dict)
    for name in _LIVE_ONLY:
        data.pop(name, None)
    return {"start": start, "end": start + seconds, **data}
