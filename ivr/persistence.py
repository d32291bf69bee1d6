"""The IVR's table: ``ivr_sessions``, one row per caller per flow run.

A row is written when a call enters a flow (outcome ``in_progress``) and after
every interpreter step (the interpreter's ``Session`` as JSON in ``session``,
the current ``node``): stored before the adapter plays or routes anything.
When the session ends its ``outcome`` is set (``queued``, ``transferred``,
``voicemail``, ``callback``, ``completed``, ``failed``, ``abandoned``; for
``abandoned`` ``abandoned_node`` is where the caller hung up) with
``ended_at``.

``edge``: ``agi`` (FastAGI; ``call_ref`` is the Asterisk channel's uniqueid)
or ``twilio`` (``call_ref`` is the CallSid). ``call_id``: the call tracker's
id once voice routing picked the call up (the linkedid); ``interaction_id``
and ``task_id``: the interaction and the routing task made from it (voice
routing for ``queued``; the runner for ``voicemail``/``callback``).

The post-call survey is a row of its own (``phase`` ``survey``) whose
``origin_id`` is the flow run it follows; it shares that run's
``interaction_id``, and ``survey_score`` (1..5) is the caller's answer. The
interaction's survey score is therefore ``survey_score`` of the survey row
with its ``interaction_id`` (``IvrRepository.survey_for_interaction``); the
interactions table of ``crm`` is left alone. ``data`` holds what the caller
told the IVR (collected digits, menu choices, language: the task attributes)
for the interaction and the screen-pop.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from store.db import metadata
from store.types import UtcDateTime

__all__ = ["EDGES", "OUTCOMES", "PHASES", "ivr_sessions"]

EDGES: Final = ("agi", "twilio")
PHASES: Final = ("flow", "survey")
OUTCOMES: Final = (
    "in_progress",
    "queued",
    "transferred",
    "voicemail",
    "callback",
    "completed",
    "failed",
    "abandoned",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


ivr_sessions = Table(
    "ivr_sessions",
    metadata,
    Column("id", String(32), primary_key=True),  # uuid4().hex
    Column("edge", String(16), nullable=False),
    Column("phase", String(16), nullable=False, server_default="flow"),
    Column("origin_id", String(32), ForeignKey("ivr_sessions.id"), nullable=True),
    Column("call_ref", String(64), nullable=False),
    Column("call_id", String(64), nullable=True),
    Column("flow", String(64), nullable=False),
    Column("node", String(64), nullable=False),
    Column("session", Text, nullable=False),  # ivr.model.Session.to_json()
    Column("data", JSON, nullable=True),  # what the caller told the IVR
    Column("outcome", String(16), nullable=False, server_default="in_progress"),
    Column("reason", String(200), nullable=True),
    Column("abandoned_node", String(64), nullable=True),
    Column("queue", String(64), nullable=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True),
    Column(
        "interaction_id",
        Integer,
        ForeignKey("interactions.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("task_id", String(64), nullable=True),
    Column("survey_score", Integer, nullable=True),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    CheckConstraint(_in("edge", EDGES), name="edge"),
    CheckConstraint(_in("phase", PHASES), name="phase"),
    CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
    CheckConstraint("survey_score IS NULL OR survey_score BETWEEN 1 AND 9", name="survey_score"),
    Index("ix_ivr_sessions_call_ref", "call_ref"),
    Index("ix_ivr_sessions_call_id", "call_id"),
    Index("ix_ivr_sessions_interaction_id", "interaction_id"),
    # The survey answers of a period (IvrRepository.survey_figures).
    Index("ix_ivr_sessions_phase_updated_at", "phase", "updated_at"),
)
