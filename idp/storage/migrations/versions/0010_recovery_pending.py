"""recovery codes: a new set stays pending until the person confirms they saved it

Revision ID: 0010_recovery_pending
Revises: 0009_audit_keys
Create Date: 2026-12-07 20:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_recovery_pending"
down_revision = "0009_audit_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # every set stored before this was shown and is in use. Plain ALTER TABLE … ADD COLUMN on both
    # engines: a batch would reflect the table, and with it eids, whose expression index SQLite
    # cannot reflect
    op.add_column("recovery_codes", sa.Column("set_id", sa.String(length=22), nullable=True))
    op.add_column(
        "recovery_codes", sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    # a pending set was never in use; without the column it would be
    op.execute(sa.delete(sa.table("recovery_codes", sa.column("pending"))).where(sa.column("pending")))
    op.drop_column("recovery_codes", "pending")  # SQLite 3.35 and newer drop a column in place
    op.drop_column("recovery_codes", "set_id")
