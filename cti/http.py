"""HTTP routes for calls: thin (parse, call the service, dump).

Authentication is not decided here: the composition root puts a middleware in
front that sets ``request["principal"]`` or answers 401, and may pass an
``authorize(request, action, call)`` hook that raises ``HTTPForbidden``; the
default allows every authenticated principal.

Request keys tie the routes to that hook without importing it: the hook
may set ``OWN_DEVICE`` (the logged-in agent's own extension: the phone a spy
session rings unless the body names another), and a route may set
``AUDIT_DETAIL`` (facts the audit row of the request should carry, such as a
spy session's mode). For ``calls.list`` it may set ``CALL_SCOPE``: the calls
this principal may see out of every active call (an agent: the calls they
are on); absent, the list is every active call.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from aiohttp import web

from cti.calls.model import Call, ChannelInfo, Party
from cti.calls.service import SPY_MODES, CallService, OutcomeUnknown, SpySession
from cti.errors import (
    ActionFailed,
    ActionTimeout,
    CtiError,
    InvalidRequest,
    LinkLost,
    LocalProtocolError,
    NotConnected,
    UnknownCall,
    WrongState,
)

__all__ = [
    "AUDIT_DETAIL",
    "CALL_SCOPE",
    "OWN_DEVICE",
    "Authorize",
    "call_to_json",
    "error_response",
    "read_json_object",
    "routes",
    "spy_to_json",
]

Authorize = Callable[[web.Request, str, Call | None], Awaitable[None]]
OWN_DEVICE: Final = web.RequestKey("own_device", str)
AUDIT_DETAIL: Final = web.RequestKey("audit_detail", dict[str, Any])
CallScope = Callable[[Sequence[Call]], Awaitable[list[Call]]]
CALL_SCOPE: Final[web.RequestKey[CallScope]] = web.RequestKey("call_scope")


async def _allow(request: web.Request, action: str, call: Call | None) -> None:
    return None


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _party(party: Party) -> dict[str, str | None]:
    return {"number": party.number, "name": party.name}


def _channel(ch: ChannelInfo) -> dict[str, Any]:
    return {
        "name": ch.name,
        "uniqueid": ch.uniqueid,
        "state": ch.state,
        "device": ch.device,
        "caller": _party(ch.caller),
        "connected": _party(ch.connected),
        "context": ch.context,
        "exten": ch.exten,
        "bridge_id": ch.bridge_id,
        "on_hold": ch.on_hold,
    }


def call_to_json(call: Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "state": call.state.value,
        "caller": _party(call.caller),
        "callee": _party(call.callee),
        "started_at": call.started_at,
        "ringing_at": call.ringing_at,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "hangup_cause": call.hangup_cause,
        "hangup_cause_text": call.hangup_cause_text,
        "bridged": call.bridged,
        "held": call.held,
        "recording": call.recording,
        "transferred_to": call.transferred_to,
        "queue": call.queue,
        "context": call.context,
        "exten": call.exten,
        "channels": [_channel(ch) for ch in call.channels],
    }


def spy_to_json(session: SpySession) -> dict[str, Any]:
    return {
        "spy_id": session.spy_id,
        "call_id": session.call_id,
        "mode": session.mode,
        "device": session.device,
        "spied_channel": session.spied_channel,
        "spy_channel": session.spy_channel,
        "started": session.started,
    }


def map_cti_error(exc: CtiError) -> web.Response:
    """A call-control failure as the JSON error the call API answers (status by kind)."""
    if isinstance(exc, InvalidRequest | LocalProtocolError):
        return error_response(400, "invalid_request", str(exc))
    if isinstance(exc, UnknownCall):
        return error_response(404, "unknown_call", str(exc))
    if isinstance(exc, WrongState):
        return error_response(409, "wrong_state", str(exc))
    if isinstance(exc, OutcomeUnknown):
        return error_response(409, "outcome_unknown", str(exc))
    if isinstance(exc, ActionFailed):
        return error_response(409, "pbx_refused", exc.message)
    if isinstance(exc, NotConnected):
        return error_response(503, "pbx_not_connected", str(exc))
    if isinstance(exc, LinkLost):
        return error_response(502, "pbx_link_lost", str(exc))
    if isinstance(exc, ActionTimeout):
        return error_response(504, "pbx_timeout", str(exc))
    return error_response(500, "cti_error", str(exc))


async def read_json_object(
    request: web.Request, invalid: Callable[[str], Exception] = InvalidRequest
) -> dict[str, Any]:
    """The request body as a JSON object ({} without a body); anything else
    raises ``invalid(message)`` naming the problem. Shared by every API module."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise invalid(f"body: expected JSON ({exc.msg} at position {exc.pos})") from None
    except UnicodeDecodeError:
        raise invalid("body: expected UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise invalid("body: expected a JSON object")
    return data


_KEY_REQUIRED = "idempotency_key: required (in the body or an Idempotency-Key header)"


def _key(request: web.Request, body: dict[str, Any]) -> Any:
    return body.get("idempotency_key") or request.headers.get("Idempotency-Key")


def routes(service: CallService, authorize: Authorize = _allow) -> list[web.RouteDef]:
    Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

    def guarded(fn: Handler) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await fn(request)
            except CtiError as exc:
                return map_cti_error(exc)

        return handler

    async def list_calls(request: web.Request) -> web.StreamResponse:
        await authorize(request, "calls.list", None)
        calls = service.calls()
        scope = request.get(CALL_SCOPE)
        if scope is not None:
            calls = await scope(calls)
        return web.json_response({"calls": [call_to_json(c) for c in calls]})

    async def get_call(request: web.Request) -> web.StreamResponse:
        call = service.get(request.match_info["call_id"])
        await authorize(request, "calls.read", call)
        return web.json_response(call_to_json(call))

    async def originate(request: web.Request) -> web.StreamResponse:
        body = await read_json_object(request)
        await authorize(request, "calls.originate", None)
        for name in ("agent_device", "number"):
            if name not in body:
                raise InvalidRequest(f"{name}: required")
        key = _key(request, body)
        if key is None:
            raise InvalidRequest(_KEY_REQUIRED)
        result = await service.originate(
            body["agent_device"],
            body["number"],
            idempotency_key=key,
            caller_id=body.get("caller_id") if isinstance(body.get("caller_id"), str) else None,
        )
        return web.json_response(
            {
                "status": "dialing",
                "agent_device": result.agent_device,
                "number": result.number,
                "idempotency_key": result.idempotency_key,
                "repeated": result.repeated,
            },
            status=200 if result.repeated else 202,
        )

    async def hangup(request: web.Request) -> web.StreamResponse:
        call = service.get(request.match_info["call_id"])
        await authorize(request, "calls.hangup", call)
        await service.hangup(call.id)
        return web.json_response({"status": "hanging_up", "call_id": call.id}, status=202)

    async def transfer(request: web.Request) -> web.StreamResponse:
        body = await read_json_object(request)
        call = service.get(request.match_info["call_id"])
        await authorize(request, "calls.transfer", call)
        if "target" not in body and body.get("to") != "payment":
            raise InvalidRequest("target: required")
        key = _key(request, body)
        if key is None:
            raise InvalidRequest(_KEY_REQUIRED)
        result = await service.transfer(
            call.id,
            body.get("target", ""),
            kind=body.get("kind", "blind"),
            to=body.get("to", "agent"),
            idempotency_key=key,
        )
        return web.json_response(
            {
                "status": "transferring",
                "call_id": call.id,
                "kind": result.kind,
                "target": result.target,
                "repeated": result.repeated,
            },
            status=200 if result.repeated else 202,
        )

    async def complete_transfer(request: web.Request) -> web.StreamResponse:
        call = service.get(request.match_info["call_id"])
        await authorize(request, "calls.transfer", call)
        await service.complete_transfer(call.id)
        return web.json_response({"status": "completing", "call_id": call.id}, status=202)

    async def cancel_transfer(request: web.Request) -> web.StreamResponse:
        call = service.get(request.match_info["call_id"])
        await authorize(request, "calls.transfer", call)
        await service.cancel_transfer(call.id)
        return web.json_response({"status": "cancelling", "call_id": call.id}, status=202)

    async def hold(request: web.Request) -> web.StreamResponse:
        body = await read_json_object(request)
        call = service.get(request.match_info["call_id"])
        await authorize(request, "calls.hold", call)
        on = body.get("hold", True)
        if not isinstance(on, bool):
            raise InvalidRequest("hold: expected true or false")
        if on:
            await service.hold(call.id)
        else:
            await service.unhold(call.id)
        return web.json_response(
            {"status": "holding" if on else "resuming", "call_id": call.id}, status=202
        )

    async def unhold(request: web.Request) -> web.StreamResponse:
        call = service.get(request.match_info["call_id"])
        await authorize(request, "calls.hold", call)
        await service.unhold(call.id)
        return web.json_response({"status": "resuming", "call_id": call.id}, status=202)

    def _spy_device(request: web.Request, body: dict[str, Any]) -> Any:
        device = body.get("device")
        if device is None:
            device = request.get(OWN_DEVICE)
            if not device:
                raise InvalidRequest("device: required (this login has no extension of its own)")
        return device

    async def spy(request: web.Request) -> web.StreamResponse:
        body = await read_json_object(request)
        call = service.get(request.match_info["call_id"])
        await authorize(request, "calls.spy", call)
        mode = body.get("mode")
        if not isinstance(mode, str) or mode not in SPY_MODES:
            raise InvalidRequest(f"mode: expected one of {', '.join(SPY_MODES)}")
        request[AUDIT_DETAIL] = {"mode": mode}
        device = _spy_device(request, body)
        request[AUDIT_DETAIL] = {"mode": mode, "device": device}
        key = _key(request, body)
        if key is None:
            raise InvalidRequest(_KEY_REQUIRED)
        session = await service.spy(call.id, device, mode, idempotency_key=key)
        return web.json_response(
            {"status": "connecting", **spy_to_json(session), "repeated": session.repeated},
            status=200 if session.repeated else 202,
        )

    async def stop_spy(request: web.Request) -> web.StreamResponse:
        body = await read_json_object(request)
        call = service.get(request.match_info["call_id"])
        await authorize(request, "calls.spy", call)
        device = _spy_device(request, body)
        request[AUDIT_DETAIL] = {"device": device}
        stopped = await service.stop_spy(call.id, device)
        return web.json_response(
            {"status": "stopping", "call_id": call.id, "spy_ids": stopped}, status=202
        )

    async def list_spies(request: web.Request) -> web.StreamResponse:
        """Listen/whisper/barge sessions running or ringing, everyone's."""
        await authorize(request, "calls.spy", None)
        return web.json_response({"spies": [spy_to_json(s) for s in service.spies()]})

    return [
        web.get("/api/calls", guarded(list_calls)),
        web.post("/api/calls", guarded(originate)),
        web.get("/api/calls/{call_id}", guarded(get_call)),
        web.post("/api/calls/{call_id}/hangup", guarded(hangup)),
        web.post("/api/calls/{call_id}/transfer", guarded(transfer)),
        web.post("/api/calls/{call_id}/transfer/complete", guarded(complete_transfer)),
        web.post("/api/calls/{call_id}/transfer/cancel", guarded(cancel_transfer)),
        web.post("/api/calls/{call_id}/hold", guarded(hold)),
        web.post("/api/calls/{call_id}/unhold", guarded(unhold)),
        web.post("/api/calls/{call_id}/spy", guarded(spy)),
        web.post("/api/calls/{call_id}/spy/stop", guarded(stop_spy)),
        web.get("/api/spies", guarded(list_spies)),
    ]
