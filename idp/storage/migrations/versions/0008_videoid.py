"""videoid: sessions, sealed evidence, proofing records, the tenant's videoid policy

Revision ID: 0008_videoid
Revises: 0007_admin
Create Date: 2026-11-22 04:18:05.655350
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_videoid"
down_revision = "0007_admin"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "eid_proofings",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=64), nullable=False),
        sa.Column("proofed_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_eid_proofings_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eid_proofings")),
    )
    with op.batch_alter_table("eid_proofings", schema=None) as batch_op:
        batch_op.create_index("ix_eid_proofings_eid_id", ["eid_id"], unique=False)

    op.create_table(
        "videoid_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.Column("browser_digest", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("challenges", sa.JSON(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("review", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("consent_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_videoid_sessions_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_videoid_sessions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_videoid_sessions")),
    )
    with op.batch_alter_table("videoid_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_videoid_sessions_eid_id", ["eid_id"], unique=False)
        batch_op.create_index("ix_videoid_sessions_status", ["status"], unique=False)

    op.create_table(
        "videoid_evidence",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["videoid_sessions.id"],
            name=op.f("fk_videoid_evidence_session_id_videoid_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_videoid_evidence")),
    )
    with op.batch_alter_table("videoid_evidence", schema=None) as batch_op:
        batch_op.create_index("ix_videoid_evidence_expires_at", ["expires_at"], unique=False)
        batch_op.create_index("ix_videoid_evidence_session_id", ["session_id"], unique=False)

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("videoid", sa.JSON(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("videoid")

    with op.batch_alter_table("videoid_evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_videoid_evidence_session_id")
        batch_op.drop_index("ix_videoid_evidence_expires_at")

    op.drop_table("videoid_evidence")
    with op.batch_alter_table("videoid_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_videoid_sessions_status")
        batch_op.drop_index("ix_videoid_sessions_eid_id")

    op.drop_table("videoid_sessions")
    with op.batch_alter_table("eid_proofings", schema=None) as batch_op:
        batch_op.drop_index("ix_eid_proofings_eid_id")

    op.drop_table("eid_proofings")
