"""Property tests of the choices against brute force: the indexes (groups,
buckets, bounds, heaps) must pick exactly what scanning everything would.

* A free agent takes, one after the other, the best waiting tasks it matches:
  highest effective priority (priority + aging * wait), then the oldest.
* A new task goes to the free matching agent the queue's strategy prefers.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.clock import FakeClock
from routing.engine import Router
from routing.expressions import parse
from routing.model import (
    PHONE_CHANNELS,
    AgentConfig,
    QueueConfig,
    TaskAssigned,
    TaskSpec,
    Widen,
)

PULL_QUEUES = [
    QueueConfig(
        "levels",
        "agent.skills.x >= task.attributes.level and task.language in agent.languages",
        aging_per_second=0.2,
    ),
    QueueConfig("vip", "task.attributes.vip == false or agent.skills.x >= 7"),
    QueueConfig(
        "widening",
        "agent.skills.x >= 8",
        steps=(Widen(20, "true"),),
        aging_per_second=0.05,
    ),
]
RATES = {q.id: q.aging_per_second for q in PULL_QUEUES}

task_st = st.fixed_dictionaries(
    {
        "queue": st.sampled_from([q.id for q in PULL_QUEUES]),
        "channel": st.sampled_from(["voice", "email", "email"]),
        "priority": st.integers(0, 5),
        "gap": st.sampled_from([0.5, 1.0, 2.5, 7.0, 15.0]),
        "language": st.sampled_from(["en", "fr", None]),
        "level": st.integers(1, 9),
        "vip": st.booleans(),
        "required": st.sampled_from([{}, {}, {"x": 5}]),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    tasks=st.lists(task_st, min_size=1, max_size=25),
    skill=st.integers(1, 10),
    languages=st.frozensets(st.sampled_from(["en", "fr"])),
    voice=st.integers(0, 1),
    email=st.integers(0, 3),
)
def test_a_free_agent_takes_the_best_tasks_it_matches(
    tasks: list[dict[str, Any]], skill: int, languages: frozenset[str], voice: int, email: int
) -> None:
    clock = FakeClock(5_000.0)
    router = Router(PULL_QUEUES)
    for n, t in enumerate(tasks):
        clock.advance(t["gap"])
        router.advance(clock.now())
        spec = TaskSpec(
            f"t{n}",
            t["queue"],
            t["channel"],
            priority=t["priority"],
            language=t["language"],
            required_skills=t["required"],
            attributes={"level": t["level"], "vip": t["vip"]},
        )
        router.submit(spec, clock.now())
    clock.advance(1.0)
    now = clock.now()
    router.advance(now)
    waiting = [v for q in router.queue_ids() for v in router.tasks_in(q)]
    agent = AgentConfig(
        "ann", {"x": skill}, languages, {"voice": voice, "email": email}, auto_accept=True
    )
    router.add_agent(agent, now)
    got = [
        e.task_id
        for e in router.set_agent_state("ann", "available", now)
        if isinstance(e, TaskAssigned)
    ]

    # brute force: every waiting task, the whole target expression
    view = router.agent("ann")
    matching = [
        t
        for t in waiting
        if parse(t.target).matches(view, t)
        and all(view.skills.get(s, 0) >= lvl for s, lvl in t.required_skills.items())
    ]

    def best_first(t: Any) -> tuple[float, float]:
        rate = RATES[t.queue_id]  # the same arithmetic as the router: no float ties flip
        return (-(t.priority - rate * t.arrived_at) - rate * now, t.arrived_at)

    matching.sort(key=best_first)
    expected = []
    load = {"voice": 0, "email": 0}
    cap = {"voice": voice, "email": email}
    for t in matching:
        if any(c in PHONE_CHANNELS for c in load if load[c]):
            break  # a phone task blocks everything else
        if load[t.channel] < cap[t.channel]:
            expected.append(t.id)
            load[t.channel] += 1
    assert got == expected


PICK_STRATEGIES = {
    "longest_idle": QueueConfig("pick", "agent.skills.x >= task.attributes.level"),
    "least_occupied": QueueConfig(
        "pick", "agent.skills.x >= task.attributes.level", strategy="least_occupied"
    ),
    "best_skill": QueueConfig(
        "pick",
        "agent.skills.x >= task.attributes.level",
        strategy="best_skill",
        strategy_skill="x",
    ),
}
WARM = QueueConfig("warm", "agent.id == task.attributes.owner", wrap_up_seconds=0)

agent_st = st.fixed_dictionaries(
    {
        "skill": st.integers(1, 10),
        "capacity": st.integers(1, 3),
        "load": st.integers(0, 3),
        "finished": st.integers(0, 2),
        "gap": st.sampled_from([0.5, 1.0, 3.0]),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    strategy=st.sampled_from(sorted(PICK_STRATEGIES)),
    agents=st.lists(agent_st, min_size=1, max_size=8),
    order=st.permutations(range(8)),
    level=st.integers(1, 10),
)
def test_a_new_task_goes_to_the_agent_the_strategy_prefers(
    strategy: str, agents: list[dict[str, Any]], order: list[int], level: int
) -> None:
    clock = FakeClock(9_000.0)
    router = Router([PICK_STRATEGIES[strategy], WARM])
    for n, a in enumerate(agents):
        clock.advance(a["gap"])
        aid = f"a{n}"
        cfg = AgentConfig(
            aid, {"x": a["skill"]}, capacity={"email": a["capacity"]}, auto_accept=True
        )
        router.add_agent(cfg, clock.now())
        router.set_agent_state(aid, "available", clock.now())
    warm = 0
    # finished work, in another order than sign-in (moves idle times), then ongoing work
    for n in (n for n in order if n < len(agents)):
        for _ in range(agents[n]["finished"]):
            warm += 1
            clock.advance(0.25)
            spec = TaskSpec(f"w{warm}", "warm", "email", attributes={"owner": f"a{n}"})
            router.submit(spec, clock.now())
            router.complete(f"w{warm}", clock.now())
    for n, a in enumerate(agents):
        for _ in range(min(a["load"], a["capacity"])):
            warm += 1
            spec = TaskSpec(f"w{warm}", "warm", "email", attributes={"owner": f"a{n}"})
            router.submit(spec, clock.now())
    clock.advance(1.0)
    now = clock.now()
    views = [router.agent(f"a{n}") for n in range(len(agents))]
    events = router.submit(TaskSpec("t", "pick", "email", attributes={"level": level}), now)
    got = [e.agent_id for e in events if isinstance(e, TaskAssigned)]

    def key(v: Any) -> tuple[Any, ...]:
        idle = v.last_ended.get("email", None)
        if idle is None:
            idle = _signed_in(router, v.id)
        if strategy == "best_skill":
            k0: float = -v.skills["x"]
        elif strategy == "least_occupied":
            k0 = sum(v.load.values()) / sum(v.capacity.values())
        else:
            k0 = 0.0
        return (k0, idle, v.id)

    free = [
        v for v in views if v.load.get("email", 0) < v.capacity["email"] and v.skills["x"] >= level
    ]
    expected = [min(free, key=key).id] if free else []
    assert got == expected


def _signed_in(router: Router, agent_id: str) -> float:
    for rec in router.snapshot().agents:
        if rec.config.id == agent_id:
            return rec.signed_in_at
    raise AssertionError(agent_id)
