"""Playback: short-lived signed media URLs, served with HTTP Range, every play audited.

Two routes:

* ``GET /api/recordings/{id}/playback[?purpose=play|download]`` (token-guarded, action
  ``recordings.play``: supervisors and admins; the agent who handled the call only when
  ``[recordings] agent_may_play``) answers ``{"url": "/recordings/media/<token>",
  "expires_at", "purpose", "recording"}``.
* ``GET /recordings/media/<token>``: a public path (an ``<audio>`` element cannot send a
  bearer header): the signed token is the credential. It binds the recording id, the
  principal (id and role) and the purpose, and lives ``[recordings] playback_seconds``.

Tokens (``MediaTokens``): itsdangerous over ``[api] signing_key`` with a salt of their own
(``callwright.recordings.media.v1``), so a session token is never a media token nor the
reverse. A tampered or foreign-key token: 403. An expired one: 410 Gone; its signature is
good, so it was a genuine link that has run out (saying so leaks nothing to a forger, and a
client knows to ask for a fresh URL rather than give up). At each media request the
principal is checked again: an agent who has been deactivated or whose role changed since
the URL was issued gets 403.

Ranges (``parse_range``): RFC 9110 byte ranges. No ``Range``, another unit, or a ``Range``
not matching ``If-Range`` (our ETag is the SHA-256): 200 with the whole file. One range
(``bytes=0-99``, ``bytes=100-``, ``bytes=-100``): 206 with ``Content-Range``. Several
ranges: 200 with the whole file (RFC 9110 lets a server ignore Range; browsers' media
elements ask for one range at a time). A malformed or unsatisfiable byte range: 416 with
``Content-Range: bytes */<size>``. Bytes come from ``Storage.read_range``, which decrypts
only the chunks a range needs when the object is encrypted.

Audit (``agent_desk.audit.AuditLog``), one row each:

* ``recordings.url_issued`` (allowed): who asked for which recording, purpose, expiry.
* ``recordings.played`` / ``recordings.downloaded`` (allowed): the first media request
  of each token (its range and status). Later requests with the same token (the
  element seeking: one Range request per seek) are not audited again: the token is
  short-lived and bound to one principal, one recording and one purpose, so the first
  row says who listened to what and when. First-use is remembered per process: with
  several nodes a token played through two of them gets one row on each.
* ``recordings.play`` (failed/denied): issue refused (policy: written by the audit
  middleware), bad id (400), unknown recording (404), file missing (404), not yet
  stored (409).
* ``recordings.media`` (denied/failed): a media request refused: bad path (400),
  tampered (403), expired (410), principal revoked (403), unknown or purged recording
  (404), file missing (404), unsatisfiable range (416).

Nothing from a request reaches the file system: ids must match 32 hex digits before any
lookup, tokens must match the token alphabet (no ``..``, no ``/``), and the storage key
comes from the recording row only. A stored row whose file is missing answers 404 and is
flagged ``missing`` (``recordings check`` lists it).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

from aiohttp import web
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from agent_desk.policy import Audit  # the shape of agent_desk.audit.AuditLog.record
from recordings.repository import Recording

__all__ = [
    "MEDIA_PREFIX",
    "PURPOSES",
    "RECORDING_ID",
    "ByteRange",
    "MediaGrant",
    "MediaTokenRejected",
    "MediaTokens",
    "Playback",
    "RangeNotSatisfiable",
    "parse_range",
    "recording_json",
]

log = logging.getLogger(__name__)

RECORDING_ID: Final = re.compile(r"[0-9a-f]{32}")
# itsdangerous URL-safe tokens: base64url segments joined by dots.
TOKEN_TEXT: Final = re.compile(r"[A-Za-z0-9_\-.]{1,1024}")
MEDIA_PREFIX: Final = "/recordings/media/"
Purpose = Literal["play", "download"]
PURPOSES: Final[tuple[Purpose, ...]] = ("play", "download")
CHUNK: Final = 64 * 1024


# -- tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaGrant:
    """What a media token allows: one principal, one recording, one purpose, until expiry."""

    recording_id: str
    principal_id: str
    role: str
    purpose: Purpose
    nonce: str
    issued_at: float
    expires_at: float


class MediaTokenRejected(Exception):
    """``reason``: ``invalid`` (tampered, malformed, another key) or ``expired``;
    ``principal_id``/``recording_id`` when the signature was good."""

    def __init__(
        self,
        reason: Literal["invalid", "expired"],
        principal_id: str | None = None,
        recording_id: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.principal_id = principal_id
        self.recording_id = recording_id


class MediaTokens:
    """Signed, expiring media tokens. ``clock`` returns epoch seconds."""

    SALT: Final = "callwright.recordings.media.v1"

    def __init__(
        self, signing_key: str, *, lifetime: float, clock: Callable[[], float] = time.time
    ) -> None:
        if not signing_key:
            raise ValueError("a signing key is required for media tokens")
        if lifetime < 1:
            raise ValueError(f"lifetime: expected at least 1 second, got {lifetime}")
        self.lifetime = int(lifetime)
        self.clock = clock

        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self._serializer = URLSafeTimedSerializer(signing_key, salt=self.SALT, signer=_Signer)

    def issue(
        self, recording_id: str, principal_id: str, role: str, purpose: Purpose
    ) -> tuple[str, MediaGrant]:
        if not RECORDING_ID.fullmatch(recording_id):
            raise ValueError(f"recording_id: expected 32 hex digits, got {recording_id!r}")
        if purpose not in PURPOSES:
            raise ValueError(f"purpose: expected play or download, got {purpose!r}")
        issued = int(self.clock())
        nonce = secrets.token_hex(8)
        token = self._serializer.dumps(
            {"r": recording_id, "p": principal_id, "o": role, "u": purpose, "n": nonce}
        )
        grant = MediaGrant(
            recording_id, principal_id, role, purpose, nonce, issued, issued + self.lifetime
        )
        return token, grant

    def read(self, token: str) -> MediaGrant:
        """The grant of a well-signed, unexpired token; else MediaTokenRejected."""
        try:
            payload, issued = self._serializer.loads(
                token, max_age=self.lifetime, return_timestamp=True
            )
        except SignatureExpired as exc:
            claims = self._claims(exc.payload)
            raise MediaTokenRejected(
                "expired",
                None if claims is None else claims["p"],
                None if claims is None else claims["r"],
            ) from None
        except BadSignature:
            raise MediaTokenRejected("invalid") from None
        claims = _valid_claims(payload)
        if claims is None:
            raise MediaTokenRejected("invalid")
        at = issued.timestamp()
        return MediaGrant(
            recording_id=claims["r"],
            principal_id=claims["p"],
            role=claims["o"],
            purpose=claims["u"],
            nonce=claims["n"],
            issued_at=at,
            expires_at=at + self.lifetime,
        )

    def _claims(self, payload: Any) -> dict[str, Any] | None:
        try:
            return _valid_claims(self._serializer.load_payload(payload))
        except BadSignature:
            return None


def _valid_claims(payload: Any) -> dict[str, Any] | None:
    if not isinstance(payload, dict):
        return None
    if not all(isinstance(payload.get(k), str) for k in ("r", "p", "o", "u", "n")):
        return None
    if not RECORDING_ID.fullmatch(payload["r"]) or payload["u"] not in PURPOSES:
        return None
    return payload


# -- ranges (pure) --------------------------------------------------------------------
# Written here: aiohttp's ``request.http_range`` neither resolves a range against the
# object's size nor tells a multi-range or another unit from a malformed header, and
# FileResponse (which does ranges) serves files, not our possibly encrypted objects.


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class RangeNotSatisfiable(ValueError):
    """A malformed byte range, or none that lies within the object: answer 416."""


_SPEC: Final = re.compile(r"(\d*)-(\d*)")
MAX_RANGE_HEADER: Final = 1024


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range to serve, or None for the whole object.

    None: no header, a unit other than ``bytes`` (ignored, as RFC 9110 says), or several
    ranges (served whole). RangeNotSatisfiable: a malformed byte range, or one that starts
    at or beyond ``size`` (an empty object satisfies no range)."""
    if header is None:
        return None
    unit, sep, spec_text = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        if sep and unit.strip():
            return None  # another unit: ignore
        raise RangeNotSatisfiable(f"Range: expected bytes=<first>-<last>, got {header[:80]!r}")
    if len(header) > MAX_RANGE_HEADER:
        raise RangeNotSatisfiable(f"Range: longer than {MAX_RANGE_HEADER} characters")
    ranges: list[ByteRange] = []
    specs = [s.strip() for s in spec_text.split(",")]
    for spec in specs:
        match = _SPEC.fullmatch(spec)
        if match is None or match.group(1) == match.group(2) == "":
            raise RangeNotSatisfiable(f"Range: malformed byte range {spec[:40]!r}")
        first, last = match.groups()
        if first == "":  # suffix: the last N bytes
            count = int(last)
            if count > 0 and size > 0:
                ranges.append(ByteRange(max(0, size - count), size - 1))
            continue
        start = int(first)
        end = size - 1 if last == "" else int(last)
        if last != "" and end < start:
            raise RangeNotSatisfiable(f"Range: last byte before first in {spec[:40]!r}")
        if start < size:
            ranges.append(ByteRange(start, min(end, size - 1)))
    if not ranges:
        raise RangeNotSatisfiable(f"Range: nothing within the {size} bytes of the recording")
    if len(specs) > 1:
        return None
    return ranges[0]


# -- the service ------------------------------------------------------------------------


class Recordings(Protocol):
    """What playback needs of ``recordings.repository.RecordingRepository``."""

    async def get(self, recording_id: str) -> Recording | None: ...

    async def update_state(self, recording_id: str, state: str) -> Recording: ...


class MediaStorage(Protocol):
    """What playback needs of ``recordings.storage.Storage``."""

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int: ...

    def read_range(self, key: str, start: int, end_inclusive: int) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class Actor:
    id: str
    role: str


Authorize = Callable[[web.Request, str, Any], Awaitable[None]]
# The principal's current role, or None if they may no longer act (deactivated, gone).
CurrentRole = Callable[[str], Awaitable[str | None]]

_NO_STORE: Final = {
    "Cache-Control": "no-store, private",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, float | int):
        value = datetime.fromtimestamp(value, UTC)
    return value.isoformat().replace("+00:00", "Z")


def recording_json(rec: Recording) -> dict[str, Any]:
    """A recording as the API shows it (no storage key, spool name or hash)."""
    return {
        "id": rec.id,
        "interaction_id": rec.interaction_id,
        "call_id": rec.call_id,
        "agent_id": None if rec.agent_id is None else str(rec.agent_id),
        "customer_id": rec.customer_id,
        "queue": rec.queue,
        "source": rec.source,
        "state": rec.state,
        "duration_ms": rec.duration_ms,
        "size_bytes": rec.size_bytes,
        "content_type": rec.content_type,
        "encrypted": rec.encrypted,
        "started_at": _iso(rec.started_at),
        "ended_at": _iso(rec.ended_at),
        "stored_at": _iso(rec.stored_at),
        "retain_until": _iso(rec.retain_until),
    }


def _client_ip(request: web.Request) -> str | None:
    return request.remote


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


class Playback:
    """The two routes. ``principal_of(request)``: the authenticated principal (id, role)
    of an API request; ``current_role(id)``: re-checked at each media request."""

    def __init__(
        self,
        *,
        recordings: Recordings,
        storage: MediaStorage,
        tokens: MediaTokens,
        audit: Audit,
        authorize: Authorize,
        principal_of: Callable[[web.Request], Any],
        current_role: CurrentRole | None = None,
        max_seen: int = 100_000,
    ) -> None:
        self.recordings = recordings
        self.storage = storage
        self.tokens = tokens
        self.audit = audit
        self.authorize = authorize
        self.principal_of = principal_of
        self.current_role = current_role
        self._seen: dict[str, float] = {}  # token nonce -> expiry (epoch seconds)
        self._max_seen = max_seen

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/recordings/{recording_id}/playback", self.issue),
            web.get(MEDIA_PREFIX + "{token}", self.media),
        ]

    # -- GET /api/recordings/{id}/playback -------------------------------------------

    async def issue(self, request: web.Request) -> web.StreamResponse:
        recording_id = request.match_info["recording_id"]
        principal = self.principal_of(request)
        purpose = request.query.get("purpose", "play")
        try:
            if not RECORDING_ID.fullmatch(recording_id):
                raise _Refused(400, "invalid_recording_id", "recording id: expected 32 hex digits")
            if purpose not in PURPOSES:
                raise _Refused(400, "invalid_request", "purpose: expected play or download")
            await self.authorize(request, "recordings.play", recording_id)
            rec = await self._stored(recording_id)
        except _Refused as refused:
            await self._audit(
                request,
                principal,
                "recordings.play",
                "failed",
                recording_id[:64],
                reason=refused.code,
                status=refused.status,
                **refused.detail,
            )
            return _error(refused.status, refused.code, refused.message)
        token, grant = self.tokens.issue(rec.id, principal.id, principal.role, purpose)
        await self._audit(
            request,
            principal,
            "recordings.url_issued",
            "allowed",
            rec.id,
            purpose=purpose,
            token=grant.nonce,
            expires_at=_iso(grant.expires_at),
        )
        return web.json_response(
            {
                "url": MEDIA_PREFIX + token,
                "expires_at": _iso(grant.expires_at),
                "purpose": purpose,
                "recording": recording_json(rec),
            },
            headers={"Cache-Control": "no-store"},
        )

    # -- GET /recordings/media/{token} -------------------------------------------------

    async def media(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        actor: Actor | None = None
        subject: str | None = None
        try:
            if not TOKEN_TEXT.fullmatch(token) or ".." in token:
                raise _Refused(400, "bad_path", "not a media link")
            try:
                grant = self.tokens.read(token)
            except MediaTokenRejected as rejected:
                if rejected.principal_id is not None:
                    actor = Actor(rejected.principal_id, "unauthenticated")
                subject = rejected.recording_id
                if rejected.reason == "expired":
                    raise _Refused(
                        410, "expired", "this playback link has expired; ask for a new one"
                    ) from None
                raise _Refused(403, "invalid_token", "this playback link is not valid") from None
            actor = Actor(grant.principal_id, grant.role)
            subject = grant.recording_id
            if self.current_role is not None:
                role = await self.current_role(grant.principal_id)
                if role != grant.role:
                    raise _Refused(
                        403, "revoked", "the account this link was issued to may no longer play"
                    )
            rec = await self._stored(grant.recording_id)
            assert rec.storage_key is not None
            try:
                size = await self.storage.size(rec.storage_key)
            except LookupError:  # recordings.storage.ObjectNotFound
                await self._flag_missing(rec)
                raise _Refused(404, "file_missing", "the recording's file is missing") from None
            etag = f'"{rec.sha256}"' if rec.sha256 else None
            header = request.headers.get("Range")
            if_range = request.headers.get("If-Range")
            if header is not None and if_range is not None and if_range != etag:
                header = None  # the client's copy is another version: send it all
            try:
                byte_range = parse_range(header, size)
            except RangeNotSatisfiable as exc:
                raise _Refused(
                    416, "range_not_satisfiable", str(exc), range=(header or "")[:100], size=size
                ) from None
            if byte_range is None:
                status, start, end = 200, 0, size - 1
            else:
                status, start, end = 206, byte_range.start, byte_range.end
            length = end - start + 1
            # The first piece is read before any header leaves, so that a file gone or
            # unreadable since the checks above still gets a proper error status.
            chunks: AsyncIterator[bytes] | None = None
            first = b""
            if request.method != "HEAD" and length > 0:
                chunks = aiter(self.storage.read_range(rec.storage_key, start, end))
                try:
                    first = await anext(chunks)
                except LookupError:
                    await self._flag_missing(rec)
                    raise _Refused(404, "file_missing", "the recording's file is missing") from None
                except Exception as exc:  # DecryptionError, a file changed under us
                    log.error("recording %s unreadable: %s", rec.id, exc)
                    raise _Refused(
                        500, "unreadable", "the recording's file cannot be read; see the log"
                    ) from None
        except _Refused as refused:
            await self._audit(
                request,
                actor,
                "recordings.media",
                "denied" if refused.status in (400, 403, 410) else "failed",
                subject,
                reason=refused.code,
                status=refused.status,
                **refused.detail,
            )
            headers = dict(_NO_STORE)
            if refused.status == 416:
                headers["Content-Range"] = f"bytes */{refused.detail['size']}"
            return web.json_response(
                {"error": refused.code, "message": refused.message},
                status=refused.status,
                headers=headers,
            )

        headers = dict(_NO_STORE)
        headers["Accept-Ranges"] = "bytes"
        headers["Content-Type"] = rec.content_type
        if etag is not None:
            headers["ETag"] = etag
        if grant.purpose == "download":
            extension = rec.storage_key.rsplit(".", 1)[-1]  # a validated key: wav or mp3
            headers["Content-Disposition"] = (
                f'attachment; filename="recording-{rec.id}.{extension}"'
            )
        else:
            headers["Content-Disposition"] = "inline"
        if byte_range is not None:
            headers["Content-Range"] = byte_range.content_range(size)
        headers["Content-Length"] = str(length)
        if request.method != "HEAD" and self._first_use(grant):
            await self._audit(
                request,
                actor,
                "recordings.played" if grant.purpose == "play" else "recordings.downloaded",
                "allowed",
                rec.id,
                token=grant.nonce,
                status=status,
                range=None if byte_range is None else f"{start}-{end}",
            )
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = length
        if chunks is None:
            await response.prepare(request)
            await response.write_eof()
            return response
        try:
            await response.prepare(request)
            await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
        except ConnectionError:
            log.debug("playback of %s: the client went away", rec.id)
            return response
        except Exception:
            # Headers are gone: all we can do is cut the response short (the client sees
            # fewer bytes than Content-Length) and say why in the log.
            log.exception("playback of %s failed midway", rec.id)
            raise
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()
        await response.write_eof()
        return response

    # -- helpers ------------------------------------------------------------------------

    async def _stored(self, recording_id: str) -> Recording:
        rec = await self.recordings.get(recording_id)
        if rec is None:
            raise _Refused(404, "unknown_recording", f"no recording {recording_id}")
        if rec.state == "missing":
            raise _Refused(404, "file_missing", "the recording's file is missing")
        if rec.state != "stored" or rec.storage_key is None:
            raise _Refused(
                409, "not_stored", f"the recording is not stored yet (state {rec.state})"
            )
        try:
            present = await self.storage.exists(rec.storage_key)
        except ValueError:
            present = False  # a key storage refuses: the file cannot be served
        if not present:
            await self._flag_missing(rec)
            raise _Refused(404, "file_missing", "the recording's file is missing")
        return rec

    async def _flag_missing(self, rec: Recording) -> None:
        log.warning("recording %s: file %s missing; flagged", rec.id, rec.storage_key)
        try:
            await self.recordings.update_state(rec.id, "missing")
        except LookupError:
            pass  # deleted meanwhile

    def _first_use(self, grant: MediaGrant) -> bool:
        now = self.tokens.clock()
        if grant.nonce in self._seen:
            return False
        if len(self._seen) >= self._max_seen:
            for nonce, expiry in list(self._seen.items()):
                if expiry <= now:
                    del self._seen[nonce]
            while len(self._seen) >= self._max_seen:
                del self._seen[next(iter(self._seen))]
        self._seen[grant.nonce] = grant.expires_at
        return True

    async def _audit(
        self,
        request: web.Request,
        actor: Any,
        action: str,
        outcome: str,
        subject: str | None,
        **detail: Any,
    ) -> None:
        detail = {"method": request.method, "path": _safe_path(request), **detail}
        try:
            await self.audit.record(
                actor=actor,
                action=action,
                outcome=outcome,
                subject=subject,
                detail=detail,
                client_ip=_client_ip(request),
            )
        except Exception:
            log.exception("audit row not written: %s %s on %s", outcome, action, subject)


def _safe_path(request: web.Request) -> str:
    """The path without the token (a live credential does not belong in the audit log)."""
    path = request.path
    if path.startswith(MEDIA_PREFIX):
        return MEDIA_PREFIX + "…"
    return path[:200]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)
