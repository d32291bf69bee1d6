"""Agents' time by state, and occupancy, as a fold over the router's events.

Pure (no I/O): the events come in, with the period ``[since, until)`` and,
for a period that runs to now, each agent's state now. Per agent:

* seconds in each state (``available``, ``busy``, ``wrap_up``, ``break``,
  ``offline``) within the period, from its ``AgentStateChanged`` events. The
  state before an agent's first change in the period is that change's
  ``previous``. An agent with no change in the period was in one state all
  along: its state now (``current``) when the period runs to now; unknown,
  and left out, for a period in the past.
* occupancy (percent): handling / (handling + available), where handling is
  ``busy`` + ``wrap_up``: the share of the time an agent was ready for work
  that they spent on it. None when the agent was neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from routing.model import AgentState, AgentStateChanged, RoutingEvent

__all__ = ["AgentClock", "AgentTime", "agent_times"]

HANDLING = (AgentState.BUSY, AgentState.WRAP_UP)


@dataclass(frozen=True)
class AgentTime:
    agent_id: str
    seconds: Mapping[str, float]  # state -> seconds in the period
    occupancy: float | None  # percent

    def to_json(self) -> dict[str, object]:
        return {
            "agent_id": self.agent_id,
            "seconds": {state: round(s, 1) for state, s in self.seconds.items()},
            "occupancy": None if self.occupancy is None else round(self.occupancy, 1),
        }


class AgentClock:
    """The fold, live: each agent's seconds by state since ``since``, one
    event at a time (``apply``), read at any moment (``read``). ``roll``
    starts a new period (a new day) with every agent in the state they are in."""

    def __init__(self, since: float) -> None:
        self.since = since
        self._spent: dict[str, dict[str, float]] = {}
        self._state: dict[str, AgentState] = {}
        self._mark: dict[str, float] = {}

    def apply(self, event: RoutingEvent) -> None:
        if not isinstance(event, AgentStateChanged) or event.at < self.since:
            return
        agent = event.agent_id
        if agent not in self._state:
            self._spent[agent] = {}
            if event.previous is not None:  # None: the agent was added now
                _add(self._spent[agent], event.previous, event.at - self.since)
        else:
            _add(self._spent[agent], self._state[agent], event.at - self._mark[agent])
        self._state[agent], self._mark[agent] = event.state, event.at

    def roll(self, since: float) -> None:
        """A new period from ``since``: the time so far is dropped."""
        self.since = since
        self._spent = {agent: {} for agent in self._state}
        self._mark = dict.fromkeys(self._state, since)

    def read(
        self, until: float, current: Mapping[str, AgentState] | None = None
    ) -> dict[str, AgentTime]:
        """The times up to ``until``; ``current``: the states now, for agents
        with no change in the period (see the module docstring)."""
        spent = {agent: dict(s) for agent, s in self._spent.items()}
        for agent, state in self._state.items():
            _add(spent[agent], state, until - self._mark[agent])
        for agent, now in (current or {}).items():
            if agent not in self._state:
                spent[agent] = {}
                _add(spent[agent], now, until - self.since)
        return {agent: _time(agent, s) for agent, s in sorted(spent.items())}


def agent_times(
    events: Iterable[RoutingEvent],
    since: float,
    until: float,
    current: Mapping[str, AgentState] | None = None,
) -> dict[str, AgentTime]:
    """Each agent's time by state in ``[since, until)`` (see the module
    docstring); ``current``: the states now, for a period that ends now."""
    clock = AgentClock(since)
    for event in events:
        if isinstance(event, AgentStateChanged) and event.at < until:
            clock.apply(event)
    return clock.read(until, current)


def _add(spent: dict[str, float], state: AgentState, seconds: float) -> None:
    if seconds > 0:
        spent[state.value] = spent.get(state.value, 0.0) + seconds


def _time(agent_id: str, spent: dict[str, float]) -> AgentTime:
    handling = sum(spent.get(s.value, 0.0) for s in HANDLING)
    ready = handling + spent.get(AgentState.AVAILABLE.value, 0.0)
    return AgentTime(agent_id, dict(spent), 100.0 * handling / ready if ready > 0 else None)
