"""The Twilio edge of the IVR: voice webhooks in, TwiML out.

Routes (public paths: the ``X-Twilio-Signature`` is the credential, checked by
``cti.twilio_webhooks.verified_form`` against the public URL; an unsigned or
forged request gets 403, an audit row, and changes nothing):

``POST /twilio/voice?flow=<name>``
    The call's first webhook (``CallSid``, ``From``, ``To``): starts the flow.
    Every later step of the call comes back here through the URLs this module
    writes into the TwiML (``action`` of ``<Gather>``, ``<Record>``, ``<Dial>``,
    ``<Enqueue>``), which carry ``on=<event>`` and ``at=<position>``.
``POST /twilio/status``
    The call's status callbacks (``CallStatus`` ringing, in-progress,
    completed ... with ``CallDuration``).
``POST /twilio/wait``
    ``<Enqueue waitUrl>``: what a queued caller hears (``hold_music_url``).

State between webhooks: the interpreter's ``Session`` lives in the store
(``ivr_sessions``, edge ``twilio``, ``call_ref`` = CallSid; ``ivr.repository``),
saved after every step before the TwiML goes out, so a restart loses nothing.
The URLs carry only the position the TwiML was written for (``at``: phase,
nodes visited, misses at the node); Twilio signs the whole URL, so it cannot
be altered. A webhook whose position is not the stored one (a replay, a
retry, one out of order) feeds nothing: it gets the TwiML of where the call
stands now (the current ``<Gather>``/``<Record>``/``<Dial>``, ``<Enqueue>`` again
for a queued call, else ``<Hangup/>``) and changes nothing. Webhooks of one
call are handled one at a time (a lock per CallSid; one process: several
Callwright nodes behind one Twilio number need a sticky proxy by CallSid, as
``IvrRepository.save`` does not compare-and-set).

Interpreter steps to TwiML:

* ``Say`` -> ``<Say language=...>`` (``en``/``fr``... to a Twilio language code:
  the prompt's locale when Twilio speaks it, else ``TWILIO_LANGUAGES``), or
  ``<Play>`` when the prompt has an audio URL.
* ``GatherDigits`` -> ``<Gather input="dtmf" numDigits timeout finishOnKey
  action actionOnEmptyResult>`` around its prompts, then a ``<Redirect>`` to the
  same action (a timeout on an older Twilio that skips the empty result);
  ``Digits`` comes back as ``Digits``, no ``Digits`` as ``NoInput``.
* ``AwaitLookup`` never reaches Twilio: the customer is looked up in the CRM
  during the same webhook and the walk goes on.
* ``AwaitRecording`` -> the prompts, ``<Record maxLength finishOnKey playBeep
  action recordingStatusCallback=/twilio/recording-status>``, then a
  ``<Redirect on=norecord>`` (Twilio skips the action when nothing was said).
  The action's ``RecordingUrl`` and ``RecordingDuration`` are the voicemail:
  the runner makes it an interaction and a callback task; that interaction
  then gets ``call_id`` = CallSid, so the ``completed`` recording callback
  (``recordings.twilio``, sent once the file is ready) finds it. One that
  arrives before the action was handled gets 404 (Twilio's debugger logs it;
  the recording URL is on the task anyway).
* ``AwaitTransfer`` -> ``<Dial timeout action><Number>``; ``DialCallStatus``
  completed/answered is ``TransferCompleted``, anything else ``TransferFailed``.
* ``Enqueue`` -> an interaction (``call_id`` = CallSid) and a routing task in
  our router (channel ``voice``, the queue, priority, language, skills,
  customer and every attribute of the ``TaskRequest``, plus ``caller_number``
  and ``ivr_session`` as voice routing gives a FastAGI caller's task; stored,
  linked on the ``ivr_sessions`` row), then ``<Enqueue waitUrl action>queue id</Enqueue>``:
  the caller waits in the Twilio queue of the same name while the router
  offers the task on the agent desk (offer and screen-pop as for any call).
* ``Voicemail`` / ``Callback`` / ``SurveyScore``: done by the runner (a
  routing task on channel ``callback`` with the recording and the number to
  call back; the score on the survey's ``ivr_sessions`` row).
* ``Hangup`` -> ``<Hangup/>``.
* ``PauseRecording`` / ``ResumeRecording`` (a flow's ``recording`` node, e.g.
  around a card number): nothing rendered, logged at info, and the flow goes
  on. Pausing a Twilio call recording needs Twilio's REST API (the call's
  Recording resource, ``Status=paused``), which cannot run offline and is not
  built: a Twilio call recorded by Twilio is NOT paused by the payment flow.
  (A ``secret`` collect still keeps the digits out of the session, the task
  and the logs; Twilio itself receives them as ``Digits``.)

Connecting the agent (what is built, what is not): the router reserves an
agent for the Twilio task and the desk shows the offer and the customer, as
for an Asterisk call; the task is completed when Twilio reports the caller
left the queue after being bridged (``<Enqueue action>``, ``QueueResult``
``bridged``) or canceled when the caller hangs up in the queue. Bridging the
agent's phone to the Twilio queue needs Twilio's REST API (create a call to
the agent's device whose TwiML is ``<Dial><Queue>queue id</Queue></Dial>``, or
redirect the queued call to ``<Dial>``), which cannot run offline and is not
built: voice routing logs that it has no call to connect for such a task.
After a bridged call ends with the caller still on the line and the flow
wants its survey, the survey runs as a new ``ivr_sessions`` row (phase
``survey``, same interaction).

Status callbacks: the call's record in ``call_records`` (``id`` = CallSid,
``state`` = CallStatus, ``answered_at`` at in-progress, ``ended_at`` =
``answered_at + CallDuration``; an older callback never overwrites a newer
one), the interaction ends (``ended_at``); a call ending (completed, busy,
no-answer, canceled, failed) while in the IVR stores its session
``abandoned`` at its node, and while queued cancels (waiting) or completes
(assigned) its routing task.

Bad input answers: a missing or malformed field -> 400 naming it, nothing
stored; an unknown flow -> TwiML apologising and hanging up (and a logged
error); a call we have no session for -> the same apology.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlencode

from aiohttp import web
from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]

from agent_desk.policy import Audit  # the shape of agent_desk.audit.AuditLog.record
from crm.repository import InteractionRepository
from cti.persistence import CallRecord
from cti.twilio_webhooks import InvalidSignature, verified_form
from ivr.errors import SessionError
from ivr.interpreter import render
from ivr.model import (
    Action,
    AwaitLookup,
    AwaitRecording,
    AwaitTransfer,
    CallInfo,
    CollectNode,
    Digits,
    Enqueue,
    Flow,
    GatherDigits,
    Hangup,
    HungUp,
    Input,
    MenuNode,
    NoInput,
    PauseRecording,
    RecordingDone,
    ResumeRecording,
    Say,
    Session,
    SurveyNode,
    TaskRequest,
    TransferCompleted,
    TransferFailed,
    TransferNode,
    Voicemail,
    VoicemailNode,
    Wait,
)
from ivr.repository import IvrSessionRow
from ivr.runner import IvrRunner, Turn, UnknownFlow
from routing import model as routing_model

__all__ = [
    "PATH_STATUS",
    "PATH_VOICE",
    "PATH_WAIT",
    "TWILIO_LANGUAGES",
    "Links",
    "TwilioVoice",
    "position",
    "say_language",
    "twiml",
]

log = logging.getLogger(__name__)

PATH_VOICE: Final = "/twilio/voice"
PATH_STATUS: Final = "/twilio/status"
PATH_WAIT: Final = "/twilio/wait"
PATH_RECORDING_STATUS: Final = "/twilio/recording-status"  # recordings.twilio
EDGE: Final = "twilio"
DEFAULT_HOLD_MUSIC: Final = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"

TWILIO_LANGUAGES: Final[Mapping[str, str]] = {
    "en": "en-US",
    "fr": "fr-FR",
    "de": "de-DE",
    "es": "es-ES",
    "it": "it-IT",
    "nl": "nl-NL",
    "pt": "pt-BR",
    "ja": "ja-JP",
}
"""A flow's language code -> the ``<Say language>`` Twilio speaks for it, when
the prompt's locale is not one Twilio knows."""
# The locales Twilio's basic <Say> voices speak (its documented language list).
TWILIO_LOCALES: Final = frozenset(
    {
        "da-DK", "de-DE", "en-AU", "en-CA", "en-GB", "en-IN", "en-US", "ca-ES",
        "es-ES", "es-MX", "fi-FI", "fr-CA", "fr-FR", "it-IT", "ja-JP", "ko-KR",
        "nb-NO", "nl-NL", "pl-PL", "pt-BR", "pt-PT", "ru-RU", "sv-SE",
        "zh-CN", "zh-HK", "zh-TW",
    }
)  # fmt: skip

Event = Literal["gather", "record", "norecord", "dial", "queue"]
EVENTS: Final[tuple[Event, ...]] = ("gather", "record", "norecord", "dial", "queue")
ENDED: Final = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})
CALL_STATUSES: Final = frozenset({"queued", "initiated", "ringing", "in-progress", *ENDED})
_CALL_SID: Final = re.compile(r"CA[0-9a-fA-F]{32}")
_POSITION: Final = re.compile(r"(flow|survey)-([0-9]{1,4})-([0-9]{1,3})")
APOLOGY: Final = "Sorry, this service is not available right now. Please call again later."


def say_language(say: Say) -> str:
    """The ``<Say language>`` for a prompt."""
    if say.locale in TWILIO_LOCALES:
        return say.locale
    return TWILIO_LANGUAGES.get(say.language, "en-US")


def position(session: Session) -> str:
    """Where a session stands: it changes with every input fed (a node entered
    grows ``path``, a miss raises ``attempt``), so a webhook written for an
    older position is recognised as stale."""
    return f"{session.phase}-{len(session.path)}-{session.attempt}"


@dataclasses.dataclass(frozen=True)
class Links:
    """The URLs the TwiML points back at (absolute paths: Twilio resolves them
    against the URL it called, so the public host is kept)."""

    flow: str
    at: str
    hold: str = PATH_WAIT
    recording_status: str = PATH_RECORDING_STATUS

    def next(self, event: Event) -> str:
        return PATH_VOICE + "?" + urlencode({"flow": self.flow, "on": event, "at": self.at})


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def _speak(verb: Any, say: Say) -> None:
    if say.url:
        verb.play(say.url)
    else:
        verb.say(say.text, language=say_language(say))


def twiml(actions: Sequence[Action], wait: Wait, links: Links) -> VoiceResponse:
    """The TwiML for one step: its actions in order, then its wait (a
    ``AwaitLookup`` is never rendered: resolve it first)."""
    response = VoiceResponse()
    for action in actions:
        if isinstance(action, Say):
            _speak(response, action)
        elif isinstance(action, Enqueue):
            response.enqueue(
                action.task.queue,
                wait_url=links.hold,
                wait_url_method="POST",
                action=links.next("queue"),
                method="POST",
            )
        elif isinstance(action, Hangup):
            response.hangup()
        elif isinstance(action, PauseRecording | ResumeRecording):
            # Twilio's REST API would do it (see the module docstring): not built.
            log.info(
                "Twilio IVR: %s not done: a Twilio recording is paused through "
                "Twilio's REST API, which Callwright does not call",
                type(action).__name__,
            )
        # SetLanguage: the next Say carries it; Voicemail, Callback and
        # SurveyScore are stored, not played.
    if isinstance(wait, GatherDigits):
        gather = response.gather(
            input="dtmf",
            num_digits=wait.max_digits,
            timeout=_seconds(wait.timeout),
            finish_on_key=wait.finish_on_key,
            action=links.next("gather"),
            method="POST",
            action_on_empty_result=True,
        )
        for say in wait.prompts:
            _speak(gather, say)
        response.redirect(links.next("gather"), method="POST")
    elif isinstance(wait, AwaitRecording):
        for say in wait.prompts:
            _speak(response, say)
        response.record(
            max_length=wait.max_seconds,
            finish_on_key=wait.finish_on_key,
            play_beep=True,
            action=links.next("record"),
            method="POST",
            recording_status_callback=links.recording_status,
            recording_status_callback_method="POST",
            recording_status_callback_event="completed",
        )
        response.redirect(links.next("norecord"), method="POST")
    elif isinstance(wait, AwaitTransfer):
        dial = response.dial(timeout=wait.timeout, action=links.next("dial"), method="POST")
        dial.number(wait.number)
    elif isinstance(wait, AwaitLookup):
        raise ValueError("an AwaitLookup is resolved before rendering TwiML")
    return response


def apology() -> VoiceResponse:
    response = VoiceResponse()
    response.say(APOLOGY, language="en-US")
    response.hangup()
    return response


# -- the shell's collaborators --------------------------------------------------


class TwilioSettings(Protocol):
    """``callwright.config.TwilioConfig``."""

    @property
    def public_url(self) -> str: ...

    @property
    def trust_proxy(self) -> bool: ...


class CallRecords(Protocol):
    """``cti.persistence.CallRecordRepository``."""

    async def get(self, call_id: str) -> CallRecord | None: ...

    async def upsert(self, record: CallRecord) -> None: ...


class Routing(Protocol):
    """``routing.service.RoutingService``."""

    async def submit(
        self,
        spec: routing_model.TaskSpec,
        *,
        interaction_id: int | None = None,
        call_id: str | None = None,
    ) -> list[routing_model.RoutingEvent]: ...

    async def cancel(
        self, task_id: str, reason: str = "caller_hangup"
    ) -> list[routing_model.RoutingEvent]: ...

    async def complete(self, task_id: str) -> list[routing_model.RoutingEvent]: ...


class BadRequest(ValueError):
    """A webhook missing a field or carrying a malformed one: 400, nothing changed."""


def task_spec(
    task: TaskRequest, task_id: str, channel: routing_model.Channel, session: str, caller: str
) -> routing_model.TaskSpec:
    """The routing task for an interpreter ``TaskRequest``, with the attributes
    voice routing gives a FastAGI caller's task (``routing.voice``): the
    ``ivr_session`` row id and the ``caller_number``."""
    attributes: dict[str, routing_model.AttributeValue] = {
        **task.attributes,
        "ivr_session": session,
    }
    if caller:
        attributes["caller_number"] = caller
    return routing_model.TaskSpec(
        id=task_id,
        queue_id=task.queue,
        channel=channel,
        priority=task.priority,
        customer_id=task.customer_id,
        language=task.language or None,
        required_skills=dict(task.skills),
        attributes=attributes,
    )


def _field(form: Mapping[str, str], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = form.get(name)
    if value is None or (pattern is not None and not value):
        raise BadRequest(f"{name}: required")
    if pattern is not None and not pattern.fullmatch(value):
        raise BadRequest(f"{name}: malformed")
    return value


def _timestamp(form: Mapping[str, str], now: datetime) -> datetime:
    raw = form.get("Timestamp")
    if not raw:
        return now
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        raise BadRequest("Timestamp: expected an RFC 2822 date") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _whole_seconds(form: Mapping[str, str], name: str) -> int | None:
    raw = form.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 7:
        raise BadRequest(f"{name}: expected whole seconds")
    return int(raw)


class TwilioVoice:
    """The Twilio voice webhooks (see the module docstring), driving ``runner``."""

    def __init__(
        self,
        runner: IvrRunner,
        *,
        interactions: InteractionRepository,
        call_records: CallRecords,
        routing: Callable[[], Routing | None],
        settings: TwilioSettings,
        auth_token: str,
        audit: Audit,
        hold_music_url: str = DEFAULT_HOLD_MUSIC,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.runner = runner
        self.sessions = runner.repo
        self.interactions = interactions
        self.call_records = call_records
        self.routing = routing
        self.settings = settings
        self._auth_token = auth_token
        self.audit = audit
        self.hold_music_url = hold_music_url or DEFAULT_HOLD_MUSIC
        self.clock = clock
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(PATH_VOICE, self.voice),
            web.post(PATH_STATUS, self.status),
            web.post(PATH_WAIT, self.wait),
        ]

    # -- HTTP ------------------------------------------------------------------

    async def voice(self, request: web.Request) -> web.StreamResponse:
        form = await self._verified(request, "twilio.voice")
        if form is None:
            return _forbidden()
        try:
            call_sid = _field(form, "CallSid", _CALL_SID)
            event = request.query.get("on")
            if event is not None and event not in EVENTS:
                raise BadRequest(f"on: expected one of {', '.join(EVENTS)}")
            at = request.query.get("at", "")
            if event is not None and not _POSITION.fullmatch(at):
                raise BadRequest("at: required (phase-nodes-misses)")
            flow_name = request.query.get("flow", "")
            if not flow_name:
                raise BadRequest("flow: required (POST /twilio/voice?flow=<name>)")
            if event is None:
                call = CallInfo(_field(form, "From"), _field(form, "To"), call_sid)
            event_input = None if event is None else _input(event, form)
            async with self._lock(call_sid):
                if event is None:
                    response = await self._start(flow_name, call)
                elif event == "queue":
                    response = await self._left_queue(call_sid, _field(form, "QueueResult"))
                else:
                    assert event_input is not None
                    response = await self._continue(call_sid, event, at, event_input)
        except BadRequest as exc:
            return web.json_response({"error": "invalid_request", "message": str(exc)}, status=400)
        except Exception:
            # The store or routing failed: the caller hears an apology, not
            # Twilio's "application error"; what was stored before stays.
            log.exception("Twilio voice webhook failed (%s)", request.query.get("on", "start"))
            return _xml(apology())
        return _xml(response)

    async def status(self, request: web.Request) -> web.StreamResponse:
        form = await self._verified(request, "twilio.status")
        if form is None:
            return _forbidden()
        try:
            call_sid = _field(form, "CallSid", _CALL_SID)
            status = _field(form, "CallStatus")
            if status not in CALL_STATUSES:
                raise BadRequest(f"CallStatus: expected one of {', '.join(sorted(CALL_STATUSES))}")
            when = _timestamp(form, self.clock())
            duration = _whole_seconds(form, "CallDuration")
        except BadRequest as exc:
            return web.json_response({"error": "invalid_request", "message": str(exc)}, status=400)
        async with self._lock(call_sid):
            await self._call_status(call_sid, status, when, duration, form)
        return web.json_response({"call_sid": call_sid, "status": status})

    async def wait(self, request: web.Request) -> web.StreamResponse:
        form = await self._verified(request, "twilio.wait")
        if form is None:
            return _forbidden()
        response = VoiceResponse()
        response.play(self.hold_music_url)
        return _xml(response)

    async def _verified(self, request: web.Request, action: str) -> Mapping[str, str] | None:
        try:
            return await verified_form(
                request,
                auth_token=self._auth_token,
                public_url=self.settings.public_url,
                trust_proxy=self.settings.trust_proxy,
            )
        except InvalidSignature as exc:
            reason = exc.reason
        try:
            await self.audit.record(
                actor=None,
                action=action,
                outcome="denied",
                detail={"reason": reason, "status": 403, "path": request.path},
                client_ip=request.remote,
            )
        except Exception:
            log.exception("audit row not written: refused Twilio webhook (%s)", reason)
        log.warning(
            "refused a Twilio webhook on %s from %s: %s", request.path, request.remote, reason
        )
        return None

    def _lock(self, call_sid: str) -> _CallLock:
        return _CallLock(self._locks, call_sid)

    # -- the call through the flow ---------------------------------------------

    async def _start(self, flow_name: str, call: CallInfo) -> VoiceResponse:
        existing = await self.sessions.latest_for_call_ref(call.ref)
        if existing is not None and existing.edge == EDGE:
            # Twilio asked again for the first document: where the call stands.
            return self._replay(existing)
        try:
            turn = await self.runner.begin(EDGE, flow_name, call)
        except UnknownFlow:
            log.error("Twilio call %s asked for unknown IVR flow %r", call.ref, flow_name[:64])
            return apology()
        return await self._render(call.ref, turn)

    async def _continue(
        self, call_sid: str, event: Event, at: str, event_input: Input
    ) -> VoiceResponse:
        phase = at.split("-", 1)[0]
        row = await self.sessions.latest_for_call_ref(call_sid, phase=phase)
        if row is None or row.edge != EDGE:
            log.error("Twilio webhook for call %s: no IVR session in phase %s", call_sid, phase)
            return apology()
        now = position(row.session)
        if row.outcome != "in_progress" or now != at:
            log.info("Twilio call %s: stale %s webhook (at %s, now %s)", call_sid, event, at, now)
            return self._replay(row)
        try:
            turn = await self.runner.feed_stored(row.id, event_input)
        except SessionError as exc:
            # The wait does not take this input (a dial webhook at a gather ...).
            log.warning("Twilio call %s: %s", call_sid, exc)
            return self._replay(row)
        if turn is None:
            return self._replay(row)
        return await self._render(call_sid, turn)

    async def _render(self, call_sid: str, turn: Turn) -> VoiceResponse:
        """Hand a queued call to routing, then the TwiML of the turn."""
        enqueue = turn.enqueue
        if enqueue is not None:
            await self._enqueue(call_sid, turn.session_id, turn.session, enqueue)
        if any(isinstance(a, Voicemail) for a in turn.actions):
            # The runner made the interaction: let the recording callbacks find it.
            row = await self.sessions.get(turn.session_id)
            if row is not None and row.interaction_id is not None:
                await self.interactions.update(row.interaction_id, call_id=call_sid)
        links = Links(flow=turn.flow.name, at=position(turn.session))
        return twiml(turn.actions, turn.wait, links)

    async def _enqueue(
        self, call_sid: str, row_id: str, session: Session, enqueue: Enqueue
    ) -> None:
        """The interaction and the routing task of a queued call (stored first,
        then the router offers it)."""
        task = enqueue.task
        customer = task.customer_id
        interaction = await self.interactions.create(
            channel="voice",
            direction="inbound",
            customer_id=int(customer) if customer is not None and customer.isdigit() else None,
            call_id=call_sid,
            queue=task.queue,
            started_at=self.clock(),
        )
        spec = task_spec(task, f"tw-{uuid.uuid4().hex[:12]}", "voice", row_id, session.caller_id)
        await self.sessions.link(
            row_id, call_id=call_sid, interaction_id=int(interaction.id), task_id=spec.id
        )
        routing = self.routing()
        if routing is None:
            log.error(
                "Twilio call %s: routing is not running; task %s not offered", call_sid, spec.id
            )
            return
        try:
            await routing.submit(spec, interaction_id=int(interaction.id), call_id=call_sid)
        except Exception:
            log.exception("Twilio call %s: task %s could not be routed", call_sid, spec.id)

    async def _left_queue(self, call_sid: str, result: str) -> VoiceResponse:
        """``<Enqueue action>``: the caller left the Twilio queue."""
        row = await self.sessions.latest_for_call_ref(call_sid, outcome="queued")
        if row is None or row.edge != EDGE:
            log.error("Twilio call %s left a queue it never entered here", call_sid)
            return apology()
        if row.task_id is not None:
            if result == "bridged":
                await self._end_task(row.task_id, assigned_only=True)
            else:
                await self._end_task(row.task_id)
        if row.interaction_id is not None and result != "bridged":
            await self.interactions.update(row.interaction_id, ended_at=self.clock())
        if result == "bridged":
            survey = await self.sessions.latest_for_call_ref(call_sid, phase="survey")
            if survey is not None and survey.edge == EDGE:
                return self._replay(survey)
            turn = await self.runner.begin_survey(EDGE, call_sid)
            if turn is not None:
                return await self._render(call_sid, turn)
        response = VoiceResponse()
        response.hangup()
        return response

    def _replay(self, row: IvrSessionRow) -> VoiceResponse:
        """The TwiML for where a stored session stands, changing nothing."""
        flow = self.runner.flows.get(row.flow)
        session = row.session
        if flow is None:
            return apology()
        links = Links(flow=flow.name, at=position(session))
        response = VoiceResponse()
        if row.outcome == "queued" and row.queue is not None:
            response.enqueue(
                row.queue,
                wait_url=links.hold,
                wait_url_method="POST",
                action=links.next("queue"),
                method="POST",
            )
            return response
        wait = _current_wait(flow, session) if row.outcome == "in_progress" else None
        if wait is None:
            response.hangup()
            return response
        return twiml((), wait, links)

    # -- status callbacks ------------------------------------------------------

    async def _call_status(
        self,
        call_sid: str,
        status: str,
        when: datetime,
        duration: int | None,
        form: Mapping[str, str],
    ) -> None:
        stored = await self.call_records.get(call_sid)
        if stored is not None and stored.updated_at > when:
            log.info("Twilio call %s: status %s older than the stored one", call_sid, status)
            return
        interaction = await self.interactions.by_call_id(call_sid)
        answered_at = stored.answered_at if stored is not None else None
        if status == "in-progress" and answered_at is None:
            answered_at = when
        ended_at = stored.ended_at if stored is not None else None
        if status in ENDED and ended_at is None:
            ended_at = when
            if answered_at is not None and duration is not None:
                ended_at = answered_at + timedelta(seconds=duration)
        caller = form.get("From") or (stored.caller_num if stored is not None else None)
        dialed = form.get("To") or (stored.callee_num if stored is not None else None)
        await self.call_records.upsert(
            CallRecord(
                id=call_sid,
                state=status,
                started_at=stored.started_at if stored is not None else when,
                updated_at=when,
                caller_num=caller or None,
                callee_num=dialed or None,
                answered_at=answered_at,
                ended_at=ended_at,
                interaction_id=None if interaction is None else interaction.id,
            )
        )
        if status not in ENDED:
            return
        if interaction is not None and interaction.ended_at is None:
            await self.interactions.update(interaction.id, ended_at=ended_at)
        for phase in ("survey", "flow"):
            row = await self.sessions.latest_for_call_ref(call_sid, phase=phase)
            if row is None or row.edge != EDGE:
                continue
            if row.outcome == "in_progress":
                try:
                    await self.runner.feed_stored(row.id, HungUp())
                except SessionError as exc:
                    log.warning("Twilio call %s hung up: %s", call_sid, exc)
            elif row.outcome == "queued" and row.task_id is not None:
                await self._end_task(row.task_id)

    async def _end_task(self, task_id: str, *, assigned_only: bool = False) -> None:
        """Cancel a task still waiting (the caller left), complete an assigned one."""
        routing = self.routing()
        if routing is None:
            return
        state = _task_state(routing, task_id)
        try:
            if state in ("waiting", "reserved") and not assigned_only:
                await routing.cancel(task_id, "caller_hangup")
            elif state == "assigned":
                await routing.complete(task_id)
        except Exception as exc:
            log.info("Twilio task %s not ended: %s", task_id, exc)


def _input(event: Event, form: Mapping[str, str]) -> Input | None:
    """What a webhook reports, as an interpreter input (``queue``: none)."""
    if event == "gather":
        digits = form.get("Digits", "")
        return Digits(digits) if digits else NoInput()
    if event == "record":
        url = _field(form, "RecordingUrl")
        seconds = _whole_seconds(form, "RecordingDuration")
        if seconds is None:
            raise BadRequest("RecordingDuration: required")
        return RecordingDone(url, float(seconds), hung_up=form.get("Digits") == "hangup")
    if event == "norecord":
        return RecordingDone("", 0.0)
    if event == "dial":
        status = _field(form, "DialCallStatus")
        if status in ("completed", "answered"):
            return TransferCompleted()
        return TransferFailed(status[:40])
    return None


def _task_state(routing: Any, task_id: str) -> str | None:
    router = getattr(routing, "router", None)
    try:
        return None if router is None else str(router.task_state(task_id).value)
    except Exception:  # unknown to the router (gone since)
        return None


def _current_wait(flow: Flow, session: Session) -> Wait | None:
    """What a session that is not done waits for at its node (no misses
    replayed: the node's own prompt)."""
    node = flow.nodes.get(session.node)
    language = session.language
    if isinstance(node, CollectNode):
        return GatherDigits(
            (render(flow, node.prompt, language),),
            max_digits=node.max_digits,
            timeout=node.timeout,
            finish_on_key=node.finish_on_key,
            min_digits=node.min_digits,
        )
    if isinstance(node, MenuNode):
        longest = max(len(key) for key in node.choices)
        return GatherDigits(
            (render(flow, node.prompt, language),), longest, node.timeout, finish_on_key=""
        )
    if isinstance(node, SurveyNode):
        return GatherDigits((render(flow, node.prompt, language),), 1, node.timeout, "")
    if isinstance(node, VoicemailNode):
        return AwaitRecording(
            (render(flow, node.prompt, language),), node.max_seconds, node.finish_on_key
        )
    if isinstance(node, TransferNode):
        return AwaitTransfer(node.number, node.timeout)
    return None


def _xml(response: VoiceResponse) -> web.Response:
    return web.Response(text=str(response.to_xml()), content_type="application/xml")


def _forbidden() -> web.Response:
    return web.json_response(
        {"error": "forbidden", "message": "not a signed Twilio request"}, status=403
    )


class _CallLock:
    """One webhook of a call at a time; the lock is dropped once nobody uses it."""

    def __init__(self, locks: dict[str, tuple[asyncio.Lock, int]], key: str) -> None:
        self._locks = locks
        self._key = key

    async def __aenter__(self) -> None:
        lock, users = self._locks.get(self._key, (asyncio.Lock(), 0))
        self._locks[self._key] = (lock, users + 1)
        await lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        lock, users = self._locks[self._key]
        lock.release()
        if users <= 1:
            del self._locks[self._key]
        else:
            self._locks[self._key] = (lock, users - 1)
