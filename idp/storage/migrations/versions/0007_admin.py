"""SSO login tokens and the tenant administration API: per-tenant and per-client settings

Revision ID: 0007_admin
Revises: 0004_scim
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_admin"
down_revision = "0004_scim"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column(
                "login_token_unknown_users", sa.String(length=16), nullable=False, server_default="refuse"
            )
        )
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("login_token_acr", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("login_token_secret", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("login_token_secret")
        batch.drop_column("login_token_acr")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("login_token_unknown_users")
