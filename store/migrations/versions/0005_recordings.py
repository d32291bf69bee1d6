"""Recordings: one row per recording (linked to the interaction, agent and customer),
its pauses, and legal holds on interactions or customers.

Revision ID: 0005
Revises: 0004
Create Date: written against recordings/persistence.py at 0004, reviewed by hand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("spool_name", sa.String(length=255), nullable=True),
        sa.Column("storage_key", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(length=64), nullable=False, server_default="audio/wav"),
        sa.Column("encrypted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.Column("stored_at", _utc(), nullable=True),
        sa.Column("retain_until", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.CheckConstraint(
            "state IN ('recording', 'paused', 'ended', 'stored', 'failed', 'missing')",
            name=op.f("ck_recordings_state"),
        ),
        sa.CheckConstraint("source IN ('asterisk', 'twilio')", name=op.f("ck_recordings_source")),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_recordings_interaction_id_interactions"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_recordings_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_recordings_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_recordings_storage_key")),
    )
    op.create_index(op.f("ix_recordings_interaction_id"), "recordings", ["interaction_id"])
    op.create_index(op.f("ix_recordings_call_id"), "recordings", ["call_id"])
    op.create_index(op.f("ix_recordings_agent_id"), "recordings", ["agent_id"])
    op.create_index(op.f("ix_recordings_customer_id"), "recordings", ["customer_id"])
    op.create_index(op.f("ix_recordings_retain_until"), "recordings", ["retain_until"])
    op.create_index("ix_recordings_external_id", "recordings", ["source", "external_id"])

    op.create_table(
        "recording_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("paused_at", _utc(), nullable=False),
        sa.Column("resumed_at", _utc(), nullable=True),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "source IN ('desk', 'api', 'ivr')", name=op.f("ck_recording_pauses_source")
        ),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_pauses_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_pauses")),
    )
    op.create_index(op.f("ix_recording_pauses_recording_id"), "recording_pauses", ["recording_id"])

    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("released_at", _utc(), nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "(interaction_id IS NULL) <> (customer_id IS NULL)",
            name=op.f("ck_legal_holds_exactly_one_subject"),
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_legal_holds_interaction_id_interactions"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_legal_holds_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    op.create_index(op.f("ix_legal_holds_interaction_id"), "legal_holds", ["interaction_id"])
    op.create_index(op.f("ix_legal_holds_customer_id"), "legal_holds", ["customer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_legal_holds_customer_id"), table_name="legal_holds")
    op.drop_index(op.f("ix_legal_holds_interaction_id"), table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_index(op.f("ix_recording_pauses_recording_id"), table_name="recording_pauses")
    op.drop_table("recording_pauses")
    op.drop_index("ix_recordings_external_id", table_name="recordings")
    op.drop_index(op.f("ix_recordings_retain_until"), table_name="recordings")
    op.drop_index(op.f("ix_recordings_customer_id"), table_name="recordings")
    op.drop_index(op.f("ix_recordings_agent_id"), table_name="recordings")
    op.drop_index(op.f("ix_recordings_call_id"), table_name="recordings")
    op.drop_index(op.f("ix_recordings_interaction_id"), table_name="recordings")
    op.drop_table("recordings")
