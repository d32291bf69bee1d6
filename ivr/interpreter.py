"""The pure IVR interpreter: a flow, a session and one input in; the next step out.

No I/O, no clock of its own (``now`` is an argument: an aware datetime, naive
meaning UTC), no state but the immutable ``Session`` it returns. Adapters
(FastAGI, Twilio) own the wire; this module decides.

API
---
``start(flow, call, now) -> Step``
    A new session at ``flow.start``. The first actions include
    ``SetLanguage(flow.language)``.
``feed(flow, session, event, now) -> Step``
    ``event`` is what the previous step's ``wait`` asked for, or ``HungUp``
    (accepted in every wait):

    ==================  =========================================================
    wait                accepted inputs
    ==================  =========================================================
    ``GatherDigits``    ``Digits`` (garbage included), ``NoInput``, ``HungUp``
    ``AwaitLookup``     ``LookupResult``, ``HungUp``
    ``AwaitRecording``  ``RecordingDone``, ``HungUp``
    ``AwaitTransfer``   ``TransferCompleted``, ``TransferFailed``, ``HungUp``
    ``Done``            nothing: the session is over
    ==================  =========================================================

``start_survey(flow, origin, now) -> Step``
    The post-call survey: ``origin`` is the session that ended ``queued`` with
    ``Enqueue(survey=True)`` (its language, customer and attributes carry
    over; ``path`` starts afresh), or a ``CallInfo`` when the adapter kept no
    session. The new session has ``phase == "survey"``.

Every call returns ``Step(session, actions, wait)``: perform ``actions`` in
order (``Say``, ``SetLanguage``, ``Enqueue``, ``Voicemail``, ``Callback``,
``SurveyScore``, ``PauseRecording``, ``ResumeRecording``, ``Hangup``), then do
what ``wait`` says (``GatherDigits``, ``AwaitLookup``, ``AwaitRecording``,
``AwaitTransfer``) and feed the result, or
stop at ``Done(outcome, node, reason)``. Outcomes: ``queued``, ``transferred``,
``voicemail``, ``callback``, ``completed``, ``abandoned`` (the caller hung up;
``node`` is where), ``failed`` (the flow could not go on: no callback number,
a failed transfer without a ``failure`` branch, ``max_steps`` reached).

Caller input never raises: a wrong key, too many or too few digits, an
impossible date, a timeout or a hang-up each have an answer (the node's
``invalid``/``no_input`` prompt and a re-prompt, then after ``retries`` the
``failure`` branch). ``SessionError`` means the adapter erred: an input the
wait does not take, a finished session, a session of another flow or whose
node the flow lacks. The session passed in is never changed.

Task attributes (``TaskRequest.attributes``): every ``var`` collected (menu
choices, digits, ISO dates, survey scores), every attribute set by ``set`` or
copied from the customer by ``lookup.copy``, plus ``caller_id`` and ``dialed``
(when known) and ``ivr_flow``. A ``secret`` collect keeps only its mask
(``ivr.model.mask_secret``): the digits typed are in no session and no task.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from ivr.errors import SessionError
from ivr.model import (
    Action,
    AwaitLookup,
    AwaitRecording,
    AwaitTransfer,
    BranchNode,
    Callback,
    CallbackNode,
    CallInfo,
    CollectNode,
    Digits,
    Done,
    Enqueue,
    Flow,
    GatherDigits,
    Hangup,
    HangupNode,
    HoursNode,
    HungUp,
    Input,
    LookupNode,
    LookupResult,
    MenuNode,
    NoInput,
    Outcome,
    PauseRecording,
    Prompt,
    QueueNode,
    RecordingDone,
    RecordingNode,
    ResumeRecording,
    Say,
    SayNode,
    Session,
    SetLanguage,
    SetNode,
    Step,
    SurveyNode,
    SurveyScore,
    TaskRequest,
    TransferCompleted,
    TransferFailed,
    TransferNode,
    Voicemail,
    VoicemailNode,
    luhn_ok,
    mask_secret,
    utc_iso,
)
from routing.model import AttributeValue

__all__ = ["feed", "render", "start", "start_survey", "usable_number"]

_NUMBER: Final = re.compile(r"\+?[0-9]{3,20}")
_NUMBER_NOISE: Final = re.compile(r"[\s().-]")
_DIGITS: Final = frozenset("0123456789")
MAX_AGE_YEARS: Final = 130


def usable_number(raw: str) -> str | None:
    """A number that can be dialled back (``+`` and 3-20 digits once spaces,
    dots, dashes and brackets are dropped), or None (empty, ``anonymous``...)."""
    number = _NUMBER_NOISE.sub("", raw)
    return number if _NUMBER.fullmatch(number) else None


def render(flow: Flow, prompt: Prompt, language: str) -> Say:
    """``prompt`` in ``language`` (the flow's default language if the prompt has
    no text for it; a validated flow always has)."""
    text = prompt.text.get(language)
    if text is None:
        language = flow.language
        text = prompt.text.get(language, "")
    url = prompt.url.replace("{language}", language) if prompt.url else None
    return Say(
        text=text, language=language, locale=flow.locale(language), sound=prompt.sound, url=url
    )


# -- public ---------------------------------------------------------------------


def start(flow: Flow, call: CallInfo, now: datetime) -> Step:
    """A new session for ``call`` at the flow's start node, in the language
    the caller chose earlier on the call if the flow has it."""
    language = call.language if call.language in flow.languages else flow.language
    session = Session(
        flow=flow.name,
        node=flow.start,
        language=language,
        caller_id=call.caller_id,
        dialed=call.dialed,
        ref=call.ref,
        started_at=utc_iso(now),
        origin_queue=call.origin_queue,
    )
    actions: list[Action] = [SetLanguage(language, flow.locale(language))]
    return _enter(flow, session, flow.start, actions, now)


def start_survey(flow: Flow, origin: Session | CallInfo, now: datetime) -> Step:
    """The flow's post-call survey for a session that ended ``queued`` (or a call)."""
    if flow.survey is None:
        raise SessionError(f"flow {flow.name}: has no survey")
    if isinstance(origin, CallInfo):
        session = Session(
            flow=flow.name,
            node=flow.survey,
            language=flow.language,
            caller_id=origin.caller_id,
            dialed=origin.dialed,
            ref=origin.ref,
            started_at=utc_iso(now),
            phase="survey",
        )
    else:
        if origin.flow != flow.name:
            raise SessionError(f"flow {flow.name}: the session belongs to flow {origin.flow!r}")
        if origin.phase != "flow" or origin.outcome != "queued":
            raise SessionError(
                f"flow {flow.name}: a survey follows a session that ended queued, "
                f"not one in phase {origin.phase!r} with outcome {origin.outcome!r}"
            )
        language = origin.language if origin.language in flow.languages else flow.language
        session = dataclasses.replace(
            origin,
            node=flow.survey,
            language=language,
            attempt=0,
            path=(),
            phase="survey",
            outcome=None,
            reason="",
        )
    actions: list[Action] = [SetLanguage(session.language, flow.locale(session.language))]
    return _enter(flow, session, flow.survey, actions, now)


def feed(flow: Flow, session: Session, event: Input, now: datetime) -> Step:
    """The next step after ``event``. Raises ``SessionError`` only for adapter
    mistakes (see the module docstring)."""
    if session.flow != flow.name:
        raise SessionError(f"flow {flow.name}: the session belongs to flow {session.flow!r}")
    if session.outcome is not None:
        raise SessionError(
            f"flow {flow.name}, node {session.node}: the session already ended "
            f"({session.outcome}); it takes no more input"
        )
    node = flow.nodes.get(session.node)
    if node is None:
        raise SessionError(
            f"flow {flow.name}: the session is at node {session.node!r}, "
            "which the flow does not have"
        )
    if isinstance(event, HungUp):
        return _end(session, [], "abandoned", node.id, hangup=False)
    if isinstance(node, MenuNode | CollectNode | SurveyNode):
        if isinstance(event, NoInput):
            return _miss(flow, session, node, "no_input", now)
        if isinstance(event, Digits) and isinstance(event.digits, str):
            if isinstance(node, MenuNode):
                return _menu(flow, session, node, event.digits, now)
            if isinstance(node, CollectNode):
                return _collect(flow, session, node, event.digits, now)
            return _survey(flow, session, node, event.digits, now)
        expected = "Digits, NoInput or HungUp"
    elif isinstance(node, LookupNode):
        if isinstance(event, LookupResult):
            return _lookup_result(flow, session, node, event.customer, now)
        expected = "LookupResult or HungUp"
    elif isinstance(node, VoicemailNode):
        if isinstance(event, RecordingDone) and isinstance(event.recording, str):
            return _recording(flow, session, node, event)
        expected = "RecordingDone or HungUp"
    elif isinstance(node, TransferNode):
        if isinstance(event, TransferCompleted):
            return _end(session, [], "transferred", node.id, hangup=True)
        if isinstance(event, TransferFailed):
            if node.failure is not None:
                return _enter(flow, session, node.failure, [], now)
            reason = f"the transfer to {node.number} failed"
            if isinstance(event.reason, str) and event.reason:
                reason += f" ({event.reason[:100]})"
            return _end(session, [], "failed", node.id, hangup=True, reason=reason)
        expected = "TransferCompleted, TransferFailed or HungUp"
    else:
        raise SessionError(
            f"flow {flow.name}, node {node.id}: a {node.kind} node does not wait for input"
        )
    raise SessionError(
        f"flow {flow.name}, node {node.id}: a {node.kind} node waits for {expected}, "
        f"got {type(event).__name__}"
    )


# -- walking --------------------------------------------------------------------


def _end(
    session: Session,
    actions: list[Action],
    outcome: Outcome,
    node: str,
    *,
    hangup: bool,
    reason: str = "",
) -> Step:
    if hangup:
        actions.append(Hangup())
    session = dataclasses.replace(session, node=node, outcome=outcome, reason=reason)
    return Step(session, tuple(actions), Done(outcome, node, reason))


def _enter(
    flow: Flow, session: Session, node_id: str, actions: list[Action], now: datetime
) -> Step:
    """Walk from ``node_id`` through nodes that need nothing until one waits or ends."""
    hops = 0
    while True:
        here = session.node
        if len(session.path) >= flow.max_steps:
            reason = f"the call went through {flow.max_steps} nodes (max_steps)"
            return _end(session, actions, "failed", here, hangup=True, reason=reason)
        node = flow.nodes.get(node_id)
        hops += 1
        if node is None or hops > len(flow.nodes) + 1:
            # Only an unvalidated flow gets here (validate refuses both).
            reason = f"no node {node_id!r}" if node is None else "a loop that never waits for input"
            return _end(session, actions, "failed", here, hangup=True, reason=reason)
        session = dataclasses.replace(
            session, node=node_id, attempt=0, path=(*session.path, node_id)
        )
        language = session.language
        if isinstance(node, SayNode):
            actions.append(render(flow, node.prompt, language))
            node_id = node.next
        elif isinstance(node, SetNode):
            session = _apply_set(flow, session, node, actions)
            node_id = node.next
        elif isinstance(node, RecordingNode):
            actions.append(PauseRecording() if node.action == "pause" else ResumeRecording())
            node_id = node.next
        elif isinstance(node, BranchNode):
            view = _TaskView(session)
            node_id = next(
                (case.next for case in node.cases if case.expression.matches(None, view)),
                node.otherwise,
            )
        elif isinstance(node, HoursNode):
            status = node.schedule.status(now)
            if status == "open":
                node_id = node.open
            elif status == "holiday" and node.holiday is not None:
                node_id = node.holiday
            else:
                node_id = node.closed
        elif isinstance(node, LookupNode):
            value = _lookup_value(session, node)
            if value is None:
                node_id = node.not_found
                continue
            return Step(session, tuple(actions), AwaitLookup(node.by, value))
        elif isinstance(node, MenuNode | CollectNode | SurveyNode):
            return Step(session, tuple(actions), _gather(flow, session, node, ()))
        elif isinstance(node, QueueNode):
            if node.prompt is not None:
                actions.append(render(flow, node.prompt, language))
            queue = session.origin_queue if node.origin and session.origin_queue else node.queue
            task = _task(flow, session, queue, node.priority, node.skills, node.attributes)
            actions.append(Enqueue(task, survey=node.survey and flow.survey is not None))
            return _end(session, actions, "queued", node.id, hangup=False)
        elif isinstance(node, VoicemailNode):
            wait = AwaitRecording(
                prompts=(render(flow, node.prompt, language),),
                max_seconds=node.max_seconds,
                finish_on_key=node.finish_on_key,
            )
            return Step(session, tuple(actions), wait)
        elif isinstance(node, CallbackNode):
            raw = (
                session.caller_id
                if node.number_var is None
                else str(session.attributes.get(node.number_var, ""))
            )
            number = usable_number(raw)
            if number is None:
                if node.no_number is not None:
                    node_id = node.no_number
                    continue
                return _end(
                    session,
                    actions,
                    "failed",
                    node.id,
                    hangup=True,
                    reason="no number to call back",
                )
            actions.append(Callback(_task(flow, session, node.queue, None, {}, {}), number))
            if node.prompt is not None:
                actions.append(render(flow, node.prompt, language))
            return _end(session, actions, "callback", node.id, hangup=True)
        elif isinstance(node, TransferNode):
            if node.prompt is not None:
                actions.append(render(flow, node.prompt, language))
            return Step(session, tuple(actions), AwaitTransfer(node.number, node.timeout))
        else:  # HangupNode
            assert isinstance(node, HangupNode)
            if node.prompt is not None:
                actions.append(render(flow, node.prompt, language))
            return _end(session, actions, "completed", node.id, hangup=True)


def _gather(
    flow: Flow,
    session: Session,
    node: MenuNode | CollectNode | SurveyNode,
    before: tuple[Say, ...],
) -> GatherDigits:
    prompts = (*before, render(flow, node.prompt, session.language))
    if isinstance(node, CollectNode):
        return GatherDigits(
            prompts=prompts,
            max_digits=node.max_digits,
            timeout=node.timeout,
            finish_on_key=node.finish_on_key,
            min_digits=node.min_digits,
        )
    if isinstance(node, MenuNode):
        longest = max(len(key) for key in node.choices)
        return GatherDigits(prompts, max_digits=longest, timeout=node.timeout, finish_on_key="")
    return GatherDigits(prompts, max_digits=1, timeout=node.timeout, finish_on_key="")


def _miss(
    flow: Flow,
    session: Session,
    node: MenuNode | CollectNode | SurveyNode,
    why: str,
    now: datetime,
) -> Step:
    """A bad key or a timeout: re-prompt, or after ``retries`` re-prompts, fail."""
    prompt = node.no_input if why == "no_input" else node.invalid
    said = () if prompt is None else (render(flow, prompt, session.language),)
    attempt = session.attempt + 1
    if attempt > node.retries:
        return _enter(flow, session, node.failure, list(said), now)
    session = dataclasses.replace(session, attempt=attempt)
    return Step(session, (), _gather(flow, session, node, said))


def _menu(flow: Flow, session: Session, node: MenuNode, keys: str, now: datetime) -> Step:
    keys = keys.strip()
    if not keys:
        return _miss(flow, session, node, "no_input", now)
    choice = node.choices.get(keys)
    if choice is None:
        return _miss(flow, session, node, "invalid", now)
    if node.var is not None:
        session = _with_attribute(session, node.var, choice.value)
    return _enter(flow, session, choice.next, [], now)


def _collect(flow: Flow, session: Session, node: CollectNode, keys: str, now: datetime) -> Step:
    keys = keys.strip()
    if node.finish_on_key and keys.endswith(node.finish_on_key):
        keys = keys[: -len(node.finish_on_key)]
    if not keys:
        return _miss(flow, session, node, "no_input", now)
    if not set(keys) <= _DIGITS or not node.min_digits <= len(keys) <= node.max_digits:
        return _miss(flow, session, node, "invalid", now)
    if node.check == "luhn" and not luhn_ok(keys):
        return _miss(flow, session, node, "invalid", now)
    value = keys
    if node.format == "date":
        day = _parse_date(keys, node.date_order, _local_today(flow, now))
        if day is None:
            return _miss(flow, session, node, "invalid", now)
        value = day.isoformat()
    if node.secret:
        value = mask_secret(keys)
    session = _with_attribute(session, node.var, value)
    return _enter(flow, session, node.next, [], now)


def _survey(flow: Flow, session: Session, node: SurveyNode, keys: str, now: datetime) -> Step:
    keys = keys.strip()
    if not keys:
        return _miss(flow, session, node, "no_input", now)
    if len(keys) != 1 or keys not in _DIGITS or not 1 <= int(keys) <= node.scale:
        return _miss(flow, session, node, "invalid", now)
    score = int(keys)
    session = _with_attribute(session, node.var, score)
    return _enter(flow, session, node.next, [SurveyScore(score, node.scale)], now)


def _lookup_value(session: Session, node: LookupNode) -> str | None:
    if node.by == "caller_id":
        return usable_number(session.caller_id)
    raw = session.attributes.get(node.var or "", "")
    value = str(raw).strip() if not isinstance(raw, bool) else ""
    return value or None


def _lookup_result(
    flow: Flow,
    session: Session,
    node: LookupNode,
    customer: Mapping[str, Any] | None,
    now: datetime,
) -> Step:
    if customer is None:
        return _enter(flow, session, node.not_found, [], now)
    if not isinstance(customer, Mapping) or customer.get("id") in (None, ""):
        raise SessionError(
            f"flow {flow.name}, node {node.id}: LookupResult.customer must be None or a "
            "mapping with an 'id'"
        )
    summary: dict[str, AttributeValue] = {
        str(k): v
        for k, v in customer.items()
        if isinstance(k, str) and isinstance(v, str | int | float | bool)
    }
    if isinstance(customer["id"], int | str) and not isinstance(customer["id"], bool):
        summary["id"] = str(customer["id"])
    attributes = dict(session.attributes)
    for key in node.copy:
        if key in summary:
            attributes[key] = summary[key]
    session = dataclasses.replace(session, customer=summary, attributes=attributes)
    return _enter(flow, session, node.found, [], now)


def _recording(flow: Flow, session: Session, node: VoicemailNode, event: RecordingDone) -> Step:
    seconds = event.seconds if isinstance(event.seconds, int | float) else 0.0
    if not event.recording or not seconds >= 1:
        if event.hung_up:
            return _end(session, [], "abandoned", node.id, hangup=False)
        return _end(session, [], "completed", node.id, hangup=True, reason="no message recorded")
    number = usable_number(session.caller_id) or ""
    task = _task(flow, session, node.queue, None, {}, {})
    actions: list[Action] = [Voicemail(task, event.recording, float(seconds), number)]
    if event.hung_up:
        return _end(session, actions, "voicemail", node.id, hangup=False)
    if node.goodbye is not None:
        actions.append(render(flow, node.goodbye, session.language))
    return _end(session, actions, "voicemail", node.id, hangup=True)


# -- helpers --------------------------------------------------------------------


def _with_attribute(session: Session, key: str, value: AttributeValue) -> Session:
    return dataclasses.replace(session, attributes={**session.attributes, key: value})


def _apply_set(flow: Flow, session: Session, node: SetNode, actions: list[Action]) -> Session:
    changes: dict[str, Any] = {}
    if node.language is not None and node.language != session.language:
        changes["language"] = node.language
        actions.append(SetLanguage(node.language, flow.locale(node.language)))
    if node.priority is not None:
        changes["priority"] = node.priority
    if node.skills:
        changes["skills"] = {**session.skills, **node.skills}
    if node.attributes:
        changes["attributes"] = {**session.attributes, **node.attributes}
    return dataclasses.replace(session, **changes) if changes else session


def _task(
    flow: Flow,
    session: Session,
    queue: str,
    priority: int | None,
    skills: Mapping[str, int],
    attributes: Mapping[str, AttributeValue],
) -> TaskRequest:
    merged: dict[str, AttributeValue] = {**session.attributes, **attributes}
    if session.caller_id:
        merged["caller_id"] = session.caller_id
    if session.dialed:
        merged["dialed"] = session.dialed
    merged["ivr_flow"] = flow.name
    return TaskRequest(
        queue=queue,
        priority=session.priority if priority is None else priority,
        language=session.language,
        skills={**session.skills, **skills},
        customer_id=session.customer_id,
        attributes=merged,
    )


def _local_today(flow: Flow, now: datetime) -> date:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(ZoneInfo(flow.timezone)).date()


def _parse_date(keys: str, order: str, today: date) -> date | None:
    if len(keys) != 8:
        return None
    parts = {"DMY": (4, 2, 0), "MDY": (4, 0, 2), "YMD": (0, 4, 6)}[order]
    year_at, month_at, day_at = parts
    year = int(keys[year_at : year_at + 4])
    month = int(keys[month_at : month_at + 2])
    day = int(keys[day_at : day_at + 2])
    try:
        value = date(year, month, day)
    except ValueError:
        return None
    if value > today or today.year - value.year > MAX_AGE_YEARS:
        return None
    return value


@dataclass(frozen=True, slots=True)
class _TaskView:
    """The session as the task it is building, for branch conditions
    (``routing.expressions.TaskLike``)."""

    session: Session

    @property
    def id(self) -> str:
        return self.session.ref

    @property
    def channel(self) -> str:
        return "voice"

    @property
    def queue_id(self) -> str:
        return ""

    @property
    def priority(self) -> int:
        return self.session.priority

    @property
    def customer_id(self) -> str | None:
        return self.session.customer_id

    @property
    def language(self) -> str | None:
        return self.session.language

    @property
    def required_skills(self) -> Mapping[str, int]:
        return self.session.skills

    @property
    def attributes(self) -> Mapping[str, AttributeValue]:
        return self.session.attributes
