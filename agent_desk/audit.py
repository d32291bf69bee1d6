"""The audit log: who did (or tried) what, when, from where.

One row per privileged action: every state-changing API call (allowed or
failed), every forbidden attempt (denied), every login (allowed, failed, or
denied while locked out), and state-changing requests carrying a token that is
expired, revoked or forged (denied, before authentication). Rows are written
before the response leaves (``audit_middleware``), so an answered action is a
recorded one. ``detail`` holds method, path, status and error codes, never a
request body: passwords and e-mail text stay out of it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

from aiohttp import web
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Index,
    Integer,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import OneHop, metadata
from store.sql import Sql, db_time
from store.types import UtcDateTime, as_utc, utc_now

__all__ = [
    "OUTCOMES",
    "Actor",
    "AuditEvent",
    "AuditLog",
    "Outcome",
    "audit_events",
    "audit_json",
    "audit_routes",
]

log = logging.getLogger(__name__)


class Actor(Protocol):
    """Who acted: ``callwright.app.Principal`` (agent id or ``api-token``, role)."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> str: ...


Outcome = Literal["allowed", "denied", "failed"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("allowed", "denied", "failed")

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor_id", String(64), nullable=True),  # None: nobody authenticated
    Column("actor_role", String(16), nullable=True),
    Column("action", String(64), nullable=False),
    Column("subject", String(200), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("client_ip", String(64), nullable=True),
    CheckConstraint("outcome IN ('allowed', 'denied', 'failed')", name="outcome"),
    Index("ix_audit_events_at", "at"),
    Index("ix_audit_events_actor_id", "actor_id"),
    Index("ix_audit_events_action", "action"),
)


_INSERT: Final = Sql(
    "INSERT INTO audit_events"
    " (at, actor_id, actor_role, action, subject, outcome, detail, client_ip)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: datetime
    actor_id: str | None
    actor_role: str | None
    action: str
    subject: str | None
    outcome: Outcome
    detail: Mapping[str, Any]
    client_ip: str | None


def _event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        at=row.at,
        actor_id=row.actor_id,
        actor_role=row.actor_role,
        action=row.action,
        subject=row.subject,
        outcome=row.outcome,
        detail=dict(row.detail or {}),
        client_ip=row.client_ip,
    )


def audit_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": {"id": event.actor_id, "role": event.actor_role},
        "action": event.action,
        "subject": event.subject,
        "outcome": event.outcome,
        "detail": dict(event.detail),
        "client_ip": event.client_ip,
    }


class AuditLog:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        # A row in one hop (store.db.OneHop): every accept is audited.
        self._writer = OneHop(engine)

    async def close(self) -> None:
        await self._writer.close()

    async def record(
        self,
        *,
        actor: Actor | None,
        action: str,
        outcome: str,
        subject: str | None = None,
        detail: Mapping[str, Any] | None = None,
        client_ip: str | None = None,
    ) -> AuditEvent:
        """``outcome``: allowed, denied or failed (else ValueError)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}")
        values: dict[str, Any] = {
            "at": as_utc(self._clock()),
            "actor_id": None if actor is None else actor.id[:64],
            "actor_role": None if actor is None else actor.role[:16],
            "action": action[:64],
            "subject": None if subject is None else subject[:200],
            "outcome": outcome,
            "detail": dict(detail or {}),
            "client_ip": None if client_ip is None else client_ip[:64],
        }
        detail_json = json.dumps(values["detail"])  # as SQLAlchemy's JSON type stores it

        def write(conn: Connection) -> int:
            # Hand-written SQL (store.sql says why): every accept is audited.
            params = (
                db_time(conn, values["at"]),
                values["actor_id"],
                values["actor_role"],
                values["action"],
                values["subject"],
                outcome,
                detail_json,
                values["client_ip"],
            )
            return int(_INSERT.rows(conn, params)[0][0])

        event_id = await self._writer.run(write)
        return AuditEvent(id=event_id, **values)

    async def query(
        self,
        *,
        since: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first. ``action`` ending in ``.*`` matches a prefix
        (``calls.*``); ``before_id`` pages back from a previous page's last id."""
        query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(audit_events.c.at >= since)
        if actor is not None:
            query = query.where(audit_events.c.actor_id == actor)
        if action is not None:
            if action.endswith(".*"):
                prefix = action[:-1]
                query = query.where(audit_events.c.action.startswith(prefix, autoescape=True))
            else:
                query = query.where(audit_events.c.action == action)
        if outcome is not None:
            query = query.where(audit_events.c.outcome == outcome)
        if before_id is not None:
            query = query.where(audit_events.c.id < before_id)
        async with self._engine.connect() as conn:
            return [_event(row) for row in await conn.execute(query)]

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(audit_events))).scalar_one()
            )


# -- HTTP: GET /api/audit -------------------------------------------------------

Authorize = Callable[[web.Request, str, Any], Awaitable[None]]
MAX_PAGE: Final = 500


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _parse_since(value: str) -> datetime:
    """ISO 8601 (a naive time is UTC) or epoch seconds."""
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def audit_routes(audit: AuditLog, authorize: Authorize) -> list[web.RouteDef]:
    async def list_events(request: web.Request) -> web.StreamResponse:
        await authorize(request, "audit.read", None)
        q = request.query
        try:
            since = _parse_since(q["since"]) if "since" in q else None
        except (ValueError, OverflowError, OSError):
            return _error(400, "invalid_request", "since: expected ISO 8601 or epoch seconds")
        try:
            limit = int(q.get("limit", "100"))
            before = int(q["before"]) if "before" in q else None
        except ValueError:
            return _error(400, "invalid_request", "limit/before: expected integers")
        if not 1 <= limit <= MAX_PAGE:
            return _error(400, "invalid_request", f"limit: expected 1-{MAX_PAGE}")
        outcome = q.get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            return _error(400, "invalid_request", f"outcome: expected one of {', '.join(OUTCOMES)}")
        events = await audit.query(
            since=since,
            actor=q.get("actor"),
            action=q.get("action"),
            outcome=outcome,
            before_id=before,
            limit=limit,
        )
        next_before = events[-1].id if len(events) == limit else None
        return web.json_response(
            {"events": [audit_json(e) for e in events], "next_before": next_before}
        )

    return [web.get("/api/audit", list_events)]
