"""Routing benchmark: assignments per second and per-decision latency of
``routing.engine.Router`` on one core, with a naive router (scan every agent
for every task, evaluate the whole expression) measured in the same run as the
baseline peer.

    python -m bench.bench_router [--agents N] [--tasks M] [--queues Q] [--seed S]
                                 [--steady A] [--naive-agents N] [--naive-tasks M]
                                 [--naive-steady A] [--skip-naive] [--json]

The scenario is built from a fixed seed: ``Q`` queues over 12 skills, each
with a realistic target (skill level, ``task.language in agent.languages``,
VIP and segment rules read from IVR attributes, a minimum level carried by
the task), a widening step after 30 s, a callback offer after 90 s on every
other queue, an overflow after 120 s, and a mix of strategies, aging rates,
sticky agents and blending rules; ``N`` agents with 3-4 skills at levels
1-10, one or two languages and voice, email or blended capacity (40%
auto-accept); ``M`` voice and email tasks in several languages, priorities,
VIP flags and customers.

Phases, all driven through the public API with a logical clock:

1. ``backlog``: every agent is offline; the ``M`` tasks arrive over 150
   logical seconds (``advance`` fires their widening, callback and overflow
   steps as the clock moves). Nothing can be assigned yet.
2. ``sign-in``: agents come online one by one, in random order; each takes
   work up to its capacity from a queue of ``M`` tasks (agent-driven
   decisions). Offers are accepted at once (2% are rejected: the task goes to
   the next agent).
3. ``steady``: a random busy task completes, its agent takes the next task
   (agent-driven decisions), ``A`` assignments in all, the clock moving 1 ms
   per call (overflow steps and sticky waits fire on the way).
4. ``arrivals``: a fresh router, the same agents all available and idle, and
   tasks arriving one by one (task-driven decisions: the best free agent by
   the queue's strategy); about 60% of the agents are kept busy.

Throughput is given twice: ``assignments/s`` over the phase's wall time
(every router call of the phase, ``set_agent_state``, ``complete``,
``accept``, ``reject``, ``submit``, ``next_deadline``, ``advance``, plus this
driver's own Python: picking tasks, reading events), and
``assignments/router-s`` over the time spent inside router calls only (what
one core spends on routing). A *decision* is a call that made at least one
offer or assignment; its latency is the whole call's. The logical clock moves
``--tick`` seconds per call (30 us: as if calls came at about the target
rate, so queue steps fire as often per assignment as they would for real).
``time.perf_counter_ns`` around each call; GC stays on, and a
``gc.collect()`` before each phase makes it pay only for the collections its
own work causes.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from routing.engine import Router
from routing.expressions import Expression, parse
from routing.model import (
    PHONE_CHANNELS,
    AgentConfig,
    OfferCallback,
    Overflow,
    QueueConfig,
    ReservationOffered,
    RoutingEvent,
    Step,
    TaskAssigned,
    TaskSpec,
    Widen,
)

__all__ = [
    "NaiveRouter",
    "PhaseResult",
    "Scenario",
    "build_scenario",
    "main",
    "run",
]

SKILLS = (
    "billing",
    "sales",
    "support",
    "tech",
    "claims",
    "retention",
    "onboarding",
    "fraud",
    "shipping",
    "returns",
    "premium",
    "accounts",
)
TARGET_ASSIGNMENTS_PER_SECOND = 20_000
TARGET_P99_MS = 1.0
T0 = 1_800_000_000.0
TICK = 0.00003  # logical seconds per call (--tick): about the target's pace
BACKLOG_SECONDS = 150.0  # the backlog arrives over this long (steps fire meanwhile)


# -- scenario -------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    seed: int
    queues: list[QueueConfig]
    agents: list[AgentConfig]
    tasks: list[TaskSpec]


def _queue(i: int, n: int) -> QueueConfig:
    s = SKILLS[i % len(SKILLS)]
    s2 = SKILLS[(i + 5) % len(SKILLS)]
    lvl = 4 + i % 3
    lang = "task.language in agent.languages"
    template = i % 5
    if template == 0:
        target = f'"{s}" in agent.skills and agent.skills.{s} >= {lvl} and {lang}'
    elif template == 1:
        target = (
            f"agent.skills.{s} >= {lvl} and {lang} and "
            f"(task.attributes.vip == false or agent.skills.{s} >= 8)"
        )
    elif template == 2:
        target = f"agent.skills.{s} >= {lvl} and agent.skills.{s2} >= 3 and {lang}"
    elif template == 3:
        target = (
            f'agent.skills.{s} >= {lvl} and {lang} and task.attributes.segment in ["consumer", '
            f'"smb"] and agent.attributes.site != "training"'
        )
    else:
        level = "task.attributes.min_level"
        target = f"agent.skills.{s} >= {lvl} and {lang} and agent.skills.{s} >= {level}"
    steps: list[Step] = [Widen(30.0, f"agent.skills.{s} >= {lvl - 2} and {lang}")]
    if i % 2 == 0:
        steps.append(OfferCallback(90.0))
    overflow = i + len(SKILLS) if i + len(SKILLS) < n else i % len(SKILLS)
    if overflow != i:
        steps.append(Overflow(120.0, f"q{overflow:02d}"))
    strategy = ("longest_idle", "least_occupied", "best_skill")[i % 3]
    return QueueConfig(
        id=f"q{i:02d}",
        target=target,
        steps=tuple(steps),
        strategy=strategy,  # type: ignore[arg-type]
        strategy_skill=s if strategy == "best_skill" else None,
        aging_per_second=0.05 * (i % 4),
        sticky_agent_seconds=10.0 if i % 7 == 0 else 0.0,
        service_level_seconds=20.0,
        reservation_timeout_seconds=30.0,
        wrap_up_seconds=0.0,
        email_blocks_voice=i % 10 == 0,
    )


def build_scenario(agents: int, tasks: int, queues: int, seed: int = 2026) -> Scenario:
    rng = random.Random(seed)
    qs = [_queue(i, queues) for i in range(queues)]
    agent_list = []
    for n in range(agents):
        chosen = rng.sample(SKILLS, 4 if rng.random() < 0.3 else 3)
        skills = {s: rng.randint(1, 10) for s in chosen}
        roll = rng.random()
        if roll < 0.10:
            languages = {rng.choice(("es", "fr"))}
        else:
            languages = {"en"}
            if rng.random() < 0.35:
                languages.add(rng.choice(("es", "fr", "de", "pt")))
        roll = rng.random()
        capacity = (
            {"voice": 1}
            if roll < 0.55
            else {"email": 3}
            if roll < 0.80
            else {"voice": 1, "email": 2}
        )
        site = rng.choices(("north", "south", "remote", "training"), (40, 35, 20, 5))[0]
        agent_list.append(
            AgentConfig(
                id=f"a{n:05d}",
                skills=skills,
                languages=frozenset(languages),
                capacity=capacity,
                auto_accept=rng.random() < 0.4,
                attributes={"site": site},
            )
        )
    weights = [1 + i % 5 for i in range(queues)]
    task_list = []
    for n in range(tasks):
        q = rng.choices(range(queues), weights)[0]
        task_list.append(
            TaskSpec(
                id=f"t{n:06d}",
                queue_id=f"q{q:02d}",
                channel="voice" if rng.random() < 0.6 else "email",
                priority=rng.choices((0, 5, 10), (85, 12, 3))[0],
                customer_id=f"c{rng.randint(1, max(1, tasks // 2)):06d}",
                language=rng.choices(("en", "es", "fr", "de", "pt"), (70, 15, 8, 4, 3))[0],
                required_skills={"premium": 2} if rng.random() < 0.05 else {},
                attributes={
                    "vip": rng.random() < 0.1,
                    "segment": rng.choices(("consumer", "smb", "enterprise"), (60, 30, 10))[0],
                    "min_level": rng.randint(1, 6),
                },
            )
        )
    return Scenario(seed, qs, agent_list, task_list)


# -- the naive peer ---------------------------------------------------------------


class _NAgent:
    def __init__(self, config: AgentConfig) -> None:
        self.id = config.id
        self.skills = dict(config.skills)
        self.languages = frozenset(config.languages)
        self.attributes = dict(config.attributes)
        self.capacity = {
            c: config.capacity.get(c, 0) for c in ("voice", "email", "callback", "chat")
        }
        self.auto_accept = config.auto_accept
        self.available = False
        self.load = dict.fromkeys(self.capacity, 0)
        self.phone = 0
        self.idle_since: dict[str, float] = {}
        self.signed_in = 0.0


class _NTask:
    def __init__(self, spec: TaskSpec, now: float) -> None:
        self.id = spec.id
        self.channel = spec.channel
        self.queue_id = spec.queue_id
        self.priority = spec.priority
        self.customer_id = spec.customer_id
        self.language = spec.language
        self.required_skills = dict(spec.required_skills)
        self.attributes = dict(spec.attributes)
        self.arrived_at = now
        self.excluded: set[str] = set()
        self.agent: _NAgent | None = None


class NaiveRouter:
    """The baseline: no indexes. A free agent scans every waiting task and a new
    task scans every agent, evaluating the queue's whole expression (the target
    in force by the task's wait) on each pair. Same capacity, phone blocking,
    priority/aging and strategy rules as ``Router``; no overflow, callback or
    sticky steps, no timeouts."""

    def __init__(self, queues: Sequence[QueueConfig]) -> None:
        self.queues: dict[str, tuple[QueueConfig, list[tuple[float, Expression]]]] = {}
        for q in queues:
            targets = [(0.0, parse(q.target))]
            targets += [(s.after, parse(s.target)) for s in q.steps if isinstance(s, Widen)]
            self.queues[q.id] = (q, targets)
        self.agents: dict[str, _NAgent] = {}
        self.waiting: dict[str, _NTask] = {}
        self.tasks: dict[str, _NTask] = {}
        self.offers: dict[str, _NTask] = {}
        self.seq = 0

    def _expr(self, t: _NTask, now: float) -> Expression:
        targets = self.queues[t.queue_id][1]
        waited = now - t.arrived_at
        chosen = targets[0][1]
        for after, expr in targets:
            if after <= waited:
                chosen = expr
        return chosen

    def _free(self, a: _NAgent, channel: str) -> bool:
        return a.available and a.phone == 0 and a.load.get(channel, 0) < a.capacity.get(channel, 0)

    def _ok(self, a: _NAgent, t: _NTask, now: float) -> bool:
        if a.id in t.excluded or not self._free(a, t.channel):
            return False
        for s, lvl in t.required_skills.items():
            if a.skills.get(s, 0) < lvl:
                return False
        return self._expr(t, now).matches(a, t)

    def _offer(self, t: _NTask, a: _NAgent, now: float, out: list[RoutingEvent]) -> None:
        del self.waiting[t.id]
        a.load[t.channel] += 1
        if t.channel in PHONE_CHANNELS:
            a.phone += 1
        t.agent = a
        self.seq += 1
        rid = f"n-{self.seq}"
        if a.auto_accept:
            out.append(TaskAssigned(now, t.id, a.id, rid, t.queue_id, t.channel, 0, 0, True, True))  # type: ignore[arg-type]
        else:
            self.offers[rid] = t
            out.append(ReservationOffered(now, rid, t.id, a.id, t.queue_id, t.channel, now + 30))  # type: ignore[arg-type]

    def _pull(self, a: _NAgent, now: float, out: list[RoutingEvent]) -> None:
        while True:
            best: _NTask | None = None
            best_key = (0.0, 0.0)
            for t in self.waiting.values():
                if not self._ok(a, t, now):
                    continue
                rate = self.queues[t.queue_id][0].aging_per_second
                key = (-(t.priority + rate * (now - t.arrived_at)), t.arrived_at)
                if best is None or key < best_key:
                    best, best_key = t, key
            if best is None:
                return
            self._offer(best, a, now, out)

    def _push(self, t: _NTask, now: float, out: list[RoutingEvent]) -> None:
        q = self.queues[t.queue_id][0]
        best: _NAgent | None = None
        best_key: tuple[float, float, str] = (0.0, 0.0, "")
        for a in self.agents.values():
            if not self._ok(a, t, now):
                continue
            idle = a.idle_since.get(t.channel, a.signed_in)
            if q.strategy == "best_skill":
                k0 = -a.skills.get(q.strategy_skill or "", 0)
            elif q.strategy == "least_occupied":
                total = sum(a.capacity.values())
                k0 = sum(a.load.values()) / total if total else 0.0
            else:
                k0 = 0.0
            key = (k0, idle, a.id)
            if best is None or key < best_key:
                best, best_key = a, key
        if best is not None:
            self._offer(t, best, now, out)

    def add_agent(self, agent: AgentConfig, now: float) -> list[RoutingEvent]:
        self.agents[agent.id] = _NAgent(agent)
        return []

    def set_agent_state(self, agent_id: str, state: str, now: float) -> list[RoutingEvent]:
        a = self.agents[agent_id]
        a.available = state == "available"
        a.signed_in = now
        out: list[RoutingEvent] = []
        if a.available:
            self._pull(a, now, out)
        return out

    def submit(self, task: TaskSpec, now: float) -> list[RoutingEvent]:
        t = _NTask(task, now)
        self.tasks[t.id] = t
        self.waiting[t.id] = t
        out: list[RoutingEvent] = []
        self._push(t, now, out)
        return out

    def accept(self, rid: str, now: float) -> list[RoutingEvent]:
        t = self.offers.pop(rid)
        assert t.agent is not None
        return [TaskAssigned(now, t.id, t.agent.id, rid, t.queue_id, t.channel, 0, 0, True, False)]  # type: ignore[arg-type]

    def reject(self, rid: str, now: float) -> list[RoutingEvent]:
        t = self.offers.pop(rid)
        a = t.agent
        assert a is not None
        self._release(t, a)
        t.excluded.add(a.id)
        self.waiting[t.id] = t
        out: list[RoutingEvent] = []
        self._push(t, now, out)
        self._pull(a, now, out)
        return out

    def _release(self, t: _NTask, a: _NAgent) -> None:
        a.load[t.channel] -= 1
        if t.channel in PHONE_CHANNELS:
            a.phone -= 1
        t.agent = None

    def complete(self, task_id: str, now: float) -> list[RoutingEvent]:
        t = self.tasks.pop(task_id)
        a = t.agent
        assert a is not None
        self._release(t, a)
        a.idle_since[t.channel] = now
        out: list[RoutingEvent] = []
        self._pull(a, now, out)
        return out

    def advance(self, now: float) -> list[RoutingEvent]:
        return []

    def next_deadline(self) -> float | None:
        return None


# -- driving --------------------------------------------------------------------


class _RouterLike(Protocol):
    def add_agent(self, agent: AgentConfig, now: float) -> list[RoutingEvent]: ...
    def set_agent_state(self, agent_id: str, state: str, now: float) -> list[RoutingEvent]: ...
    def submit(self, task: TaskSpec, now: float) -> list[RoutingEvent]: ...
    def accept(self, reservation_id: str, now: float) -> list[RoutingEvent]: ...
    def reject(self, reservation_id: str, now: float) -> list[RoutingEvent]: ...
    def complete(self, task_id: str, now: float) -> list[RoutingEvent]: ...
    def advance(self, now: float) -> list[RoutingEvent]: ...
    def next_deadline(self) -> float | None: ...


@dataclass
class PhaseResult:
    router: str
    phase: str
    agents: int
    tasks: int
    calls: int = 0
    seconds: float = 0.0
    assignments: int = 0
    offers: int = 0
    rejects: int = 0
    decisions: int = 0
    latencies_ns: list[int] = field(default_factory=list, repr=False)
    advance_calls: int = 0
    advance_max_ns: int = 0
    router_ns: int = 0  # time inside router calls (commands, advance, next_deadline)
    waiting_left: int = 0

    @property
    def assignments_per_second(self) -> float:
        return self.assignments / self.seconds if self.seconds else 0.0

    @property
    def assignments_per_router_second(self) -> float:
        return self.assignments / (self.router_ns / 1e9) if self.router_ns else 0.0

    def percentile_ms(self, p: float) -> float:
        if not self.latencies_ns:
            return 0.0
        ordered = sorted(self.latencies_ns)
        k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[k] / 1e6

    def summary(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "latencies_ns"}
        data.update(
            assignments_per_second=round(self.assignments_per_second),
            router_seconds=round(self.router_ns / 1e9, 4),
            assignments_per_router_second=round(self.assignments_per_router_second),
            decision_p50_ms=round(self.percentile_ms(50), 4),
            decision_p99_ms=round(self.percentile_ms(99), 4),
            decision_max_ms=round(max(self.latencies_ns, default=0) / 1e6, 4),
            advance_max_ms=round(self.advance_max_ns / 1e6, 4),
        )
        return data


class _Driver:
    def __init__(self, router: _RouterLike, name: str, rng: random.Random, tick: float) -> None:
        self.router = router
        self.tick = tick
        self.name = name
        self.rng = rng
        self.now = T0
        self.busy: list[str] = []  # assigned task ids
        self.result: PhaseResult | None = None

    def phase(self, phase: str, agents: int, tasks: int) -> PhaseResult:
        self.result = PhaseResult(self.name, phase, agents, tasks)
        return self.result

    def _handle(self, events: list[RoutingEvent], res: PhaseResult, *, depth: int = 0) -> None:
        for e in events:
            if isinstance(e, TaskAssigned):
                res.assignments += 1
                self.busy.append(e.task_id)
            elif isinstance(e, ReservationOffered):
                res.offers += 1
                if self.rng.random() < 0.02 and depth < 3:
                    res.rejects += 1
                    self._handle(
                        self._call(self.router.reject, e.reservation_id), res, depth=depth + 1
                    )
                else:
                    self._handle(
                        self._call(self.router.accept, e.reservation_id), res, depth=depth + 1
                    )

    def _call(self, fn: Callable[..., list[RoutingEvent]], *args: Any) -> list[RoutingEvent]:
        assert self.result is not None
        self.now += self.tick
        start = time.perf_counter_ns()
        events = fn(*args, self.now)
        elapsed = time.perf_counter_ns() - start
        res = self.result
        res.calls += 1
        res.router_ns += elapsed
        if any(isinstance(e, ReservationOffered | TaskAssigned) for e in events):
            res.decisions += 1
            res.latencies_ns.append(elapsed)
        return events

    def fire_deadlines(self) -> None:
        """Fire deadlines that fell due (timed as an advance call)."""
        assert self.result is not None
        start = time.perf_counter_ns()
        nxt = self.router.next_deadline()
        self.result.router_ns += time.perf_counter_ns() - start
        if nxt is None or nxt > self.now:
            return
        start = time.perf_counter_ns()
        events = self.router.advance(self.now)
        elapsed = time.perf_counter_ns() - start
        self.result.router_ns += elapsed
        self.result.advance_calls += 1
        self.result.advance_max_ns = max(self.result.advance_max_ns, elapsed)
        self._handle(events, self.result)

    def command(self, fn: Callable[..., list[RoutingEvent]], *args: Any) -> None:
        assert self.result is not None
        self.fire_deadlines()
        self._handle(self._call(fn, *args), self.result)


def _timed(res: PhaseResult, body: Callable[[], None]) -> None:
    gc.collect()  # each phase starts clean: it pays for the collections its own work causes
    start = time.perf_counter()
    body()
    res.seconds = time.perf_counter() - start


def run(
    scenario: Scenario,
    *,
    naive: bool,
    steady: int,
    arrivals: int,
    tick: float = TICK,
    gc_freeze: bool = False,
) -> tuple[list[PhaseResult], dict[str, float]]:
    """Run the four phases on one router; return the phases and setup timings."""
    name = "naive" if naive else "router"
    factory: Callable[[Sequence[QueueConfig]], _RouterLike] = NaiveRouter if naive else Router
    rng = random.Random(scenario.seed + 1)
    setup: dict[str, float] = {}
    n_agents, n_tasks = len(scenario.agents), len(scenario.tasks)

    start = time.perf_counter()
    router = factory(scenario.queues)
    setup["build_seconds"] = time.perf_counter() - start
    drv = _Driver(router, name, rng, tick)
    start = time.perf_counter()
    for agent in scenario.agents:
        router.add_agent(agent, drv.now)
    setup["add_agents_seconds"] = time.perf_counter() - start

    backlog = drv.phase("backlog", n_agents, n_tasks)
    spacing = max(tick, BACKLOG_SECONDS / max(1, n_tasks))

    def submit_all() -> None:
        for spec in scenario.tasks:
            drv.now += spacing - tick
            drv.command(router.submit, spec)

    _timed(backlog, submit_all)
    if gc_freeze:
        gc.collect()
        gc.freeze()  # what a service can do once its state is loaded

    signin = drv.phase("sign-in", n_agents, n_tasks)
    order = [a.id for a in scenario.agents]
    rng.shuffle(order)

    def sign_in() -> None:
        for aid in order:
            drv.command(router.set_agent_state, aid, "available")

    _timed(signin, sign_in)

    steady_res = drv.phase("steady", n_agents, n_tasks)

    def steady_state() -> None:
        busy = drv.busy
        while steady_res.assignments < steady and busy:
            k = rng.randrange(len(busy))
            busy[k], busy[-1] = busy[-1], busy[k]
            task_id = busy.pop()
            drv.command(router.complete, task_id)

    _timed(steady_res, steady_state)
    if isinstance(router, Router):
        steady_res.waiting_left = sum(len(router.tasks_in(q)) for q in router.queue_ids())

    # arrivals: a fresh router, idle agents, tasks arriving one by one
    router2 = factory(scenario.queues)
    drv2 = _Driver(router2, name, rng, tick)
    drv2.now = drv.now
    for agent in scenario.agents:
        router2.add_agent(agent, drv2.now)
    if gc_freeze:
        gc.collect()
        gc.freeze()
    arr = drv2.phase("arrivals", n_agents, arrivals)
    for aid in order:
        drv2.command(router2.set_agent_state, aid, "available")
    arr.calls = arr.decisions = 0
    arr.latencies_ns.clear()
    keep_busy = int(0.6 * n_agents)
    stream = scenario.tasks

    def arrive() -> None:
        busy = drv2.busy
        head = 0
        for n in range(arrivals):
            spec = stream[n % len(stream)]
            spec = TaskSpec(
                id=f"{spec.id}-{n}",
                queue_id=spec.queue_id,
                channel=spec.channel,
                priority=spec.priority,
                customer_id=spec.customer_id,
                language=spec.language,
                required_skills=spec.required_skills,
                attributes=spec.attributes,
            )
            drv2.command(router2.submit, spec)
            while len(busy) - head > keep_busy:
                head += 1
                drv2.command(router2.complete, busy[head - 1])

    _timed(arr, arrive)
    if isinstance(router2, Router):
        arr.waiting_left = sum(len(router2.tasks_in(q)) for q in router2.queue_ids())
    return [backlog, signin, steady_res, arr], setup


# -- reporting ------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu or "unknown CPU",
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def markdown(results: Sequence[PhaseResult]) -> str:
    lines = [
        "| router | phase | agents | tasks | assignments | calls | seconds | assignments/s | "
        "router s | assignments/router-s | decision p50 ms | p99 ms | max ms | advance max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.router} | {r.phase} | {r.agents:,} | {r.tasks:,} | {r.assignments:,} | "
            f"{r.calls:,} | {r.seconds:.2f} | {r.assignments_per_second:,.0f} | "
            f"{r.router_ns / 1e9:.2f} | {r.assignments_per_router_second:,.0f} | "
            f"{r.percentile_ms(50):.3f} | {r.percentile_ms(99):.3f} | "
            f"{max(r.latencies_ns, default=0) / 1e6:.3f} | {r.advance_max_ns / 1e6:.3f} |"
        )
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.bench_router", description=__doc__.split("\n")[0]
    )
    p.add_argument("--agents", type=int, default=10_000)
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--queues", type=int, default=50)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--steady", type=int, default=50_000, help="assignments in the steady phase")
    p.add_argument("--arrivals", type=int, default=50_000, help="tasks in the arrivals phase")
    p.add_argument("--naive-agents", type=int, default=500)
    p.add_argument("--naive-tasks", type=int, default=5_000)
    p.add_argument("--naive-steady", type=int, default=2_000)
    p.add_argument("--naive-arrivals", type=int, default=2_000)
    p.add_argument(
        "--tick", type=float, default=TICK, help="logical seconds per call (default %(default)s)"
    )
    p.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the backlog is loaded (moves old objects out of GC passes)",
    )
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    runs: list[dict[str, Any]] = []
    results: list[PhaseResult] = []
    configs = [("full", args.agents, args.tasks, args.steady, args.arrivals, False)]
    if not args.skip_naive:
        configs += [
            (
                "slice",
                args.naive_agents,
                args.naive_tasks,
                args.naive_steady,
                args.naive_arrivals,
                False,
            ),
            (
                "slice",
                args.naive_agents,
                args.naive_tasks,
                args.naive_steady,
                args.naive_arrivals,
                True,
            ),
        ]
    for label, n_agents, n_tasks, steady, arrivals, naive in configs:
        scenario = build_scenario(n_agents, n_tasks, args.queues, args.seed)
        phases, setup = run(
            scenario,
            naive=naive,
            steady=steady,
            arrivals=arrivals,
            tick=args.tick,
            gc_freeze=args.gc_freeze,
        )
        if args.gc_freeze:
            gc.unfreeze()
        results.extend(phases)
        runs.append(
            {
                "scenario": label,
                "router": "naive" if naive else "router",
                "setup": setup,
                "phases": [p.summary() for p in phases],
            }
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info = machine()
    if args.json:
        print(
            json.dumps(
                {
                    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    "machine": info,
                    "args": vars(args),
                    "peak_rss_mb": round(rss_mb),
                    "runs": runs,
                },
                indent=2,
            )
        )
    else:
        print(
            f"{info['cpu']}, {info['cpu_count']} cores, {info['python']}; one process, one thread."
        )
        for run_info in runs:
            setup = ", ".join(f"{k} {v:.2f}" for k, v in run_info["setup"].items())
            print(f"{run_info['scenario']} / {run_info['router']}: {setup}")
        print(f"peak RSS {rss_mb:.0f} MB")
        print()
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
