"""HTTP routes for recording control on a live call (thin: parse, authorize,
call ``RecordingControl``, dump):

* ``GET /api/calls/{call_id}/recording``: the call's recording state
  (``recordings.state``);
* ``POST /api/calls/{call_id}/recording/pause`` and ``.../resume``
  (``recordings.control``), body optional: ``{"source": "desk" | "api"}``
  (default ``api``; the IVR pauses through ``RecordingControl.pause_for``).

Both actions are ``own("call")``: supervisors and admins, and the agent on the
call. Answers: 200 with the state (see ``recordings.control``); 409
``not_recording`` / ``already_paused`` / ``not_paused`` (nothing changed);
400 for a bad body; PBX errors as the call API maps them. The audit
middleware writes a row for every pause and resume (allowed or not).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from cti.errors import (
    CtiError,
    InvalidRequest,
)
from cti.http import error_response, map_cti_error, read_json_object
from recordings.control import (
    AlreadyPaused,
    NotPaused,
    NotRecording,
    RecordingControl,
    RecordingControlError,
)

__all__ = ["control_routes"]

Authorize = Callable[[web.Request, str, Any], Awaitable[None]]
PrincipalId = Callable[[web.Request], "str | None"]
REST_SOURCES: Final = ("desk", "api")
_CALL_ID_MAX: Final = 64


def _call_id(request: web.Request) -> str:
    call_id = request.match_info["call_id"]
    if not call_id or len(call_id) > _CALL_ID_MAX:
        raise InvalidRequest("call_id: expected a call id")
    return call_id


def _control_error(exc: RecordingControlError) -> web.Response:
    if isinstance(exc, NotRecording):
        return error_response(409, "not_recording", str(exc))
    if isinstance(exc, AlreadyPaused):
        return error_response(409, "already_paused", str(exc))
    if isinstance(exc, NotPaused):
        return error_response(409, "not_paused", str(exc))
    return error_response(409, "recording_error", str(exc))


def control_routes(
    control: RecordingControl, authorize: Authorize, principal_id: PrincipalId
) -> list[web.RouteDef]:
    async def get_state(request: web.Request) -> web.StreamResponse:
        try:
            call_id = _call_id(request)
        except CtiError as exc:
            return map_cti_error(exc)
        await authorize(request, "recordings.state", call_id)
        return web.json_response(await control.state(call_id))

    def change(pause: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                call_id = _call_id(request)
                body = await read_json_object(request)
                await authorize(request, "recordings.control", call_id)
                unknown = set(body) - {"source"}
                if unknown:
                    raise InvalidRequest(f"{sorted(unknown)[0]}: unknown field")
                source = body.get("source", "api")
                if source not in REST_SOURCES:
                    raise InvalidRequest("source: expected 'desk' or 'api'")
                act = control.pause if pause else control.resume
                data = await act(call_id, source=source, actor_id=principal_id(request))
            except RecordingControlError as exc:
                return _control_error(exc)
            except CtiError as exc:
                return map_cti_error(exc)
            return web.json_response(data)

        return handler

    return [
        web.get("/api/calls/{call_id}/recording", get_state),
        web.post("/api/calls/{call_id}/recording/pause", change(True)),
        web.post("/api/calls/{call_id}/recording/resume", change(False)),
    ]
