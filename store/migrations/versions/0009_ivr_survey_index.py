"""IVR: an index for the survey answers of a period (the survey report and the
wallboard's figures read them by phase and time).

Revision ID: 0009
Revises: 0008
Create Date: written against ivr/persistence.py, reviewed by hand
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ivr_sessions_phase_updated_at", "ivr_sessions", ["phase", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_ivr_sessions_phase_updated_at", table_name="ivr_sessions")
