"""Errors of the routing engine.

Every error is raised before anything changes: a refused call leaves the
router exactly as it was.

RoutingError
+-- RoutingConfigError      a queue or agent configuration is refused; the message
|                           names the queue (or agent) and the problem
+-- ExpressionError         an expression does not parse (``.column`` is 1-based)
+-- InvalidRequest          a malformed argument (unknown channel, bad attribute value,
|                           an agent state that cannot be set, ...)
+-- NotFound                (maps to HTTP 404)
|   +-- UnknownQueue
|   +-- UnknownTask
|   +-- UnknownAgent
|   +-- UnknownReservation
+-- Duplicate               (maps to HTTP 409)
|   +-- DuplicateTask
|   +-- DuplicateAgent
+-- InvalidTransition       the thing exists but is not in a state that allows the call
                            (accepting a reservation that timed out, completing a
                            waiting task, ...) (maps to HTTP 409)
"""

from __future__ import annotations

__all__ = [
    "Duplicate",
    "DuplicateAgent",
    "DuplicateTask",
    "ExpressionError",
    "InvalidRequest",
    "InvalidTransition",
    "NotFound",
    "RoutingConfigError",
    "RoutingError",
    "UnknownAgent",
    "UnknownQueue",
    "UnknownReservation",
    "UnknownTask",
]


class RoutingError(Exception):
    """Base of every error raised by ``routing``."""


class RoutingConfigError(RoutingError, ValueError):
    pass


class ExpressionError(RoutingError, ValueError):
    """``message`` says what was expected; ``column`` is 1-based (len + 1 at the end)."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class InvalidRequest(RoutingError, ValueError):
    pass


class NotFound(RoutingError, LookupError):
    kind = "object"

    def __init__(self, ident: str) -> None:
        super().__init__(f"unknown {self.kind} {ident!r}")
        self.ident = ident


class UnknownQueue(NotFound):
    kind = "queue"


class UnknownTask(NotFound):
    kind = "task"


class UnknownAgent(NotFound):
    kind = "agent"


class UnknownReservation(NotFound):
    kind = "reservation"


class Duplicate(RoutingError):
    kind = "object"

    def __init__(self, ident: str) -> None:
        super().__init__(f"{self.kind} {ident!r} already exists")
        self.ident = ident


class DuplicateTask(Duplicate):
    kind = "task"


class DuplicateAgent(Duplicate):
    kind = "agent"


class InvalidTransition(RoutingError):
    pass
