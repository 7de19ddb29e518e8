"""levels of assurance: passwords, login locks, invitations, the factors behind a login

Revision ID: 0002_loa
Revises: 0001
Create Date: 2026-11-22 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_loa"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auth_requests") as batch:
        batch.add_column(sa.Column("acr", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("eid_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("factors", sa.JSON(), nullable=True))
    with op.batch_alter_table("sso_sessions") as batch:
        batch.add_column(sa.Column("factors", sa.JSON(), nullable=True))
    with op.batch_alter_table("email_links") as batch:
        batch.add_column(sa.Column("purpose", sa.String(length=16), nullable=False, server_default="login"))
    op.create_table(
        "password_credentials",
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_password_credentials_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("eid_id", name=op.f("pk_password_credentials")),
    )
    op.create_table(
        "login_locks",
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("locked_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_login_locks_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("eid_id", name=op.f("pk_login_locks")),
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=True),
        sa.Column("family_name", sa.String(length=200), nullable=True),
        sa.Column("phone_number", sa.String(length=32), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("acr", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("browser_digest", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.Float(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("eid_id", sa.String(length=36), nullable=True),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_invitations_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_invitations_eid_id_eids"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_invitations_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("digest", name=op.f("uq_invitations_digest")),
    )
    op.create_index("ix_invitations_tenant_email", "invitations", ["tenant_id", "email"])


def downgrade() -> None:
    op.drop_index("ix_invitations_tenant_email", table_name="invitations")
    op.drop_table("invitations")
    op.drop_table("login_locks")
    op.drop_table("password_credentials")
    with op.batch_alter_table("email_links") as batch:
        batch.drop_column("purpose")
    with op.batch_alter_table("sso_sessions") as batch:
        batch.drop_column("factors")
    with op.batch_alter_table("auth_requests") as batch:
        batch.drop_column("factors")
        batch.drop_column("eid_id")
        batch.drop_column("acr")
