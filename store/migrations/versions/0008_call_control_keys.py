"""Call control: the idempotency keys of originate, transfer and spy in the
store (cti/keys.py), so a restart does not run a key's action a second time.

Revision ID: 0008
Revises: 0007
Create Date: written against cti/keys.py, reviewed by hand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_control_keys",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_call_control_keys")),
    )
    op.create_index(op.f("ix_call_control_keys_created_at"), "call_control_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_call_control_keys_created_at"), table_name="call_control_keys")
    op.drop_table("call_control_keys")
