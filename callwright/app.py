"""The aiohttp application: health, the call API, and the authentication seam.

``Authenticator`` is the authentication seam: the runtime plugs in
``agent_desk.auth.SessionAuthenticator`` (agents' session tokens, and the API
token from ``[api] token``/``token_env`` as an admin service principal);
``TokenAuthenticator`` alone accepts just the API token. Roles and the audit
log are middlewares around it (``agent_desk.authorization``). ``/healthz`` and
``/api/login`` are public; ``/healthz`` reveals no call data.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy import exc as sa_exc

from cti.http import error_response
from cti.http import routes as call_routes

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Principal:
    id: str
    role: str  # "agent" | "supervisor" | "admin" | "service"


class Authenticator(Protocol):
    async def authenticate(self, request: web.Request) -> Principal | None: ...


class TokenAuthenticator:
    """``Authorization: Bearer <token>`` against one configured token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("utf-8")

    async def authenticate(self, request: web.Request) -> Principal | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value or not self._token:
            return None
        if hmac.compare_digest(value.strip().encode("utf-8"), self._token):
            return Principal(id="api-token", role="admin")
        return None


PRINCIPAL = web.RequestKey("principal", Principal)

# /socket.io/: the desk authenticates in its connect handler (agent_desk/namespace.py).
# /recordings/media/: the signed token in the path is the credential (recordings/playback.py).
PUBLIC_PREFIXES = ("/healthz", "/static/", "/socket.io/", "/desk/static/", "/recordings/media/")
# /desk, /wallboard, /interactions and /desk/static/: the pages log in themselves
# (agent_desk/http.py).
# /twilio/*: Twilio has no token; each route checks the request's
# X-Twilio-Signature itself (cti/twilio_webhooks.py) and refuses (403) without it
# (recordings/twilio.py: recording status; ivr/twilio.py: voice, status, wait).
PUBLIC_PATHS = (
    "/",
    "/api/login",
    "/desk",
    "/wallboard",
    "/interactions",
    "/twilio/recording-status",
    "/twilio/voice",
    "/twilio/status",
    "/twilio/wait",
)


def auth_middleware(authenticator: Authenticator) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return await handler(request)
        principal = await authenticator.authenticate(request)
        if principal is None:
            return error_response(401, "unauthenticated", "a valid bearer token is required")
        request[PRINCIPAL] = principal
        return await handler(request)

    return middleware


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own errors (404, 405, 413) as JSON on /api/."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        reason = exc.reason
        if exc.status == 413:
            reason = "request body too large"
        return error_response(exc.status, reason.lower().replace(" ", "_"), reason)
    except sa_exc.TimeoutError:
        # Every store connection busy for the pool's whole timeout: overload,
        # not a fault. The client is told to come back (1,000 agents polling
        # the API once a second got there; bench/RESULTS.md).
        if not request.path.startswith("/api/"):
            raise
        log.warning("store busy: %s %s refused with 503", request.method, request.path)
        response = error_response(503, "busy", "the server is busy; retry in a few seconds")
        response.headers["Retry-After"] = "5"
        return response
    except Exception:
        if not request.path.startswith("/api/"):
            raise
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the server log")


HealthFn = Callable[[], Awaitable[dict[str, Any]]]
Middleware = Callable[..., Awaitable[web.StreamResponse]]


def build_app(
    *,
    health: HealthFn,
    call_service: Any,
    authenticator: Authenticator,
    authorize: Callable[[web.Request, str, Any], Awaitable[None]] | None = None,
    before_auth: Sequence[Middleware] = (),
    after_auth: Sequence[Middleware] = (),
    max_body: int = 64 * 1024,
) -> web.Application:
    """``authorize``: the call routes' hook; ``before_auth``/``after_auth``:
    middlewares around authentication (the audit log, the route policy)."""
    app = web.Application(
        middlewares=[json_errors, *before_auth, auth_middleware(authenticator), *after_auth],
        client_max_size=max_body,
    )

    async def healthz(request: web.Request) -> web.Response:
        body = await health()
        return web.json_response(body, status=200 if body["status"] != "down" else 503)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    app.add_routes(
        call_routes(call_service) if authorize is None else call_routes(call_service, authorize)
    )
    return app
