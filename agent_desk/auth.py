"""Logins and sessions.

* Passwords: argon2id hashes in the agents table (``AgentRepository.set_password``
  / ``verify_password``).
* Sessions: ``Sessions`` signs ``{agent id, role, token version}`` with
  itsdangerous (HMAC-SHA1 over the payload and a timestamp, keyed by
  ``[api] signing_key``) and refuses a token older than ``session_seconds``.
  A token is also refused once the agent's ``token_version`` has moved on
  (password changed, deactivated, role changed, logged out): every check reads
  the agent's row, so revocation is immediate and survives restarts.
* ``SessionAuthenticator`` (the ``callwright.app.Authenticator`` seam) takes
  ``Authorization: Bearer <session token>``, or the configured API token as the
  service principal ``Principal("api-token", "admin")`` for automation.
  ``authenticate_token(token)`` is the same check for the Socket.IO connect.
* ``LoginLimiter``: failed logins per username and per client address in a
  sliding window (pure: the clock is an argument); once either is over its
  limit, logins answer 429 with Retry-After without checking the password.
* Routes: ``POST /api/login``, ``POST /api/logout`` (ends every session of the
  agent: the token version moves on), ``GET /api/session``,
  ``POST /api/account/password`` (one's own, with the current password),
  ``POST /api/agents/{id}/password`` and ``POST /api/agents/{id}/active``
  (admins).
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from aiohttp import web
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from agent_desk.audit import AuditLog
from callwright.app import PRINCIPAL, Principal
from routing.persistence import Agent, AgentRepository, check_password
from store.errors import NotFoundError

__all__ = [
    "AUDITED",
    "AUTH_FAILURE",
    "SERVICE_PRINCIPAL",
    "AgentPrincipal",
    "LoginLimiter",
    "SessionAuthenticator",
    "Sessions",
    "TokenClaims",
    "TokenRejected",
    "agent_json",
    "auth_routes",
    "bearer_token",
    "client_ip",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentPrincipal(Principal):
    """A logged-in agent (any role): what the policy needs about them."""

    username: str
    display_name: str
    extension: str


SERVICE_PRINCIPAL: Final = Principal(id="api-token", role="admin")


# -- tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class TokenClaims:
    agent_id: int
    role: str
    version: int
    issued_at: float


class TokenRejected(Exception):
    """``reason``: ``invalid`` (forged, malformed, other key), ``expired``, or
    ``revoked`` (the agent's token version moved on, the agent is inactive or
    gone). ``agent_id`` when the signature was good."""

    def __init__(self, reason: Literal["invalid", "expired", "revoked"], agent_id: str | None):
        super().__init__(reason)
        self.reason = reason
        self.agent_id = agent_id


class Sessions:
    """Signed, expiring session tokens. ``clock`` returns epoch seconds."""

    SALT: Final = "callwright.session.v1"

    def __init__(
        self,
        signing_key: str,
        *,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not signing_key:
            raise ValueError("a signing key is required for session tokens")
        self.max_age = int(max_age)
        self.clock = clock

        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self._serializer = URLSafeTimedSerializer(signing_key, salt=self.SALT, signer=_Signer)

    def issue(self, agent: Agent) -> tuple[str, float]:
        """A token for ``agent`` and when it expires (epoch seconds)."""
        issued = int(self.clock())
        token = self._serializer.dumps({"a": agent.id, "r": agent.role, "v": agent.token_version})
        return token, float(issued + self.max_age)

    def read(self, token: str) -> TokenClaims:
        """The claims of a well-signed, unexpired token; else TokenRejected."""
        try:
            payload, issued = self._serializer.loads(
                token, max_age=self.max_age, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise TokenRejected("expired", _agent_id_of(exc.payload, self._serializer)) from None
        except BadSignature:
            raise TokenRejected("invalid", None) from None
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("a"), int)
            or not isinstance(payload.get("r"), str)
            or not isinstance(payload.get("v"), int)
        ):
            raise TokenRejected("invalid", None)
        return TokenClaims(
            agent_id=payload["a"],
            role=payload["r"],
            version=payload["v"],
            issued_at=issued.timestamp(),
        )


def _agent_id_of(payload: Any, serializer: URLSafeTimedSerializer) -> str | None:
    try:
        data = serializer.load_payload(payload)
    except BadSignature:
        return None
    if isinstance(data, dict) and isinstance(data.get("a"), int):
        return str(data["a"])
    return None


def bearer_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


def client_ip(request: web.Request) -> str | None:
    """The peer address. Behind a reverse proxy this is the proxy: X-Forwarded-For
    is not trusted (any client can send it)."""
    return request.remote


AUTH_FAILURE: Final = web.RequestKey("auth_failure", TokenRejected)
AUDITED: Final = web.RequestKey("audited", bool)


async def record_allowed(
    audit: AuditLog, request: web.Request, action: str, subject: str, detail: dict[str, Any]
) -> None:
    """A route's own audit row for an action it carried out (with facts the audit
    middleware cannot know, such as the fields changed), marking the request audited so
    the middleware does not write a second row. A store failure is logged, not raised:
    the action has happened."""
    try:
        await audit.record(
            actor=request.get(PRINCIPAL),
            action=action,
            outcome="allowed",
            subject=subject,
            detail={"method": request.method, "path": request.path, **detail},
            client_ip=client_ip(request),
        )
    except Exception:
        log.exception("audit row not written: %s on %s (%s)", action, subject, detail)
    request[AUDITED] = True


class SessionAuthenticator:
    """``callwright.app.Authenticator``: session tokens, and the API token."""

    def __init__(self, agents: AgentRepository, sessions: Sessions, api_token: str = "") -> None:
        self.agents = agents
        self.sessions = sessions
        self._api_token = api_token.encode("utf-8")

    async def authenticate(self, request: web.Request) -> Principal | None:
        token = bearer_token(request)
        if token is None:
            return None
        try:
            return await self.check(token)
        except TokenRejected as rejected:
            request[AUTH_FAILURE] = rejected
            return None

    async def authenticate_token(self, token: str) -> Principal | None:
        """The principal a token stands for, or None (Socket.IO connect)."""
        try:
            return await self.check(token)
        except TokenRejected:
            return None

    async def check(self, token: str) -> Principal:
        """The principal, or TokenRejected saying why not."""
        if self._api_token and hmac.compare_digest(token.encode("utf-8"), self._api_token):
            return SERVICE_PRINCIPAL
        claims = self.sessions.read(token)
        agent = await self.agents.get(claims.agent_id)
        if (
            agent is None
            or not agent.active
            or agent.token_version != claims.version
            or agent.role != claims.role
        ):
            raise TokenRejected("revoked", str(claims.agent_id))
        return principal_of(agent)

    def issue(self, agent: Agent) -> tuple[str, float]:
        return self.sessions.issue(agent)


def principal_of(agent: Agent) -> AgentPrincipal:
    return AgentPrincipal(
        id=str(agent.id),
        role=agent.role,
        username=agent.username,
        display_name=agent.display_name,
        extension=agent.extension,
    )


def agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "id": str(agent.id),
        "username": agent.username,
        "display_name": agent.display_name,
        "role": agent.role,
        "extension": agent.extension,
    }


# -- login rate limiting (pure) -------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """A login attempt under way, counted as a failure until it succeeds."""

    user_key: str
    ip_key: str
    at: float


@dataclass(frozen=True)
class Locked:
    retry_after: float  # seconds
    by: Literal["username", "ip"]


class LoginLimiter:
    """At most ``max_failures`` failed logins per username and ``ip_max_failures``
    per client address within ``window`` seconds (a sliding window). An attempt
    counts as failed from the moment it starts (two concurrent guesses cannot
    both slip under the limit) until ``succeeded`` forgives it; a success also
    clears the username's failures, not the address's. At most ``max_keys``
    usernames and addresses are tracked (the stalest are dropped first)."""

    def __init__(
        self,
        *,
        max_failures: int = 5,
        ip_max_failures: int = 20,
        window: float = 300.0,
        max_keys: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.ip_max_failures = ip_max_failures
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    @staticmethod
    def _user_key(username: str) -> str:
        return "user:" + username.strip().lower()[:200]

    def _recent(self, key: str, now: float) -> deque[float]:
        entries = self._failures.get(key)
        if entries is None:
            return deque()
        while entries and entries[0] <= now - self.window:
            entries.popleft()
        if not entries:
            del self._failures[key]
        return entries

    def begin(self, username: str, ip: str | None, now: float) -> Attempt | Locked:
        user_key = self._user_key(username)
        ip_key = f"ip:{ip or '?'}"
        waits: list[tuple[float, Literal["username", "ip"]]] = []
        user_recent = self._recent(user_key, now)
        if len(user_recent) >= self.max_failures:
            # Allowed again when enough of the oldest failures leave the window.
            waits.append((user_recent[-self.max_failures] + self.window - now, "username"))
        ip_recent = self._recent(ip_key, now)
        if len(ip_recent) >= self.ip_max_failures:
            waits.append((ip_recent[-self.ip_max_failures] + self.window - now, "ip"))
        if waits:
            wait, by = max(waits)
            return Locked(retry_after=max(wait, 1.0), by=by)
        for key in (user_key, ip_key):
            self._failures.setdefault(key, deque()).append(now)
            # Move to the end: dicts keep insertion order, the front is the stalest.
            self._failures[key] = self._failures.pop(key)
        while len(self._failures) > self.max_keys:
            del self._failures[next(iter(self._failures))]
        return Attempt(user_key, ip_key, now)

    def succeeded(self, attempt: Attempt) -> None:
        self._failures.pop(attempt.user_key, None)
        entries = self._failures.get(attempt.ip_key)
        if entries is not None:
            try:
                entries.remove(attempt.at)
            except ValueError:
                pass
            if not entries:
                del self._failures[attempt.ip_key]


# -- routes ---------------------------------------------------------------------

Authorize = Callable[[web.Request, str, Any], Awaitable[None]]
OnDeactivated = Callable[[str], Awaitable[None]]
MAX_USERNAME: Final = 64
MAX_PASSWORD_INPUT: Final = 1024


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"error": code, "message": message}, status=status, headers=headers or None
    )


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def auth_routes(
    authenticator: SessionAuthenticator,
    audit: AuditLog,
    authorize: Authorize,
    *,
    limiter: LoginLimiter | None = None,
    on_deactivated: OnDeactivated | None = None,
) -> list[web.RouteDef]:
    agents = authenticator.agents
    limiter = limiter if limiter is not None else LoginLimiter()
    clock = authenticator.sessions.clock

    def session_body(agent: Agent) -> dict[str, Any]:
        token, expires = authenticator.issue(agent)
        return {"token": token, "expires_at": _iso(expires), "agent": agent_json(agent)}

    async def login(request: web.Request) -> web.StreamResponse:
        request[AUDITED] = True
        body = await _json_object(request)
        username = None if body is None else body.get("username")
        password = None if body is None else body.get("password")
        if (
            not isinstance(username, str)
            or not isinstance(password, str)
            or not username.strip()
            or len(username) > MAX_USERNAME
            or len(password) > MAX_PASSWORD_INPUT
        ):
            return _error(
                400,
                "invalid_request",
                f"expected a JSON object with username (1-{MAX_USERNAME} characters) and "
                f"password (at most {MAX_PASSWORD_INPUT})",
            )
        ip = client_ip(request)
        subject = username.strip()
        attempt = limiter.begin(username, ip, clock())
        if isinstance(attempt, Locked):
            retry = math.ceil(attempt.retry_after)
            await audit.record(
                actor=None,
                action="auth.login",
                outcome="denied",
                subject=subject,
                detail={"reason": "locked", "locked_by": attempt.by, "retry_after": retry},
                client_ip=ip,
            )
            log.warning("login for %r from %s locked out (%s)", subject, ip, attempt.by)
            return web.json_response(
                {
                    "error": "too_many_attempts",
                    "message": f"too many failed logins; try again in {retry} s",
                    "retry_after": retry,
                },
                status=429,
                headers={"Retry-After": str(retry)},
            )
        agent = await agents.verify_password(username, password)
        if agent is None:
            await audit.record(
                actor=None,
                action="auth.login",
                outcome="failed",
                subject=subject,
                detail={"reason": "bad_credentials"},
                client_ip=ip,
            )
            log.info("failed login for %r from %s", subject, ip)
            return _error(401, "invalid_credentials", "wrong username or password")
        limiter.succeeded(attempt)
        await audit.record(
            actor=principal_of(agent),
            action="auth.login",
            outcome="allowed",
            subject=subject,
            client_ip=ip,
        )
        return web.json_response(session_body(agent))

    async def logout(request: web.Request) -> web.StreamResponse:
        await authorize(request, "auth.logout", None)
        principal = request[PRINCIPAL]
        if not isinstance(principal, AgentPrincipal):
            return _error(400, "invalid_request", "the API token has no session to end")
        await agents.revoke_sessions(int(principal.id))
        return web.json_response({"status": "logged_out"})

    async def session(request: web.Request) -> web.StreamResponse:
        await authorize(request, "session.read", None)
        principal = request[PRINCIPAL]
        if not isinstance(principal, AgentPrincipal):
            return web.json_response({"principal": {"id": principal.id, "role": principal.role}})
        agent = await agents.get(int(principal.id))
        assert agent is not None  # authenticated a moment ago
        return web.json_response(
            {"principal": {"id": principal.id, "role": principal.role}, "agent": agent_json(agent)}
        )

    async def change_own_password(request: web.Request) -> web.StreamResponse:
        await authorize(request, "account.password", None)
        principal = request[PRINCIPAL]
        if not isinstance(principal, AgentPrincipal):
            return _error(400, "invalid_request", "the API token has no password")
        body = await _json_object(request)
        current = None if body is None else body.get("current_password")
        new = None if body is None else body.get("new_password")
        if not isinstance(current, str) or not isinstance(new, str):
            return _error(
                400, "invalid_request", "expected current_password and new_password (strings)"
            )
        if len(current) > MAX_PASSWORD_INPUT or (
            await agents.verify_password(principal.username, current) is None
        ):
            return _error(400, "wrong_password", "current_password: wrong password")
        try:
            agent = await agents.set_password(int(principal.id), new)
        except ValueError as exc:
            return _error(400, "invalid_request", str(exc))
        # The old token is revoked with every other session; here is a new one.
        return web.json_response(session_body(agent))

    def agent_id_of(request: web.Request) -> int:
        try:
            return int(request.match_info["agent_id"])
        except ValueError:
            raise web.HTTPNotFound() from None

    async def set_password(request: web.Request) -> web.StreamResponse:
        await authorize(request, "agents.manage", request.match_info["agent_id"])
        agent_id = agent_id_of(request)
        body = await _json_object(request)
        password = None if body is None else body.get("password")
        try:
            agent = await agents.set_password(agent_id, check_password(password))
        except ValueError as exc:
            return _error(400, "invalid_request", str(exc))
        except NotFoundError:
            return _error(404, "unknown_agent", f"no agent {agent_id}")
        return web.json_response({"agent": agent_json(agent), "sessions_revoked": True})

    async def set_active(request: web.Request) -> web.StreamResponse:
        await authorize(request, "agents.manage", request.match_info["agent_id"])
        agent_id = agent_id_of(request)
        body = await _json_object(request)
        active = None if body is None else body.get("active")
        if not isinstance(active, bool):
            return _error(400, "invalid_request", "active: expected true or false")
        try:
            agent = await agents.update(agent_id, active=active)
        except NotFoundError:
            return _error(404, "unknown_agent", f"no agent {agent_id}")
        if not active and on_deactivated is not None:
            await on_deactivated(str(agent.id))
        return web.json_response({"agent": agent_json(agent) | {"active": agent.active}})

    return [
        web.post("/api/login", login),
        web.post("/api/logout", logout),
        web.get("/api/session", session),
        web.post("/api/account/password", change_own_password),
        web.post("/api/agents/{agent_id}/password", set_password),
        web.post("/api/agents/{agent_id}/active", set_active),
    ]
