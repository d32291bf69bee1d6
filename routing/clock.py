"""The clock seam. The engine never reads time: the shell passes ``now``
(epoch seconds) to every call. ``Clock`` is what a shell holds; the real one is
any object whose ``now()`` returns ``time.time()``. Tests use ``FakeClock``."""

from __future__ import annotations

import math
from typing import Protocol

__all__ = ["Clock", "FakeClock"]


class Clock(Protocol):
    def now(self) -> float: ...


class FakeClock:
    """A clock that only moves when told to (cf. trio's ``MockClock.jump``)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"a clock only moves forward (got {seconds!r} s)")
        self._now += seconds
        return self._now
