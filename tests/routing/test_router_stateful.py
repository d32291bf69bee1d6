"""Property test: whatever agents, tasks, answers, hang-ups, state changes and
clock moves come in, the router keeps its promises.

A hypothesis state machine drives the public API with a FakeClock. A shadow
model is rebuilt from the emitted events alone (as the service would), and
after every step the machine checks:

* every task is in exactly one state, and the router agrees with the events;
* an agent never holds more tasks of a channel than its capacity;
* a phone task (voice, callback) reserved or assigned to an agent blocks
  every other offer to that agent; no phone offer goes to an agent busy with
  an outside call or holding an email of an ``email_blocks_voice`` queue;
* an agent who rejected a task, let it time out or never answered it
  (requeue) is never offered it again;
* a canceled task is never assigned, a finished task never comes back;
* work-conserving: no waiting task has a free agent that matches it (checked
  by brute force with the plain expression evaluator, not the router's
  indexes); a task in its sticky wait only counts its sticky agent;
* ``tasks_in`` lists exactly the waiting and offered tasks, each in one queue.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from routing.clock import FakeClock
from routing.engine import Router
from routing.expressions import Expression, parse
from routing.model import (
    PHONE_CHANNELS,
    AgentConfig,
    AgentStateChanged,
    OfferCallback,
    Overflow,
    QueueConfig,
    ReservationCanceled,
    ReservationOffered,
    ReservationRejected,
    ReservationTimedOut,
    RoutingEvent,
    TaskAssigned,
    TaskCanceled,
    TaskCompleted,
    TaskOverflowed,
    TaskQueued,
    TaskRequeued,
    TaskSpec,
    TaskWrapping,
    Widen,
)

LANG = "task.language in agent.languages"
QUEUES = [
    QueueConfig(
        "billing",
        f'"billing" in agent.skills and agent.skills.billing >= 5 and {LANG}',
        steps=(
            Widen(20, f"agent.skills.billing >= 2 and {LANG}"),
            OfferCallback(40),
            Overflow(60, "general"),
        ),
        strategy="best_skill",
        strategy_skill="billing",
        aging_per_second=0.1,
        sticky_agent_seconds=15,
        email_blocks_voice=True,
        reservation_timeout_seconds=10,
        wrap_up_seconds=5,
    ),
    QueueConfig(
        "general",
        "task.attributes.vip == false or agent.skills.general >= 5",
        strategy="least_occupied",
        reservation_timeout_seconds=10,
    ),
    QueueConfig(
        "sales",
        "agent.skills.sales >= task.attributes.level",
        steps=(Overflow(30, "general"),),
        reservation_timeout_seconds=10,
        wrap_up_seconds=3,
        sticky_agent_seconds=8,
    ),
]
BLOCKING_QUEUES = {q.id for q in QUEUES if q.email_blocks_voice}
LIVE = ("waiting", "reserved", "assigned", "wrapping")

skill_level = st.none() | st.integers(1, 10)
skills_st = st.fixed_dictionaries(
    {"billing": skill_level, "general": skill_level, "sales": skill_level}
).map(lambda d: {k: v for k, v in d.items() if v is not None})
languages_st = st.frozensets(st.sampled_from(["en", "fr"]))
capacity_st = st.fixed_dictionaries(
    {"voice": st.integers(0, 1), "email": st.integers(0, 3), "callback": st.integers(0, 1)}
)


class RouterMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.clock = FakeClock(1_000.0)
        self.router = Router(QUEUES)
        self.exprs: dict[str, Expression] = {}
        self.agents: list[str] = []
        self.tasks: list[str] = []
        # the shadow model, from events only
        self.state: dict[str, str] = {}
        self.holder: dict[str, str] = {}  # task -> agent (reserved, assigned, wrapping)
        self.channel: dict[str, str] = {}
        self.queue_of: dict[str, str] = {}
        self.excluded: dict[str, set[str]] = {}
        self.pending: dict[str, str] = {}  # reservation -> task
        self.capacity: dict[str, dict[str, int]] = {}

    # -- plumbing -------------------------------------------------------------

    def pick(self, items: list[str], n: int) -> str:
        return items[n % len(items)]

    def tasks_in(self, *states: str) -> list[str]:
        return [t for t in self.tasks if self.state.get(t) in states]

    def held_by(self, agent: str, *states: str) -> list[str]:
        return [
            t
            for t, a in self.holder.items()
            if a == agent and self.state[t] in (states or ("reserved", "assigned", "wrapping"))
        ]

    def check_offer(self, task: str, agent: str) -> None:
        assert self.state.get(task) == "waiting", (task, self.state.get(task))
        assert agent not in self.excluded.get(task, set()), f"{agent} re-offered {task}"
        channel = self.channel[task]
        view = self.router.agent(agent)
        active = self.held_by(agent, "reserved", "assigned")
        assert not [t for t in active if self.channel[t] in PHONE_CHANNELS], (
            f"{task} offered to {agent} while on a phone task"
        )
        load = len([t for t in self.held_by(agent) if self.channel[t] == channel])
        assert load + 1 <= view.capacity.get(channel, 0), f"{agent} over capacity on {channel}"
        if channel in PHONE_CHANNELS:
            assert not view.external_busy
            assert not [
                t
                for t in active
                if self.channel[t] == "email" and self.queue_of[t] in BLOCKING_QUEUES
            ]

    def apply(self, events: list[RoutingEvent]) -> None:
        for e in events:
            if isinstance(e, TaskQueued):
                if e.via == "submit":
                    assert e.task_id not in self.state
                    self.state[e.task_id] = "waiting"
                    self.channel[e.task_id] = e.channel
                assert self.state[e.task_id] == "waiting"
                self.queue_of[e.task_id] = e.queue_id
            elif isinstance(e, TaskOverflowed):
                assert self.state[e.task_id] == "waiting"
            elif isinstance(e, ReservationOffered):
                self.check_offer(e.task_id, e.agent_id)
                self.state[e.task_id] = "reserved"
                self.holder[e.task_id] = e.agent_id
                self.pending[e.reservation_id] = e.task_id
            elif isinstance(e, TaskAssigned):
                assert self.state[e.task_id] in ("waiting", "reserved"), e
                if e.auto_accepted:
                    self.check_offer(e.task_id, e.agent_id)
                else:
                    assert self.pending.pop(e.reservation_id) == e.task_id
                    assert self.holder[e.task_id] == e.agent_id
                self.state[e.task_id] = "assigned"
                self.holder[e.task_id] = e.agent_id
            elif isinstance(e, ReservationRejected | ReservationTimedOut | ReservationCanceled):
                assert self.pending.pop(e.reservation_id) == e.task_id
                assert self.state[e.task_id] == "reserved"
                self.state[e.task_id] = "waiting"
                del self.holder[e.task_id]
                if not isinstance(e, ReservationCanceled):
                    self.excluded.setdefault(e.task_id, set()).add(e.agent_id)
            elif isinstance(e, TaskRequeued):
                assert self.state[e.task_id] == "assigned"
                assert self.holder.pop(e.task_id) == e.agent_id
                self.state[e.task_id] = "waiting"
                self.excluded.setdefault(e.task_id, set()).add(e.agent_id)
            elif isinstance(e, TaskCanceled):
                assert self.state[e.task_id] == "waiting"
                self.state[e.task_id] = "canceled"
            elif isinstance(e, TaskWrapping):
                assert self.state[e.task_id] == "assigned"
                self.state[e.task_id] = "wrapping"
            elif isinstance(e, TaskCompleted):
                assert self.state[e.task_id] in ("assigned", "wrapping")
                self.state[e.task_id] = "completed"
                del self.holder[e.task_id]
            elif isinstance(e, AgentStateChanged):
                assert e.agent_id in self.capacity

    # -- rules ------------------------------------------------------------------

    @precondition(lambda self: len(self.agents) < 6)
    @rule(
        skills=skills_st,
        languages=languages_st,
        capacity=capacity_st,
        auto=st.booleans(),
        online=st.booleans(),
    )
    def add_agent(
        self,
        skills: dict[str, int],
        languages: frozenset[str],
        capacity: dict[str, int],
        auto: bool,
        online: bool,
    ) -> None:
        agent = f"a{len(self.agents)}"
        self.agents.append(agent)
        self.capacity[agent] = capacity
        now = self.clock.now()
        self.apply(
            self.router.add_agent(
                AgentConfig(agent, skills, languages, capacity, auto_accept=auto), now
            )
        )
        if online:
            self.apply(self.router.set_agent_state(agent, "available", now))

    @precondition(lambda self: self.agents)
    @rule(n=st.integers(0, 99), state=st.sampled_from(["available", "offline", "break"]))
    def set_state(self, n: int, state: str) -> None:
        agent = self.pick(self.agents, n)
        reason = "lunch" if state == "break" else None
        self.apply(self.router.set_agent_state(agent, state, self.clock.now(), reason))

    @precondition(lambda self: self.agents)
    @rule(n=st.integers(0, 99), busy=st.booleans())
    def external_call(self, n: int, busy: bool) -> None:
        agent = self.pick(self.agents, n)
        self.apply(self.router.set_external_busy(agent, busy, self.clock.now()))

    @precondition(lambda self: self.agents)
    @rule(n=st.integers(0, 99), skills=skills_st, languages=languages_st, capacity=capacity_st)
    def update_agent(
        self, n: int, skills: dict[str, int], languages: frozenset[str], capacity: dict[str, int]
    ) -> None:
        agent = self.pick(self.agents, n)
        load = self.router.agent(agent).load
        capacity = {c: max(k, load.get(c, 0)) for c, k in capacity.items()}
        self.capacity[agent] = capacity
        self.apply(
            self.router.update_agent(
                agent,
                skills=skills,
                languages=languages,
                capacity=capacity,
                now=self.clock.now(),
            )
        )

    @precondition(lambda self: len(self.tasks) < 40)
    @rule(
        queue=st.sampled_from([q.id for q in QUEUES]),
        channel=st.sampled_from(["voice", "voice", "email", "callback"]),
        language=st.sampled_from(["en", "fr", None]),
        priority=st.integers(0, 3),
        customer=st.sampled_from(["c0", "c1", None]),
        vip=st.booleans(),
        level=st.integers(1, 8),
        required=st.sampled_from([{}, {}, {"billing": 3}]),
    )
    def submit(
        self,
        queue: str,
        channel: Any,
        language: str | None,
        priority: int,
        customer: str | None,
        vip: bool,
        level: int,
        required: dict[str, int],
    ) -> None:
        task = f"t{len(self.tasks)}"
        self.tasks.append(task)
        spec = TaskSpec(
            task,
            queue,
            channel,
            priority=priority,
            customer_id=customer,
            language=language,
            required_skills=required,
            attributes={"vip": vip, "level": level},
        )
        self.apply(self.router.submit(spec, self.clock.now()))

    @precondition(lambda self: self.pending)
    @rule(n=st.integers(0, 99), accept=st.booleans())
    def answer(self, n: int, accept: bool) -> None:
        rid = self.pick(sorted(self.pending), n)
        method = self.router.accept if accept else self.router.reject
        self.apply(method(rid, self.clock.now()))

    @precondition(lambda self: self.tasks_in("waiting", "reserved"))
    @rule(n=st.integers(0, 99))
    def hang_up(self, n: int) -> None:
        task = self.pick(self.tasks_in("waiting", "reserved"), n)
        self.apply(self.router.cancel(task, self.clock.now()))

    @precondition(lambda self: self.tasks_in("assigned"))
    @rule(n=st.integers(0, 99))
    def complete(self, n: int) -> None:
        task = self.pick(self.tasks_in("assigned"), n)
        self.apply(self.router.complete(task, self.clock.now()))

    @precondition(lambda self: self.tasks_in("assigned"))
    @rule(n=st.integers(0, 99))
    def phone_not_answered(self, n: int) -> None:
        task = self.pick(self.tasks_in("assigned"), n)
        self.apply(self.router.requeue(task, self.clock.now(), "agent_no_answer"))

    @precondition(lambda self: self.tasks_in("wrapping"))
    @rule(n=st.integers(0, 99))
    def end_wrap_up(self, n: int) -> None:
        task = self.pick(self.tasks_in("wrapping"), n)
        self.apply(self.router.end_wrap_up(self.holder[task], self.clock.now()))

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 45.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.apply(self.router.advance(self.clock.now()))

    # -- invariants -------------------------------------------------------------

    @invariant()
    def every_task_is_in_exactly_one_state_and_the_router_agrees(self) -> None:
        for task in self.tasks:
            assert self.router.task_state(task).value == self.state[task], task
            if self.state[task] in LIVE:
                view = self.router.task(task)
                assert view.queue_id == self.queue_of[task]
                assert view.agent_id == self.holder.get(task)
                assert view.excluded_agents == self.excluded.get(task, set())

    @invariant()
    def queues_list_exactly_the_waiting_and_offered_tasks(self) -> None:
        listed = [t.id for q in self.router.queue_ids() for t in self.router.tasks_in(q)]
        assert sorted(listed) == sorted(self.tasks_in("waiting", "reserved"))
        for q in self.router.queue_ids():
            for t in self.router.tasks_in(q):
                assert self.queue_of[t.id] == q

    @invariant()
    def agents_stay_within_capacity_and_their_load_matches_the_events(self) -> None:
        for agent in self.agents:
            view = self.router.agent(agent)
            held = self.held_by(agent)
            for channel in ("voice", "email", "callback", "chat"):
                n = len([t for t in held if self.channel[t] == channel])
                assert view.load.get(channel, 0) == n, (agent, channel)
                assert n <= view.capacity.get(channel, 0), (agent, channel)
            phone = [
                t
                for t in self.held_by(agent, "reserved", "assigned")
                if self.channel[t] in PHONE_CHANNELS
            ]
            assert len(phone) <= 1
            busy = bool(self.held_by(agent, "reserved", "assigned"))
            assert (view.state.value == "busy") == busy

    @invariant()
    def no_waiting_task_has_a_free_matching_agent(self) -> None:
        for task in self.tasks_in("waiting"):
            t = self.router.task(task)
            candidates = [t.sticky_agent_id] if t.sticky_agent_id else self.agents
            expr = self.exprs.get(t.target)
            if expr is None:
                expr = self.exprs[t.target] = parse(t.target)
            for agent in candidates:
                a = self.router.agent(agent)
                if a.presence.value != "available" or agent in t.excluded_agents:
                    continue
                active = self.held_by(agent, "reserved", "assigned")
                if any(self.channel[x] in PHONE_CHANNELS for x in active):
                    continue
                if a.load.get(t.channel, 0) >= a.capacity.get(t.channel, 0):
                    continue
                if t.channel in PHONE_CHANNELS and (
                    a.external_busy
                    or any(
                        self.channel[x] == "email" and self.queue_of[x] in BLOCKING_QUEUES
                        for x in active
                    )
                ):
                    continue
                if any(a.skills.get(s, 0) < lvl for s, lvl in t.required_skills.items()):
                    continue
                assert not expr.matches(a, t), (
                    f"{task} ({t.queue_id}, step {t.step}) waits while {agent} is free and matches"
                )


TestRouterMachine = RouterMachine.TestCase
TestRouterMachine.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
