"""Keeping Python's cyclic garbage collector out of the screen-pop's way.

Measured on the desk benchmark (bench/RESULTS.md): with 1,000 agents connected
the server holds about 300,000 objects the collector tracks (mostly the
agents' Socket.IO sessions: tasks, coroutines, queues). A full collection
walks all of them and stopped the event loop for 100-380 ms, several times a
minute under load: every call in flight waited, and the wait compounded.

Objects that outlive a while (sessions, configuration, the router's agents)
are moved out of the collector's view with ``gc.freeze()``: once at start,
then every ``freeze_every`` seconds after a collection of the young
generations, so a full collection only walks what was created since. The
price: a cycle of frozen objects that becomes garbage later (a session that
ended, say) is not reclaimed until the next ``gc.unfreeze()`` and full
collection, done every ``full_every`` seconds (one pause of that length, an
hour apart by default, instead of several a minute). Objects without cycles
are freed by reference counting as always.

The collector's own schedule is replaced too, while the policy runs (``start``
to ``stop``): the young generations are collected by the clock, the youngest
every ``young_every`` seconds (50 ms) and the middle one at every
``MIDDLE_STEPS``-th of those, and the collector no longer decides on its own
to walk the old generation: the policy's tick does it, every ``freeze_every``
seconds, just before freezing. Its own trigger stays as a backstop only
(``BACKSTOP`` allocations), should the event loop not run the timer.

Why by the clock: the collector counts allocations minus deallocations of
tracked objects, and a server in a steady state frees old objects (ended calls,
replayed envelopes) as fast as it makes new ones, so the count says little of
how much the young generations hold. Left to its count, at 50 calls/s the
youngest was collected about 3 times a second and those collections took up
to 5-8 ms, the middle one's 10-28 ms (gen1, "Third performance round" and
"Fourth performance round" in bench/RESULTS.md). By the clock each walks
only what 50 ms (or 250 ms) left behind: at most about 1 ms and 3-7 ms, for
the same total time.

This module touches only the interpreter's collector; the clock and the
sleeps are the caller's (``run`` takes them), so a test drives it step by step.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["MemoryPolicy"]

# While the policy runs: the youngest generation collected every YOUNG_EVERY
# seconds, the middle one at every MIDDLE_STEPS-th of those; the old one never
# by the collector itself (its count would have to reach OLD_NEVER), only by
# the policy's tick. The collector's own trigger, BACKSTOP allocations (minus
# deallocations), should the timer not run.
YOUNG_EVERY = 0.05
MIDDLE_STEPS = 5
BACKSTOP = 50_000
BACKSTOP_STEPS = 3
OLD_NEVER = 1_000_000_000

log = logging.getLogger(__name__)


@dataclass
class MemoryPolicy:
    """``freeze_every``: seconds between freezes (0: never freeze);
    ``full_every``: seconds between full collections of everything, frozen
    objects included (0: never)."""

    freeze_every: float = 60.0
    full_every: float = 3600.0
    young_every: float = YOUNG_EVERY
    _last_full: float | None = None
    _last_tick: float | None = None
    _steps: int = 0
    _thresholds: tuple[int, int, int] | None = None  # the collector's, before start

    @property
    def enabled(self) -> bool:
        return self.freeze_every > 0

    def start(self, now: float) -> None:
        """After start-up: what exists now is long-lived."""
        if not self.enabled:
            return
        gc.collect()
        gc.freeze()
        self._last_full = self._last_tick = now
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
        gc.set_threshold(BACKSTOP, BACKSTOP_STEPS, OLD_NEVER)
        log.info("gc: %d objects frozen after start-up", gc.get_freeze_count())

    def stop(self) -> None:
        """Give the collector its own schedule back."""
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None

    def step(self, now: float) -> str:
        """Every ``young_every`` seconds: ``"young"`` (the youngest generation
        collected), ``"middle"`` (the two young ones), or, every
        ``freeze_every`` seconds, the tick's ``"freeze"`` or ``"full"``."""
        if self._last_tick is None:
            self._last_tick = now
        if now - self._last_tick >= self.freeze_every:
            return self.tick(now)
        self._steps += 1
        if self._steps % MIDDLE_STEPS == 0:
            gc.collect(1)
            return "middle"
        gc.collect(0)
        return "young"

    def tick(self, now: float) -> str:
        """One step, every ``freeze_every`` seconds: ``"full"`` when it was time
        for a full collection, else ``"freeze"``."""
        self._last_tick = now
        if self._last_full is None:
            self._last_full = now
        if self.full_every > 0 and now - self._last_full >= self.full_every:
            started = time.perf_counter()
            gc.unfreeze()
            found = gc.collect()
            gc.freeze()
            self._last_full = now
            log.info(
                "gc: full collection, %d unreachable objects, %.0f ms, %d objects frozen",
                found,
                (time.perf_counter() - started) * 1000,
                gc.get_freeze_count(),
            )
            return "full"
        gc.collect()  # all but the frozen: garbage there is not frozen
        gc.freeze()
        return "freeze"

    async def run(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Step forever (cancel to stop: the collector gets its own schedule
        back; what is frozen stays frozen)."""
        if not self.enabled:
            return
        try:
            while True:
                await sleep(self.young_every)
                try:
                    self.step(clock())
                except Exception:  # never let housekeeping end the server
                    log.exception("gc: housekeeping failed")
        finally:
            self.stop()
