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

__all__ = ["AgentTime", "agent_times"]

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


def agent_times(
    events: Iterable[RoutingEvent],
    since: float,
    until: float,
    current: Mapping[str, AgentState] | None = None,
) -> dict[str, AgentTime]:
    """Each agent's time by state in ``[since, until)`` (see the module
    docstring); ``current``: the states now, for a period that ends now."""
    seconds: dict[str, dict[str, float]] = {}
    state: dict[str, AgentState] = {}
    mark: dict[str, float] = {}
    for event in events:
        if not isinstance(event, AgentStateChanged) or not since <= event.at < until:
            continue
        agent = event.agent_id
        if agent not in state:
            seconds[agent] = {}
            if event.previous is not None:  # None: the agent was added now
                _add(seconds[agent], event.previous, event.at - since)
        else:
            _add(seconds[agent], state[agent], event.at - mark[agent])
        state[agent], mark[agent] = event.state, event.at
    for agent, last in state.items():
        _add(seconds[agent], last, until - mark[agent])
    for agent, now in (current or {}).items():
        if agent not in state:
            seconds[agent] = {}
            _add(seconds[agent], now, until - since)
    return {agent: _time(agent, spent) for agent, spent in sorted(seconds.items())}


def _add(spent: dict[str, float], state: AgentState, seconds: float) -> None:
    if seconds > 0:
        spent[state.value] = spent.get(state.value, 0.0) + seconds


def _time(agent_id: str, spent: dict[str, float]) -> AgentTime:
    handling = sum(spent.get(s.value, 0.0) for s in HANDLING)
    ready = handling + spent.get(AgentState.AVAILABLE.value, 0.0)
    return AgentTime(agent_id, dict(spent), 100.0 * handling / ready if ready > 0 else None)
