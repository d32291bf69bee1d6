"""The router: a pure, in-memory skills-based routing engine.

No I/O, no clock reads, no asyncio. Every call that can change state takes
``now`` (epoch seconds) and returns the domain events (``routing.model``) it
caused, in order; the service stores and publishes them. A call that raises
(``routing.errors``) has changed nothing.

    router = Router([QueueConfig("billing", '"billing" in agent.skills', ...)])
    router.add_agent(AgentConfig("a1", skills={"billing": 7}, capacity={"voice": 1}), now)
    router.set_agent_state("a1", "available", now)
    events = router.submit(TaskSpec("t1", "billing", "voice"), now)
    # -> [TaskQueued(...), ReservationOffered(reservation_id="r-1", agent_id="a1", ...)]
    router.accept("r-1", now)            # -> [TaskAssigned(...), AgentStateChanged(...)]
    router.complete("t1", now)           # -> [TaskWrapping(...)] or [TaskCompleted(...)]
    router.advance(now)                  # fire every deadline <= now
    router.next_deadline()               # sleep until then (None: nothing pending)

Public API (all ``now`` arguments are epoch seconds; a ``now`` earlier than one
already seen is treated as the latest seen, so logical time never goes back):

* ``Router(queues)``: validates every queue (expressions, steps, overflow
  targets, numbers); raises ``RoutingConfigError`` naming the queue.
* ``add_agent(AgentConfig, now)``: a new agent, ``offline``.
* ``update_agent(agent_id, *, skills, languages, capacity, auto_accept,
  attributes, now)``: change what is given. Open offers and tasks stay.
* ``set_agent_state(agent_id, "offline" | "available" | "break", now,
  reason=None)``: presence. ``busy``/``wrap_up`` follow the agent's tasks and
  cannot be set. Going to break or offline withdraws pending offers
  (``ReservationCanceled``; the task is routed again, nobody is excluded);
  assigned tasks continue.
* ``set_external_busy(agent_id, busy, now)``: the CTI tracker saw a call on the
  agent's device that Callwright did not place: no phone offers meanwhile, and
  pending phone offers are withdrawn.
* ``submit(TaskSpec, now)``: ``TaskQueued``, then maybe ``ReservationOffered``
  (``TaskAssigned`` for an auto-accept agent).
* ``accept(reservation_id, now)`` -> ``TaskAssigned``.
* ``reject(reservation_id, now)`` -> ``ReservationRejected``; the task is
  offered to the next agent and never again to this one.
* ``cancel(task_id, now, reason="caller_hangup")``: a waiting or offered task
  -> ``TaskCanceled`` (abandoned when the reason is ``caller_hangup``).
* ``complete(task_id, now)``: handling done -> ``TaskWrapping`` (the queue's
  wrap-up seconds; the task keeps its capacity slot) or ``TaskCompleted``.
* ``end_wrap_up(agent_id, now)``: end every wrap-up of the agent now.
* ``requeue(task_id, now, reason)``: an assigned task whose caller never
  reached the agent goes back to waiting -> ``TaskRequeued``; the agent is
  released and excluded for that task.
* ``advance(now)``: fire every deadline <= now, in time order, each at its own
  time: reservation timeouts (``ReservationTimedOut``, then the next agent),
  queue steps (``TaskTargetChanged``, ``TaskOverflowed`` + ``TaskQueued``,
  ``CallbackOffered``), the end of sticky-agent waits and wrap-ups. Deadlines
  fire only here: a shell calls it at ``next_deadline()`` (and may call it
  before any command so that elapsed timeouts apply first).
* ``next_deadline() -> float | None``.
* ``snapshot() -> RouterSnapshot`` and ``Router.restore(queues, snapshot,
  now) -> (router, events)``: waiting tasks keep their arrival, priority,
  queue, step, excluded agents and sticky wait; open reservations are offered
  again to the same agent (same id, ``ReservationOffered(reoffer=True)``, a
  new timeout); steps that fell due meanwhile apply at ``now``; wrap-ups that
  ended meanwhile complete at their scheduled end. ``TaskQueued`` is not
  repeated. Reservation ids continue from the snapshot's counter.
* Records for a shell that stores state as it changes: ``task_record(id)``,
  ``agent_record(id)``, ``next_reservation_number()``,
  ``last_agent_of_customer()`` (a snapshot is made of exactly these).
* Views: ``task(id)``, ``agent(id)``, ``reservation(id)``, ``tasks_in(queue)``
  (waiting and offered, best first), ``task_state(id)`` (also for recently
  finished tasks), ``agent_ids()``, ``task_ids()``, ``queue_ids()``.

Routing rules:

* A task goes to a matching agent that is ``available`` (presence), free on
  the task's channel (tasks reserved + assigned + wrapping < capacity), holds
  no reserved/assigned phone task, and, for phone tasks, is not
  ``external_busy`` and holds no reserved/assigned email task from a queue
  with ``email_blocks_voice``; never to an agent who rejected it, let it time
  out or never answered it (requeue). Required skills (``TaskSpec``) are a
  hard filter on top of the target. Among matching agents the queue's
  strategy picks (ties: longest idle, then agent id).
* An agent who becomes free takes the best matching waiting task across all
  its queues: highest effective priority ``priority + aging * (now -
  arrived_at)``, then the oldest arrival.
* Work-conserving: after every call no waiting task has a free matching agent
  (a task in its sticky wait counts only its sticky agent).

How it stays fast (10,000 agents, 100,000 waiting tasks): each queue target is
split (``expressions.plan``) into agent-only conjuncts (evaluated when an
agent changes: the agent joins per-target *groups*), a join conjunct such as
``task.language in agent.languages`` (groups are keyed by it), task-only
conjuncts (evaluated once per task) and a residual evaluated per candidate.
Inside a group, waiting tasks sit in *buckets* of tasks that the residual
cannot tell apart (same values on the task attributes it reads, same required
skills), each a heap ordered by ``priority - aging * arrived_at`` (the same
order as the effective priority at any ``now``, so aging never re-sorts).
Free agents sit in per-group heaps ordered by the strategy. Entries are
invalidated lazily by tickets.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from routing.errors import (
    DuplicateAgent,
    DuplicateTask,
    ExpressionError,
    InvalidRequest,
    InvalidTransition,
    RoutingConfigError,
    UnknownAgent,
    UnknownQueue,
    UnknownReservation,
    UnknownTask,
)
from routing.expressions import ABSENT, Cond, Getter, Join, parse, plan
from routing.model import (
    CHANNELS,
    PHONE_CHANNELS,
    AgentConfig,
    AgentRecord,
    AgentState,
    AgentStateChanged,
    AgentView,
    CallbackOffered,
    Channel,
    OfferCallback,
    Overflow,
    Presence,
    QueueConfig,
    ReservationCanceled,
    ReservationOffered,
    ReservationRecord,
    ReservationRejected,
    ReservationState,
    ReservationTimedOut,
    ReservationView,
    RouterSnapshot,
    RoutingEvent,
    Step,
    TaskAssigned,
    TaskCanceled,
    TaskCompleted,
    TaskOverflowed,
    TaskQueued,
    TaskRecord,
    TaskRequeued,
    TaskSpec,
    TaskState,
    TaskTargetChanged,
    TaskView,
    TaskWrapping,
    Widen,
)

__all__ = ["Router"]

_WAITING: Final = TaskState.WAITING
_RESERVED: Final = TaskState.RESERVED
_ASSIGNED: Final = TaskState.ASSIGNED
_WRAPPING: Final = TaskState.WRAPPING
_AVAILABLE: Final = Presence.AVAILABLE
_OFFLINE: Final = Presence.OFFLINE
_PENDING: Final = ReservationState.PENDING
_STRATEGIES: Final = ("longest_idle", "least_occupied", "best_skill")
_NO_KEY: Final[frozenset[Hashable]] = frozenset((None,))

_K_TASK: Final = 0  # a waiting task's next step / end of its sticky wait
_K_RES: Final = 1  # reservation timeout
_K_WRAP: Final = 2  # end of a wrap-up


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g} s"


# -- internal state -------------------------------------------------------------


class _Queue:
    __slots__ = (
        "config",
        "ebv",
        "id",
        "rate",
        "res_timeout",
        "skill",
        "sl",
        "steps",
        "sticky",
        "strategy",
        "target_after",
        "targets",
        "tasks",
        "wrap",
    )

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.id = config.id
        self.rate = float(config.aging_per_second)
        self.strategy = config.strategy
        self.skill = config.strategy_skill or ""
        self.sticky = float(config.sticky_agent_seconds)
        self.sl = float(config.service_level_seconds)
        self.res_timeout = float(config.reservation_timeout_seconds)
        self.wrap = float(config.wrap_up_seconds)
        self.ebv = bool(config.email_blocks_voice)
        self.steps: tuple[Step, ...] = tuple(config.steps)
        self.targets: list[_Target] = []
        self.target_after: list[int] = []  # steps applied -> index in targets
        self.tasks: dict[str, _Task] = {}  # waiting and reserved


class _Target:
    __slots__ = (
        "agent_only",
        "groups",
        "index",
        "join",
        "queue",
        "residual",
        "sig_getters",
        "source",
        "task_only",
    )

    def __init__(self, queue: _Queue, index: int, source: str) -> None:
        p = plan(parse(source))
        self.queue = queue
        self.index = index
        self.source = source
        self.agent_only: Cond | None = p.agent_only
        self.task_only: Cond | None = p.task_only
        self.join: Join | None = p.join
        self.residual: Cond | None = p.residual
        self.sig_getters: tuple[Getter, ...] = p.residual_task_paths
        self.groups: dict[tuple[str, Hashable], _Group] = {}

    def group(self, channel: str, key: Hashable) -> _Group:
        g = self.groups.get((channel, key))
        if g is None:
            g = self.groups[(channel, key)] = _Group(self, channel, key)
        return g


class _Group:
    """Agents and tasks of one target, one channel and one join key."""

    __slots__ = (
        "agent_live",
        "agents",
        "bound",
        "bound_arrived",
        "buckets",
        "channel",
        "key",
        "queue",
        "rate",
        "residual",
        "target",
        "uid",
    )

    _uids = itertools.count(1)

    def __init__(self, target: _Target, channel: str, key: Hashable) -> None:
        self.target = target
        self.queue = target.queue
        self.rate = target.queue.rate
        self.residual = target.residual
        self.uid = next(self._uids)
        self.channel = channel
        self.key = key
        self.agents: list[tuple[float, float, str, int]] = []  # (k0, idle, agent id, ticket)
        self.agent_live = 0
        self.buckets: dict[Hashable, _Bucket] = {}
        # (-(priority - aging * arrival), arrival) of the best waiting task, or lower
        # (never higher): lets a pulling agent skip the group
        self.bound = math.inf
        self.bound_arrived = math.inf


class _Bucket:
    """Waiting tasks of a group that the residual cannot tell apart."""

    __slots__ = ("group", "live", "sig", "tasks")

    def __init__(self, group: _Group, sig: Hashable) -> None:
        self.group = group
        self.sig = sig
        self.tasks: list[tuple[float, float, int]] = []  # (-base, arrived, ticket)
        self.live = 0


class _Agent:
    __slots__ = (
        "active",
        "attributes",
        "auto_accept",
        "cap_items",
        "capacity",
        "email_block",
        "external_busy",
        "groups",
        "id",
        "languages",
        "last_ended",
        "load",
        "phone_active",
        "plan",
        "presence",
        "queue_ids",
        "reason",
        "reported",
        "reservations",
        "signed_in_at",
        "skills",
        "state_since",
        "sticky",
        "targets",
        "tasks",
        "tickets",
        "total_cap",
        "total_load",
        "wrapping",
    )

    def __init__(self, config: AgentConfig, now: float) -> None:
        self.id = config.id
        self.auto_accept = bool(config.auto_accept)
        self.set_profile(config.skills, config.languages, config.capacity, config.attributes)
        self.presence = _OFFLINE
        self.reason: str | None = None
        self.state_since = now
        self.signed_in_at = now
        self.external_busy = False
        self.last_ended: dict[str, float] = {}
        self.load: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self.total_load = 0
        self.active = 0  # reserved + assigned
        self.wrapping = 0
        self.phone_active = 0
        self.email_block = 0
        self.tasks: dict[str, _Task] = {}
        self.reservations: dict[str, _Reservation] = {}
        # channel -> ticket of its entries in the agent heaps (0: not there)
        self.tickets: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self.sticky: dict[_Task, None] = {}
        self.targets: dict[_Target, frozenset[Hashable]] = {}
        self.groups: dict[str, list[_Group]] = {}
        self.plan: dict[str, list[float | None]] = {}
        self.queue_ids: tuple[str, ...] = ()
        self.reported: tuple[Any, ...] | None = None

    def set_profile(
        self,
        skills: Mapping[str, int],
        languages: Iterable[str],
        capacity: Mapping[str, int],
        attributes: Mapping[str, Any],
    ) -> None:
        self.skills: dict[str, int] = dict(skills)
        self.languages: frozenset[str] = frozenset(languages)
        self.capacity: dict[str, int] = {c: int(capacity.get(c, 0)) for c in CHANNELS}
        self.attributes: dict[str, Any] = dict(attributes)
        self.cap_items = tuple((c, n) for c, n in self.capacity.items() if n > 0)
        self.total_cap = sum(n for _, n in self.cap_items)

    def state(self) -> AgentState:
        if self.active:
            return AgentState.BUSY
        if self.wrapping:
            return AgentState.WRAP_UP
        return AgentState(self.presence.value)

    def config(self) -> AgentConfig:
        return AgentConfig(
            id=self.id,
            skills=dict(self.skills),
            languages=self.languages,
            capacity={c: n for c, n in self.capacity.items() if n},
            auto_accept=self.auto_accept,
            attributes=dict(self.attributes),
        )


class _Task:
    __slots__ = (
        "agent",
        "arrived_at",
        "assigned_at",
        "assignment_id",
        "attributes",
        "base",
        "blocks_voice",
        "bucket",
        "channel",
        "customer_id",
        "excluded",
        "id",
        "language",
        "orig_queue_id",
        "phone",
        "priority",
        "queue",
        "queue_id",
        "queued_at",
        "req_items",
        "required_skills",
        "reservation",
        "state",
        "step",
        "sticky_agent",
        "sticky_until",
        "target",
        "ticket",
        "timer",
        "wrap_started_at",
        "wrap_until",
    )

    def __init__(self, spec: TaskSpec, arrived_at: float, queue: _Queue) -> None:
        self.orig_queue_id = spec.queue_id
        self.id = spec.id
        self.channel: Channel = spec.channel
        self.phone = spec.channel in PHONE_CHANNELS
        self.priority = int(spec.priority)
        self.arrived_at = arrived_at
        self.customer_id = spec.customer_id
        self.language = spec.language
        self.required_skills: dict[str, int] = dict(spec.required_skills)
        self.req_items = tuple(sorted(self.required_skills.items()))
        self.attributes: dict[str, Any] = dict(spec.attributes)
        self.state = _WAITING
        self.excluded: set[str] | None = None
        self.bucket: _Bucket | None = None
        self.ticket = 0
        self.timer = 0
        self.reservation: _Reservation | None = None
        self.agent: _Agent | None = None
        self.assignment_id: str | None = None
        self.assigned_at: float | None = None
        self.wrap_started_at: float | None = None
        self.wrap_until: float | None = None
        self.sticky_agent: _Agent | None = None
        self.sticky_until: float | None = None
        self.blocks_voice = False
        self.enter(queue, arrived_at)

    def enter(self, queue: _Queue, at: float) -> None:
        self.queue = queue
        self.queue_id = queue.id
        self.queued_at = at
        self.step = 0
        self.target = queue.targets[0]
        self.base = self.priority - queue.rate * self.arrived_at


class _Reservation:
    __slots__ = ("agent", "expires_at", "id", "offered_at", "state", "task", "timer")

    def __init__(self, rid: str, task: _Task, agent: _Agent, now: float, expires: float) -> None:
        self.id = rid
        self.task = task
        self.agent = agent
        self.offered_at = now
        self.expires_at = expires
        self.state = _PENDING
        self.timer = 0


# -- validation -----------------------------------------------------------------


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_scalar_map(owner: str, what: str, values: object) -> None:
    if not isinstance(values, Mapping):
        raise InvalidRequest(f"{owner}: {what} must be a mapping of names to values")
    for k, v in values.items():
        if not isinstance(k, str) or not k:
            raise InvalidRequest(f"{owner}: {what} names must be non-empty strings (got {k!r})")
        if isinstance(v, bool | str):
            continue
        if isinstance(v, int | float) and math.isfinite(v):
            continue
        raise InvalidRequest(
            f"{owner}: {what} {k!r} has value {v!r} (expected a string, a finite number or a "
            "boolean)"
        )


def _check_skills(owner: str, skills: object, error: type[Exception]) -> None:
    if not isinstance(skills, Mapping):
        raise error(f"{owner}: skills must be a mapping of skill names to levels 1-10")
    for name, level in skills.items():
        if not isinstance(name, str) or not name:
            raise error(f"{owner}: skill names must be non-empty strings (got {name!r})")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 10:
            raise error(f"{owner}: skill {name!r} has level {level!r} (levels are 1-10)")


def _check_agent_profile(
    agent_id: str,
    skills: object,
    languages: object,
    capacity: object,
    attributes: object,
    auto_accept: object,
) -> None:
    owner = f"agent {agent_id!r}"
    if skills is not None:
        _check_skills(owner, skills, RoutingConfigError)
    if languages is not None:
        if isinstance(languages, str | bytes) or not isinstance(languages, Iterable):
            raise RoutingConfigError(f"{owner}: languages must be a set of language codes")
        for lang in languages:
            if not isinstance(lang, str) or not lang:
                raise RoutingConfigError(f"{owner}: language {lang!r} is not a non-empty string")
    if capacity is not None:
        if not isinstance(capacity, Mapping):
            raise RoutingConfigError(f"{owner}: capacity must map channels to task counts")
        for channel, n in capacity.items():
            if channel not in CHANNELS:
                raise RoutingConfigError(
                    f"{owner}: unknown channel {channel!r} in capacity "
                    f"(channels: {', '.join(CHANNELS)})"
                )
            if isinstance(n, bool) or not isinstance(n, int):
                raise RoutingConfigError(
                    f"{owner}: capacity for {channel!r} is {n!r} (expected a whole number)"
                )
            if n < 0:
                raise RoutingConfigError(
                    f"{owner}: capacity for {channel!r} is {n} (must be 0 or more)"
                )
    if attributes is not None:
        try:
            _check_scalar_map(owner, "attribute", attributes)
        except InvalidRequest as error:
            raise RoutingConfigError(str(error)) from None
    if auto_accept is not None and not isinstance(auto_accept, bool):
        raise RoutingConfigError(f"{owner}: auto_accept must be true or false")


def _build_queues(configs: Sequence[QueueConfig]) -> dict[str, _Queue]:
    queues: dict[str, _Queue] = {}
    for config in configs:
        if not isinstance(config, QueueConfig):
            raise RoutingConfigError(f"not a QueueConfig: {config!r}")
        qid = config.id
        if not isinstance(qid, str) or not qid.strip():
            raise RoutingConfigError(f"a queue id must be a non-empty string (got {qid!r})")
        if qid in queues:
            raise RoutingConfigError(f"queue {qid!r} is defined twice")
        queues[qid] = _Queue(config)
    for q in queues.values():
        _check_queue(q, queues)
    return queues


def _check_queue(q: _Queue, queues: Mapping[str, _Queue]) -> None:
    c = q.config
    where = f"queue {q.id!r}"
    if c.strategy not in _STRATEGIES:
        raise RoutingConfigError(
            f"{where}: unknown strategy {c.strategy!r} (expected {', '.join(_STRATEGIES)})"
        )
    if c.strategy == "best_skill" and not (isinstance(c.strategy_skill, str) and c.strategy_skill):
        raise RoutingConfigError(
            f"{where}: strategy best_skill needs strategy_skill (the skill whose level decides)"
        )
    numbers: list[tuple[str, object, bool]] = [
        ("aging_per_second", c.aging_per_second, True),
        ("sticky_agent_seconds", c.sticky_agent_seconds, True),
        ("service_level_seconds", c.service_level_seconds, False),
        ("reservation_timeout_seconds", c.reservation_timeout_seconds, False),
        ("wrap_up_seconds", c.wrap_up_seconds, True),
    ]
    for name, value, zero_ok in numbers:
        if not _finite(value):
            raise RoutingConfigError(f"{where}: {name} is {value!r} (expected a finite number)")
        if value < 0 or (value == 0 and not zero_ok):  # type: ignore[operator]
            bound = "0 or more" if zero_ok else "more than 0"
            raise RoutingConfigError(f"{where}: {name} is {value!r} (must be {bound})")
    try:
        q.targets.append(_Target(q, 0, c.target))
    except ExpressionError as error:
        raise RoutingConfigError(f"{where}: expression: {error}") from None
    q.target_after.append(0)
    previous = 0.0
    for n, step in enumerate(q.steps, start=1):
        if not isinstance(step, Widen | Overflow | OfferCallback):
            raise RoutingConfigError(
                f"{where}: step {n} is {step!r} (expected Widen, Overflow or OfferCallback)"
            )
        kind = {Widen: "widen", Overflow: "overflow", OfferCallback: "callback"}[type(step)]
        if not _finite(step.after) or step.after <= 0:
            raise RoutingConfigError(
                f"{where}: step {n} ({kind}): after is {step.after!r} (must be more than 0 s)"
            )
        label = f"{where}: step {n} ({kind} after {_fmt_s(step.after)})"
        if step.after <= previous:
            raise RoutingConfigError(
                f"{label}: steps must come in increasing order of time "
                f"(the previous step is at {_fmt_s(previous)})"
            )
        previous = step.after
        if n > 1 and isinstance(q.steps[n - 2], Overflow):
            raise RoutingConfigError(f"{label}: comes after an overflow step and would never run")
        if isinstance(step, Widen):
            try:
                q.targets.append(_Target(q, len(q.targets), step.target))
            except ExpressionError as error:
                raise RoutingConfigError(f"{label}: expression: {error}") from None
        elif isinstance(step, Overflow):
            if step.queue_id not in queues:
                raise RoutingConfigError(f"{label}: unknown queue {step.queue_id!r}")
            if step.queue_id == q.id:
                raise RoutingConfigError(f"{label}: a queue cannot overflow to itself")
        q.target_after.append(len(q.targets) - 1)


# -- the router -----------------------------------------------------------------


class Router:
    def __init__(
        self,
        queues: Sequence[QueueConfig],
        *,
        reservation_prefix: str = "r-",
        closed_memory: int = 100_000,
    ) -> None:
        self._queues = _build_queues(queues)
        self._all_targets: list[_Target] = [t for q in self._queues.values() for t in q.targets]
        self._agents: dict[str, _Agent] = {}
        self._tasks: dict[str, _Task] = {}
        self._reservations: dict[str, _Reservation] = {}
        # recently finished tasks and closed reservations, for accurate errors
        # (bounded: the oldest are forgotten first)
        self._closed_tasks: OrderedDict[str, TaskState] = OrderedDict()
        self._closed_res: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._closed_memory = closed_memory
        self._customer_agent: dict[str, str] = {}
        self._customer_agent_changed: dict[str, str] = {}  # since the last take
        # Heap entries hold only numbers and strings (so the garbage collector
        # untracks them); tickets map back to the live objects:
        self._deadlines: list[tuple[float, int, int]] = []  # (when, ticket, kind)
        self._timers: dict[int, Any] = {}  # ticket -> task or reservation
        self._bucketed: dict[int, _Task] = {}  # ticket -> task waiting in a bucket
        self._indexed: dict[int, _Agent] = {}  # ticket -> free agent (one channel)
        self._seq: Callable[[], int] = itertools.count(1).__next__
        self._prefix = reservation_prefix
        self._next_res = 1
        self._now = -math.inf
        self._touched: dict[_Agent, None] = {}

    # -- commands -----------------------------------------------------------

    def add_agent(self, agent: AgentConfig, now: float) -> list[RoutingEvent]:
        if not isinstance(agent, AgentConfig):
            raise InvalidRequest(f"not an AgentConfig: {agent!r}")
        if not isinstance(agent.id, str) or not agent.id:
            raise RoutingConfigError(f"an agent id must be a non-empty string (got {agent.id!r})")
        _check_agent_profile(
            agent.id,
            agent.skills,
            agent.languages,
            agent.capacity,
            agent.attributes,
            agent.auto_accept,
        )
        if agent.id in self._agents:
            raise DuplicateAgent(agent.id)
        now = self._tick(now)
        a = _Agent(agent, now)
        self._agents[a.id] = a
        self._eligibility(a)
        self._touched[a] = None
        out: list[RoutingEvent] = []
        self._flush(now, out)
        return out

    def update_agent(
        self,
        agent_id: str,
        *,
        now: float,
        skills: Mapping[str, int] | None = None,
        languages: Iterable[str] | None = None,
        capacity: Mapping[str, int] | None = None,
        auto_accept: bool | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> list[RoutingEvent]:
        a = self._agent(agent_id)
        if languages is not None and not isinstance(languages, str | bytes):
            languages = tuple(languages)
        _check_agent_profile(agent_id, skills, languages, capacity, attributes, auto_accept)
        now = self._tick(now)
        a.set_profile(
            a.skills if skills is None else skills,
            a.languages if languages is None else languages,
            a.capacity if capacity is None else capacity,
            a.attributes if attributes is None else attributes,
        )
        if auto_accept is not None:
            a.auto_accept = auto_accept
        self._unindex(a)
        self._eligibility(a)
        out: list[RoutingEvent] = []
        for t in list(a.sticky):
            if not self._matches(a, t, t.target):
                self._unstick(t)
                self._settle(t, now, out, reroute=True)
        self._touched[a] = None
        self._refresh(a, now, out)
        self._flush(now, out)
        return out

    def set_agent_state(
        self, agent_id: str, state: str, now: float, reason: str | None = None
    ) -> list[RoutingEvent]:
        a = self._agent(agent_id)
        if state in ("busy", "wrap_up"):
            raise InvalidRequest(
                f"agent {agent_id!r}: {state} follows the agent's tasks and cannot be set "
                "(set offline, available or break)"
            )
        try:
            presence = Presence(state)
        except ValueError:
            raise InvalidRequest(
                f"agent {agent_id!r}: unknown state {state!r} (expected offline, available or "
                "break)"
            ) from None
        if reason is not None and (presence is not Presence.BREAK or not isinstance(reason, str)):
            raise InvalidRequest(f"agent {agent_id!r}: a reason code goes with break only")
        now = self._tick(now)
        out: list[RoutingEvent] = []
        if presence is a.presence and reason == a.reason:
            return out
        previous = a.presence
        a.presence = presence
        a.reason = reason
        if previous is _OFFLINE:
            a.signed_in_at = now
        self._touched[a] = None
        if presence is _AVAILABLE:
            self._refresh(a, now, out)
        else:
            self._unindex(a)
            why = "agent_offline" if presence is _OFFLINE else "agent_break"
            for res in list(a.reservations.values()):
                self._withdraw(res, why, now, out)
            if presence is _OFFLINE:
                for t in list(a.sticky):
                    self._unstick(t)
                    self._settle(t, now, out, reroute=True)
        self._flush(now, out)
        return out

    def set_external_busy(self, agent_id: str, busy: bool, now: float) -> list[RoutingEvent]:
        a = self._agent(agent_id)
        now = self._tick(now)
        out: list[RoutingEvent] = []
        if a.external_busy == bool(busy):
            return out
        a.external_busy = bool(busy)
        self._touched[a] = None
        if busy:
            self._unindex(a)
            for res in list(a.reservations.values()):
                if res.task.phone:
                    self._withdraw(res, "external_busy", now, out)
        self._refresh(a, now, out)
        self._flush(now, out)
        return out

    def submit(self, task: TaskSpec, now: float) -> list[RoutingEvent]:
        if not isinstance(task, TaskSpec):
            raise InvalidRequest(f"not a TaskSpec: {task!r}")
        self._check_spec(task, now)
        now = self._tick(now)
        q = self._queues[task.queue_id]
        arrived = now if task.arrived_at is None else float(task.arrived_at)
        t = _Task(task, arrived, q)
        self._tasks[t.id] = t
        q.tasks[t.id] = t
        out: list[RoutingEvent] = [
            TaskQueued(
                now, t.id, q.id, task.channel, t.priority, arrived, arrived, t.customer_id, "submit"
            )
        ]
        self._stick(t, now)
        self._settle(t, now, out, reroute=True)
        self._flush(now, out)
        return out

    def accept(self, reservation_id: str, now: float) -> list[RoutingEvent]:
        res = self._pending(reservation_id, "accepted")
        now = self._tick(now)
        out: list[RoutingEvent] = []
        self._close_reservation(res, ReservationState.ACCEPTED, now)
        self._assign(res.task, res.agent, res.id, now, out, auto=False)
        self._flush(now, out)
        return out

    def reject(self, reservation_id: str, now: float) -> list[RoutingEvent]:
        res = self._pending(reservation_id, "rejected")
        now = self._tick(now)
        out: list[RoutingEvent] = []
        self._refuse(res, ReservationState.REJECTED, now, out)
        self._flush(now, out)
        return out

    def cancel(self, task_id: str, now: float, reason: str = "caller_hangup") -> list[RoutingEvent]:
        t = self._live_task(task_id)
        if t.state is not _WAITING and t.state is not _RESERVED:
            raise InvalidTransition(
                f"task {task_id!r} is {t.state.value}; only a waiting or offered task can be "
                "canceled (complete it instead)"
            )
        now = self._tick(now)
        out: list[RoutingEvent] = []
        q = t.queue
        agent = t.agent
        was_offered = t.state is _RESERVED
        if t.reservation is not None:
            res = t.reservation
            self._close_reservation(res, ReservationState.CANCELED, now)
            out.append(ReservationCanceled(now, res.id, t.id, res.agent.id, q.id, reason))
            self._release(t, res.agent)
        self._take_from_bucket(t)
        self._unstick(t)
        t.state = TaskState.CANCELED
        self._disarm(t)
        self._forget_task(t)
        waited = now - t.queued_at
        out.append(
            TaskCanceled(
                now,
                t.id,
                q.id,
                reason,
                waited,
                reason == "caller_hangup",
                waited <= q.sl,
                was_offered,
            )
        )
        if agent is not None:
            self._refresh(agent, now, out)
        self._flush(now, out)
        return out

    def complete(self, task_id: str, now: float) -> list[RoutingEvent]:
        t = self._live_task(task_id)
        if t.state is not _ASSIGNED:
            raise InvalidTransition(
                f"task {task_id!r} is {t.state.value}; only an assigned task can be completed"
            )
        now = self._tick(now)
        out: list[RoutingEvent] = []
        a = t.agent
        assert a is not None
        wrap = t.queue.wrap
        if wrap > 0:
            self._release_active(t, a)
            a.wrapping += 1
            t.state = _WRAPPING
            t.wrap_started_at = now
            t.wrap_until = now + wrap
            self._arm(t, t.wrap_until, _K_WRAP)
            assert t.assigned_at is not None
            out.append(TaskWrapping(now, t.id, a.id, t.queue_id, now - t.assigned_at, t.wrap_until))
            self._touched[a] = None
        else:
            t.wrap_started_at = now
            self._finish(t, now, out)
        self._refresh(a, now, out)
        self._flush(now, out)
        return out

    def end_wrap_up(self, agent_id: str, now: float) -> list[RoutingEvent]:
        a = self._agent(agent_id)
        wrapping = [t for t in a.tasks.values() if t.state is _WRAPPING]
        if not wrapping:
            raise InvalidTransition(f"agent {agent_id!r} is not in wrap-up")
        now = self._tick(now)
        out: list[RoutingEvent] = []
        for t in wrapping:
            self._finish(t, now, out)
        self._refresh(a, now, out)
        self._flush(now, out)
        return out

    def requeue(
        self, task_id: str, now: float, reason: str = "agent_no_answer"
    ) -> list[RoutingEvent]:
        """An assigned task goes back to waiting in its queue (the agent's phone
        did not answer, connecting the caller failed, ...): ``TaskRequeued``.
        The task keeps its arrival, queue entry time and step; the agent is
        released and never offered this task again."""
        t = self._live_task(task_id)
        if t.state is not _ASSIGNED:
            raise InvalidTransition(
                f"task {task_id!r} is {t.state.value}; only an assigned task can be requeued"
                + (" (reject the reservation instead)" if t.state is _RESERVED else "")
            )
        now = self._tick(now)
        out: list[RoutingEvent] = []
        a = t.agent
        assert a is not None
        out.append(TaskRequeued(now, t.id, a.id, t.queue_id, t.assignment_id or "", reason))
        if t.excluded is None:
            t.excluded = set()
        t.excluded.add(a.id)
        self._release(t, a)
        t.state = _WAITING
        t.assignment_id = None
        t.assigned_at = None
        t.queue.tasks[t.id] = t
        self._settle(t, now, out, reroute=True)
        self._refresh(a, now, out)
        self._flush(now, out)
        return out

    def advance(self, now: float) -> list[RoutingEvent]:
        now = self._tick(now)
        out: list[RoutingEvent] = []
        heap = self._deadlines
        timers = self._timers
        while heap and heap[0][0] <= now:
            when, ticket, kind = heapq.heappop(heap)
            obj = timers.pop(ticket, None)
            if obj is None:
                continue
            obj.timer = 0
            if kind == _K_RES:
                if obj.state is _PENDING:
                    self._refuse(obj, ReservationState.TIMED_OUT, when, out)
            elif kind == _K_TASK:
                if obj.state is _WAITING:
                    self._settle(obj, when, out, reroute=False)
            elif obj.state is _WRAPPING:
                a = obj.agent
                self._finish(obj, when, out)
                self._refresh(a, when, out)
            self._flush(when, out)
        return out

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        timers = self._timers
        while heap:
            if heap[0][1] in timers:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    # -- views --------------------------------------------------------------

    def queue_ids(self) -> tuple[str, ...]:
        return tuple(self._queues)

    def agent_ids(self) -> tuple[str, ...]:
        return tuple(self._agents)

    def task_ids(self) -> tuple[str, ...]:
        """Live tasks: waiting, reserved, assigned, wrapping."""
        return tuple(self._tasks)

    def task(self, task_id: str) -> TaskView:
        return self._task_view(self._live_task(task_id))

    def task_state(self, task_id: str) -> TaskState:
        t = self._tasks.get(task_id)
        if t is not None:
            return t.state
        closed = self._closed_tasks.get(task_id)
        if closed is None:
            raise UnknownTask(task_id)
        return closed

    def agent(self, agent_id: str) -> AgentView:
        a = self._agent(agent_id)
        return AgentView(
            id=a.id,
            skills=dict(a.skills),
            languages=a.languages,
            attributes=dict(a.attributes),
            capacity=dict(a.capacity),
            auto_accept=a.auto_accept,
            presence=a.presence,
            state=a.state(),
            reason=a.reason,
            state_since=a.state_since,
            external_busy=a.external_busy,
            load={c: n for c, n in a.load.items() if n},
            task_ids=tuple(a.tasks),
            reservation_ids=tuple(a.reservations),
            last_ended=dict(a.last_ended),
            queues=a.queue_ids,
        )

    def reservation(self, reservation_id: str) -> ReservationView:
        res = self._reservations.get(reservation_id)
        if res is not None:
            return self._res_view(res, None)
        closed = self._closed_res.get(reservation_id)
        if closed is None:
            raise UnknownReservation(reservation_id)
        return _closed_view(reservation_id, closed)

    def tasks_in(self, queue_id: str) -> list[TaskView]:
        q = self._queues.get(queue_id)
        if q is None:
            raise UnknownQueue(queue_id)
        ordered = sorted(q.tasks.values(), key=lambda t: (-t.base, t.arrived_at, t.id))
        return [self._task_view(t) for t in ordered]

    # -- snapshot / restore -------------------------------------------------

    def snapshot(self) -> RouterSnapshot:
        return RouterSnapshot(
            taken_at=self._now,
            agents=tuple(self._agent_record(a) for a in self._agents.values()),
            tasks=tuple(self._task_record(t) for t in self._tasks.values()),
            last_agent_of_customer=self.last_agent_of_customer(),
            next_reservation=self._next_res,
        )

    # The pieces of a snapshot, for a shell that stores them as they change
    # (a snapshot is these records, the customer map and the counter).

    def task_record(self, task_id: str) -> TaskRecord:
        """The snapshot record of a live task (waiting, reserved, assigned, wrapping)."""
        return self._task_record(self._live_task(task_id))

    def agent_record(self, agent_id: str) -> AgentRecord:
        return self._agent_record(self._agent(agent_id))

    def next_reservation_number(self) -> int:
        return self._next_res

    def last_agent_of_customer(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self._customer_agent.items()))

    def take_customer_agent_changes(self) -> dict[str, str]:
        """The customers whose last agent changed since the previous call
        (what a journal writes instead of every pair)."""
        changed, self._customer_agent_changed = self._customer_agent_changed, {}
        return changed

    @staticmethod
    def _agent_record(a: _Agent) -> AgentRecord:
        return AgentRecord(
            config=a.config(),
            presence=a.presence,
            reason=a.reason,
            state=a.state(),
            state_since=a.state_since,
            external_busy=a.external_busy,
            last_ended=tuple(sorted(a.last_ended.items())),
            signed_in_at=a.signed_in_at,
        )

    @staticmethod
    def _task_record(t: _Task) -> TaskRecord:
        spec = TaskSpec(
            id=t.id,
            queue_id=t.orig_queue_id,
            channel=t.channel,
            priority=t.priority,
            customer_id=t.customer_id,
            language=t.language,
            required_skills=dict(t.required_skills),
            attributes=dict(t.attributes),
            arrived_at=t.arrived_at,
        )
        res = t.reservation
        return TaskRecord(
            spec=spec,
            queue_id=t.queue_id,
            queued_at=t.queued_at,
            state=t.state,
            step=t.step,
            excluded_agents=tuple(sorted(t.excluded or ())),
            agent_id=None if t.agent is None else t.agent.id,
            reservation=None
            if res is None
            else ReservationRecord(res.id, res.offered_at, res.expires_at),
            assignment_id=t.assignment_id,
            assigned_at=t.assigned_at,
            wrap_started_at=t.wrap_started_at,
            wrap_up_until=t.wrap_until,
            sticky_agent_id=None if t.sticky_agent is None else t.sticky_agent.id,
            sticky_until=t.sticky_until,
        )

    @classmethod
    def restore(
        cls,
        queues: Sequence[QueueConfig],
        snapshot: RouterSnapshot,
        now: float,
        **options: Any,
    ) -> tuple[Router, list[RoutingEvent]]:
        r = cls(queues, **options)
        r._check_snapshot(snapshot)
        now = r._tick(max(now, snapshot.taken_at))
        out: list[RoutingEvent] = []
        for rec in snapshot.agents:
            a = _Agent(rec.config, rec.state_since)
            a.presence = Presence(rec.presence)
            a.reason = rec.reason
            a.external_busy = rec.external_busy
            a.last_ended = dict(rec.last_ended)
            a.signed_in_at = rec.signed_in_at
            a.reported = (AgentState(rec.state), None, None, None)
            r._agents[a.id] = a
            r._eligibility(a)
            r._touched[a] = None
        r._customer_agent = dict(snapshot.last_agent_of_customer)
        r._next_res = snapshot.next_reservation
        waiting: list[_Task] = []
        reoffers: list[RoutingEvent] = []
        for rec_t in snapshot.tasks:
            spec = rec_t.spec
            arrived = spec.arrived_at if spec.arrived_at is not None else rec_t.queued_at
            t = _Task(spec, arrived, r._queues[spec.queue_id])
            q = r._queues[rec_t.queue_id]
            t.enter(q, rec_t.queued_at)
            t.step = min(rec_t.step, len(q.steps))
            t.target = q.targets[q.target_after[t.step]]
            t.excluded = set(rec_t.excluded_agents) or None
            r._tasks[t.id] = t
            state = TaskState(rec_t.state)
            agent = r._agents.get(rec_t.agent_id) if rec_t.agent_id else None
            if state is _RESERVED and agent is not None and rec_t.reservation is not None:
                q.tasks[t.id] = t
                r._occupy(t, agent)
                rid = rec_t.reservation.id
                res = _Reservation(rid, t, agent, now, now + q.res_timeout)
                r._reservations[rid] = res
                agent.reservations[rid] = res
                t.reservation = res
                t.state = _RESERVED
                r._arm(res, res.expires_at, _K_RES)
                reoffers.append(
                    ReservationOffered(
                        now, rid, t.id, agent.id, q.id, spec.channel, res.expires_at, True
                    )
                )
            elif state in (_ASSIGNED, _WRAPPING) and agent is not None:
                r._occupy(t, agent)
                t.assignment_id = rec_t.assignment_id
                t.assigned_at = rec_t.assigned_at
                if state is _WRAPPING:
                    r._release_active(t, agent)
                    agent.wrapping += 1
                    t.state = _WRAPPING
                    t.wrap_started_at = rec_t.wrap_started_at
                    t.wrap_until = rec_t.wrap_up_until if rec_t.wrap_up_until is not None else now
                    r._arm(t, t.wrap_until, _K_WRAP)
                else:
                    t.state = _ASSIGNED
            else:
                q.tasks[t.id] = t
                sticky = r._agents.get(rec_t.sticky_agent_id) if rec_t.sticky_agent_id else None
                if sticky is not None and rec_t.sticky_until is not None:
                    t.sticky_agent = sticky
                    t.sticky_until = rec_t.sticky_until
                    sticky.sticky[t] = None
                waiting.append(t)
        # wrap-ups that ended while stopped end at their scheduled time
        overdue = [t for t in r._tasks.values() if t.state is _WRAPPING and t.wrap_until <= now]  # type: ignore[operator]
        for t in sorted(overdue, key=lambda t: (t.wrap_until, t.id)):
            assert t.wrap_until is not None
            r._finish(t, t.wrap_until, out)
        out.extend(reoffers)
        for a in r._agents.values():
            r._index(a)
        waiting.sort(key=lambda t: (-(t.base + t.queue.rate * now), t.arrived_at, t.id))
        for t in waiting:
            if t.state is _WAITING:
                r._settle(t, now, out, reroute=True)
        for a in r._agents.values():
            r._refresh(a, now, out)
        r._flush(now, out)
        out.extend(r.advance(now))
        return r, out

    def _check_snapshot(self, snapshot: RouterSnapshot) -> None:
        agent_ids = {rec.config.id for rec in snapshot.agents}
        for rec in snapshot.agents:
            _check_agent_profile(
                rec.config.id,
                rec.config.skills,
                rec.config.languages,
                rec.config.capacity,
                rec.config.attributes,
                rec.config.auto_accept,
            )
        for rec_t in snapshot.tasks:
            where = f"snapshot task {rec_t.spec.id!r}"
            for qid in (rec_t.spec.queue_id, rec_t.queue_id):
                if qid not in self._queues:
                    raise RoutingConfigError(
                        f"{where} is in queue {qid!r}, which the configuration no longer has"
                    )
            if rec_t.state in (_ASSIGNED, _WRAPPING) and rec_t.agent_id not in agent_ids:
                raise RoutingConfigError(
                    f"{where} is {rec_t.state.value} to agent {rec_t.agent_id!r}, who is not in "
                    "the snapshot"
                )

    # -- internals: time, lookups, events -----------------------------------

    def _tick(self, now: float) -> float:
        if not _finite(now):
            raise InvalidRequest(f"now must be a finite number of seconds (got {now!r})")
        if now > self._now:
            self._now = float(now)
        return self._now

    def _agent(self, agent_id: str) -> _Agent:
        a = self._agents.get(agent_id)
        if a is None:
            raise UnknownAgent(agent_id)
        return a

    def _live_task(self, task_id: str) -> _Task:
        t = self._tasks.get(task_id)
        if t is None:
            closed = self._closed_tasks.get(task_id)
            if closed is not None:
                raise InvalidTransition(f"task {task_id!r} is already {closed.value}")
            raise UnknownTask(task_id)
        return t

    def _pending(self, rid: str, verb: str) -> _Reservation:
        res = self._reservations.get(rid)
        if res is not None:
            return res
        closed = self._closed_res.get(rid)
        if closed is None:
            raise UnknownReservation(rid)
        view = _closed_view(rid, closed)
        when = f" at {view.closed_at:.3f}" if view.closed_at is not None else ""
        raise InvalidTransition(
            f"reservation {rid!r} was {view.state.value.replace('_', ' ')}{when}; "
            f"it can no longer be {verb}"
        )

    def _check_spec(self, spec: TaskSpec, now: float) -> None:
        where = f"task {spec.id!r}"
        if not isinstance(spec.id, str) or not spec.id:
            raise InvalidRequest(f"a task id must be a non-empty string (got {spec.id!r})")
        if spec.id in self._tasks or spec.id in self._closed_tasks:
            raise DuplicateTask(spec.id)
        if spec.queue_id not in self._queues:
            raise UnknownQueue(spec.queue_id)
        if spec.channel not in CHANNELS:
            raise InvalidRequest(
                f"{where}: unknown channel {spec.channel!r} (channels: {', '.join(CHANNELS)})"
            )
        if isinstance(spec.priority, bool) or not isinstance(spec.priority, int):
            raise InvalidRequest(f"{where}: priority must be a whole number")
        for name in ("customer_id", "language"):
            value = getattr(spec, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidRequest(f"{where}: {name} must be a non-empty string or None")
        _check_skills(where, spec.required_skills, InvalidRequest)
        _check_scalar_map(where, "attribute", spec.attributes)
        if spec.arrived_at is not None:
            if not _finite(spec.arrived_at):
                raise InvalidRequest(f"{where}: arrived_at must be a finite number")
            if spec.arrived_at > max(now, self._now):
                raise InvalidRequest(f"{where}: arrived_at is in the future")
        if not _finite(now):
            raise InvalidRequest(f"now must be a finite number of seconds (got {now!r})")

    def _flush(self, now: float, out: list[RoutingEvent]) -> None:
        if not self._touched:
            return
        for a in self._touched:
            state = a.state()
            key = (state, a.presence, a.reason, a.queue_ids)
            if key == a.reported:
                continue
            previous = None if a.reported is None else a.reported[0]
            if previous is not state:
                a.state_since = now
            a.reported = key
            out.append(
                AgentStateChanged(now, a.id, state, previous, a.presence, a.reason, a.queue_ids)
            )
        self._touched.clear()

    def _remember(self, memory: OrderedDict[str, Any], key: str, value: Any) -> None:
        memory[key] = value
        if len(memory) > self._closed_memory:
            memory.popitem(last=False)

    def _forget_task(self, t: _Task) -> None:
        del self._tasks[t.id]
        t.queue.tasks.pop(t.id, None)
        self._remember(self._closed_tasks, t.id, t.state)

    def _close_reservation(self, res: _Reservation, state: ReservationState, now: float) -> None:
        res.state = state
        self._disarm(res)
        del self._reservations[res.id]
        res.agent.reservations.pop(res.id, None)
        res.task.reservation = None
        t = res.task
        self._remember(
            self._closed_res,
            res.id,
            (
                state.value,
                t.id,
                res.agent.id,
                t.queue_id,
                t.channel,
                res.offered_at,
                res.expires_at,
                now,
            ),
        )

    def _res_view(self, res: _Reservation, closed_at: float | None) -> ReservationView:
        t = res.task
        return ReservationView(
            id=res.id,
            task_id=t.id,
            agent_id=res.agent.id,
            queue_id=t.queue_id,
            channel=t.channel,
            state=res.state,
            offered_at=res.offered_at,
            expires_at=res.expires_at,
            closed_at=closed_at,
        )

    def _task_view(self, t: _Task) -> TaskView:
        return TaskView(
            id=t.id,
            channel=t.channel,
            queue_id=t.queue_id,
            priority=t.priority,
            arrived_at=t.arrived_at,
            queued_at=t.queued_at,
            customer_id=t.customer_id,
            language=t.language,
            required_skills=dict(t.required_skills),
            attributes=dict(t.attributes),
            state=t.state,
            step=t.step,
            target=t.target.source,
            agent_id=None if t.agent is None else t.agent.id,
            reservation_id=None if t.reservation is None else t.reservation.id,
            excluded_agents=frozenset(t.excluded or ()),
            sticky_agent_id=None if t.sticky_agent is None else t.sticky_agent.id,
            sticky_until=t.sticky_until,
            assigned_at=t.assigned_at,
            wrap_up_until=t.wrap_until,
        )

    def _arm(self, obj: Any, when: float, kind: int) -> None:
        if obj.timer:
            self._timers.pop(obj.timer, None)
        ticket = obj.timer = self._seq()
        self._timers[ticket] = obj
        heapq.heappush(self._deadlines, (when, ticket, kind))

    def _disarm(self, obj: Any) -> None:
        if obj.timer:
            self._timers.pop(obj.timer, None)
            obj.timer = 0

    # -- internals: agents --------------------------------------------------

    def _eligibility(self, a: _Agent) -> None:
        targets: dict[_Target, frozenset[Hashable]] = {}
        for tg in self._all_targets:
            if tg.agent_only is None or tg.agent_only(a, None):
                keys = _NO_KEY if tg.join is None else tg.join.agent_keys(a)
                if keys:
                    targets[tg] = keys
        a.targets = targets
        groups: dict[str, list[_Group]] = {c: [] for c, _ in a.cap_items}
        for tg, keys in targets.items():
            for c, lst in groups.items():
                for k in keys:
                    lst.append(tg.group(c, k))
        a.groups = groups
        # per channel, in the order of a.groups[c]: the agent's strategy key in
        # each group when it does not change with load (None: least_occupied).
        # Plain lists, no (group, key) tuples: fewer objects for the GC to scan.
        a.plan = {
            c: [
                0.0
                if g.queue.strategy == "longest_idle"
                else -float(a.skills.get(g.queue.skill, 0))
                if g.queue.strategy == "best_skill"
                else None
                for g in lst
            ]
            for c, lst in groups.items()
        }
        a.queue_ids = tuple(sorted({tg.queue.id for tg in targets}))

    def _free_channels(self, a: _Agent) -> list[str]:
        if a.presence is not _AVAILABLE or a.phone_active:
            return []
        load = a.load
        out = []
        for c, cap in a.cap_items:
            if load[c] < cap:
                if c in PHONE_CHANNELS and (a.external_busy or a.email_block):
                    continue
                out.append(c)
        return out

    def _unindex(self, a: _Agent, channel: str | None = None) -> None:
        """Invalidate the agent's heap entries (of one channel, or all)."""
        tickets = a.tickets
        for c in (channel,) if channel is not None else CHANNELS:
            ticket = tickets[c]
            if ticket:
                tickets[c] = 0
                del self._indexed[ticket]
                for g in a.groups.get(c, ()):
                    g.agent_live -= 1

    def _index(self, a: _Agent) -> None:
        """Make the agent heaps agree with what the agent can take now: entries
        for every channel it is free on (kept if already there: taking a task
        never improves an agent's place), none for the others."""
        free = self._free_channels(a)
        tickets = a.tickets
        for c in CHANNELS:
            if c not in free:
                if tickets[c]:
                    self._unindex(a, c)
                continue
            if tickets[c]:
                continue
            ticket = tickets[c] = self._seq()
            self._indexed[ticket] = a
            idle = a.last_ended.get(c, a.signed_in_at)
            occupancy = a.total_load / a.total_cap if a.total_cap else 0.0
            aid = a.id
            push = heapq.heappush
            for g, k0 in zip(a.groups[c], a.plan[c], strict=True):
                heap = g.agents
                push(heap, (occupancy if k0 is None else k0, idle, aid, ticket))
                live = g.agent_live = g.agent_live + 1
                if len(heap) > 2 * live + 64:
                    indexed = self._indexed
                    g.agents = [e for e in heap if e[3] in indexed]
                    heapq.heapify(g.agents)

    def _refresh(self, a: _Agent, now: float, out: list[RoutingEvent]) -> None:
        """The agent may have become freer: take work, then index what is left."""
        self._unindex(a)
        self._pull(a, now, out)
        self._index(a)

    def _fits(self, a: _Agent, tg: _Target, t: _Task) -> bool:
        """Residual conjuncts and required skills (the same for a whole bucket)."""
        residual = tg.residual
        if residual is not None and not residual(a, t):
            return False
        return not t.req_items or _has_skills(a.skills, t.req_items)

    def _matches(self, a: _Agent, t: _Task, tg: _Target) -> bool:
        """The whole target, for one pair (used off the hot path)."""
        keys = a.targets.get(tg)
        if keys is None:
            return False
        if tg.join is not None and tg.join.task_key(t) not in keys:
            return False
        if tg.task_only is not None and not tg.task_only(None, t):
            return False
        if t.excluded is not None and a.id in t.excluded:
            return False
        return self._fits(a, tg, t)

    def _pull(self, a: _Agent, now: float, out: list[RoutingEvent]) -> None:
        """Give a free agent the best matching waiting tasks, up to its capacity.

        ``_Group.bound`` never understates a group's best task. The group with
        the best bound is scanned first; the others only if their bound could
        beat the best task found (bounds are made exact by each scan)."""
        while True:
            chans = self._free_channels(a)
            if not chans:
                return
            if len(chans) == 1:
                groups = a.groups[chans[0]]
            else:
                groups = [g for c in chans for g in a.groups[c]]
            first: _Group | None = None
            first_bound = first_arrived = math.inf
            others = 0
            for g in groups:
                if g.buckets:
                    others += 1
                    bound = g.bound - g.rate * now
                    if bound < first_bound or (
                        bound == first_bound and g.bound_arrived < first_arrived
                    ):
                        first, first_bound, first_arrived = g, bound, g.bound_arrived
            best: _Task | None = None
            best_key: tuple[float, float, int] | None = None
            if first is not None:
                best, best_key = self._scan(first, a, now, None, None)
                if others > 1:
                    if best_key is None:
                        # the best group had nothing for this agent: best bound first
                        ranked = sorted(
                            (g.bound - g.rate * now, g.bound_arrived, g.uid, g)
                            for g in groups
                            if g.buckets and g is not first
                        )
                        for bound, arrived, _, g in ranked:
                            if best_key is not None and (
                                bound > best_key[0]
                                or (bound == best_key[0] and arrived > best_key[1])
                            ):
                                break
                            best, best_key = self._scan(g, a, now, best, best_key)
                    else:
                        for g in groups:
                            if g.buckets and g is not first:
                                bound = g.bound - g.rate * now
                                if bound < best_key[0] or (
                                    bound == best_key[0] and g.bound_arrived <= best_key[1]
                                ):
                                    found = self._scan(g, a, now, best, best_key)
                                    best, best_key = found[0], found[1] or best_key
            if a.sticky:
                for t in a.sticky:
                    if t.state is not _WAITING or t.channel not in chans:
                        continue
                    if not self._fits(a, t.target, t):
                        continue
                    key = (-t.base - t.queue.rate * now, t.arrived_at, 0)
                    if best_key is None or key < best_key:
                        best, best_key = t, key
            if best is None:
                return
            self._reserve(best, a, now, out)

    def _scan(
        self,
        g: _Group,
        a: _Agent,
        now: float,
        best: _Task | None,
        best_key: tuple[float, float, int] | None,
    ) -> tuple[_Task | None, tuple[float, float, int] | None]:
        """The best task of the group for the agent if it beats ``best_key``;
        makes the group's bound exact on the way."""
        bucketed = self._bucketed
        pop = heapq.heappop
        rate_now = g.rate * now
        residual = g.residual
        exact: tuple[float, float, int] = (math.inf, math.inf, 0)
        for b in g.buckets.values():
            heap = b.tasks
            head = heap[0]
            t = bucketed.get(head[2])
            while t is None:
                pop(heap)
                head = heap[0]
                t = bucketed.get(head[2])
            if head < exact:
                exact = head
            key = (head[0] - rate_now, head[1], head[2])
            if best_key is not None and key >= best_key:
                continue
            if residual is not None and not residual(a, t):
                continue
            if t.req_items and not _has_skills(a.skills, t.req_items):
                continue
            if t.excluded is not None and a.id in t.excluded:
                found = self._first_not_excluding(heap, a.id)
                if found is None:
                    continue
                entry, t = found
                key = (entry[0] - rate_now, entry[1], entry[2])
                if best_key is not None and key >= best_key:
                    continue
            best, best_key = t, key
        g.bound, g.bound_arrived = exact[0], exact[1]
        return best, best_key

    def _first_not_excluding(
        self, heap: list[tuple[float, float, int]], aid: str
    ) -> tuple[tuple[float, float, int], _Task] | None:
        """The best live entry, in heap order, whose task does not exclude ``aid``."""
        bucketed = self._bucketed
        for entry in _heap_order(heap):
            t = bucketed.get(entry[2])
            if t is not None and (t.excluded is None or aid not in t.excluded):
                return entry, t
        return None

    def _best_agent(self, g: _Group, t: _Task) -> _Agent | None:
        """The free agent of the group the queue's strategy prefers for ``t``.

        Entries of least_occupied groups may understate an agent's occupancy
        (it took tasks since): such an entry is re-keyed when it reaches the top,
        and while searching past the top an entry's key is only a lower bound."""
        heap = g.agents
        indexed = self._indexed
        least_occupied = g.queue.strategy == "least_occupied"
        while heap:
            entry = heap[0]
            a = indexed.get(entry[3])
            if a is None:
                heapq.heappop(heap)
                continue
            if least_occupied:
                k0 = a.total_load / a.total_cap if a.total_cap else 0.0
                if k0 != entry[0]:
                    heapq.heapreplace(heap, (k0, entry[1], entry[2], entry[3]))
                    continue
            break
        else:
            return None
        tg = g.target
        ex = t.excluded
        if (ex is None or a.id not in ex) and self._fits(a, tg, t):
            return a
        best: _Agent | None = None
        best_key: tuple[float, float, str] | None = None
        for entry in _heap_order(heap):
            if best_key is not None and (entry[0], entry[1], entry[2]) >= best_key:
                break
            a = indexed.get(entry[3])
            if a is None or (ex is not None and a.id in ex) or not self._fits(a, tg, t):
                continue
            k0 = entry[0]
            if least_occupied:
                k0 = a.total_load / a.total_cap if a.total_cap else 0.0
            key = (k0, entry[1], entry[2])
            if best_key is None or key < best_key:
                best, best_key = a, key
            if not least_occupied:
                break
        return best

    # -- internals: tasks ---------------------------------------------------

    def _stick(self, t: _Task, now: float) -> None:
        """On entering a queue: wait for the customer's last agent, if it applies."""
        q = t.queue
        if q.sticky <= 0 or t.customer_id is None:
            return
        aid = self._customer_agent.get(t.customer_id)
        a = None if aid is None else self._agents.get(aid)
        if a is None or a.presence is _OFFLINE or t.queued_at + q.sticky <= now:
            return
        if a.capacity.get(t.channel, 0) <= 0 or not self._matches(a, t, t.target):
            return
        t.sticky_agent = a
        t.sticky_until = t.queued_at + q.sticky
        a.sticky[t] = None

    def _unstick(self, t: _Task) -> None:
        a = t.sticky_agent
        if a is not None:
            a.sticky.pop(t, None)
            t.sticky_agent = None
            t.sticky_until = None

    def _take_from_bucket(self, t: _Task) -> None:
        b = t.bucket
        if b is None:
            return
        t.bucket = None
        bucketed = self._bucketed
        del bucketed[t.ticket]
        t.ticket = 0
        b.live -= 1
        g = b.group
        if b.live == 0:
            del g.buckets[b.sig]
        elif len(b.tasks) > 2 * b.live + 64:
            b.tasks = [e for e in b.tasks if e[2] in bucketed]
            heapq.heapify(b.tasks)
        if g.bound == -t.base and g.bound_arrived == t.arrived_at:
            # it was the group's best task: make the bound exact again
            bound = arrived = math.inf
            for other in g.buckets.values():
                heap = other.tasks
                while heap[0][2] not in bucketed:
                    heapq.heappop(heap)
                head = heap[0]
                if head[0] < bound or (head[0] == bound and head[1] < arrived):
                    bound, arrived = head[0], head[1]
            g.bound, g.bound_arrived = bound, arrived

    def _settle(self, t: _Task, now: float, out: list[RoutingEvent], *, reroute: bool) -> None:
        """Apply what fell due for a waiting task (end of sticky wait, steps), route
        it again if its target changed (or ``reroute``), and arm its next timer."""
        if t.sticky_agent is not None and t.sticky_until is not None and t.sticky_until <= now:
            self._unstick(t)
            reroute = True
        q = t.queue
        while t.step < len(q.steps) and t.queued_at + q.steps[t.step].after <= now:
            step = q.steps[t.step]
            t.step += 1
            if isinstance(step, Widen):
                t.target = q.targets[q.target_after[t.step]]
                out.append(TaskTargetChanged(now, t.id, q.id, t.step, step.target))
                reroute = True
            elif isinstance(step, OfferCallback):
                out.append(
                    CallbackOffered(now, t.id, q.id, t.channel, t.customer_id, now - t.queued_at)
                )
            else:
                new_q = self._queues[step.queue_id]
                out.append(TaskOverflowed(now, t.id, q.id, new_q.id, now - t.queued_at))
                self._take_from_bucket(t)
                self._unstick(t)
                del q.tasks[t.id]
                t.enter(new_q, now)
                new_q.tasks[t.id] = t
                out.append(
                    TaskQueued(
                        now,
                        t.id,
                        new_q.id,
                        t.channel,
                        t.priority,
                        t.arrived_at,
                        now,
                        t.customer_id,
                        "overflow",
                    )
                )
                self._stick(t, now)
                q = new_q
                reroute = True
        if reroute:
            self._take_from_bucket(t)
            self._route(t, now, out)
        if t.state is _WAITING:
            nxt = None
            if t.step < len(q.steps):
                nxt = t.queued_at + q.steps[t.step].after
            if t.sticky_until is not None and (nxt is None or t.sticky_until < nxt):
                nxt = t.sticky_until
            if nxt is not None:
                self._arm(t, nxt, _K_TASK)
            else:
                self._disarm(t)

    def _route(self, t: _Task, now: float, out: list[RoutingEvent]) -> None:
        """Find a free agent for a waiting task (not in any bucket), else park it."""
        a = t.sticky_agent
        if a is not None:
            if t.channel in self._free_channels(a) and self._fits(a, t.target, t):
                self._reserve(t, a, now, out)
                self._index(a)
            return
        tg = t.target
        if tg.task_only is not None and not tg.task_only(None, t):
            return  # nobody can match at this step: it waits for the next one
        key: Hashable = None
        if tg.join is not None:
            key = tg.join.task_key(t)
            if key is ABSENT:
                return
        g = tg.group(t.channel, key)
        if g.agent_live:
            agent = self._best_agent(g, t)
            if agent is not None:
                self._reserve(t, agent, now, out)
                self._index(agent)
                return
        if tg.sig_getters:
            sig: Hashable = (
                tuple(_sig_value(get(None, t)) for get in tg.sig_getters),
                t.req_items,
            )
        else:
            sig = t.req_items
        b = g.buckets.get(sig)
        if b is None:
            b = g.buckets[sig] = _Bucket(g, sig)
        ticket = t.ticket = self._seq()
        self._bucketed[ticket] = t
        neg = -t.base
        heapq.heappush(b.tasks, (neg, t.arrived_at, ticket))
        b.live += 1
        t.bucket = b
        if neg < g.bound or (neg == g.bound and t.arrived_at < g.bound_arrived):
            g.bound, g.bound_arrived = neg, t.arrived_at

    def _occupy(self, t: _Task, a: _Agent) -> None:
        c = t.channel
        a.load[c] += 1
        a.total_load += 1
        a.active += 1
        if t.phone:
            a.phone_active += 1
        t.blocks_voice = c == "email" and t.queue.ebv
        if t.blocks_voice:
            a.email_block += 1
        a.tasks[t.id] = t
        t.agent = a

    def _release_active(self, t: _Task, a: _Agent) -> None:
        """Reserved/assigned -> no longer blocking (wrap-up or gone)."""
        a.active -= 1
        if t.phone:
            a.phone_active -= 1
        if t.blocks_voice:
            a.email_block -= 1
            t.blocks_voice = False

    def _release(self, t: _Task, a: _Agent) -> None:
        """The task leaves the agent; frees its capacity slot."""
        if t.state is _WRAPPING:
            a.wrapping -= 1
        else:
            self._release_active(t, a)
        a.load[t.channel] -= 1
        a.total_load -= 1
        del a.tasks[t.id]
        t.agent = None
        self._touched[a] = None

    def _reserve(self, t: _Task, a: _Agent, now: float, out: list[RoutingEvent]) -> None:
        self._take_from_bucket(t)
        self._unstick(t)
        self._disarm(t)
        self._occupy(t, a)
        self._touched[a] = None
        rid = f"{self._prefix}{self._next_res}"
        self._next_res += 1
        if a.auto_accept:
            self._assign(t, a, rid, now, out, auto=True)
            return
        q = t.queue
        res = _Reservation(rid, t, a, now, now + q.res_timeout)
        self._reservations[rid] = res
        a.reservations[rid] = res
        t.reservation = res
        t.state = _RESERVED
        self._arm(res, res.expires_at, _K_RES)
        out.append(ReservationOffered(now, rid, t.id, a.id, q.id, t.channel, res.expires_at))

    def _assign(
        self, t: _Task, a: _Agent, rid: str, now: float, out: list[RoutingEvent], *, auto: bool
    ) -> None:
        q = t.queue
        t.state = _ASSIGNED
        t.assignment_id = rid
        t.assigned_at = now
        del q.tasks[t.id]
        if t.customer_id is not None:
            self._customer_agent[t.customer_id] = a.id
            self._customer_agent_changed[t.customer_id] = a.id
        waited = now - t.queued_at
        self._touched[a] = None
        out.append(
            TaskAssigned(
                now,
                t.id,
                a.id,
                rid,
                q.id,
                t.channel,
                waited,
                now - t.arrived_at,
                waited <= q.sl,
                auto,
            )
        )
        if auto:
            self._remember(
                self._closed_res, rid, ("accepted", t.id, a.id, q.id, t.channel, now, None, now)
            )

    def _refuse(
        self, res: _Reservation, state: ReservationState, now: float, out: list[RoutingEvent]
    ) -> None:
        """Rejected or timed out: never offer this task to this agent again."""
        t, a = res.task, res.agent
        self._close_reservation(res, state, now)
        cls = ReservationRejected if state is ReservationState.REJECTED else ReservationTimedOut
        out.append(cls(now, res.id, t.id, a.id, t.queue_id))
        if t.excluded is None:
            t.excluded = set()
        t.excluded.add(a.id)
        self._release(t, a)
        t.state = _WAITING
        self._settle(t, now, out, reroute=True)
        self._refresh(a, now, out)

    def _withdraw(
        self, res: _Reservation, reason: str, now: float, out: list[RoutingEvent]
    ) -> None:
        """The offer is withdrawn through no fault of the agent; route the task again."""
        t, a = res.task, res.agent
        self._close_reservation(res, ReservationState.CANCELED, now)
        out.append(ReservationCanceled(now, res.id, t.id, a.id, t.queue_id, reason))
        self._release(t, a)
        t.state = _WAITING
        self._settle(t, now, out, reroute=True)

    def _finish(self, t: _Task, now: float, out: list[RoutingEvent]) -> None:
        a = t.agent
        assert a is not None and t.assigned_at is not None
        started = t.wrap_started_at if t.wrap_started_at is not None else now
        self._release(t, a)
        a.last_ended[t.channel] = now
        t.state = TaskState.COMPLETED
        self._disarm(t)
        self._forget_task(t)
        out.append(
            TaskCompleted(
                now,
                t.id,
                a.id,
                t.queue_id,
                t.channel,
                started - t.assigned_at,
                now - started,
            )
        )


def _closed_view(rid: str, rec: tuple[Any, ...]) -> ReservationView:
    state, task_id, agent_id, queue_id, channel, offered_at, expires_at, closed_at = rec
    return ReservationView(
        rid,
        task_id,
        agent_id,
        queue_id,
        channel,
        ReservationState(state),
        offered_at,
        expires_at,
        closed_at,
    )


def _has_skills(skills: Mapping[str, int], required: tuple[tuple[str, int], ...]) -> bool:
    for name, level in required:
        if skills.get(name, 0) < level:
            return False
    return True


def _sig_value(v: object) -> Hashable:
    if isinstance(v, Mapping):
        return frozenset(v.items())
    if isinstance(v, set | list):
        return frozenset(v)
    return v


def _heap_order(heap: list[Any]) -> Iterator[Any]:
    """Entries of a binary heap in sorted order, lazily (O(k log k) for k taken)."""
    if not heap:
        return
    n = len(heap)
    frontier: list[tuple[Any, int]] = [(heap[0], 0)]
    pop, push = heapq.heappop, heapq.heappush
    while frontier:
        entry, i = pop(frontier)
        yield entry
        left = 2 * i + 1
        if left < n:
            push(frontier, (heap[left], left))
            if left + 1 < n:
                push(frontier, (heap[left + 1], left + 1))
