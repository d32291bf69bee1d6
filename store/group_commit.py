"""Group commit: items handed in while a write is in flight are written
together by the next one.

One write at a time. The first item starts a write at once (no timer); the
items that arrive meanwhile wait for the next write, at most ``max_batch`` a
write. ``submit`` returns a future that is done when the write holding the
item has finished, with that write's exception if it failed (every item of
the batch gets it; the next batch is written all the same). An item is
written even if whoever waits for it is cancelled. If the writer itself is
cancelled (the event loop shutting down), every waiting item's future is
cancelled: nobody may believe it stored.

``write_now`` (optional) writes a batch on the caller's thread, at once, when
it can without waiting (store.db.OneHop.run_now: a SQLite file, not locked),
and says whether it did. With it, the first ``now_per_pass`` items submitted
in an event-loop pass while no write is in flight or pending are each written
inside ``submit``, and the future returned is already done: whoever awaits it
goes on in the same pass instead of two passes later (the writer's task, then
the waiter's wake-up). Items after those in the same pass, or while a write is
in flight, are grouped as before: a burst of any size costs at most
``now_per_pass`` + 1 transactions, not one each.

Used by the routing journal (routing.service) and the call records
(cti.persistence.CallRecordWriter).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Items written at once in one event-loop pass before the rest are grouped: a
# call service step delivering a few events of one call writes each record
# without waiting; a burst (a resync's hundreds of calls) still goes in a
# handful of transactions.
NOW_PER_PASS = 8


class GroupCommit(Generic[T]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        max_batch: int,
        name: str,
        write_now: Callable[[list[T]], bool] | None = None,
        now_per_pass: int = NOW_PER_PASS,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._write = write
        self._write_now = write_now
        self.now_per_pass = now_per_pass
        self._now_in_pass = 0  # items written inside submit in this event-loop pass
        self.max_batch = max_batch
        self.name = name
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.transactions = 0  # writes done or failed: for tests and tuning
        self.failures = 0

    def submit(self, item: T) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if (
            self._task is None
            and self._write_now is not None
            and self._now_in_pass < self.now_per_pass
        ):
            # Nothing in flight or pending (the task drains all before it
            # ends), and not a burst.
            if self._now_in_pass == 0:
                asyncio.get_running_loop().call_soon(self._next_pass)
            self._now_in_pass += 1
            try:
                written = self._write_now([item])
            except Exception as exc:
                self.transactions += 1
                self.failures += 1
                log.warning("%s: a write of 1 item failed: %r", self.name, exc)
                done.set_exception(exc)
                return done
            if written:
                self.transactions += 1
                done.set_result(None)
                return done
        self._pending.append((item, done))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)
        return done

    def _next_pass(self) -> None:
        self._now_in_pass = 0

    async def drain(self) -> None:
        """Wait until nothing is pending (being cancelled here does not stop
        the write under way)."""
        task = self._task
        if task is not None:
            await asyncio.wait([task])

    async def _run(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._one(batch)
        finally:
            self._task = None

    async def _one(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        self.transactions += 1
        try:
            await self._write([item for item, _ in batch])
        except asyncio.CancelledError:
            self._pending, left = [], self._pending
            for _, done in (*batch, *left):
                done.cancel()
            raise
        except Exception as exc:
            self.failures += 1
            log.warning("%s: a write of %d item(s) failed: %r", self.name, len(batch), exc)
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
        else:
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
