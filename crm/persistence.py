"""CRM tables: customers, their phone numbers and e-mail addresses, and interactions.

``customer_phones.number_e164`` holds ``crm.phones.normalize_phone`` output (E.164 when
possible), indexed: the screen-pop lookup is one equality match on it.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from store.db import metadata
from store.types import UtcDateTime

__all__ = ["customer_emails", "customer_phones", "customers", "interactions"]

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("account_number", String(64), nullable=True, unique=True),
    Column("notes", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

customer_phones = Table(
    "customer_phones",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id",
        Integer,
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("number_e164", String(32), nullable=False, index=True),
    Column("raw", String(64), nullable=False),
    Column("label", String(32), nullable=True),
    UniqueConstraint("customer_id", "number_e164"),
)

customer_emails = Table(
    "customer_emails",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id",
        Integer,
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("address", String(320), nullable=False, index=True),
    UniqueConstraint("customer_id", "address"),
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id",
        Integer,
        ForeignKey("customers.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("channel", String(16), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("call_id", String(64), nullable=True, index=True),
    Column("queue", String(64), nullable=True),
    Column(
        "agent_id",
        Integer,
        ForeignKey("agents.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("answered_at", UtcDateTime(), nullable=True),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("disposition", String(64), nullable=True),
    Column("notes", Text, nullable=True),
    Column("subject", String(300), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    CheckConstraint("channel IN ('voice', 'email')", name="channel"),
    CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
    Index("ix_interactions_customer_id_started_at", "customer_id", "started_at"),
)
