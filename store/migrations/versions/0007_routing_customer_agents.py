"""Routing: the last agent of each customer (the sticky-agent rule) in its own
table, one row per customer written when it changes, instead of one JSON list
of every pair rewritten in ``routing_meta`` at every routing command.

Revision ID: 0007
Revises: 0006
Create Date: written against routing/journal.py at 0006, reviewed by hand
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

META_KEY = "last_agent_of_customer"


def upgrade() -> None:
    table = op.create_table(
        "routing_customer_agents",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_routing_customer_agents")),
    )
    meta = sa.table("routing_meta", sa.column("key", sa.String), sa.column("value", sa.JSON))
    bind = op.get_bind()
    row = bind.execute(sa.select(meta.c.value).where(meta.c.key == META_KEY)).first()
    if row is not None:
        pairs = {str(c): str(a) for c, a in (row.value or [])}
        if pairs:
            op.bulk_insert(table, [{"customer_id": c, "agent_id": a} for c, a in pairs.items()])
        bind.execute(sa.delete(meta).where(meta.c.key == META_KEY))


def downgrade() -> None:
    table = sa.table(
        "routing_customer_agents",
        sa.column("customer_id", sa.String),
        sa.column("agent_id", sa.String),
    )
    meta = sa.table("routing_meta", sa.column("key", sa.String), sa.column("value", sa.JSON))
    bind = op.get_bind()
    pairs = [
        [r.customer_id, r.agent_id]
        for r in bind.execute(sa.select(table).order_by(table.c.customer_id)).all()
    ]
    if pairs:
        bind.execute(sa.insert(meta).values(key=META_KEY, value=pairs))
    op.drop_table("routing_customer_agents")
