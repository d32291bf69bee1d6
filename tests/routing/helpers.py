"""Small builders shared by the routing tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from routing.clock import FakeClock
from routing.engine import Router
from routing.model import AgentConfig, Overflow, QueueConfig, RoutingEvent, TaskSpec, Widen

E = TypeVar("E")

T0 = 1_700_000_000.0

# Two queues with every kind of option: billing widens its target after 30 s and
# overflows to general after 120 s (the snapshot and codec tests).
BILLING_AND_GENERAL = [
    QueueConfig(
        "billing",
        "agent.skills.billing >= 5",
        steps=(Widen(30, "agent.skills.billing >= 3"), Overflow(120, "general")),
        aging_per_second=0.1,
        reservation_timeout_seconds=20,
        wrap_up_seconds=30,
        sticky_agent_seconds=60,
    ),
    QueueConfig("general", '"general" in agent.skills'),
]


def of(events: Iterable[RoutingEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def one(events: Iterable[RoutingEvent], kind: type[E]) -> E:
    found = of(events, kind)
    assert len(found) == 1, f"expected one {kind.__name__}, got {found!r}"
    return found[0]


def names(events: Iterable[RoutingEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


class Desk:
    """A router, a fake clock and the events seen so far: the shell, minus I/O."""

    def __init__(self, *queues: QueueConfig, **options: Any) -> None:
        self.clock = FakeClock(T0)
        self.router = Router(list(queues), **options)
        self.log: list[RoutingEvent] = []

    @property
    def now(self) -> float:
        return self.clock.now()

    def _keep(self, events: list[RoutingEvent]) -> list[RoutingEvent]:
        self.log.extend(events)
        return events

    def agent(
        self,
        agent_id: str,
        *,
        available: bool = True,
        **config: Any,
    ) -> list[RoutingEvent]:
        config.setdefault("capacity", {"voice": 1})
        events = self.router.add_agent(AgentConfig(agent_id, **config), self.now)
        if available:
            events += self.router.set_agent_state(agent_id, "available", self.now)
        return self._keep(events)

    def submit(
        self, task_id: str, queue_id: str, channel: str = "voice", **spec: Any
    ) -> list[RoutingEvent]:
        return self._keep(
            self.router.submit(TaskSpec(task_id, queue_id, channel, **spec), self.now)
        )  # type: ignore[arg-type]

    def wait(self, seconds: float) -> list[RoutingEvent]:
        self.clock.advance(seconds)
        return self._keep(self.router.advance(self.now))

    def do(self, method: str, *args: Any, **kwargs: Any) -> list[RoutingEvent]:
        fn = getattr(self.router, method)
        return self._keep(fn(*args, now=self.now, **kwargs))
