"""Twilio recording status callbacks: ``POST /twilio/recording-status``.

Twilio calls it (``recordingStatusCallback`` on ``<Dial record>``, ``<Record>``
or a call recording) as a recording starts and ends. The route is public (no
session token: Twilio has none) and trusts nothing but the
``X-Twilio-Signature`` (``cti.twilio_webhooks``, the ``[twilio]`` settings).
An unsigned or forged request gets 403, is audited (action
``twilio.recording_status``, outcome ``denied``, the client address) and
changes nothing.

A verified callback records the same metadata as an Asterisk recording, on a
``recordings`` row with ``source = 'twilio'``: ``external_id`` = RecordingSid,
``call_id`` = CallSid, the interaction found by that CallSid (the Twilio IVR
adapter creates it with ``call_id = CallSid``; its agent, customer and queue
are copied), ``duration_ms`` from RecordingDuration, ``started_at`` from
RecordingStartTime. The file stays at Twilio: ``storage_key`` stays NULL and
the row never reaches ``stored``. States: RecordingStatus ``in-progress`` ->
``recording``; ``completed`` -> ``ended`` (here: complete, kept at Twilio; the
ingestor and ``recordings check`` look only at rows with a ``spool_name``,
which a Twilio row never has); ``absent`` / ``failed`` -> ``failed``. A repeat
callback for the same RecordingSid updates that row.

Answers: 200 ``{recording_id, state}``; 400 for a missing or malformed field
(nothing stored); 404 when no interaction has that CallSid (Twilio logs it in
its debugger; nothing stored); 403 as above.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol

from aiohttp import web

from agent_desk.policy import Audit  # the shape of agent_desk.audit.AuditLog.record
from cti.twilio_webhooks import InvalidSignature, verified_form
from recordings.repository import RecordingRepository

__all__ = ["PATH", "TwilioRecordingCallbacks", "TwilioSettings"]

log = logging.getLogger(__name__)

PATH: Final = "/twilio/recording-status"
ACTION: Final = "twilio.recording_status"
STATES: Final[Mapping[str, str]] = {
    "in-progress": "recording",
    "completed": "ended",
    "absent": "failed",
    "failed": "failed",
}
_RECORDING_SID: Final = re.compile(r"RE[0-9a-fA-F]{32}")
_CALL_SID: Final = re.compile(r"CA[0-9a-fA-F]{32}")


class TwilioSettings(Protocol):
    """``callwright.config.TwilioConfig``."""

    @property
    def public_url(self) -> str: ...

    @property
    def trust_proxy(self) -> bool: ...


class InteractionLookup(Protocol):
    async def by_call_id(self, call_id: str) -> Any: ...


class BadField(ValueError):
    pass


def _field(form: Mapping[str, str], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = form.get(name)
    if not value:
        raise BadField(f"{name}: required")
    if pattern is not None and not pattern.fullmatch(value):
        raise BadField(f"{name}: malformed")
    return value


def _duration_ms(form: Mapping[str, str]) -> int | None:
    raw = form.get("RecordingDuration")
    if raw is None or raw in ("", "-1"):
        return None
    if not raw.isdigit() or len(raw) > 7:
        raise BadField("RecordingDuration: expected whole seconds")
    return int(raw) * 1000


def _started_at(form: Mapping[str, str]) -> datetime | None:
    raw = form.get("RecordingStartTime")
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        raise BadField("RecordingStartTime: expected an RFC 2822 date") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class TwilioRecordingCallbacks:
    def __init__(
        self,
        repo: RecordingRepository,
        *,
        interactions: InteractionLookup,
        settings: TwilioSettings,
        auth_token: str,
        audit: Audit,
    ) -> None:
        self.repo = repo
        self.interactions = interactions
        self.settings = settings
        self._auth_token = auth_token
        self.audit = audit

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PATH, self.recording_status)]

    async def recording_status(self, request: web.Request) -> web.StreamResponse:
        try:
            form = await verified_form(
                request,
                auth_token=self._auth_token,
                public_url=self.settings.public_url,
                trust_proxy=self.settings.trust_proxy,
            )
        except InvalidSignature as exc:
            await self._refused(request, exc.reason)
            return web.json_response(
                {"error": "forbidden", "message": "not a signed Twilio request"}, status=403
            )
        try:
            recording_sid = _field(form, "RecordingSid", _RECORDING_SID)
            call_sid = _field(form, "CallSid", _CALL_SID)
            status = _field(form, "RecordingStatus")
            if status not in STATES:
                raise BadField(f"RecordingStatus: expected one of {', '.join(STATES)}")
            duration_ms = _duration_ms(form)
            started_at = _started_at(form)
        except BadField as exc:
            return web.json_response({"error": "invalid_request", "message": str(exc)}, status=400)
        state = STATES[status]
        interaction = await self.interactions.by_call_id(call_sid)
        if interaction is None:
            log.warning("Twilio recording %s: no interaction for call %s", recording_sid, call_sid)
            return web.json_response(
                {"error": "unknown_call", "message": "no interaction has this CallSid"}, status=404
            )
        existing = await self.repo.find_by_external_id("twilio", recording_sid)
        now = datetime.now(UTC)
        ended_at = now if state != "recording" else None
        if existing is None:
            row = await self.repo.create(
                interaction_id=interaction.id,
                source="twilio",
                call_id=call_sid,
                agent_id=interaction.agent_id,
                customer_id=interaction.customer_id,
                queue=interaction.queue,
                external_id=recording_sid,
                started_at=started_at or now,
                state=state,
            )
            values: dict[str, Any] = {}
        else:
            row = existing
            values = {"state": state}
            if started_at is not None:
                values["started_at"] = started_at
        if duration_ms is not None:
            values["duration_ms"] = duration_ms
        if ended_at is not None and row.ended_at is None:
            values["ended_at"] = ended_at
        if values:
            row = await self.repo.update(row.id, **values)
        log.info("Twilio recording %s (call %s): %s", recording_sid, call_sid, state)
        return web.json_response({"recording_id": row.id, "state": row.state})

    async def _refused(self, request: web.Request, reason: str) -> None:
        try:
            await self.audit.record(
                actor=None,
                action=ACTION,
                outcome="denied",
                subject=None,
                detail={"reason": reason, "status": 403, "method": request.method, "path": PATH},
                client_ip=request.remote,
            )
        except Exception:
            log.exception("audit row not written: refused Twilio callback (%s)", reason)
        log.warning("refused a Twilio recording callback from %s: %s", request.remote, reason)
