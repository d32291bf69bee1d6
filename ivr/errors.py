"""Errors of the IVR core (flows and the interpreter).

A caller can never cause one of these: garbage digits, timeouts and hang-ups
are ordinary inputs with an ordinary answer. They mean a flow file is wrong
(refused at load, nothing is half-loaded) or an adapter misused the
interpreter (the session it holds is left as it was: sessions are immutable).

IvrError
+-- FlowError       a flow is refused at load; the message reads
|                   ``flow <name>, node <id>: <key>: <problem>`` (``.flow``,
|                   ``.node`` and ``.key`` hold the parts, ``None`` when not
|                   about one node or key)
+-- SessionError    an adapter fed an input the session does not wait for, a
                    session of another flow, a finished session, or a session
                    (from JSON) that does not fit the flow
"""

from __future__ import annotations

__all__ = ["FlowError", "IvrError", "SessionError"]


class IvrError(Exception):
    """Base of the IVR core's errors."""


class FlowError(IvrError):
    """A flow definition is refused. ``str(error)`` is one line naming the flow,
    the node and the key."""

    def __init__(
        self, flow: str | None, node: str | None, problem: str, *, key: str | None = None
    ) -> None:
        self.flow = flow
        self.node = node
        self.key = key
        self.problem = problem
        where = []
        if flow is not None:
            where.append(f"flow {flow}")
        if node is not None:
            where.append(f"node {node}")
        prefix = ", ".join(where)
        if key is not None:
            prefix = f"{prefix}: {key}" if prefix else key
        super().__init__(f"{prefix}: {problem}" if prefix else problem)


class SessionError(IvrError):
    """The interpreter was misused by its caller (an adapter), not by a caller on
    the phone. Nothing changed."""
