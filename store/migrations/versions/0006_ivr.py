"""IVR sessions: one row per caller per flow run (and per post-call survey), the
interpreter's session as JSON, the outcome, where an abandoned caller hung up,
what the caller told the IVR and the survey score (ivr/persistence.py).

Revision ID: 0006
Revises: 0005
Create Date: written against ivr/persistence.py at 0005, reviewed by hand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES = (
    "in_progress",
    "queued",
    "transferred",
    "voicemail",
    "callback",
    "completed",
    "failed",
    "abandoned",
)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "ivr_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("edge", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False, server_default="flow"),
        sa.Column("origin_id", sa.String(length=32), nullable=True),
        sa.Column("call_ref", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("session", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False, server_default="in_progress"),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("abandoned_node", sa.String(length=64), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("survey_score", sa.Integer(), nullable=True),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.CheckConstraint(_in("edge", ("agi", "twilio")), name=op.f("ck_ivr_sessions_edge")),
        sa.CheckConstraint(_in("phase", ("flow", "survey")), name=op.f("ck_ivr_sessions_phase")),
        sa.CheckConstraint(_in("outcome", OUTCOMES), name=op.f("ck_ivr_sessions_outcome")),
        sa.CheckConstraint(
            "survey_score IS NULL OR survey_score BETWEEN 1 AND 9",
            name=op.f("ck_ivr_sessions_survey_score"),
        ),
        sa.ForeignKeyConstraint(
            ["origin_id"], ["ivr_sessions.id"], name=op.f("fk_ivr_sessions_origin_id_ivr_sessions")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_ivr_sessions_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_ivr_sessions_interaction_id_interactions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_sessions")),
    )
    op.create_index("ix_ivr_sessions_call_ref", "ivr_sessions", ["call_ref"])
    op.create_index("ix_ivr_sessions_call_id", "ivr_sessions", ["call_id"])
    op.create_index("ix_ivr_sessions_interaction_id", "ivr_sessions", ["interaction_id"])


def downgrade() -> None:
    op.drop_index("ix_ivr_sessions_interaction_id", table_name="ivr_sessions")
    op.drop_index("ix_ivr_sessions_call_id", table_name="ivr_sessions")
    op.drop_index("ix_ivr_sessions_call_ref", table_name="ivr_sessions")
    op.drop_table("ivr_sessions")
