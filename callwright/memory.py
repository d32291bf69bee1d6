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

log = logging.getLogger(__name__)


@dataclass
class MemoryPolicy:
    """``freeze_every``: seconds between freezes (0: never freeze);
    ``full_every``: seconds between full collections of everything, frozen
    objects included (0: never)."""

    freeze_every: float = 60.0
    full_every: float = 3600.0
    _last_full: float | None = None

    @property
    def enabled(self) -> bool:
        return self.freeze_every > 0

    def start(self, now: float) -> None:
        """After start-up: what exists now is long-lived."""
        if not self.enabled:
            return
        gc.collect()
        gc.freeze()
        self._last_full = now
        log.info("gc: %d objects frozen after start-up", gc.get_freeze_count())

    def tick(self, now: float) -> str:
        """One step, every ``freeze_every`` seconds: ``"full"`` when it was time
        for a full collection, else ``"freeze"``."""
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
        gc.collect(1)  # the young generations: garbage there is not frozen
        gc.freeze()
        return "freeze"

    async def run(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Tick forever (cancel to stop; the collector is left as it is)."""
        if not self.enabled:
            return
        while True:
            await sleep(self.freeze_every)
            try:
                self.tick(clock())
            except Exception:  # never let housekeeping end the server
                log.exception("gc: housekeeping failed")
