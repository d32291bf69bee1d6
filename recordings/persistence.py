"""Recording tables: ``recordings``, ``recording_pauses`` and ``legal_holds``.

A recording row is created when recording starts (state ``recording``) and lives until
the purge job or a GDPR erase deletes it together with its file. Its life:

    recording <-> paused -> ended -> stored -> missing (file lost; ``check`` flags it)
                                  \\-> failed

``ended``: the recording stopped and its file is still in the spool directory
(``spool_name``); the ingestor moves it into storage and sets ``stored`` with the
SHA-256, size (plaintext bytes) and duration. ``id`` is ``uuid4().hex``: never
enumerable. ``retain_until`` is set when stored, from the queue's retention days
(NULL: kept until erased). A legal hold names exactly one interaction or one customer
and blocks purge and erase while ``released_at`` is NULL.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from store.db import metadata
from store.types import UtcDateTime

__all__ = [
    "PAUSE_SOURCES",
    "SOURCES",
    "STATES",
    "legal_holds",
    "recording_pauses",
    "recordings",
]

STATES: Final = ("recording", "paused", "ended", "stored", "failed", "missing")
SOURCES: Final = ("asterisk", "twilio")
PAUSE_SOURCES: Final = ("desk", "api", "ivr")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


recordings = Table(
    "recordings",
    metadata,
    Column("id", String(32), primary_key=True),
    # No ON DELETE: an interaction with recordings cannot be deleted by accident.
    Column("interaction_id", Integer, ForeignKey("interactions.id"), nullable=False, index=True),
    Column("call_id", String(64), nullable=True, index=True),
    Column(
        "agent_id", Integer, ForeignKey("agents.id", ondelete="SET NULL"), nullable=True, index=True
    ),
    Column(
        "customer_id",
        Integer,
        ForeignKey("customers.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("queue", String(64), nullable=True),
    Column("source", String(16), nullable=False),
    Column("external_id", String(128), nullable=True),
    Column("state", String(16), nullable=False),
    Column("spool_name", String(255), nullable=True),
    Column("storage_key", String(255), nullable=True, unique=True),
    Column("sha256", String(64), nullable=True),
    Column("size_bytes", BigInteger, nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("content_type", String(64), nullable=False, server_default="audio/wav"),
    Column("encrypted", Boolean(create_constraint=False), nullable=False, server_default=false()),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("stored_at", UtcDateTime(), nullable=True),
    Column("retain_until", UtcDateTime(), nullable=True, index=True),
    Column("created_at", UtcDateTime(), nullable=False),
    CheckConstraint(_in("state", STATES), name="state"),
    CheckConstraint(_in("source", SOURCES), name="source"),
    Index("ix_recordings_external_id", "source", "external_id"),
)

recording_pauses = Table(
    "recording_pauses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "recording_id",
        String(32),
        ForeignKey("recordings.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("paused_at", UtcDateTime(), nullable=False),
    Column("resumed_at", UtcDateTime(), nullable=True),
    Column("actor_id", String(64), nullable=True),  # an agent id, "api-token", "ivr"...
    Column("source", String(16), nullable=False),
    CheckConstraint(_in("source", PAUSE_SOURCES), name="source"),
)

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", Integer, primary_key=True),
    # No ON DELETE: a held interaction or customer cannot be deleted.
    Column("interaction_id", Integer, ForeignKey("interactions.id"), nullable=True, index=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=True, index=True),
    Column("reason", Text, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("released_at", UtcDateTime(), nullable=True),
    Column("released_by", String(64), nullable=True),
    CheckConstraint(
        "(interaction_id IS NULL) <> (customer_id IS NULL)", name="exactly_one_subject"
    ),
)
