"""E-mail tables: one row per message (inbound or outbound) on an interaction, and its
attachments.

The raw RFC 5322 bytes and every attachment live in files under the data directory
(``mail/raw/...``, ``mail/attachments/...``, uuid-named, written atomically); the rows
keep the path relative to the data directory, the SHA-256 and the size. Lists of
addresses are stored one per line; ``reference_ids`` holds the References ids
separated by spaces (oldest first).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)

from store.db import metadata
from store.types import UtcDateTime

__all__ = ["email_attachments", "email_messages"]

email_messages = Table(
    "email_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    # No ON DELETE: an interaction that has mail cannot be deleted by accident.
    Column("interaction_id", Integer, ForeignKey("interactions.id"), nullable=False, index=True),
    Column("direction", String(16), nullable=False),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("in_reply_to", String(255), nullable=True),
    Column("reference_ids", Text, nullable=False),
    Column("opens_interaction", Boolean, nullable=False),
    Column("from_addr", String(320), nullable=True),
    Column("from_name", Text, nullable=True),
    Column("reply_to", Text, nullable=False),
    Column("to_addrs", Text, nullable=False),
    Column("cc_addrs", Text, nullable=False),
    Column("envelope_from", Text, nullable=True),
    Column("envelope_to", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text_body", Text, nullable=True),
    Column("html_body", Text, nullable=True),
    Column("header_date", UtcDateTime(), nullable=True),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("status_reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("routed_at", UtcDateTime(), nullable=True),
    Column("raw_path", String(255), nullable=False),
    Column("raw_sha256", String(64), nullable=False),
    Column("raw_size", Integer, nullable=False),
    Column("problem", Text, nullable=True),
    CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
    CheckConstraint("status IN ('received', 'queued', 'sent', 'failed')", name="status"),
)

email_attachments = Table(
    "email_attachments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "email_id",
        Integer,
        ForeignKey("email_messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("position", Integer, nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(127), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", String(255), nullable=False),
)
