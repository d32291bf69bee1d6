"""Email into routing, and the agent's reply out.

Inbound mail is stored by the SMTP listener before ``on_email`` sees it. A
message that opens an interaction, or a follow-up on an interaction with no
live email task, becomes a task (id ``e-<message id>``, so delivering the same
message twice cannot make two tasks); a follow-up while a task is live just
joins the thread the agent is already working on. Once the task is stored the
message is marked routed; at start-up, mail stored but never routed (a crash,
a failing router) is routed then.

Replies: ``POST /api/interactions/{id}/reply`` sends through ``MailSender``,
which stores the reply before sending and records ``sent`` or ``failed``; the
interaction's assigned email task is then completed unless the agent asks to
keep it open.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from crm.mail.repository import MailStore, StoredEmail
from routing import model
from routing.errors import RoutingError
from routing.service import RoutingService

__all__ = ["EmailRouting", "email_json", "routes"]

log = logging.getLogger(__name__)

LIVE = ("waiting", "reserved", "assigned")


class ReplySender(Protocol):
    async def send_reply(
        self, interaction_id: int, agent_display_name: str, text_body: str, *, in_reply_to_pk: int
    ) -> StoredEmail: ...


class EmailRouting:
    def __init__(self, routing: RoutingService, store: MailStore, *, queue_id: str) -> None:
        self.routing = routing
        self.store = store
        self.queue_id = queue_id

    async def on_email(self, email: StoredEmail) -> None:
        """The listener's callback: the message is already stored."""
        live = await self.routing.journal.live_task_for_interaction(email.interaction_id)
        if live is not None and self._state(live) in LIVE:
            await self.store.mark_routed(email.id)
            return
        task_id = f"e-{email.id}"
        if await self.routing.journal.task(task_id) is None:
            spec = model.TaskSpec(
                id=task_id,
                queue_id=self.queue_id,
                channel="email",
                customer_id=None if email.customer_id is None else str(email.customer_id),
                attributes={
                    "subject": email.subject[:200],
                    "from": email.from_addr or "",
                    "follow_up": not email.new_interaction,
                },
            )
            await self.routing.submit(spec, interaction_id=email.interaction_id)
        await self.store.mark_routed(email.id)

    def _state(self, task_id: str) -> str:
        try:
            return self.routing.router.task_state(task_id).value
        except RoutingError:
            return "unknown"

    async def route_unrouted(self) -> int:
        """Route what was stored but never routed; returns how many."""
        count = 0
        for email in await self.store.unrouted():
            if email.direction != "inbound":
                continue
            try:
                await self.on_email(email)
                count += 1
            except Exception:
                log.exception("email %s could not be routed", email.id)
        return count


def email_json(email: StoredEmail) -> dict[str, Any]:
    return {
        "id": email.id,
        "interaction_id": email.interaction_id,
        "direction": email.direction,
        "message_id": email.message_id,
        "from": {"address": email.from_addr, "name": email.from_name},
        "to": list(email.to_addrs),
        "cc": list(email.cc_addrs),
        "subject": email.subject,
        "text": email.text_body,
        # Kept as received; a client must never render it as HTML.
        "html": email.html_body,
        "received_at": email.received_at.isoformat(),
        "status": email.status,
        "status_reason": email.status_reason,
        "sent_at": None if email.sent_at is None else email.sent_at.isoformat(),
    }


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


Authorize = Callable[[web.Request, str, str | None], Awaitable[None]]


async def _allow(request: web.Request, action: str, subject: str | None) -> None:
    return None


def routes(
    emails: EmailRouting,
    sender: ReplySender,
    *,
    max_reply_chars: int = 100_000,
    authorize: Authorize = _allow,
) -> list[web.RouteDef]:
    """``authorize(request, action, interaction id)`` may raise to refuse:
    ``interactions.read`` (the thread), ``interactions.reply``."""

    async def thread(request: web.Request) -> web.StreamResponse:
        try:
            interaction_id = int(request.match_info["interaction_id"])
        except ValueError:
            return _error(400, "invalid_request", "interaction id: expected an integer")
        await authorize(request, "interactions.read", str(interaction_id))
        messages = await emails.store.thread(interaction_id)
        if not messages:
            return _error(404, "unknown_interaction", f"no email on interaction {interaction_id}")
        return web.json_response({"messages": [email_json(m) for m in messages]})

    async def reply(request: web.Request) -> web.StreamResponse:
        try:
            interaction_id = int(request.match_info["interaction_id"])
        except ValueError:
            return _error(400, "invalid_request", "interaction id: expected an integer")
        await authorize(request, "interactions.reply", str(interaction_id))
        try:
            body = await request.json()
        except ValueError as exc:
            return _error(400, "invalid_request", f"expected JSON ({exc})")
        if not isinstance(body, dict):
            return _error(400, "invalid_request", "body: expected a JSON object")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "invalid_request", "text: required, a non-empty string")
        if len(text) > max_reply_chars:
            return _error(400, "invalid_request", f"text: at most {max_reply_chars} characters")
        agent_name = body.get("agent_name", "Support")
        if not isinstance(agent_name, str) or len(agent_name) > 200:
            return _error(400, "invalid_request", "agent_name: expected a short string")
        messages = await emails.store.thread(interaction_id)
        inbound = [m for m in messages if m.direction == "inbound"]
        if not inbound:
            return _error(404, "unknown_interaction", f"no email on interaction {interaction_id}")
        parent_id = body.get("in_reply_to", inbound[-1].id)
        if not isinstance(parent_id, int) or isinstance(parent_id, bool):
            return _error(400, "invalid_request", "in_reply_to: expected a message id")
        try:
            sent = await sender.send_reply(
                interaction_id, agent_name, text, in_reply_to_pk=parent_id
            )
        except (LookupError, ValueError) as exc:
            return _error(400, "invalid_request", str(exc))
        completed = None
        if body.get("complete", True) is not False:
            task_id = await emails.routing.journal.live_task_for_interaction(interaction_id)
            if task_id is not None and emails._state(task_id) == "assigned":
                await emails.routing.complete(task_id)
                completed = task_id
        return web.json_response(
            {"reply": email_json(sent), "completed_task": completed},
            status=201 if sent.status == "sent" else 502,
            dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
        )

    return [
        web.get("/api/interactions/{interaction_id}/emails", thread),
        web.post("/api/interactions/{interaction_id}/reply", reply),
    ]
