"""IVR values: flows and their nodes, and what the interpreter trades with adapters.

Everything here is a frozen value. A flow comes from a TOML file
(``ivr.loader``) and is checked as a graph (``ivr.validate``); the pure
interpreter (``ivr.interpreter``) walks it one input at a time.

Flows
-----
``Flow``: a name, a start node, the default language and the languages it
speaks (code -> locale, e.g. ``fr`` -> ``fr-FR``), a time zone, its nodes by id,
an optional post-call ``survey`` entry node, and ``max_steps`` (node visits in
one session; past it the call ends with outcome ``failed``, so no session runs
for ever).

Node kinds (``kind`` in TOML), their exits, and whether they wait:

========== ==================================================== =================
kind       exits                                                waits for
========== ==================================================== =================
say        next                                                 -
menu       choices.<key>, failure                               caller (digits)
collect    next, failure                                        caller (digits)
lookup     found, not_found                                     CRM (lookup)
hours      open, closed, holiday (default: closed)              -
set        next                                                 -
branch     cases[i].next, otherwise                             -
queue      (ends: queued)                                       -
voicemail  (ends: voicemail)                                    caller (recording)
callback   no_number (optional; ends: callback)                 -
survey     next, failure                                        caller (digits)
transfer   failure (optional; ends: transferred)                PBX (dial)
recording  next                                                 -
hangup     (ends: completed)                                    -
========== ==================================================== =================

``recording`` pauses or resumes the call's recording (``action = "pause"`` or
``"resume"``, e.g. around a card number): an action for the adapter, which
never stops the flow (a call that is not recorded simply goes on).

``Prompt``: text per language (for ``<Say>`` / TTS; every prompt has a text in
every language of its flow), plus optionally an Asterisk sound name (played
by the FastAGI adapter; Asterisk itself picks the folder of the channel's
language) and an audio URL for Twilio ``<Play>`` where ``{language}`` stands for
the language code. The interpreter hands adapters a resolved ``Say``.

Sessions, inputs, actions, waits
--------------------------------
See ``ivr.interpreter`` for the contract. ``Session`` is immutable and
JSON-serialisable (``to_json``/``from_json``); ``Step`` is what every
interpreter call returns: the new session, the actions to perform in order,
then what to wait for (``Wait``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, Literal, Union
from zoneinfo import ZoneInfo

from ivr.errors import SessionError
from routing.expressions import Expression
from routing.model import AttributeValue

__all__ = [
    "CALLER_INPUT_KINDS",
    "CARD_MASK_MIN_DIGITS",
    "OUTCOMES",
    "WEEKDAYS",
    "Action",
    "AwaitLookup",
    "AwaitRecording",
    "AwaitTransfer",
    "BranchCase",
    "BranchNode",
    "CallInfo",
    "Callback",
    "CallbackNode",
    "CollectNode",
    "Digits",
    "Done",
    "Enqueue",
    "Flow",
    "GatherDigits",
    "Hangup",
    "HangupNode",
    "HoursNode",
    "HungUp",
    "Input",
    "LookupBy",
    "LookupNode",
    "LookupResult",
    "MenuChoice",
    "MenuNode",
    "NoInput",
    "Node",
    "Outcome",
    "PauseRecording",
    "Phase",
    "Prompt",
    "QueueNode",
    "RecordingDone",
    "RecordingNode",
    "ResumeRecording",
    "Say",
    "SayNode",
    "Schedule",
    "Session",
    "SetLanguage",
    "SetNode",
    "Step",
    "SurveyNode",
    "SurveyScore",
    "TaskRequest",
    "TransferCompleted",
    "TransferFailed",
    "TransferNode",
    "Voicemail",
    "VoicemailNode",
    "Wait",
    "exits",
    "luhn_ok",
    "mask_secret",
    "utc_iso",
]

Outcome = Literal[
    "queued", "transferred", "voicemail", "callback", "completed", "abandoned", "failed"
]
OUTCOMES: Final[tuple[Outcome, ...]] = (
    "queued",
    "transferred",
    "voicemail",
    "callback",
    "completed",
    "abandoned",
    "failed",
)
Phase = Literal["flow", "survey"]
LookupBy = Literal["caller_id", "account_number"]
WEEKDAYS: Final[tuple[str, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# -- flows ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prompt:
    """``text``: language code -> text. ``sound``: an Asterisk sound name without
    extension (``callwright/welcome``). ``url``: an audio URL for Twilio, where
    ``{language}`` is replaced by the language code."""

    text: Mapping[str, str]
    sound: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """Opening hours in ``timezone``. ``weekly[0]`` is Monday: ranges of minutes
    since local midnight, start included, end excluded (``(480, 1080)`` is
    08:00-18:00; an end of 1440 is midnight). ``holidays``: local dates closed
    all day."""

    timezone: str
    weekly: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date] = frozenset()

    def status(self, now: datetime) -> Literal["open", "closed", "holiday"]:
        """Where ``now`` (aware; naive means UTC) falls. Local wall time decides,
        so a range follows daylight-saving changes; a range over a skipped hour
        simply starts at the first wall time that exists."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        local = now.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return "holiday"
        minute = local.hour * 60 + local.minute
        for start, end in self.weekly[local.weekday()]:
            if start <= minute < end:
                return "open"
        return "closed"


@dataclass(frozen=True, slots=True)
class SayNode:
    id: str
    prompt: Prompt
    next: str
    kind: Literal["say"] = "say"


@dataclass(frozen=True, slots=True)
class MenuChoice:
    """``value``: what the menu's ``var`` records (the key itself by default)."""

    next: str
    value: str


@dataclass(frozen=True, slots=True)
class MenuNode:
    """One key press chooses. A wrong key (or several keys) plays ``invalid``
    then the prompt again; no key before ``timeout`` plays ``no_input`` (if
    any) then the prompt; after ``retries`` such re-prompts the next miss goes
    to ``failure``. ``var``: the task attribute that records the choice."""

    id: str
    prompt: Prompt
    choices: Mapping[str, MenuChoice]
    failure: str
    timeout: float = 5.0
    retries: int = 2
    invalid: Prompt | None = None
    no_input: Prompt | None = None
    var: str | None = None
    kind: Literal["menu"] = "menu"


@dataclass(frozen=True, slots=True)
class CollectNode:
    """Digits into task attribute ``var``. ``format``: ``digits`` (kept as typed)
    or ``date`` (``date_order`` DMY, MDY or YMD, 8 digits, a real date in the
    past 130 years; stored as ``YYYY-MM-DD``). Retries as for ``MenuNode``.

    ``check``: ``luhn`` refuses digits whose Luhn check digit is wrong (card
    numbers; a miss like a wrong key). ``secret``: the digits are never kept:
    ``var`` gets a masked value (``mask_secret``: the last four digits behind
    ``*`` for 12 digits or more, else only ``*``), so the session, its stored
    row and the routing task never hold them."""

    id: str
    prompt: Prompt
    var: str
    next: str
    failure: str
    min_digits: int = 1
    max_digits: int = 16
    finish_on_key: str = "#"
    timeout: float = 7.0
    retries: int = 2
    format: Literal["digits", "date"] = "digits"
    date_order: Literal["DMY", "MDY", "YMD"] = "DMY"
    invalid: Prompt | None = None
    no_input: Prompt | None = None
    check: Literal["none", "luhn"] = "none"
    secret: bool = False
    kind: Literal["collect"] = "collect"


@dataclass(frozen=True, slots=True)
class LookupNode:
    """Find the customer by caller ID or by the account number in attribute
    ``var``. ``copy``: customer fields copied into task attributes (e.g.
    ``vip``), so branches and queue targets can read them. A missing or
    anonymous caller ID (or an empty ``var``) goes to ``not_found`` without a
    lookup."""

    id: str
    by: LookupBy
    found: str
    not_found: str
    var: str | None = None
    copy: tuple[str, ...] = ()
    kind: Literal["lookup"] = "lookup"


@dataclass(frozen=True, slots=True)
class HoursNode:
    id: str
    schedule: Schedule
    open: str
    closed: str
    holiday: str | None = None  # None: a holiday goes to ``closed``
    kind: Literal["hours"] = "hours"


@dataclass(frozen=True, slots=True)
class SetNode:
    """Sets the language, the priority, required skills (merged) and task
    attributes (merged); ``None``/empty leaves a field as it is."""

    id: str
    next: str
    language: str | None = None
    priority: int | None = None
    skills: Mapping[str, int] = field(default_factory=dict)
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    kind: Literal["set"] = "set"


@dataclass(frozen=True, slots=True)
class BranchCase:
    """``when``: a condition in the queue-target language (``routing.expressions``)
    reading only ``task.*``: the task this session is building
    (``task.attributes.vip``, ``task.language == "fr"``, ``task.priority > 3``,
    ``task.customer_id``, ``task.skills.billing``)."""

    when: str
    next: str
    expression: Expression = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BranchNode:
    """The first case whose condition holds wins, else ``otherwise``."""

    id: str
    cases: tuple[BranchCase, ...]
    otherwise: str
    kind: Literal["branch"] = "branch"


@dataclass(frozen=True, slots=True)
class QueueNode:
    """Ends the IVR: the call becomes a routing task in ``queue`` carrying
    everything collected. ``priority``/``skills``/``attributes`` override or
    merge into what the session built. ``survey``: run the flow's survey after
    the call (when the flow has one). ``origin``: back to the queue the call
    came from (``CallInfo.origin_queue``, after a transfer into the flow) when
    there is one; ``queue`` otherwise."""

    id: str
    queue: str
    prompt: Prompt | None = None
    priority: int | None = None
    skills: Mapping[str, int] = field(default_factory=dict)
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    survey: bool = True
    origin: bool = False
    kind: Literal["queue"] = "queue"


@dataclass(frozen=True, slots=True)
class VoicemailNode:
    """Plays ``prompt``, records up to ``max_seconds`` (``finish_on_key`` ends
    early), and a non-empty recording becomes a routing task in ``queue``;
    then ``goodbye`` and hang up."""

    id: str
    prompt: Prompt
    queue: str
    max_seconds: int = 120
    finish_on_key: str = "#"
    goodbye: Prompt | None = None
    kind: Literal["voicemail"] = "voicemail"


@dataclass(frozen=True, slots=True)
class CallbackNode:
    """A callback task in ``queue`` for the caller ID, or for the digits in
    attribute ``number_var``; ``prompt`` confirms, then hang up. Without a
    usable number: ``no_number``, or the call ends ``failed``."""

    id: str
    queue: str
    prompt: Prompt | None = None
    number_var: str | None = None
    no_number: str | None = None
    kind: Literal["callback"] = "callback"


@dataclass(frozen=True, slots=True)
class SurveyNode:
    """One key 1..``scale``; retries as for ``MenuNode``. The score is an action
    (``SurveyScore``) and the task attribute ``var``."""

    id: str
    prompt: Prompt
    next: str
    failure: str
    scale: int = 5
    timeout: float = 5.0
    retries: int = 2
    invalid: Prompt | None = None
    no_input: Prompt | None = None
    var: str = "survey_score"
    kind: Literal["survey"] = "survey"


@dataclass(frozen=True, slots=True)
class TransferNode:
    """Dials ``number`` (digits, optionally a leading +) for up to ``timeout``
    seconds. If the PBX reports failure: ``failure``, or the call ends
    ``failed``."""

    id: str
    number: str
    prompt: Prompt | None = None
    timeout: int = 30
    failure: str | None = None
    kind: Literal["transfer"] = "transfer"


@dataclass(frozen=True, slots=True)
class RecordingNode:
    """Pause (``action = "pause"``) or resume the call's recording, then ``next``.
    The interpreter hands the adapter ``PauseRecording`` / ``ResumeRecording``;
    whether the call is recorded at all is the adapter's business."""

    id: str
    action: Literal["pause", "resume"]
    next: str
    kind: Literal["recording"] = "recording"


@dataclass(frozen=True, slots=True)
class HangupNode:
    id: str
    prompt: Prompt | None = None
    kind: Literal["hangup"] = "hangup"


Node = Union[  # noqa: UP007
    SayNode,
    MenuNode,
    CollectNode,
    LookupNode,
    HoursNode,
    SetNode,
    BranchNode,
    QueueNode,
    VoicemailNode,
    CallbackNode,
    SurveyNode,
    TransferNode,
    RecordingNode,
    HangupNode,
]
CALLER_INPUT_KINDS: Final[frozenset[str]] = frozenset({"menu", "collect", "survey", "voicemail"})
"""Node kinds that wait for the caller (a loop must contain one of them)."""


def exits(node: Node) -> tuple[tuple[str, str], ...]:
    """``(key, target)`` for every node this one can go to, in a stable order."""
    if isinstance(node, SayNode | SetNode | RecordingNode):
        return (("next", node.next),)
    if isinstance(node, MenuNode):
        pairs = [(f"choices.{k}", c.next) for k, c in node.choices.items()]
        return (*pairs, ("failure", node.failure))
    if isinstance(node, CollectNode | SurveyNode):
        return (("next", node.next), ("failure", node.failure))
    if isinstance(node, LookupNode):
        return (("found", node.found), ("not_found", node.not_found))
    if isinstance(node, HoursNode):
        pairs = [("open", node.open), ("closed", node.closed)]
        if node.holiday is not None:
            pairs.append(("holiday", node.holiday))
        return tuple(pairs)
    if isinstance(node, BranchNode):
        cases = [(f"cases[{i}].next", c.next) for i, c in enumerate(node.cases)]
        return (*cases, ("otherwise", node.otherwise))
    if isinstance(node, CallbackNode):
        return (("no_number", node.no_number),) if node.no_number is not None else ()
    if isinstance(node, TransferNode):
        return (("failure", node.failure),) if node.failure is not None else ()
    return ()


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    start: str
    language: str
    languages: Mapping[str, str]  # code -> locale (BCP 47), e.g. "fr" -> "fr-FR"
    timezone: str
    nodes: Mapping[str, Node]
    survey: str | None = None
    max_steps: int = 100
    source: str = ""  # the file it came from, for messages

    def locale(self, language: str) -> str:
        return self.languages.get(language, language)


# -- what the interpreter trades with adapters ----------------------------------


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The call entering a flow: ``caller_id`` and ``dialed`` as the PBX gives them
    (empty when unknown), ``ref``: the adapter's handle (Asterisk channel or
    uniqueid, Twilio CallSid). ``origin_queue``: the routing queue the call was
    in before it was transferred into this flow (empty when it came straight
    in); a ``queue`` node with ``origin = true`` sends it back there.
    ``language``: the language the caller chose earlier on this call (in an
    earlier flow run); the flow starts in it when it has it, else in its own
    default language."""

    caller_id: str = ""
    dialed: str = ""
    ref: str = ""
    origin_queue: str = ""
    language: str = ""


# inputs


@dataclass(frozen=True, slots=True)
class Digits:
    """Keys the caller pressed (the finish key may be included or not). An
    empty string is the same as ``NoInput``."""

    digits: str


@dataclass(frozen=True, slots=True)
class NoInput:
    """The gather timed out with no key."""


@dataclass(frozen=True, slots=True)
class HungUp:
    """The caller hung up. Accepted in every wait."""


@dataclass(frozen=True, slots=True)
class LookupResult:
    """``customer``: None when not found (or the lookup failed), else the
    customer's fields: ``id`` (required), ``name``, ``account_number``, ``vip``
    (bool) and any other scalar; nested values are ignored."""

    customer: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class RecordingDone:
    """The voicemail recording ended (finish key, silence, length or hang-up).
    ``recording``: the adapter's reference to the audio (file name, URL);
    empty or ``seconds < 1`` means nothing was said. ``hung_up``: the caller
    hung up to end it (the usual end of a voicemail)."""

    recording: str
    seconds: float
    hung_up: bool = False


@dataclass(frozen=True, slots=True)
class TransferFailed:
    """The transfer did not connect (busy, no answer, unavailable)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class TransferCompleted:
    """The transfer connected (and may have ended since)."""


Input = Union[  # noqa: UP007
    Digits, NoInput, HungUp, LookupResult, RecordingDone, TransferFailed, TransferCompleted
]

# actions


@dataclass(frozen=True, slots=True)
class Say:
    """Speak ``text`` in ``language`` (``locale`` for TTS / ``<Say language>``), or
    play ``sound`` (Asterisk) / ``url`` (Twilio) when the adapter has one."""

    text: str
    language: str
    locale: str
    sound: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class SetLanguage:
    """The caller's language changed (Asterisk: ``CHANNEL(language)``)."""

    language: str
    locale: str


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """A routing task to create (maps onto ``routing.model.TaskSpec``):
    ``customer_id`` is the CRM id as a string; ``attributes`` holds everything
    collected, plus ``caller_id``, ``dialed`` (when known) and ``ivr_flow``."""

    queue: str
    priority: int
    language: str
    skills: Mapping[str, int]
    customer_id: str | None
    attributes: Mapping[str, AttributeValue]


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Put the call in ``task.queue``. ``survey``: run ``start_survey`` when the
    agent's leg ends and the caller is still there."""

    task: TaskRequest
    survey: bool


@dataclass(frozen=True, slots=True)
class Voicemail:
    """A voicemail task (channel ``callback`` or ``voice``, the adapter's choice)
    with the recording and the number to call back."""

    task: TaskRequest
    recording: str
    seconds: float
    number: str


@dataclass(frozen=True, slots=True)
class Callback:
    task: TaskRequest
    number: str


@dataclass(frozen=True, slots=True)
class SurveyScore:
    """Store ``score`` (1..``scale``) on the call's interaction."""

    score: int
    scale: int


@dataclass(frozen=True, slots=True)
class PauseRecording:
    """Pause the call's recording, both directions (Asterisk: ``MixMonitorMute``),
    before the next prompt plays. Not recorded: nothing to do, go on."""


@dataclass(frozen=True, slots=True)
class ResumeRecording:
    """Resume the call's paused recording. Not paused or not recorded: go on."""


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


Action = Union[  # noqa: UP007
    Say,
    SetLanguage,
    Enqueue,
    Voicemail,
    Callback,
    SurveyScore,
    PauseRecording,
    ResumeRecording,
    Hangup,
]

# waits


@dataclass(frozen=True, slots=True)
class GatherDigits:
    """Play ``prompts`` (interruptible by a key) and collect up to ``max_digits``
    keys; ``finish_on_key`` ("" for none) ends early; ``timeout`` seconds without
    a key ends it. Feed ``Digits``, ``NoInput`` or ``HungUp``."""

    prompts: tuple[Say, ...]
    max_digits: int
    timeout: float
    finish_on_key: str
    min_digits: int = 1


@dataclass(frozen=True, slots=True)
class AwaitLookup:
    """Look the customer up (``caller_id``: by phone; ``account_number``) and feed
    ``LookupResult`` (or ``HungUp``)."""

    by: LookupBy
    value: str


@dataclass(frozen=True, slots=True)
class AwaitRecording:
    """Play ``prompts``, beep, record up to ``max_seconds``; feed
    ``RecordingDone`` (or ``HungUp`` when there is no recording at all)."""

    prompts: tuple[Say, ...]
    max_seconds: int
    finish_on_key: str


@dataclass(frozen=True, slots=True)
class AwaitTransfer:
    """Dial ``number`` (ring at most ``timeout`` s) and bridge the caller to it;
    feed ``TransferCompleted``, ``TransferFailed`` or ``HungUp``."""

    number: str
    timeout: int


@dataclass(frozen=True, slots=True)
class Done:
    """The session ended: ``outcome``, the ``node`` it ended at (for
    ``abandoned``: where the caller hung up), and for ``failed`` a ``reason``."""

    outcome: Outcome
    node: str
    reason: str = ""


Wait = Union[GatherDigits, AwaitLookup, AwaitRecording, AwaitTransfer, Done]  # noqa: UP007

# sessions


@dataclass(frozen=True, slots=True)
class Session:
    """Where one call stands in one flow. Immutable; ``to_json``/``from_json``
    round-trip it exactly.

    ``node``: the current node (the one waiting, or where it ended).
    ``attempt``: misses (bad keys, timeouts) so far at the current node.
    ``attributes``: task attributes so far: everything collected and set.
    ``customer``: the looked-up customer's scalar fields, or None.
    ``path``: the nodes visited, in order (re-visits included).
    ``phase``: ``flow``, or ``survey`` after ``start_survey``.
    ``outcome``/``ended_at_node``: set once the session is done.
    ``started_at``: ISO 8601 UTC.
    ``origin_queue``: ``CallInfo.origin_queue``."""

    flow: str
    node: str
    language: str
    caller_id: str = ""
    dialed: str = ""
    ref: str = ""
    attempt: int = 0
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    customer: Mapping[str, AttributeValue] | None = None
    path: tuple[str, ...] = ()
    phase: Phase = "flow"
    outcome: Outcome | None = None
    reason: str = ""
    started_at: str = ""
    origin_queue: str = ""

    @property
    def customer_id(self) -> str | None:
        if self.customer is None or "id" not in self.customer:
            return None
        return str(self.customer["id"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "node": self.node,
            "language": self.language,
            "caller_id": self.caller_id,
            "dialed": self.dialed,
            "ref": self.ref,
            "attempt": self.attempt,
            "priority": self.priority,
            "skills": dict(self.skills),
            "attributes": dict(self.attributes),
            "customer": None if self.customer is None else dict(self.customer),
            "path": list(self.path),
            "phase": self.phase,
            "outcome": self.outcome,
            "reason": self.reason,
            "started_at": self.started_at,
            "origin_queue": self.origin_queue,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any) -> Session:
        """Rebuild a session, checking every field's type (``SessionError`` names
        the first bad one). Whether it fits a flow is checked when it is fed."""
        if not isinstance(data, Mapping):
            raise SessionError("session: expected a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SessionError(f"session: unknown field {unknown[0]!r}")

        def text(key: str, default: str | None = None) -> str:
            value = data.get(key, default)
            if not isinstance(value, str):
                raise SessionError(f"session: {key}: expected a string")
            return value

        def integer(key: str) -> int:
            value = data.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool):
                raise SessionError(f"session: {key}: expected an integer")
            return value

        def scalars(key: str, value: Any) -> dict[str, AttributeValue]:
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str | int | float | bool)
                for k, v in value.items()
            ):
                raise SessionError(f"session: {key}: expected an object of scalars")
            return dict(value)

        skills = data.get("skills", {})
        if not isinstance(skills, Mapping) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in skills.items()
        ):
            raise SessionError("session: skills: expected an object of integers")
        customer_raw = data.get("customer")
        path = data.get("path", [])
        if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
            raise SessionError("session: path: expected a list of node ids")
        phase = data.get("phase", "flow")
        if phase not in ("flow", "survey"):
            raise SessionError("session: phase: expected 'flow' or 'survey'")
        outcome = data.get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            raise SessionError("session: outcome: expected one of " + ", ".join(OUTCOMES))
        attempt = integer("attempt")
        if attempt < 0:
            raise SessionError("session: attempt: expected an integer >= 0")
        return cls(
            flow=text("flow"),
            node=text("node"),
            language=text("language"),
            caller_id=text("caller_id", ""),
            dialed=text("dialed", ""),
            ref=text("ref", ""),
            attempt=attempt,
            priority=integer("priority"),
            skills=dict(skills),
            attributes=scalars("attributes", data.get("attributes", {})),
            customer=None if customer_raw is None else scalars("customer", customer_raw),
            path=tuple(path),
            phase=phase,
            outcome=outcome,
            reason=text("reason", ""),
            started_at=text("started_at", ""),
            origin_queue=text("origin_queue", ""),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Session:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise SessionError("session: not valid JSON") from None
        return cls.from_dict(data)


@dataclass(frozen=True, slots=True)
class Step:
    """The interpreter's answer: perform ``actions`` in order, then ``wait``."""

    session: Session
    actions: tuple[Action, ...]
    wait: Wait

    @property
    def done(self) -> bool:
        return isinstance(self.wait, Done)


CARD_MASK_MIN_DIGITS: Final = 12
"""A secret of at least this many digits keeps its last four in the mask."""


def mask_secret(digits: str) -> str:
    """What a ``secret`` collect keeps: ``************1111`` for a card number
    (12 digits or more), only ``*`` for anything shorter."""
    if len(digits) >= CARD_MASK_MIN_DIGITS:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "*" * len(digits)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of card numbers; ``digits`` are 0-9 only."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return len(digits) > 1 and total % 10 == 0


def utc_iso(now: datetime) -> str:
    """``now`` (aware; naive means UTC) as ISO 8601 UTC, to the second."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).replace(microsecond=0).isoformat()
