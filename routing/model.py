"""Routing values: configuration, requests, read-only views, domain events and
the snapshot. Everything here is a frozen value; the engine keeps its own
mutable state and builds these when it emits an event or is asked.

Channels: ``voice``, ``email``, ``callback``, ``chat``. ``voice`` and
``callback`` are *phone* channels: a phone task that is reserved or assigned
blocks every further offer to that agent, and an agent whose device is busy
with a call Callwright did not place (``external_busy``) gets no phone offers.

Task states: ``waiting`` -> ``reserved`` (offered to one agent) -> ``assigned``
-> ``wrapping`` -> ``completed``; ``canceled`` from waiting or reserved.

Agent presence is what the agent (or a supervisor) sets: ``offline``,
``available`` or ``break`` (with a reason code). The reported ``state`` adds
what the agent is doing: ``busy`` while any task is reserved or assigned,
``wrap_up`` while only wrap-ups remain, otherwise the presence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal, Union

__all__ = [
    "CHANNELS",
    "PHONE_CHANNELS",
    "AgentConfig",
    "AgentRecord",
    "AgentState",
    "AgentStateChanged",
    "AgentView",
    "AttributeValue",
    "CallbackOffered",
    "Channel",
    "OfferCallback",
    "Overflow",
    "Presence",
    "QueueConfig",
    "ReservationCanceled",
    "ReservationOffered",
    "ReservationRecord",
    "ReservationRejected",
    "ReservationState",
    "ReservationTimedOut",
    "ReservationView",
    "RouterSnapshot",
    "RoutingEvent",
    "Step",
    "Strategy",
    "TaskAssigned",
    "TaskCanceled",
    "TaskCompleted",
    "TaskOverflowed",
    "TaskQueued",
    "TaskRecord",
    "TaskRequeued",
    "TaskSpec",
    "TaskState",
    "TaskTargetChanged",
    "TaskView",
    "TaskWrapping",
    "Widen",
]

Channel = Literal["voice", "email", "callback", "chat"]
CHANNELS: Final[tuple[Channel, ...]] = ("voice", "email", "callback", "chat")
PHONE_CHANNELS: Final[frozenset[str]] = frozenset({"voice", "callback"})
AttributeValue = str | int | float | bool
Strategy = Literal["longest_idle", "least_occupied", "best_skill"]


class TaskState(StrEnum):
    WAITING = "waiting"
    RESERVED = "reserved"
    ASSIGNED = "assigned"
    WRAPPING = "wrapping"
    COMPLETED = "completed"
    CANCELED = "canceled"


class Presence(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    BREAK = "break"


class AgentState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    BREAK = "break"


class ReservationState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"


# -- configuration --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Widen:
    """After ``after`` seconds in the queue, the target becomes ``target``
    (a whole expression, replacing the previous one)."""

    after: float
    target: str


@dataclass(frozen=True, slots=True)
class Overflow:
    """After ``after`` seconds, the task moves to queue ``queue_id`` (keeping its
    arrival time, priority and the agents it must not be offered to again)."""

    after: float
    queue_id: str


@dataclass(frozen=True, slots=True)
class OfferCallback:
    """After ``after`` seconds, emit ``CallbackOffered``; the task keeps waiting
    (the service offers the caller a callback and cancels or keeps the task)."""

    after: float


Step = Union[Widen, Overflow, OfferCallback]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """One queue. Times are seconds; ``steps`` run in order of ``after``,
    measured from the moment the task entered this queue.

    ``aging_per_second``: priority points added per second waited (effective
    priority = priority + aging * (now - arrived_at)), so nothing starves.
    ``sticky_agent_seconds``: a task from a customer this router has seen
    waits that long for the agent who last served the customer (if signed in
    and matching the target), then any agent may take it.
    ``email_blocks_voice``: while an agent holds a reserved or assigned email
    task from THIS queue, that agent gets no phone offers.
    ``strategy``: which matching agent a task goes to: ``longest_idle`` (the
    oldest end of a task on that channel, else the oldest sign-in),
    ``least_occupied`` (fewest tasks relative to total capacity, then longest
    idle), ``best_skill`` (highest level in ``strategy_skill``, then longest idle).
    """

    id: str
    target: str
    steps: tuple[Step, ...] = ()
    strategy: Strategy = "longest_idle"
    strategy_skill: str | None = None
    aging_per_second: float = 0.0
    sticky_agent_seconds: float = 0.0
    service_level_seconds: float = 20.0
    reservation_timeout_seconds: float = 30.0
    wrap_up_seconds: float = 0.0
    email_blocks_voice: bool = False
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """``skills``: name -> level 1-10. ``capacity``: channel -> how many tasks of
    that channel at once (a channel left out is 0)."""

    id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    capacity: Mapping[str, int] = field(default_factory=lambda: {"voice": 1})
    auto_accept: bool = False
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A new task. ``required_skills``: skill -> minimum level, a hard filter on
    top of the queue's target. ``arrived_at`` defaults to ``now``; an earlier
    value (mail received while the server was down) counts as waiting time."""

    id: str
    queue_id: str
    channel: Channel
    priority: int = 0
    customer_id: str | None = None
    language: str | None = None
    required_skills: Mapping[str, int] = field(default_factory=dict)
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    arrived_at: float | None = None


# -- read-only views ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskView:
    id: str
    channel: Channel
    queue_id: str
    priority: int
    arrived_at: float
    queued_at: float  # entered the current queue
    customer_id: str | None
    language: str | None
    required_skills: Mapping[str, int]
    attributes: Mapping[str, AttributeValue]
    state: TaskState
    step: int  # steps of the current queue already applied
    target: str  # the expression in force
    agent_id: str | None  # reserved, assigned or wrapping: the agent
    reservation_id: str | None
    excluded_agents: frozenset[str]  # rejected it or let it time out
    sticky_agent_id: str | None  # waiting only for this agent until sticky_until
    sticky_until: float | None
    assigned_at: float | None
    wrap_up_until: float | None


@dataclass(frozen=True, slots=True)
class AgentView:
    id: str
    skills: Mapping[str, int]
    languages: frozenset[str]
    attributes: Mapping[str, AttributeValue]
    capacity: Mapping[str, int]
    auto_accept: bool
    presence: Presence
    state: AgentState
    reason: str | None  # break reason code
    state_since: float
    external_busy: bool
    load: Mapping[str, int]  # channel -> reserved + assigned + wrapping tasks
    task_ids: tuple[str, ...]
    reservation_ids: tuple[str, ...]  # pending offers
    last_ended: Mapping[str, float]  # channel -> end of the last task
    queues: tuple[str, ...]  # queues whose target admits this agent (agent attributes only)


@dataclass(frozen=True, slots=True)
class ReservationView:
    id: str
    task_id: str
    agent_id: str
    queue_id: str
    channel: Channel
    state: ReservationState
    offered_at: float | None
    expires_at: float | None
    closed_at: float | None


# -- events ---------------------------------------------------------------------
# Every event carries ``at`` (the logical time it happened) and whatever the
# statistics fold (routing/stats.py) needs, so one stored log answers both the
# live wallboard and the historical report. Events are frozen dataclasses
# without __slots__: on CPython 3.11 a frozen slotted dataclass takes twice as
# long to build, and several events are built per assignment.


@dataclass(frozen=True)
class AgentStateChanged:
    at: float
    agent_id: str
    state: AgentState
    previous: AgentState | None  # None when the agent is added
    presence: Presence
    reason: str | None
    queues: tuple[str, ...]


@dataclass(frozen=True)
class TaskQueued:
    at: float
    task_id: str
    queue_id: str
    channel: Channel
    priority: int
    arrived_at: float
    queued_at: float
    customer_id: str | None
    via: Literal["submit", "overflow"]


@dataclass(frozen=True)
class TaskTargetChanged:
    at: float
    task_id: str
    queue_id: str
    step: int  # 1-based index of the step in the queue's steps
    target: str


@dataclass(frozen=True)
class TaskOverflowed:
    at: float
    task_id: str
    from_queue: str
    to_queue: str
    waited: float  # in from_queue


@dataclass(frozen=True)
class CallbackOffered:
    at: float
    task_id: str
    queue_id: str
    channel: Channel
    customer_id: str | None
    waited: float


@dataclass(frozen=True)
class ReservationOffered:
    at: float
    reservation_id: str
    task_id: str
    agent_id: str
    queue_id: str
    channel: Channel
    expires_at: float
    reoffer: bool = False  # re-offered after a restart


@dataclass(frozen=True)
class ReservationRejected:
    at: float
    reservation_id: str
    task_id: str
    agent_id: str
    queue_id: str


@dataclass(frozen=True)
class ReservationTimedOut:
    at: float
    reservation_id: str
    task_id: str
    agent_id: str
    queue_id: str


@dataclass(frozen=True)
class ReservationCanceled:
    """The offer was withdrawn: ``caller_hangup`` (with ``TaskCanceled``),
    ``agent_offline``, ``agent_break``, ``external_busy``, ``agent_removed``."""

    at: float
    reservation_id: str
    task_id: str
    agent_id: str
    queue_id: str
    reason: str


@dataclass(frozen=True)
class TaskAssigned:
    """The reservation was accepted (or auto-accepted): the task is the agent's."""

    at: float
    task_id: str
    agent_id: str
    reservation_id: str
    queue_id: str
    channel: Channel
    waited: float  # since entering this queue (what ASA and service level use)
    waited_total: float  # since arrival
    within_threshold: bool  # waited <= the queue's service_level_seconds
    auto_accepted: bool


@dataclass(frozen=True)
class TaskRequeued:
    """An assigned task went back to waiting (the caller never reached the
    agent); the agent is excluded for it. Statistics undo its answer."""

    at: float
    task_id: str
    agent_id: str
    queue_id: str
    reservation_id: str  # the assignment that failed
    reason: str


@dataclass(frozen=True)
class TaskCanceled:
    at: float
    task_id: str
    queue_id: str
    reason: str
    waited: float  # since entering this queue
    abandoned: bool  # the caller left (reason == "caller_hangup")
    within_threshold: bool  # waited <= the queue's service_level_seconds
    was_offered: bool  # a reservation was open when it was canceled


@dataclass(frozen=True)
class TaskWrapping:
    at: float
    task_id: str
    agent_id: str
    queue_id: str
    talk_time: float  # assigned -> complete
    wrap_up_until: float


@dataclass(frozen=True)
class TaskCompleted:
    at: float
    task_id: str
    agent_id: str
    queue_id: str  # the queue it was assigned from
    channel: Channel
    talk_time: float
    wrap_time: float


RoutingEvent = Union[  # noqa: UP007
    AgentStateChanged,
    TaskQueued,
    TaskTargetChanged,
    TaskOverflowed,
    CallbackOffered,
    ReservationOffered,
    ReservationRejected,
    ReservationTimedOut,
    ReservationCanceled,
    TaskAssigned,
    TaskRequeued,
    TaskCanceled,
    TaskWrapping,
    TaskCompleted,
]


# -- snapshot -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReservationRecord:
    id: str
    offered_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A live task. ``spec`` keeps the original queue, arrival and priority;
    ``queue_id``/``queued_at``/``step`` say where it is now."""

    spec: TaskSpec  # arrived_at always set
    queue_id: str
    queued_at: float
    state: TaskState
    step: int
    excluded_agents: tuple[str, ...]
    agent_id: str | None
    reservation: ReservationRecord | None  # the open offer (state reserved)
    assignment_id: str | None  # the accepted reservation (assigned, wrapping)
    assigned_at: float | None
    wrap_started_at: float | None
    wrap_up_until: float | None
    sticky_agent_id: str | None
    sticky_until: float | None


@dataclass(frozen=True, slots=True)
class AgentRecord:
    config: AgentConfig
    presence: Presence
    reason: str | None
    state: AgentState
    state_since: float
    external_busy: bool
    last_ended: tuple[tuple[str, float], ...]
    signed_in_at: float


@dataclass(frozen=True, slots=True)
class RouterSnapshot:
    taken_at: float
    agents: tuple[AgentRecord, ...]
    tasks: tuple[TaskRecord, ...]  # waiting, reserved, assigned, wrapping
    last_agent_of_customer: tuple[tuple[str, str], ...]
    next_reservation: int  # reservation ids continue from here
