"""Who may do what on the desk: the authorization seam.

``Authorize(principal, action, subject) -> bool`` is asked on the server for
every client event that reads or changes something; ``subject`` is the agent
the action is about (the target of a state change, the agent a reservation
was offered to) or ``None``. The action names are the routing API's
(``routing/http.py``), so one policy can serve the REST routes and the desk.

``desk_policy`` is the default until the accounts helper plugs its own in:

* ``desk.connect``: agents, supervisors and admins (not ``service`` tokens);
* ``agents.state`` (set state, end wrap-up): an agent for themself only; a
  supervisor or admin for anyone (forcing an agent's state);
* ``reservations.accept`` / ``reservations.reject``: the agent the offer was
  made to; supervisors and admins (as ``agent_desk.authorization.POLICY``);
* ``customers.search``: every desk role.

``Audit`` is shaped like ``agent_desk.audit.AuditLog.record`` so that the log
can be passed as it is; ``LogAudit`` writes to the Python log meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

__all__ = [
    "DESK_ROLES",
    "SUPERVISOR_ROLES",
    "Audit",
    "Authorize",
    "LogAudit",
    "Principal",
    "desk_policy",
]

log = logging.getLogger(__name__)

DESK_ROLES: Final = frozenset({"agent", "supervisor", "admin"})
SUPERVISOR_ROLES: Final = frozenset({"supervisor", "admin"})


class Principal(Protocol):
    """``callwright.app.Principal``: an agent id (or ``api-token``) and a role."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> str: ...


Authorize = Callable[[Principal, str, str | None], bool | Awaitable[bool]]


def desk_policy(principal: Principal, action: str, subject: str | None) -> bool:
    role = principal.role
    if role not in DESK_ROLES:
        return False
    if action in ("desk.connect", "customers.search"):
        return True
    if action in ("agents.state", "reservations.accept", "reservations.reject"):
        return role in SUPERVISOR_ROLES or (subject is not None and subject == principal.id)
    return False


class Audit(Protocol):
    async def record(
        self,
        *,
        actor: Principal | None,
        action: str,
        outcome: str,
        subject: str | None = None,
        detail: Mapping[str, Any] | None = None,
        client_ip: str | None = None,
    ) -> Any: ...


class LogAudit:
    async def record(
        self,
        *,
        actor: Principal | None,
        action: str,
        outcome: str,
        subject: str | None = None,
        detail: Mapping[str, Any] | None = None,
        client_ip: str | None = None,
    ) -> None:
        level = logging.WARNING if outcome == "denied" else logging.INFO
        log.log(
            level,
            "audit: %s %s %s on %s (%s) from %s",
            None if actor is None else f"{actor.role}:{actor.id}",
            outcome,
            action,
            subject,
            dict(detail or {}),
            client_ip,
        )
