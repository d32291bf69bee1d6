"""Rate limits (pure: the time is an argument).

``TokenBucket``: a connection's budget of client events. It holds at most
``burst`` tokens and gains ``rate`` per second; each event takes one. An event
that finds the bucket empty is refused (the caller answers ``rate_limited``).

``Coalescer``: at most one send per ``interval`` per key (a queue's
statistics). ``request(key, now)`` answers ``SEND`` (send now), a time to send
at (schedule one send then, carrying the latest figures), or ``None`` (a send
is already scheduled and will carry this change too). The caller reports the
scheduled send with ``sent(key, now)``.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["SEND", "Coalescer", "TokenBucket"]


class TokenBucket:
    __slots__ = ("_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self._updated)
        self._updated = max(self._updated, now)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


SEND: Final = "send"


class Coalescer:
    def __init__(self, interval: float) -> None:
        if interval < 0:
            raise ValueError("interval must not be negative")
        self.interval = float(interval)
        self._last: dict[str, float] = {}
        self._scheduled: dict[str, float] = {}

    def request(self, key: str, now: float) -> Literal["send"] | float | None:
        if key in self._scheduled:
            return None
        last = self._last.get(key)
        if last is None or now - last >= self.interval:
            self._last[key] = now
            return SEND
        at = last + self.interval
        self._scheduled[key] = at
        return at

    def sent(self, key: str, now: float) -> None:
        """The scheduled send for ``key`` went out (or was dropped) at ``now``."""
        self._scheduled.pop(key, None)
        self._last[key] = now

    def pending(self) -> dict[str, float]:
        return dict(self._scheduled)
