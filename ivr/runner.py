"""The edge-independent shell around the pure interpreter (``ivr.interpreter``).

Both adapters (FastAGI in ``ivr.fastagi``, Twilio webhooks) drive one
``IvrRunner``; they own the wire (prompts, keys, recording, dialing), the
runner owns everything else:

* ``begin(edge, flow, call)`` starts a session and ``feed(turn, input)`` goes
  on from the previous ``Turn`` (FastAGI keeps it for the whole AGI session);
  a webhook edge that keeps only the row id calls ``feed_stored(session_id,
  input)``, which feeds the session stored last. ``begin_survey`` starts the post-call
  survey of a call whose flow run ended ``queued`` with ``Enqueue(survey=True)``.
* Every step is stored (``ivr_sessions``: session JSON, node, outcome; for
  ``abandoned`` the node where the caller hung up) *before* the adapter gets
  it: stored before announced.
* Lookups (``AwaitLookup``) never reach the adapter: the runner asks the CRM
  (``CustomerRepository.find_by_phone`` / ``find_by_account``) and feeds the
  result in. A lookup hit is also handed to ``prefetch`` (the desk's
  ``ScreenPops.remember``) so the screen-pop is ready before the offer. The
  customer the flow sees: ``id``, ``name``, ``account_number`` and ``vip``.
  VIP: the CRM has no flag; a customer is VIP when their notes carry the tag
  ``#vip`` (any case, as a word), e.g. "#VIP since 2019". Editable from the
  desk's customer record, no schema change.
* Back-office actions are done here and stay in ``Turn.actions`` only for the
  record: ``Voicemail`` and ``Callback`` become an interaction and a routing
  task (channel ``callback``; attributes: everything collected plus
  ``callback_number``, and for a voicemail ``recording`` and
  ``recording_seconds``), ``SurveyScore`` is stored on the survey's row (its
  ``interaction_id`` is the call's interaction; see ``ivr.persistence``).
  ``Enqueue`` is stored as the row's ``queue`` with outcome ``queued``: voice
  routing picks the call up at the holding point and reads the run back
  (``IvrRepository.handoff_for``) for the queue, priority, skills, language,
  attributes and customer.
* The adapter renders the rest: ``Say``, ``SetLanguage``, ``Enqueue`` (hand
  the call to the holding point: FastAGI sets ``CALLWRIGHT_QUEUE`` and
  ``CALLWRIGHT_IVR_SESSION``), ``PauseRecording``/``ResumeRecording`` (FastAGI:
  the call's recording through ``recordings.control``; Twilio: logged only),
  ``Hangup``; then ``Turn.wait``
  (``GatherDigits``, ``AwaitRecording``, ``AwaitTransfer``, ``Done``).

Nothing here raises on caller behaviour; a store or routing failure while
creating a callback task is logged, and the row keeps the outcome.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from crm.repository import Customer
from cti.calls.model import Call
from ivr.interpreter import feed, start, start_survey
from ivr.model import (
    Action,
    AwaitLookup,
    Callback,
    CallInfo,
    Done,
    Enqueue,
    Flow,
    Input,
    LookupResult,
    Session,
    Step,
    SurveyScore,
    TaskRequest,
    TransferFailed,
    Voicemail,
    Wait,
)
from ivr.repository import IvrRepository
from routing.voice import CustomerMatch, IvrHandoff

__all__ = [
    "BACK_OFFICE",
    "IvrRunner",
    "Turn",
    "UnknownFlow",
    "VoiceHandoffs",
    "customer_fields",
    "is_vip",
]

log = logging.getLogger(__name__)

VIP_TAG = re.compile(r"(?<![\w#])#vip\b", re.IGNORECASE)
BACK_OFFICE = (Voicemail, Callback, SurveyScore)
MAX_LOOKUPS = 50  # per turn; the interpreter's max_steps ends a flow first


class UnknownFlow(LookupError):
    """The adapter asked for a flow that is not configured."""


class CustomerSource(Protocol):
    async def find_by_phone(self, raw_caller_id: str) -> Customer | None: ...

    async def find_by_account(self, account_number: str) -> Customer | None: ...


class InteractionSink(Protocol):
    """``crm.repository.InteractionRepository``: ``create`` (what the runner
    passes) and ``by_call_id`` (the call's latest interaction)."""

    async def by_call_id(self, call_id: str) -> Any: ...

    async def create(
        self,
        *,
        channel: Any,
        direction: Any,
        started_at: datetime,
        customer_id: int | None = None,
        queue: str | None = None,
    ) -> Any: ...


class TaskSink(Protocol):
    """``routing.service.RoutingService.submit``."""

    async def submit(
        self, spec: Any, *, interaction_id: int | None = None, call_id: str | None = None
    ) -> Any: ...


def is_vip(customer: Customer) -> bool:
    return bool(customer.notes and VIP_TAG.search(customer.notes))


def customer_fields(customer: Customer) -> dict[str, Any]:
    """The customer as a flow sees it (``LookupResult.customer``)."""
    return {
        "id": customer.id,
        "name": customer.name,
        "account_number": customer.account_number or "",
        "vip": is_vip(customer),
    }


@dataclass(frozen=True)
class Turn:
    """One answer to the adapter: render ``actions`` (``Say``, ``SetLanguage``,
    ``Enqueue``, ``PauseRecording``, ``ResumeRecording``, ``Hangup``; the
    ``BACK_OFFICE`` ones are done already), then
    do ``wait``. ``session_id`` is the ``ivr_sessions`` row."""

    session_id: str
    edge: str
    flow: Flow
    step: Step
    actions: tuple[Action, ...]

    @property
    def session(self) -> Session:
        return self.step.session

    @property
    def wait(self) -> Wait:
        return self.step.wait

    @property
    def done(self) -> bool:
        return isinstance(self.step.wait, Done)

    @property
    def enqueue(self) -> Enqueue | None:
        for action in self.actions:
            if isinstance(action, Enqueue):
                return action
        return None


def task_json(task: TaskRequest) -> dict[str, Any]:
    return {
        "queue": task.queue,
        "priority": task.priority,
        "language": task.language,
        "skills": dict(task.skills),
        "customer_id": task.customer_id,
        "attributes": dict(task.attributes),
    }


class VoiceHandoffs:
    """``routing.voice.IvrHandoffs`` over the store: the queued FastAGI run of a
    call (by its channels' uniqueids), and the link back once it is a task."""

    def __init__(self, repo: IvrRepository) -> None:
        self.repo = repo

    async def for_call(self, call: Call) -> IvrHandoff | None:
        refs = [ch.uniqueid for ch in call.channels] + [call.id]
        row = await self.repo.handoff_for(refs)
        if row is None:
            return None
        task = (row.data or {}).get("task")
        if not isinstance(task, Mapping):
            return None
        session = row.session
        customer = None
        if session.customer is not None and session.customer_id is not None:
            if session.customer_id.isdigit():
                name = session.customer.get("name", "")
                customer = CustomerMatch(int(session.customer_id), str(name))
        skills = task.get("skills")
        attributes = task.get("attributes")
        language = task.get("language")
        priority = task.get("priority")
        return IvrHandoff(
            session_id=row.id,
            queue=str(task.get("queue") or row.queue or ""),
            priority=priority if isinstance(priority, int) else 0,
            language=language if isinstance(language, str) and language else None,
            skills={str(k): v for k, v in (skills or {}).items() if isinstance(v, int)},
            customer=customer,
            attributes={
                str(k): v
                for k, v in (attributes or {}).items()
                if isinstance(v, str | int | float | bool)
            },
        )

    async def linked(
        self, handoff: IvrHandoff, call_id: str, interaction_id: int | None, task_id: str
    ) -> None:
        await self.repo.link(
            handoff.session_id, call_id=call_id, interaction_id=interaction_id, task_id=task_id
        )


def _utc(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


class IvrRunner:
    def __init__(
        self,
        flows: Mapping[str, Flow],
        repo: IvrRepository,
        *,
        customers: CustomerSource,
        interactions: InteractionSink | None = None,
        tasks: Callable[[], TaskSink | None] = lambda: None,
        prefetch: Callable[[Customer], Awaitable[None] | None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.flows = dict(flows)
        self.repo = repo
        self.customers = customers
        self.interactions = interactions
        self.tasks = tasks
        self.prefetch = prefetch
        self.clock = clock

    def flow(self, name: str) -> Flow:
        try:
            return self.flows[name]
        except KeyError:
            raise UnknownFlow(f"no IVR flow {name!r}") from None

    # -- the adapter's calls ------------------------------------------------

    async def begin(self, edge: str, flow_name: str, call: CallInfo) -> Turn:
        """A caller enters ``flow_name``; ``UnknownFlow`` if there is none. A
        caller who already went through a flow on this call (transferred to
        the payment line, say) keeps the language they chose there."""
        flow = self.flow(flow_name)
        if not call.language and call.ref:
            earlier = await self.repo.latest_for_call_ref(call.ref)
            if earlier is not None:
                call = dataclasses.replace(call, language=earlier.session.language)
        step = start(flow, call, self.clock())
        row_id = await self.repo.create(edge=edge, call_ref=call.ref, session=step.session)
        return await self._advance(row_id, edge, flow, step)

    async def feed(self, turn: Turn, event: Input) -> Turn:
        """What the caller did in answer to ``turn.wait``."""
        step = feed(turn.flow, turn.session, event, self.clock())
        return await self._advance(turn.session_id, turn.edge, turn.flow, step)

    async def feed_stored(self, session_id: str, event: Input) -> Turn | None:
        """``feed`` the session stored last under ``session_id``; None when the
        row is unknown, already over, or its flow is no longer configured."""
        row = await self.repo.get(session_id)
        if row is None or row.outcome != "in_progress" or row.flow not in self.flows:
            return None
        flow = self.flows[row.flow]
        step = feed(flow, row.session, event, self.clock())
        return await self._advance(session_id, row.edge, flow, step)

    async def transfer_failed(self, edge: str, call_ref: str, status: str) -> Turn | None:
        """The caller ``call_ref``'s transfer out of a flow did not connect
        (``status``: Asterisk's DIALSTATUS, BUSY, NOANSWER...): their latest
        flow run, which ended ``transferred`` when the dialplan took the caller
        to dial, goes on at its transfer node's ``failure`` branch (or ends
        ``failed``). None when the caller has no such run."""
        row = await self.repo.latest_for_call_ref(call_ref)
        if row is None or row.outcome != "transferred" or row.flow not in self.flows:
            return None
        flow = self.flows[row.flow]
        session = dataclasses.replace(row.session, outcome=None, reason="")
        step = feed(flow, session, TransferFailed(status), self.clock())
        await self.repo.reopen(row.id)
        return await self._advance(row.id, edge, flow, step)

    async def begin_survey(self, edge: str, call_ref: str) -> Turn | None:
        """The post-call survey for the caller ``call_ref``, asked by the latest
        of the call's flow runs that ended ``queued`` with a survey: a caller
        who went on through a flow without one (the card payment line, back to
        the agent) is still asked the first flow's survey. It rates the call's
        latest interaction (the last agent's). None when no run asked for a
        survey, or its flow has none."""
        queued = await self.repo.queued_for_call_ref(call_ref)
        origin = next((r for r in queued if (r.data or {}).get("survey")), None)
        if origin is None:
            return None
        flow = self.flows.get(origin.flow)
        if flow is None or flow.survey is None:
            return None
        interaction_id = origin.interaction_id
        if origin.call_id and self.interactions is not None:
            latest = await self.interactions.by_call_id(origin.call_id)
            if latest is not None:
                interaction_id = int(latest.id)
        step = start_survey(flow, origin.session, self.clock())
        row_id = await self.repo.create(
            edge=edge,
            call_ref=call_ref,
            session=step.session,
            phase="survey",
            origin_id=origin.id,
            interaction_id=interaction_id,
            call_id=origin.call_id,
        )
        return await self._advance(row_id, edge, flow, step)

    # -- the loop -----------------------------------------------------------

    async def _advance(self, row_id: str, edge: str, flow: Flow, step: Step) -> Turn:
        actions: list[Action] = []
        for _ in range(MAX_LOOKUPS):
            # The score, the callback task first: an outcome stored means done.
            await self._back_office(row_id, step)
            await self._store(row_id, step)
            actions.extend(step.actions)
            wait = step.wait
            if not isinstance(wait, AwaitLookup):
                break
            result = await self._lookup(wait)
            step = feed(flow, step.session, result, self.clock())
        return Turn(row_id, edge, flow, step, tuple(actions))

    async def _store(self, row_id: str, step: Step) -> None:
        wait = step.wait
        queue = None
        survey = False
        task: dict[str, Any] | None = None
        for action in step.actions:
            if isinstance(action, Enqueue):
                queue, survey = action.task.queue, action.survey
                task = task_json(action.task)
        if isinstance(wait, Done):
            await self.repo.save(
                row_id,
                step.session,
                outcome=wait.outcome,
                node=wait.node,
                reason=wait.reason,
                queue=queue,
                survey=survey,
                task=task,
            )
        else:
            await self.repo.save(row_id, step.session)

    async def _lookup(self, wait: AwaitLookup) -> LookupResult:
        try:
            if wait.by == "caller_id":
                customer = await self.customers.find_by_phone(wait.value)
            else:
                customer = await self.customers.find_by_account(wait.value)
        except Exception:
            log.exception("IVR lookup by %s failed; going on as not found", wait.by)
            return LookupResult(None)
        if customer is None:
            return LookupResult(None)
        if self.prefetch is not None:
            try:
                result = self.prefetch(customer)
                if result is not None:
                    await result
            except Exception:
                log.exception("prefetching the screen-pop of customer %s", customer.id)
        return LookupResult(customer_fields(customer))

    async def _back_office(self, row_id: str, step: Step) -> None:
        for action in step.actions:
            if isinstance(action, SurveyScore):
                await self.repo.record_survey(row_id, action.score)
            elif isinstance(action, Voicemail):
                await self._task(
                    row_id,
                    action.task,
                    {
                        "callback_number": action.number,
                        "voicemail": True,
                        "recording": action.recording,
                        "recording_seconds": round(action.seconds, 1),
                    },
                )
            elif isinstance(action, Callback):
                await self._task(row_id, action.task, {"callback_number": action.number})

    async def _task(self, row_id: str, request: TaskRequest, extra: dict[str, Any]) -> None:
        """A voicemail or callback request: an interaction, then a routing task
        (channel ``callback``) carrying the number to call."""
        from routing.model import TaskSpec  # routing stays optional for the pure tests

        tasks = self.tasks()
        interaction_id: int | None = None
        customer_id = request.customer_id
        try:
            if self.interactions is not None:
                interaction = await self.interactions.create(
                    channel="voice",
                    direction="inbound",
                    customer_id=int(customer_id) if customer_id and customer_id.isdigit() else None,
                    queue=request.queue,
                    started_at=_utc(self.clock()),
                )
                interaction_id = int(interaction.id)
            task_id = f"cb-{uuid.uuid4().hex[:12]}"
            attributes = {**request.attributes, **extra, "ivr_session": row_id}
            if tasks is None:
                log.error("IVR %s: no routing to take the %s task", row_id, request.queue)
                await self.repo.link(row_id, interaction_id=interaction_id)
                return
            spec = TaskSpec(
                id=task_id,
                queue_id=request.queue,
                channel="callback",
                priority=request.priority,
                customer_id=customer_id,
                language=request.language or None,
                required_skills=dict(request.skills),
                attributes=attributes,
            )
            await self.repo.link(row_id, interaction_id=interaction_id, task_id=task_id)
            await tasks.submit(spec, interaction_id=interaction_id)
        except Exception:
            log.exception("IVR %s: the callback task for %s was not created", row_id, request.queue)
