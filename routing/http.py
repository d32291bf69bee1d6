"""HTTP routes for routing: tasks, queues with live statistics, agent state,
reservations. Thin: parse, call the service, dump. Authentication is the
composition root's middleware; ``authorize(request, action, subject)`` is the
seam for roles (the desk issue)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from cti.http import read_json_object
from routing import model
from routing.agent_stats import agent_times
from routing.codec import to_json
from routing.errors import (
    Duplicate,
    InvalidRequest,
    InvalidTransition,
    NotFound,
    RoutingError,
    UnknownTask,
)
from routing.intervals import INTERVAL_SECONDS, IntervalStats, interval_json
from routing.service import RoutingService
from routing.stats import QueueStats

__all__ = ["routes"]

Authorize = Callable[[web.Request, str, str | None], Awaitable[None]]
# The post-call survey answers of [since, until) per queue: (interactions rated,
# mean score). Routing does not store them (the IVR does): the composition root
# passes the lookup in.
Surveys = Callable[[float, float | None], Awaitable[Mapping[str, tuple[int, float]]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_CHANNELS = ("callback", "chat", "email", "voice")
AGENT_STATES = ("available", "break", "offline")
MAX_INTERVALS = 3000  # a month of 15-minute intervals
MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z: the last second a datetime holds


async def _allow(request: web.Request, action: str, subject: str | None) -> None:
    return None


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_json_object(request, InvalidRequest)


def _field(body: dict[str, Any], name: str, kind: type, *, default: Any = ...) -> Any:
    if name not in body:
        if default is ...:
            raise InvalidRequest(f"{name}: required")
        return default
    value = body[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequest(f"{name}: expected an integer")
    if not isinstance(value, kind):
        raise InvalidRequest(f"{name}: expected {kind.__name__}")
    return value


def _period(request: web.Request) -> tuple[float, float | None]:
    """``since`` (0 by default) and ``until`` (None: now) of a report, in
    epoch seconds that a datetime can hold."""
    try:
        since = float(request.query.get("since", "0"))
        until = float(request.query["until"]) if "until" in request.query else None
    except ValueError:
        raise InvalidRequest("since/until: expected epoch seconds") from None
    if not all(0 <= t <= MAX_EPOCH for t in (since, until) if t is not None):
        raise InvalidRequest(f"since/until: expected epoch seconds, 0 to {MAX_EPOCH:.0f}")
    return since, until


def _survey_json(rated: tuple[int, float] | None) -> dict[str, Any]:
    count, average = rated or (0, 0.0)
    return {"count": count, "average": round(average, 2) if count else None}


def task_json(view: model.TaskView) -> dict[str, Any]:
    data = to_json(view)
    assert isinstance(data, dict)
    return data


def routes(
    service: RoutingService, authorize: Authorize = _allow, surveys: Surveys | None = None
) -> list[web.RouteDef]:
    def guarded(fn: Handler) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await fn(request)
            except NotFound as exc:
                return _error(404, f"unknown_{exc.kind}", str(exc))
            except (InvalidRequest, Duplicate) as exc:
                return _error(400, "invalid_request", str(exc))
            except InvalidTransition as exc:
                return _error(409, "invalid_transition", str(exc))
            except RoutingError as exc:
                return _error(400, "routing_error", str(exc))

        return handler

    async def create_task(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        await authorize(request, "tasks.create", None)
        channel = _field(body, "channel", str)
        if channel not in API_CHANNELS:
            raise InvalidRequest(f"channel: expected one of {', '.join(API_CHANNELS)}")
        queue_id = _field(body, "queue", str)
        if queue_id not in service.queues:
            raise InvalidRequest(f"queue: unknown queue {queue_id!r}")
        attributes = _field(body, "attributes", dict, default={})
        for key, value in attributes.items():
            if not isinstance(value, str | int | float | bool) or len(str(value)) > 1000:
                raise InvalidRequest(f"attributes.{key}: expected a short string, number or bool")
        customer = _field(body, "customer_id", int, default=None)
        spec = model.TaskSpec(
            id=f"t-{uuid.uuid4().hex[:12]}",
            queue_id=queue_id,
            channel=channel,
            priority=_field(body, "priority", int, default=0),
            customer_id=None if customer is None else str(customer),
            language=_field(body, "language", str, default=None),
            attributes=attributes,
        )
        await service.submit(spec)
        return web.json_response(task_json(service.router.task(spec.id)), status=201)

    async def get_task(request: web.Request) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        await authorize(request, "tasks.read", task_id)
        if task_id in service.router.task_ids():
            return web.json_response(task_json(service.router.task(task_id)))
        # Finished (or never routed): what the journal keeps.
        link = await service.journal.task(task_id)
        if link is None:
            raise UnknownTask(task_id)
        return web.json_response(
            {
                "id": link.id,
                "channel": link.channel,
                "queue_id": link.queue_id,
                "state": link.state,
                "interaction_id": link.interaction_id,
                "call_id": link.call_id,
            }
        )

    async def complete_task(request: web.Request) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        await authorize(request, "tasks.complete", task_id)
        await service.complete(task_id)
        return web.json_response({"task_id": task_id, "state": service.router.task_state(task_id)})

    async def list_queues(request: web.Request) -> web.StreamResponse:
        await authorize(request, "queues.read", None)
        now = service.clock()
        return web.json_response(
            {
                "queues": [
                    {
                        "id": q.id,
                        "name": q.name or q.id,
                        "service_level_seconds": q.service_level_seconds,
                        "statistics": to_json(service.stats.figures(q.id, now)),
                    }
                    for q in service.queues.values()
                ]
            }
        )

    async def queue_report(request: web.Request) -> web.StreamResponse:
        await authorize(request, "reports.read", None)
        since, until = _period(request)
        events = await service.journal.events(since=since, until=until)
        folded = QueueStats.fold(events, queues=list(service.queues))
        at = until if until is not None else service.clock()
        queues = {q: to_json(folded.figures(q, at)) for q in service.queues}
        if surveys is not None:
            # Customer satisfaction: the callers' post-call survey answers.
            rated = await surveys(since, until)
            for q, figures in queues.items():
                figures["survey"] = _survey_json(rated.get(q))
        return web.json_response({"since": since, "until": until, "queues": queues})

    async def survey_report(request: web.Request) -> web.StreamResponse:
        """The post-call survey answers per queue over [since, until) (until:
        now by default): what the queue report carries, without its fold of
        the event log."""
        await authorize(request, "reports.read", None)
        since, until = _period(request)
        rated = await surveys(since, until) if surveys is not None else {}
        return web.json_response(
            {
                "since": since,
                "until": until,
                "queues": {q: _survey_json(rated.get(q)) for q in service.queues},
            }
        )

    async def agent_report(request: web.Request) -> web.StreamResponse:
        """Each agent's time by state and occupancy over [since, until)
        (default: today, UTC, until now, from the live fold: no store read, so
        a wallboard may ask every minute); ``routing.agent_stats``."""
        await authorize(request, "reports.read", None)
        now = service.clock()
        if "since" not in request.query and "until" not in request.query:
            live = service.agents_today(now)
            since, until = live.since, now
            times = live.read(now, _states())
        else:
            try:
                since = float(request.query.get("since", str(now - now % 86400)))
                until = float(request.query["until"]) if "until" in request.query else now
            except ValueError:
                raise InvalidRequest("since/until: expected epoch seconds") from None
            if not (0 <= since < until <= MAX_EPOCH):
                raise InvalidRequest("since/until: expected epoch seconds, since < until")
            events = await service.journal.events(since=since, until=until)
            if until >= now:  # to now: an agent with no change in the period is as now
                until = now
                times = agent_times(events, since, until, _states())
            else:
                times = agent_times(events, since, until)
        return web.json_response(
            {
                "since": since,
                "until": until,
                "agents": {agent: t.to_json() for agent, t in times.items()},
            }
        )

    def _states() -> dict[str, model.AgentState]:
        return {a: service.router.agent(a).state for a in service.router.agent_ids()}

    async def interval_report(request: web.Request) -> web.StreamResponse:
        """Every interval of [since, until) per queue (default: today, UTC,
        15-minute intervals): calls offered, answered, abandoned, service
        level, ASA, AHT. Dense: an interval without calls is there, with zeros."""
        await authorize(request, "reports.read", None)
        now = service.clock()
        try:
            seconds = int(request.query.get("seconds", "900"))
            since = float(request.query.get("since", str(now - now % 86400)))
            until = float(request.query.get("until", str(now)))
        except ValueError:
            raise InvalidRequest("since/until/seconds: expected epoch seconds") from None
        if seconds not in INTERVAL_SECONDS:
            raise InvalidRequest(
                f"seconds: expected one of {', '.join(map(str, INTERVAL_SECONDS))}"
            )
        if not since < until or (until - since) / seconds > MAX_INTERVALS:
            raise InvalidRequest(
                f"since/until: expected since < until and at most {MAX_INTERVALS} intervals"
            )
        first = since - since % seconds
        events = await service.journal.events(since=first, until=until)
        folded = IntervalStats.fold(
            events,
            seconds=seconds,
            formula=service.stats.formula,
            short_abandon_seconds=service.stats.short_abandon_seconds,
            queues=list(service.queues),
        )
        return web.json_response(
            {
                "since": since,
                "until": until,
                "interval_seconds": seconds,
                "service_level_formula": folded.formula,
                "queues": {
                    q: [
                        interval_json(start, seconds, figures)
                        for start, figures in folded.series(q, first, until)
                    ]
                    for q in service.queues
                },
            }
        )

    async def set_agent_state(request: web.Request) -> web.StreamResponse:
        agent_id = request.match_info["agent_id"]
        body = await _body(request)
        await authorize(request, "agents.state", agent_id)
        state = _field(body, "state", str)
        if state not in AGENT_STATES:
            raise InvalidRequest(f"state: expected one of {', '.join(AGENT_STATES)}")
        reason = _field(body, "reason", str, default=None)
        await service.set_agent_state(agent_id, state, reason)
        view = service.router.agent(agent_id)
        return web.json_response(to_json(view))

    async def end_wrap_up(request: web.Request) -> web.StreamResponse:
        agent_id = request.match_info["agent_id"]
        await authorize(request, "agents.state", agent_id)
        await service.end_wrap_up(agent_id)
        return web.json_response(to_json(service.router.agent(agent_id)))

    async def get_agent(request: web.Request) -> web.StreamResponse:
        agent_id = request.match_info["agent_id"]
        await authorize(request, "agents.read", agent_id)
        return web.json_response(to_json(service.router.agent(agent_id)))

    def reservation_action(verb: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            rid = request.match_info["reservation_id"]
            view = service.router.reservation(rid)
            await authorize(request, f"reservations.{verb}", view.agent_id)
            if verb == "accept":
                await service.accept(rid)
            else:
                await service.reject(rid)
            return web.json_response(to_json(service.router.reservation(rid)))

        return handler

    return [
        web.post("/api/tasks", guarded(create_task)),
        web.get("/api/tasks/{task_id}", guarded(get_task)),
        web.post("/api/tasks/{task_id}/complete", guarded(complete_task)),
        web.get("/api/queues", guarded(list_queues)),
        web.get("/api/reports/queues", guarded(queue_report)),
        web.get("/api/reports/queues/intervals", guarded(interval_report)),
        web.get("/api/reports/agents", guarded(agent_report)),
        web.get("/api/reports/surveys", guarded(survey_report)),
        web.get("/api/agents/{agent_id}", guarded(get_agent)),
        web.post("/api/agents/{agent_id}/state", guarded(set_agent_state)),
        web.post("/api/agents/{agent_id}/wrap-up/end", guarded(end_wrap_up)),
        web.post(
            "/api/reservations/{reservation_id}/accept", guarded(reservation_action("accept"))
        ),
        web.post(
            "/api/reservations/{reservation_id}/reject", guarded(reservation_action("reject"))
        ),
    ]
