"""Lists for the supervisor's pages: recordings, and interactions with their recordings.

* ``GET /api/recordings?interaction_id=&customer_id=&agent_id=&queue=&state=&from=&to=
  &limit=&before=`` (action ``recordings.list``): supervisors and admins see every
  recording; an agent only their own, and only when ``[recordings] agent_may_play`` is
  on (an agent's list is always narrowed to their agent id; naming another agent is
  refused). Newest first; ``next_before`` is the cursor of the next page.
* ``GET /api/interactions?customer_id=&agent_id=&queue=&channel=&from=&to=&recorded=
  &page=&per_page=`` (action ``interactions.list``, supervisors and admins): interactions
  newest first with the customer's and agent's names and each one's recordings (id,
  state, duration), ``total`` for the pager.

* ``GET /api/recordings/access`` (action ``recordings.access``, everyone logged in):
  ``{"may_play": "all" | "own" | "none"}``, so that a page shows Play buttons only to
  those who may press them (and never asks, and gets refused, in vain).

``from``/``to``: ISO 8601 (a naive time is UTC) or epoch seconds, on ``started_at``.
Bad parameters: 400 naming the parameter; nothing is read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm.persistence import customers, interactions
from ivr.persistence import ivr_sessions
from recordings.persistence import STATES, recordings
from recordings.playback import RECORDING_ID, recording_json
from recordings.repository import MAX_PAGE, RecordingRepository
from routing.persistence import agents

__all__ = ["MAX_PER_PAGE", "listing_routes"]

MAX_PER_PAGE: Final = 200
CHANNELS: Final = ("voice", "email")

Authorize = Callable[[web.Request, str, Any], Awaitable[None]]


class BadParameter(ValueError):
    def __init__(self, name: str, expected: str) -> None:
        super().__init__(f"{name}: expected {expected}")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _int(q: Mapping[str, str], name: str, lo: int = 1, hi: int = 2**31 - 1) -> int | None:
    value = q.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadParameter(name, "an integer") from None
    if not lo <= number <= hi:
        raise BadParameter(name, f"{lo}-{hi}")
    return number


def _time(q: Mapping[str, str], name: str) -> datetime | None:
    value = q.get(name)
    if value is None or value == "":
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(name, "ISO 8601 or epoch seconds") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _text(q: Mapping[str, str], name: str, limit: int = 64) -> str | None:
    value = q.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise BadParameter(name, f"at most {limit} characters")
    return value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _cursor(q: Mapping[str, str]) -> tuple[datetime, str] | None:
    """``before``: ``<started_at ISO>~<recording id>`` (a previous page's next_before)."""
    value = q.get("before")
    if value is None or value == "":
        return None
    at, sep, last_id = value.rpartition("~")
    if not sep or not RECORDING_ID.fullmatch(last_id):
        raise BadParameter("before", "a next_before value from a previous page")
    try:
        parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter("before", "a next_before value from a previous page") from None
    if parsed.tzinfo is None:
        raise BadParameter("before", "a next_before value from a previous page")
    return parsed, last_id


def listing_routes(
    repo: RecordingRepository,
    engine: AsyncEngine,
    authorize: Authorize,
    principal_of: Callable[[web.Request], Any],
    *,
    agent_may_play: bool = False,
) -> list[web.RouteDef]:
    async def access(request: web.Request) -> web.StreamResponse:
        await authorize(request, "recordings.access", None)
        role = principal_of(request).role
        if role in ("supervisor", "admin"):
            may_play = "all"
        else:
            may_play = "own" if agent_may_play else "none"
        return web.json_response({"may_play": may_play})

    async def list_recordings(request: web.Request) -> web.StreamResponse:
        q = request.query
        principal = principal_of(request)
        try:
            agent_id = _int(q, "agent_id")
            interaction_id = _int(q, "interaction_id")
            customer_id = _int(q, "customer_id")
            queue = _text(q, "queue")
            state = _text(q, "state")
            if state is not None and state not in STATES:
                raise BadParameter("state", f"one of {', '.join(STATES)}")
            since, until = _time(q, "from"), _time(q, "to")
            limit = _int(q, "limit", 1, MAX_PAGE) or 50
            before = _cursor(q)
        except BadParameter as exc:
            return _error(400, "invalid_request", str(exc))
        if principal.role == "agent":
            # An agent's list is their own: the subject is the agent the list is narrowed to.
            subject = str(agent_id) if agent_id is not None else principal.id
            await authorize(request, "recordings.list", subject)
            agent_id = int(principal.id)
        else:
            await authorize(request, "recordings.list", None)
        found = await repo.list(
            interaction_id=interaction_id,
            customer_id=customer_id,
            agent_id=agent_id,
            queue=queue,
            states=None if state is None else [state],
            since=since,
            until=until,
            before=before,
            limit=limit,
        )
        next_before = None
        if len(found) == limit:
            last = found[-1]
            next_before = f"{_iso(last.started_at)}~{last.id}"
        return web.json_response(
            {"recordings": [recording_json(r) for r in found], "next_before": next_before}
        )

    async def list_interactions(request: web.Request) -> web.StreamResponse:
        await authorize(request, "interactions.list", None)
        q = request.query
        try:
            customer_id = _int(q, "customer_id")
            agent_id = _int(q, "agent_id")
            queue = _text(q, "queue")
            channel = _text(q, "channel")
            if channel is not None and channel not in CHANNELS:
                raise BadParameter("channel", "voice or email")
            since, until = _time(q, "from"), _time(q, "to")
            recorded = q.get("recorded")
            if recorded not in (None, "", "true", "false"):
                raise BadParameter("recorded", "true or false")
            page = _int(q, "page", 1, 1_000_000) or 1
            per_page = _int(q, "per_page", 1, MAX_PER_PAGE) or 50
        except BadParameter as exc:
            return _error(400, "invalid_request", str(exc))
        conditions: list[ColumnElement[bool]] = []
        if customer_id is not None:
            conditions.append(interactions.c.customer_id == customer_id)
        if agent_id is not None:
            conditions.append(interactions.c.agent_id == agent_id)
        if queue is not None:
            conditions.append(interactions.c.queue == queue)
        if channel is not None:
            conditions.append(interactions.c.channel == channel)
        if since is not None:
            conditions.append(interactions.c.started_at >= since)
        if until is not None:
            conditions.append(interactions.c.started_at < until)
        has_recording = exists().where(recordings.c.interaction_id == interactions.c.id)
        if recorded == "true":
            conditions.append(has_recording)
        elif recorded == "false":
            conditions.append(~has_recording)
        # The caller's post-call survey answer (ivr.persistence: a survey run of its own,
        # linked to the interaction); the latest if the caller answered twice.
        survey = (
            select(ivr_sessions.c.survey_score)
            .where(
                ivr_sessions.c.interaction_id == interactions.c.id,
                ivr_sessions.c.phase == "survey",
                ivr_sessions.c.survey_score.is_not(None),
            )
            .order_by(ivr_sessions.c.started_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = (
            select(
                interactions,
                customers.c.name.label("customer_name"),
                agents.c.display_name.label("agent_name"),
                survey.label("survey_score"),
            )
            .outerjoin(customers, customers.c.id == interactions.c.customer_id)
            .outerjoin(agents, agents.c.id == interactions.c.agent_id)
            .where(*conditions)
            .order_by(interactions.c.started_at.desc(), interactions.c.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        count = select(func.count()).select_from(interactions).where(*conditions)
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            total = int((await conn.execute(count)).scalar_one())
            ids = [row.id for row in rows]
            by_interaction: dict[int, list[dict[str, Any]]] = {}
            if ids:
                recs = await conn.execute(
                    select(
                        recordings.c.id,
                        recordings.c.interaction_id,
                        recordings.c.state,
                        recordings.c.duration_ms,
                        recordings.c.started_at,
                    )
                    .where(recordings.c.interaction_id.in_(ids))
                    .order_by(recordings.c.started_at, recordings.c.id)
                )
                for rec in recs:
                    by_interaction.setdefault(rec.interaction_id, []).append(
                        {"id": rec.id, "state": rec.state, "duration_ms": rec.duration_ms}
                    )
        items = [
            {
                "id": row.id,
                "channel": row.channel,
                "direction": row.direction,
                "queue": row.queue,
                "customer": None
                if row.customer_id is None
                else {"id": row.customer_id, "name": row.customer_name},
                "agent": None
                if row.agent_id is None
                else {"id": str(row.agent_id), "display_name": row.agent_name},
                "started_at": _iso(row.started_at),
                "answered_at": _iso(row.answered_at),
                "ended_at": _iso(row.ended_at),
                "disposition": row.disposition,
                "notes": row.notes,
                "subject": row.subject,
                "recordings": by_interaction.get(row.id, []),
                "survey_score": row.survey_score,
            }
            for row in rows
        ]
        return web.json_response(
            {"interactions": items, "page": page, "per_page": per_page, "total": total}
        )

    return [
        web.get("/api/recordings/access", access),
        web.get("/api/recordings", list_recordings),
        web.get("/api/interactions", list_interactions),
    ]
