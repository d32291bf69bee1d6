"""Who may do what: one policy table, enforced on the server.

``POLICY`` maps every action to a rule:

* ``EVERYONE``: any authenticated principal;
* ``SUPERVISORS``: supervisors and admins;
* ``ADMINS``: admins only (the API token is an admin);
* ``own(kind)``: supervisors and admins always; an agent only for a subject
  that is theirs (see ``Ownership``): ``self`` (the subject is their agent id),
  ``call`` (their device ``PJSIP/<extension>`` is on the call, or the call's
  task was assigned to them), ``device`` (originate from their own extension),
  ``task`` (the task is offered/assigned to them or was assigned to them),
  ``live_task`` (offered/assigned/wrapping with them now), ``interaction`` (its
  live task is theirs, the interaction is recorded as theirs, or its customer
  is the customer of a task offered or assigned to them now: the open e-mails
  on a caller's pop), ``handled_interaction`` (its live task is assigned to
  them or wrapping, a task of it was assigned to them, or it is recorded as
  theirs: the wrap-up and identifying the customer),
  ``assigned_interaction`` (its live task is assigned to them, or wrapping),
  ``recording`` (a recording of a call they handled, and only when ``[recordings]
  agent_may_play`` is on), ``agent_recordings`` (the subject is their own agent id,
  and ``agent_may_play`` is on: listing their own recordings).

``ROUTE_ACTIONS`` names the action of every REST route (method, path as
registered). ``route_guard`` refuses a route with no entry (only admins pass,
and a warning is logged) and a role that the action's rule can never admit;
the routes' ``authorize(request, action, subject)`` hooks then check the
subject. A refusal raises ``Forbidden``; ``audit_middleware`` turns it into a
403 ``{"error": "forbidden", ...}`` after writing the audit row, and writes
one row for every other state-changing request (allowed or failed) and for a
state-changing request whose token was expired, revoked or forged.

``Policy.allows(principal, action, subject)`` is the same decision for the
Socket.IO desk (``agent_desk.policy.Authorize``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from aiohttp import web
from sqlalchemy import select

from agent_desk.audit import AuditLog
from agent_desk.auth import AUDITED, AUTH_FAILURE, AgentPrincipal, client_ip
from callwright.app import PRINCIPAL, Principal
from cti.calls.model import Call
from cti.calls.service import CallService
from cti.errors import UnknownCall
from cti.http import AUDIT_DETAIL, CALL_SCOPE, OWN_DEVICE
from routing.errors import RoutingError
from routing.journal import routing_events, routing_tasks
from routing.service import RoutingService

__all__ = [
    "ADMINS",
    "EVERYONE",
    "POLICY",
    "PUBLIC",
    "ROUTE_ACTIONS",
    "SUPERVISORS",
    "Decision",
    "Forbidden",
    "HttpAuthorization",
    "Ownership",
    "Policy",
    "Rule",
    "own",
]

log = logging.getLogger(__name__)

OwnKind = Literal[
    "self",
    "call",
    "device",
    "task",
    "live_task",
    "interaction",
    "assigned_interaction",
    "handled_interaction",
    "recording",
    "agent_recordings",
]


@dataclass(frozen=True)
class Rule:
    """``roles`` always pass; an agent passes when ``own`` is set and the subject is theirs."""

    roles: frozenset[str]
    own: OwnKind | None = None
    public: bool = False

    def describe(self) -> str:
        if self.public:
            return "anyone, without a token"
        if self.own is not None:
            return f"supervisors and admins, and an agent {_OWN_WORDS[self.own]}"
        if self.roles == _ALL:
            return "everyone logged in"
        if self.roles == _SUP:
            return "supervisors and admins"
        return " and ".join(f"{role}s" for role in sorted(self.roles))


_ALL: Final = frozenset({"agent", "supervisor", "admin"})
_SUP: Final = frozenset({"supervisor", "admin"})
PUBLIC: Final = Rule(_ALL, public=True)
EVERYONE: Final = Rule(_ALL)
SUPERVISORS: Final = Rule(_SUP)
ADMINS: Final = Rule(frozenset({"admin"}))


_OWN_WORDS: Final[Mapping[OwnKind, str]] = {
    "self": "for themself",
    "call": "on a call they are on",
    "device": "from their own device",
    "task": "on a task offered or assigned to them",
    "live_task": "on a task offered or assigned to them",
    "interaction": "on an interaction assigned to them",
    "assigned_interaction": "on an interaction whose task is assigned to them",
    "handled_interaction": "on an interaction they handle or handled",
    "recording": "for a call they handled, when [recordings] agent_may_play is on",
    "agent_recordings": "for their own calls, when [recordings] agent_may_play is on",
}


def own(kind: OwnKind) -> Rule:
    return Rule(_SUP, own=kind)


POLICY: Final[Mapping[str, Rule]] = {
    # accounts
    "auth.login": PUBLIC,
    "auth.logout": EVERYONE,
    "session.read": EVERYONE,
    "account.password": EVERYONE,
    "agents.manage": ADMINS,
    "audit.read": SUPERVISORS,
    # the desk (Socket.IO)
    "desk.connect": EVERYONE,
    "customers.search": EVERYONE,
    "customers.read": EVERYONE,
    # calls
    "calls.list": EVERYONE,  # an agent gets only the calls they are on (CALL_SCOPE)
    "calls.read": own("call"),
    "calls.hangup": own("call"),
    "calls.hold": own("call"),
    "calls.transfer": own("call"),
    "calls.originate": own("device"),
    "calls.spy": SUPERVISORS,  # listen, whisper, barge
    # routing
    "queues.read": EVERYONE,
    "reports.read": SUPERVISORS,
    "tasks.create": SUPERVISORS,
    "tasks.read": own("task"),
    "tasks.complete": own("live_task"),
    "agents.read": own("self"),
    "agents.state": own("self"),
    "reservations.accept": own("self"),
    "reservations.reject": own("self"),
    # e-mail
    "interactions.read": own("interaction"),
    "interactions.reply": own("assigned_interaction"),
    # the desk's wrap-up and unknown callers (agent_desk/records.py)
    "interactions.disposition": own("handled_interaction"),
    "interactions.customer": own("handled_interaction"),
    "interactions.list": SUPERVISORS,
    # recordings (recordings/playback.py, recordings/listing.py)
    "recordings.play": own("recording"),
    "recordings.list": own("agent_recordings"),
    "recordings.access": EVERYONE,  # what the caller may play: all, own or none
    # recordings/http.py: a live call's recording (pause for card payments)
    "recordings.state": own("call"),
    "recordings.control": own("call"),
    # recordings/erase.py: GDPR erasure and legal holds
    "customers.erase": ADMINS,
    "legal_holds.read": SUPERVISORS,
    "legal_holds.manage": SUPERVISORS,
}

ROUTE_ACTIONS: Final[Mapping[tuple[str, str], str]] = {
    # agent_desk/auth.py, agent_desk/audit.py
    ("POST", "/api/login"): "auth.login",
    ("POST", "/api/logout"): "auth.logout",
    ("GET", "/api/session"): "session.read",
    ("POST", "/api/account/password"): "account.password",
    ("POST", "/api/agents/{agent_id}/password"): "agents.manage",
    ("POST", "/api/agents/{agent_id}/active"): "agents.manage",
    ("GET", "/api/audit"): "audit.read",
    # cti/http.py
    ("GET", "/api/calls"): "calls.list",
    ("POST", "/api/calls"): "calls.originate",
    ("GET", "/api/calls/{call_id}"): "calls.read",
    ("POST", "/api/calls/{call_id}/hangup"): "calls.hangup",
    ("POST", "/api/calls/{call_id}/transfer"): "calls.transfer",
    ("POST", "/api/calls/{call_id}/transfer/complete"): "calls.transfer",
    ("POST", "/api/calls/{call_id}/transfer/cancel"): "calls.transfer",
    ("POST", "/api/calls/{call_id}/hold"): "calls.hold",
    ("POST", "/api/calls/{call_id}/unhold"): "calls.hold",
    ("POST", "/api/calls/{call_id}/spy"): "calls.spy",
    ("POST", "/api/calls/{call_id}/spy/stop"): "calls.spy",
    ("GET", "/api/spies"): "calls.spy",
    # routing/http.py
    ("POST", "/api/tasks"): "tasks.create",
    ("GET", "/api/tasks/{task_id}"): "tasks.read",
    ("POST", "/api/tasks/{task_id}/complete"): "tasks.complete",
    ("GET", "/api/queues"): "queues.read",
    ("GET", "/api/reports/queues"): "reports.read",
    ("GET", "/api/reports/agents"): "reports.read",
    ("GET", "/api/reports/surveys"): "reports.read",
    ("GET", "/api/reports/queues/intervals"): "reports.read",
    ("GET", "/api/agents/{agent_id}"): "agents.read",
    ("POST", "/api/agents/{agent_id}/state"): "agents.state",
    ("POST", "/api/agents/{agent_id}/wrap-up/end"): "agents.state",
    ("POST", "/api/reservations/{reservation_id}/accept"): "reservations.accept",
    ("POST", "/api/reservations/{reservation_id}/reject"): "reservations.reject",
    # routing/email.py
    ("GET", "/api/interactions/{interaction_id}/emails"): "interactions.read",
    ("POST", "/api/interactions/{interaction_id}/reply"): "interactions.reply",
    # agent_desk/records.py
    ("POST", "/api/interactions/{interaction_id}/disposition"): "interactions.disposition",
    ("POST", "/api/interactions/{interaction_id}/customer"): "interactions.customer",
    ("GET", "/api/customers/{customer_id}"): "customers.read",
    # recordings/listing.py, recordings/playback.py
    ("GET", "/api/interactions"): "interactions.list",
    ("GET", "/api/recordings"): "recordings.list",
    ("GET", "/api/recordings/{recording_id}/playback"): "recordings.play",
    ("GET", "/api/recordings/access"): "recordings.access",
    # recordings/http.py
    ("GET", "/api/calls/{call_id}/recording"): "recordings.state",
    ("POST", "/api/calls/{call_id}/recording/pause"): "recordings.control",
    ("POST", "/api/calls/{call_id}/recording/resume"): "recordings.control",
    # recordings/erase.py
    ("POST", "/api/customers/{customer_id}/erase"): "customers.erase",
    ("GET", "/api/legal-holds"): "legal_holds.read",
    ("POST", "/api/legal-holds"): "legal_holds.manage",
    ("POST", "/api/legal-holds/{hold_id}/release"): "legal_holds.manage",
}

READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_RECORDING_ID: Final = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


class Forbidden(web.HTTPForbidden):
    """A refused action; ``audit_middleware`` audits it and answers 403 JSON."""

    def __init__(self, action: str, subject: str | None, reason: str) -> None:
        super().__init__(reason=f"forbidden: {action}")
        self.action = action
        self.subject = subject
        self.reason_text = reason


class Ownership:
    """Whether a subject belongs to an agent, from the live services and the store."""

    def __init__(
        self,
        *,
        calls: CallService,
        routing: Callable[[], RoutingService | None],
        interaction_agent: Callable[[int], Awaitable[int | None]],
        recording_agent: Callable[[str], Awaitable[int | None]] | None = None,
        agent_may_play: bool = False,
        interaction_customer: Callable[[int], Awaitable[int | None]] | None = None,
    ) -> None:
        """``recording_agent(id)``: the agent who handled a recording's call (None if
        unknown); ``agent_may_play``: ``[recordings] agent_may_play``;
        ``interaction_customer(id)``: an interaction's customer id."""
        self.calls = calls
        self.routing = routing
        self.interaction_agent = interaction_agent
        self.interaction_customer = interaction_customer
        self.recording_agent = recording_agent
        self.agent_may_play = agent_may_play

    async def owns(self, agent: AgentPrincipal, kind: OwnKind, subject: Any) -> bool:
        if subject is None:
            return False
        if kind == "self":
            return str(subject) == agent.id
        if kind == "device":
            return isinstance(subject, str) and subject == agent.extension
        if kind == "call":
            return await self._on_call(agent, subject)
        if kind in ("task", "live_task"):
            if self._live_task_agent(str(subject)) == agent.id:
                return True
            return kind == "task" and await self._last_assigned(str(subject)) == agent.id
        if kind in ("interaction", "assigned_interaction"):
            return await self._interaction(agent, subject, assigned=kind != "interaction")
        if kind == "handled_interaction":
            return await self._handled(agent, subject)
        if kind == "agent_recordings":
            return self.agent_may_play and str(subject) == agent.id
        if kind == "recording":
            if not self.agent_may_play or self.recording_agent is None:
                return False
            if not isinstance(subject, str) or not _RECORDING_ID.fullmatch(subject):
                return False  # never a lookup on a malformed id
            handled_by = await self.recording_agent(subject)
            return handled_by is not None and str(handled_by) == agent.id
        return False

    async def calls_of(self, agent: AgentPrincipal, calls: Sequence[Call]) -> list[Call]:
        """The calls the agent is on: their device is on it, or it is the call
        of a task assigned to them now (one lookup per task of theirs)."""
        device = f"PJSIP/{agent.extension}"
        routed: set[str] = set()
        routing = self.routing()
        if routing is not None:
            try:
                task_ids = routing.router.agent(agent.id).task_ids
            except RoutingError:
                task_ids = ()
            for task_id in task_ids:
                link = await routing.journal.task(task_id)
                if link is not None and link.call_id is not None:
                    routed.add(link.call_id)
        return [
            call
            for call in calls
            if call.id in routed
            or any(ch.device == device or ch.name.startswith(device + "-") for ch in call.channels)
        ]

    async def _on_call(self, agent: AgentPrincipal, subject: Any) -> bool:
        call = subject
        if not isinstance(call, Call):
            try:
                call = self.calls.get(str(subject))
            except UnknownCall:
                return False
        device = f"PJSIP/{agent.extension}"
        if any(ch.device == device or ch.name.startswith(device + "-") for ch in call.channels):
            return True
        routing = self.routing()
        if routing is None:
            return False
        link = await routing.journal.task_for_call(call.id)
        if link is None:
            return False
        return (
            self._live_task_agent(link.id) == agent.id
            or await self._last_assigned(link.id) == agent.id
        )

    def _live_task_agent(self, task_id: str, states: tuple[str, ...] | None = None) -> str | None:
        routing = self.routing()
        if routing is None or task_id not in routing.router.task_ids():
            return None
        try:
            view = routing.router.task(task_id)
        except RoutingError:
            return None
        if states is not None and view.state.value not in states:
            return None
        return view.agent_id

    async def _last_assigned(self, task_id: str) -> str | None:
        routing = self.routing()
        if routing is None:
            return None
        query = (
            select(routing_events.c.agent_id)
            .where(routing_events.c.task_id == task_id, routing_events.c.type == "TaskAssigned")
            .order_by(routing_events.c.seq.desc())
            .limit(1)
        )
        async with routing.journal.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else str(row.agent_id)

    async def _interaction(self, agent: AgentPrincipal, subject: Any, *, assigned: bool) -> bool:
        try:
            interaction_id = int(subject)
        except (TypeError, ValueError):
            return False
        routing = self.routing()
        if routing is not None:
            task_id = await routing.journal.live_task_for_interaction(interaction_id)
            if task_id is not None:
                states = ("assigned", "wrapping") if assigned else None
                if self._live_task_agent(task_id, states) == agent.id:
                    return True
        if assigned:
            return False
        recorded = await self.interaction_agent(interaction_id)
        if recorded is not None and str(recorded) == agent.id:
            return True
        return await self._customer_of_their_task(agent, interaction_id)

    async def _handled(self, agent: AgentPrincipal, subject: Any) -> bool:
        try:
            interaction_id = int(subject)
        except (TypeError, ValueError):
            return False
        if await self._interaction(agent, interaction_id, assigned=True):
            return True
        routing = self.routing()
        if routing is not None:
            # A task of this interaction was assigned to them (since finished).
            query = (
                select(routing_events.c.seq)
                .join(routing_tasks, routing_tasks.c.id == routing_events.c.task_id)
                .where(
                    routing_tasks.c.interaction_id == interaction_id,
                    routing_events.c.type == "TaskAssigned",
                    routing_events.c.agent_id == agent.id,
                )
                .limit(1)
            )
            async with routing.journal.engine.connect() as conn:
                if (await conn.execute(query)).first() is not None:
                    return True
        recorded = await self.interaction_agent(interaction_id)
        return recorded is not None and str(recorded) == agent.id

    async def _customer_of_their_task(self, agent: AgentPrincipal, interaction_id: int) -> bool:
        """The interaction's customer is the customer of a task offered or
        assigned to the agent now (a caller's other threads, on their pop)."""
        routing = self.routing()
        if routing is None or self.interaction_customer is None:
            return False
        customer = await self.interaction_customer(interaction_id)
        if customer is None:
            return False
        try:
            view = routing.router.agent(agent.id)
            task_ids = set(view.task_ids)
            for rid in view.reservation_ids:
                task_ids.add(routing.router.reservation(rid).task_id)
        except RoutingError:
            return False
        for task_id in sorted(task_ids):
            link = await routing.journal.task(task_id)
            if link is None or link.interaction_id in (None, interaction_id):
                continue
            if await self.interaction_customer(link.interaction_id) == customer:
                return True
        return False


class Policy:
    def __init__(self, ownership: Ownership, table: Mapping[str, Rule] = POLICY) -> None:
        self.ownership = ownership
        self.table = table

    def rule(self, action: str) -> Rule | None:
        return self.table.get(action)

    def may_ever(self, principal: Principal, action: str) -> Decision:
        """Whether the role could be allowed for some subject (no lookups)."""
        rule = self.table.get(action)
        if rule is None:
            return Decision(False, f"no policy for {action}")
        if principal.role in rule.roles:
            return Decision(True, "role")
        if rule.own is not None and principal.role == "agent":
            return Decision(True, "own subject required")
        return Decision(False, f"{action} is for {rule.describe()}")

    async def check(self, principal: Principal, action: str, subject: Any) -> Decision:
        rule = self.table.get(action)
        if rule is None:
            return Decision(False, f"no policy for {action}")
        if principal.role in rule.roles and (rule.own is None or principal.role != "agent"):
            return Decision(True, "role")
        if (
            rule.own is None
            or principal.role != "agent"
            or not isinstance(principal, AgentPrincipal)
        ):
            return Decision(False, f"{action} is for {rule.describe()}")
        if await self.ownership.owns(principal, rule.own, subject):
            return Decision(True, f"own {rule.own}")
        return Decision(False, f"{action}: an agent may do this only {_OWN_WORDS[rule.own]}")

    async def allows(self, principal: Any, action: str, subject: str | None) -> bool:
        """``agent_desk.policy.Authorize`` for the Socket.IO desk."""
        if not isinstance(principal, Principal):
            return False
        return (await self.check(principal, action, subject)).allowed


# -- HTTP -------------------------------------------------------------------------

ACTION: Final = web.RequestKey("audit_action", str)
SUBJECT: Final = web.RequestKey("audit_subject", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _subject_text(subject: Any) -> str | None:
    if subject is None:
        return None
    if isinstance(subject, Call):
        return subject.id
    return str(subject)


def route_action(request: web.Request) -> str | None:
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return ROUTE_ACTIONS.get((method, resource.canonical))


class HttpAuthorization:
    """The routes' ``authorize`` hook and the two middlewares around them."""

    def __init__(self, policy: Policy, audit: AuditLog) -> None:
        self.policy = policy
        self.audit = audit

    async def authorize(self, request: web.Request, action: str, subject: Any) -> None:
        """Raise ``Forbidden`` unless the principal may do ``action`` on ``subject``."""
        principal = request.get(PRINCIPAL)
        text = _subject_text(subject)
        if principal is None:
            raise Forbidden(action, text, "not authenticated")
        if action == "calls.list" and principal.role == "agent":
            if not isinstance(principal, AgentPrincipal):
                raise Forbidden(action, text, "calls.list: an agent's own calls only")
            agent = principal

            async def scope(calls: Sequence[Call]) -> list[Call]:
                return await self.policy.ownership.calls_of(agent, calls)

            request[CALL_SCOPE] = scope
        if action == "calls.originate" and subject is None:
            # The device is in the body (already read and cached by the route).
            try:
                body = await request.json()
            except ValueError:
                body = None
            device = body.get("agent_device") if isinstance(body, dict) else None
            subject = text = device if isinstance(device, str) else None
        decision = await self.policy.check(principal, action, subject)
        if not decision.allowed:
            raise Forbidden(action, text, decision.reason)
        request[ACTION] = action
        if text is not None:
            request[SUBJECT] = text
        if isinstance(principal, AgentPrincipal) and principal.extension:
            request[OWN_DEVICE] = principal.extension

    @web.middleware
    async def route_guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """After authentication: no policy entry or a role that can never pass -> 403."""
        principal = request.get(PRINCIPAL)
        if principal is None or not request.path.startswith("/api/"):
            return await handler(request)
        action = route_action(request)
        if action is None:
            if request.match_info.http_exception is not None:
                return await handler(request)  # 404/405: aiohttp answers
            name = f"{request.method} {request.match_info.route.resource.canonical}"  # type: ignore[union-attr]
            if principal.role != "admin":
                log.warning("no policy entry for %s: refused", name)
                raise Forbidden(name, None, f"no policy covers {name}")
            log.warning("no policy entry for %s: allowed for an admin only", name)
            return await handler(request)
        decision = self.policy.may_ever(principal, action)
        if not decision.allowed:
            raise Forbidden(action, _match_subject(request), decision.reason)
        request[ACTION] = action
        return await handler(request)

    @web.middleware
    async def audit_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Before authentication (outermost but for JSON errors): audit rows for
        refusals, token failures and every state-changing request."""
        if not request.path.startswith("/api/"):
            return await handler(request)
        mutating = request.method not in READ_METHODS
        try:
            response = await handler(request)
        except Forbidden as refused:
            await self._record(
                request,
                refused.action,
                "denied",
                subject=refused.subject,
                detail={"reason": refused.reason_text, "status": 403},
            )
            return web.json_response(
                {"error": "forbidden", "message": refused.reason_text, "action": refused.action},
                status=403,
            )
        except web.HTTPException as exc:
            if mutating and exc.status >= 400:
                await self._record(request, None, "failed", detail={"status": exc.status})
            raise
        except Exception:
            if mutating:
                await self._record(request, None, "failed", detail={"status": 500})
            raise
        if request.get(AUDITED):
            return response
        status = response.status
        if status == 401:
            rejected = request.get(AUTH_FAILURE)
            if mutating and rejected is not None:
                await self._record(
                    request,
                    None,
                    "denied",
                    detail={"status": 401, "token": rejected.reason},
                    actor=None
                    if rejected.agent_id is None
                    else _Claimed(rejected.agent_id, "unauthenticated"),
                )
        elif mutating:
            await self._record(
                request,
                None,
                "allowed" if status < 400 else "failed",
                detail={"status": status},
            )
        return response

    async def _record(
        self,
        request: web.Request,
        action: str | None,
        outcome: str,
        *,
        subject: str | None = None,
        detail: dict[str, Any],
        actor: Any = ...,
    ) -> None:
        action = action or request.get(ACTION) or route_action(request)
        if action is None:
            resource = request.match_info.route.resource
            action = f"{request.method} {resource.canonical if resource else request.path}"
        if subject is None:
            subject = request.get(SUBJECT) or _match_subject(request)
        # The route's own facts (a spy session's mode) never hide the outcome's.
        detail = {
            "method": request.method,
            "path": request.path,
            **(request.get(AUDIT_DETAIL) or {}),
            **detail,
        }
        principal = request.get(PRINCIPAL) if actor is ... else actor
        try:
            await self.audit.record(
                actor=principal,
                action=action,
                outcome=outcome,
                subject=subject,
                detail=detail,
                client_ip=client_ip(request),
            )
        except Exception:
            # The action has happened; say so in the log rather than hide the answer.
            log.exception(
                "audit row not written: %s %s by %s on %s (%s)",
                outcome,
                action,
                None if principal is None else principal.id,
                subject,
                detail,
            )
        request[AUDITED] = True


@dataclass(frozen=True)
class _Claimed:
    """The agent a rejected (expired or revoked) but well-signed token names."""

    id: str
    role: str


def _match_subject(request: web.Request) -> str | None:
    values = list(request.match_info.values())
    return values[0] if values else None
