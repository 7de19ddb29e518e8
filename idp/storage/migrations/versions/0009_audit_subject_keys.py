"""audit subject keys: usernames in audit events encrypted per eID, shredded on erasure

Revision ID: 0009_audit_keys
Revises: 0008_videoid
Create Date: 2026-11-22 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_audit_keys"
down_revision = "0008_videoid"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_subject_keys",
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_audit_subject_keys_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("eid_id", name=op.f("pk_audit_subject_keys")),
    )


def downgrade() -> None:
    op.drop_table("audit_subject_keys")
