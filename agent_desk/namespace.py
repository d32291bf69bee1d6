"""The ``/desk`` Socket.IO namespace: connect, the hello snapshot, client events.

Connect: ``auth = {"token": "<session token>"}`` (optionally ``"resume":
{"epoch": ..., "rooms": {room: last_seq}}``). No token, an unknown token, a
role the policy refuses or an agent the router does not know: the connection
is refused with ``unauthorized``, ``forbidden``, ``unknown_agent`` or
``invalid_auth`` as the ``connect_error`` message.

On connect the client enters its rooms (agent: ``agent:{id}`` and the queues
it serves; supervisor or admin: ``supervisors`` and every queue) and gets
``hello``::

    {"principal": {"id", "role"}, "epoch", "now", "rooms": {room: seq},
     "settings": {"dispositions", "notes_max_chars", "payment", "queues": [{id, name}]},
     "snapshot": {...}}            # or "missed": [envelope, ...] on a resume

``rooms`` holds the last sequence number of each room that the snapshot
already reflects; the client applies later envelopes only (``seq`` greater).

Client events each take one JSON object and should ask for an ack; the ack is
``{"ok": true, ...}`` or ``{"ok": false, "error": code, "message": text}``,
and an error ack means nothing changed. Before anything else each event takes
a token from the connection's bucket (``rate`` per second, ``burst``): an empty
bucket answers ``rate_limited`` and the event goes no further. Then the
payload is checked (``agent_desk.schemas``), then the authorization policy
(``forbidden``, audited), then the routing service runs it.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import socketio  # type: ignore[import-untyped]
from socketio.exceptions import (  # type: ignore[import-untyped]
    ConnectionRefusedError as Refused,
)

from agent_desk.notifier import DeskNotifier
from agent_desk.policy import SUPERVISOR_ROLES, Audit, Authorize, LogAudit, Principal, desk_policy
from agent_desk.pops import customer_json
from agent_desk.rooms import RoomLog
from agent_desk.schemas import PayloadError, room_seqs, validate
from agent_desk.throttle import TokenBucket
from crm.repository import CustomerRepository
from routing.codec import to_json
from routing.errors import InvalidRequest, InvalidTransition, NotFound, RoutingError
from routing.service import RoutingService

__all__ = ["Authenticate", "DeskNamespace", "ErrorAck"]

log = logging.getLogger(__name__)

Authenticate = Callable[[str], Awaitable[Principal | None]]

MAX_TOKEN: Final = 4096
AUTH_FIELDS: Final = frozenset({"token", "resume"})


class ErrorAck(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def ack(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, "message": self.message}


@dataclass
class Connection:
    sid: str
    principal: Principal
    supervisor: bool
    rooms: list[str]
    bucket: TokenBucket
    client_ip: str | None


def _routing_error(exc: RoutingError) -> ErrorAck:
    if isinstance(exc, NotFound):
        return ErrorAck("not_found", str(exc))
    if isinstance(exc, InvalidRequest):
        return ErrorAck("invalid_request", str(exc))
    if isinstance(exc, InvalidTransition):
        return ErrorAck("invalid_transition", str(exc))
    return ErrorAck("routing_error", str(exc))


class DeskNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(
        self,
        notifier: DeskNotifier,
        *,
        routing: RoutingService,
        customers: CustomerRepository,
        authenticate: Authenticate,
        authorize: Authorize = desk_policy,
        audit: Audit | None = None,
        namespace: str = "/desk",
        settings: Mapping[str, Any] | None = None,
        rate: float = 20.0,
        burst: float = 40.0,
        rate_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(namespace)
        self.notifier = notifier
        self.rooms: RoomLog = notifier.rooms
        self.routing = routing
        self.customers = customers
        self.authenticate = authenticate
        self.authorize = authorize
        self.audit: Audit = audit if audit is not None else LogAudit()
        self.settings = dict(settings or {})
        self.rate = rate
        self.burst = burst
        self.rate_clock = rate_clock
        self.connections: dict[str, Connection] = {}
        self.rate_limited = 0
        self.refused = 0

    # -- connect / disconnect ------------------------------------------------

    async def on_connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        token, resume = self._parse_auth(auth)
        principal = await self.authenticate(token)
        if principal is None:
            self.refused += 1
            raise Refused("unauthorized")
        client_ip = _client_ip(environ)
        if not await self._allowed(principal, "desk.connect", None):
            self.refused += 1
            await self._record(principal, "desk.connect", None, "denied", client_ip)
            raise Refused("forbidden")
        supervisor = principal.role in SUPERVISOR_ROLES
        try:
            rooms = self.notifier.rooms_for(principal.id, supervisor)
        except RoutingError:
            self.refused += 1
            raise Refused("unknown_agent") from None
        conn = Connection(
            sid=sid,
            principal=principal,
            supervisor=supervisor,
            rooms=rooms,
            bucket=TokenBucket(self.rate, self.burst, self.rate_clock()),
            client_ip=client_ip,
        )
        if not supervisor:
            await self.notifier.prepare_agent(principal.id)
        self.connections[sid] = conn
        for room in rooms:
            await self.enter_room(sid, room)
        # From here to the emit nothing awaits: every envelope published later
        # has a greater seq than ``rooms`` in the hello, and reaches the
        # client after it.
        # A resume must name every room of this connection (its rooms may have
        # changed since): else a snapshot.
        wanted = None
        if resume is not None and set(rooms) <= set(resume[1]):
            wanted = {room: resume[1][room] for room in rooms}
        hello = {
            "principal": {"id": principal.id, "role": principal.role},
            "settings": self._settings(),
            **self._sync(conn, wanted, None if resume is None else resume[0]),
        }
        await self.emit("hello", hello, to=sid)
        log.info("desk: %s %s connected (%s)", principal.role, principal.id, sid)

    def _parse_auth(self, auth: Any) -> tuple[str, tuple[str | None, dict[str, int]] | None]:
        if not isinstance(auth, dict):
            self.refused += 1
            raise Refused("unauthorized")
        token = auth.get("token")
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
            self.refused += 1
            raise Refused("unauthorized")
        if set(auth) - AUTH_FIELDS:
            self.refused += 1
            raise Refused("invalid_auth")
        resume = auth.get("resume")
        if resume is None:
            return token, None
        try:
            if not isinstance(resume, dict) or set(resume) - {"epoch", "rooms"}:
                raise PayloadError("invalid_payload", "resume: expected {epoch, rooms}")
            room_seqs("resume.rooms", resume.get("rooms", {}))
            epoch = resume.get("epoch")
            if epoch is not None and not isinstance(epoch, str):
                raise PayloadError("invalid_payload", "resume.epoch: expected a string")
        except PayloadError:
            self.refused += 1
            raise Refused("invalid_auth") from None
        return token, (epoch, dict(resume.get("rooms", {})))

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self.connections.pop(sid, None)
        if conn is not None:
            log.info(
                "desk: %s %s disconnected (%s)", conn.principal.role, conn.principal.id, reason
            )

    # -- client events -------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid, payload = args[0], args[1:]
        try:
            return await self.client_event(sid, event, payload)
        except ErrorAck as exc:
            return exc.ack()
        except Exception:
            log.exception("desk: client event %r failed", event[:64])
            return ErrorAck("internal_error", "internal error; see the server log").ack()

    async def client_event(self, sid: str, event: str, args: tuple[Any, ...]) -> dict[str, Any]:
        conn = self.connections.get(sid)
        if conn is None:
            raise ErrorAck("unauthorized", "not connected")
        if not conn.bucket.take(self.rate_clock()):
            self.rate_limited += 1
            raise ErrorAck(
                "rate_limited",
                f"too many events: at most {self.rate:g} a second (bursts of {self.burst:g})",
            )
        try:
            payload = validate(event, args)
        except PayloadError as exc:
            raise ErrorAck(exc.code, exc.message) from None
        handler: Callable[[Connection, dict[str, Any]], Awaitable[dict[str, Any]]] = getattr(
            self, f"_do_{event}"
        )
        try:
            return await handler(conn, payload)
        except RoutingError as exc:
            raise _routing_error(exc) from None

    async def _do_set_state(self, conn: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        target = payload.get("agent_id", conn.principal.id)
        detail = {"state": payload["state"], "reason": payload.get("reason")}
        await self._check(conn, "agents.state", target, detail)
        await self._privileged(
            conn,
            "agents.state",
            target,
            detail,
            self.routing.set_agent_state(target, payload["state"], payload.get("reason")),
        )
        return {
            "ok": True,
            "agent": self.notifier.agent_view_json(self.routing.router.agent(target)),
        }

    async def _do_end_wrap_up(self, conn: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        target = payload.get("agent_id", conn.principal.id)
        await self._check(conn, "agents.state", target, {"end_wrap_up": True})
        await self._privileged(
            conn, "agents.state", target, {"end_wrap_up": True}, self.routing.end_wrap_up(target)
        )
        return {
            "ok": True,
            "agent": self.notifier.agent_view_json(self.routing.router.agent(target)),
        }

    async def _reservation(self, conn: Connection, verb: str, rid: str) -> dict[str, Any]:
        view = self.routing.router.reservation(rid)  # not_found for an unknown id
        action = f"reservations.{verb}"
        await self._check(conn, action, view.agent_id, {"reservation_id": rid})
        command = self.routing.accept(rid) if verb == "accept" else self.routing.reject(rid)
        await self._privileged(conn, action, view.agent_id, {"reservation_id": rid}, command)
        return {"ok": True, "reservation": to_json(self.routing.router.reservation(rid))}

    async def _do_accept(self, conn: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._reservation(conn, "accept", payload["reservation_id"])

    async def _do_reject(self, conn: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._reservation(conn, "reject", payload["reservation_id"])

    async def _do_resync(self, conn: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        requested: dict[str, int] = payload["rooms"]
        foreign = sorted(room for room in requested if room not in conn.rooms)
        if foreign:
            # Asking for another room's events is a refused read: audited as
            # the other refusals are (the first room names the subject).
            named = ", ".join(r[:100] for r in foreign)
            await self._record(
                conn.principal,
                "desk.resync",
                foreign[0][:100],
                "denied",
                conn.client_ip,
                {"rooms": [r[:100] for r in foreign[:10]], "via": "desk"},
            )
            raise ErrorAck("forbidden", f"not in room(s): {named}")
        if not conn.supervisor:
            await self.notifier.prepare_agent(conn.principal.id)
        return {"ok": True, **self._sync(conn, requested, payload.get("epoch"))}

    async def _do_search_customers(
        self, conn: Connection, payload: dict[str, Any]
    ) -> dict[str, Any]:
        await self._check(conn, "customers.search", None, {})
        found = await self.customers.search(payload["text"], limit=payload.get("limit", 20))
        return {"ok": True, "customers": [customer_json(c) for c in found]}

    # -- helpers ------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        """What the pages need to know of the configuration: the wrap-up codes,
        and the queues a call may be transferred to."""
        queues = [
            {"id": q, "name": self.notifier._queue_name(q)} for q in self.routing.router.queue_ids()
        ]
        return {**self.settings, "queues": queues}

    def _sync(
        self, conn: Connection, requested: dict[str, int] | None, epoch: str | None
    ) -> dict[str, Any]:
        """What the client missed since ``requested``, or a fresh snapshot.
        ``rooms``: the seqs this brings the client up to (the requested rooms
        for a replay, every room of the connection with a snapshot).
        Synchronous: the seqs and the snapshot or replay are of one instant."""
        now = self.notifier.clock()
        base: dict[str, Any] = {"epoch": self.rooms.epoch, "now": now}
        if requested is not None and epoch in (None, self.rooms.epoch):
            missed = self.rooms.since_many(requested, now)
            if missed is not None:
                return {
                    **base,
                    "rooms": self.rooms.seqs(list(requested)),
                    "missed": [e.to_json() for e in missed],
                }
        base["rooms"] = self.rooms.seqs(conn.rooms)
        if conn.supervisor:
            snapshot = self.notifier.supervisor_snapshot(now)
        else:
            snapshot = self.notifier.agent_snapshot(conn.principal.id, now)
        return {**base, "snapshot": snapshot}

    async def _allowed(self, principal: Principal, action: str, subject: str | None) -> bool:
        result = self.authorize(principal, action, subject)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    async def _check(
        self, conn: Connection, action: str, subject: str | None, detail: dict[str, Any]
    ) -> None:
        if await self._allowed(conn.principal, action, subject):
            return
        await self._record(conn.principal, action, subject, "denied", conn.client_ip, detail)
        raise ErrorAck(
            "forbidden", f"{conn.principal.role} {conn.principal.id} may not {action} {subject}"
        )

    async def _privileged(
        self,
        conn: Connection,
        action: str,
        subject: str | None,
        detail: dict[str, Any],
        command: Awaitable[Any],
    ) -> None:
        try:
            await command
        except Exception as exc:
            await self._record(
                conn.principal,
                action,
                subject,
                "failed",
                conn.client_ip,
                {**detail, "error": type(exc).__name__, "via": "desk"},
            )
            raise
        await self._record(
            conn.principal, action, subject, "allowed", conn.client_ip, {**detail, "via": "desk"}
        )

    async def _record(
        self,
        principal: Principal,
        action: str,
        subject: str | None,
        outcome: str,
        client_ip: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        try:
            await self.audit.record(
                actor=principal,
                action=action,
                outcome=outcome,
                subject=subject,
                detail=detail or {"via": "desk"},
                client_ip=client_ip,
            )
        except Exception:
            log.exception("desk: audit record for %s failed", action)


def _client_ip(environ: Mapping[str, Any]) -> str | None:
    request = environ.get("aiohttp.request")
    remote = getattr(request, "remote", None)
    if isinstance(remote, str):
        return remote
    addr = environ.get("REMOTE_ADDR")
    return addr if isinstance(addr, str) else None
