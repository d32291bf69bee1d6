"""Which call event the call service hands on next: callers on their way to
an agent first.

The call service's consumers take events from two lanes, both first in,
first out. The first lane holds the events of calls whose caller has no agent
yet (ringing, in an IVR, waiting at the holding point: what leads to an
offer and its screen-pop, or to a cancelled offer when such a caller hangs
up); the second lane holds the rest (calls with an agent, agents' own calls,
hangups of answered calls), whose handling (wrap-up, records, the desk's
call events) no caller waits for. At 50 new calls a second the consumers had
a backlog of such events to work through, first in first out, ahead of the
next caller's offer (bench/RESULTS.md, "Seventh round").

Two rules keep this safe:

* One call's events stay in order: an event goes to the lane that already
  holds earlier events of its call, whatever its own lane would be.
* The second lane is not starved: once its oldest event has waited
  ``max_defer`` seconds, it is taken before the first lane's.

Pure: no I/O, no clock of its own (``now`` comes with every call).
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

__all__ = ["Lanes"]

T = TypeVar("T")


class Lanes(Generic[T]):
    def __init__(self, max_defer: float) -> None:
        if max_defer < 0:
            raise ValueError(f"max_defer must not be negative, got {max_defer}")
        self.max_defer = max_defer
        self._first: collections.deque[tuple[str, T, float]] = collections.deque()
        self._second: collections.deque[tuple[str, T, float]] = collections.deque()
        # Per call with events in a lane: that lane and how many.
        self._calls: dict[str, tuple[collections.deque[tuple[str, T, float]], int]] = {}

    def __len__(self) -> int:
        return len(self._first) + len(self._second)

    def put(self, call_id: str, item: T, *, first: bool, now: float) -> None:
        """Queue ``item`` of call ``call_id``; ``first``: its caller has no
        agent yet (it goes in the first lane unless its call has events
        waiting in the second)."""
        held = self._calls.get(call_id)
        if held is not None:
            lane, count = held
            self._calls[call_id] = (lane, count + 1)
        else:
            lane = self._first if first else self._second
            self._calls[call_id] = (lane, 1)
        lane.append((call_id, item, now))

    def take(self, now: float) -> tuple[T, bool] | None:
        """The next item to hand on and whether it came from the first lane,
        or None when both lanes are empty."""
        first, second = self._first, self._second
        if first and (not second or now - second[0][2] < self.max_defer):
            lane = first
        elif second:
            lane = second
        else:
            return None
        call_id, item, _ = lane.popleft()
        _, count = self._calls[call_id]
        if count == 1:
            del self._calls[call_id]
        else:
            self._calls[call_id] = (lane, count - 1)
        return item, lane is first
