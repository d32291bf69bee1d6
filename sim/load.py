"""A call-load generator for the PBX simulator: N inbound calls per second,
optionally hung up by the customer after ``hold_seconds``.

    load = CallLoad(sim, rate_per_s=5, hold_seconds=30)
    load.start()
    ...
    await load.stop()      # stops placing calls; calls in progress stay up

``placed``, ``reached_hold``, ``hung_up`` and ``failed`` count what happened.

IVR callers: ``keys(number)`` gives the keys a caller presses in the IVR (sent
as soon as the call is up; the FastAGI flow reads them in order). With
``survey_keys(number)``, a caller talking to an agent when ``hold_seconds``
are over stays on the line: the agent hangs up instead, and the caller
answers the post-call survey with those keys (``surveyed`` counts them).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence

from sim.pbx.model import SimChannel
from sim.pbx.server import PbxSimulator

__all__ = ["CallLoad"]

log = logging.getLogger(__name__)


class CallLoad:
    def __init__(
        self,
        sim: PbxSimulator,
        rate_per_s: float,
        *,
        hold_seconds: float | None = None,
        numbers: Sequence[str] | None = None,
        did: str = "5000",
        keys: Callable[[str], str] | None = None,
        survey_keys: Callable[[str], str] | None = None,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.sim = sim
        self.rate_per_s = rate_per_s
        self.hold_seconds = hold_seconds
        self.did = did
        self.keys = keys
        self.survey_keys = survey_keys
        self._numbers = itertools.cycle(numbers) if numbers else None
        self._serial = itertools.count(1)
        self._runner: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[None]] = set()  # calls in their hold_seconds
        self._stopping = False
        self.placed = 0
        self.reached_hold = 0
        self.hung_up = 0
        self.failed = 0
        self.surveyed = 0

    @property
    def running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    def start(self) -> None:
        """Start placing calls (needs a running event loop)."""
        if self.running:
            return
        self._runner = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, *, hang_up: bool = False) -> None:
        """Stop placing calls. With ``hang_up`` the calls it placed that are
        still up are hung up by their customers; otherwise they stay, and
        only the pending ``hold_seconds`` hangups are cancelled."""
        self._stopping = True
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        for task in list(self._waiting):
            task.cancel()
        calls = list(self._calls)
        if calls:
            # calls still on their way to the holding point finish that
            await asyncio.gather(*calls, return_exceptions=True)
        self._stopping = False
        if hang_up:
            for ch in self.sim.channels():
                if ch.device == "trunk" and ch.variables.get("CALLWRIGHT_LOAD") == "1":
                    try:
                        await self.sim.customer_hangup(ch.name)
                    except LookupError:
                        pass

    def next_number(self) -> str:
        if self._numbers is not None:
            return next(self._numbers)
        return f"+1555{next(self._serial) % 10_000_000:07d}"

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rate_per_s
        started = loop.time()
        for n in itertools.count():
            due = started + n * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = loop.create_task(self._call(self.next_number()))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            self.placed += 1

    async def _call(self, number: str) -> None:
        try:
            keys = self.keys(number) if self.keys is not None else ""
            if keys:
                ch = await self._ivr_call(number, keys)
            else:
                ch = await self.sim.inbound_call(number, "", self.did)
        except Exception:
            self.failed += 1
            log.exception("load call from %s failed", number)
            return
        ch.variables["CALLWRIGHT_LOAD"] = "1"
        if ch.hungup:
            self.failed += 1
            return
        self.reached_hold += 1
        if self.hold_seconds is None or self._stopping:
            return
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            await asyncio.sleep(self.hold_seconds)
        finally:
            self._waiting.discard(task)
        if not ch.hungup and self.survey_keys is not None and await self._agent_hangs_up(ch):
            self.sim.send_dtmf(ch.name, self.survey_keys(number))
            self.surveyed += 1
            return
        if not ch.hungup:
            try:
                await self.sim.customer_hangup(ch.name)
            except LookupError:
                return
            self.hung_up += 1

    async def _ivr_call(self, number: str, keys: str) -> SimChannel:
        """Place the call and press ``keys`` once its channel exists."""
        before = {c.name for c in self.sim.channels()}
        call = asyncio.get_running_loop().create_task(self.sim.inbound_call(number, "", self.did))

        def new_channel(channels: list[SimChannel]) -> bool:
            return call.done() or any(
                c.name not in before and c.device == "trunk" and c.caller_num == number
                for c in channels
            )

        channels = await self.sim.wait_for_channels(new_channel, timeout=10)
        for c in channels:
            if c.name not in before and c.device == "trunk" and c.caller_num == number:
                self.sim.send_dtmf(c.name, keys)
                break
        return await call

    async def _agent_hangs_up(self, ch: SimChannel) -> bool:
        """The agent talking to ``ch`` puts the phone down; False if none is."""
        bridge = ch.bridge
        if bridge is None:
            return False
        agents = [
            c.device for c in bridge.channels if c is not ch and c.device not in (None, "trunk")
        ]
        if not agents:
            return False
        try:
            await self.sim.device_hangup(agents[0])
        except LookupError:
            return False
        return True
