"""SCIM provisioning: tokens, SCIM-owned user data and its filter index, groups

Revision ID: 0004_scim
Revises: 0003_loa_factors
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_scim"
down_revision = "0003_loa_factors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "uq_eids_tenant_username_ci", "eids", ["tenant_id", sa.text("lower(username)")], unique=True
    )
    op.create_index("ix_eids_tenant_created", "eids", ["tenant_id", "created_at", "id"])
    op.create_table(
        "scim_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_scim_tokens_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_scim_tokens_digest")),
    )
    op.create_table(
        "scim_users",
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("external_id", sa.String(length=320), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_scim_users_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_scim_users_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("eid_id", name=op.f("pk_scim_users")),
    )
    op.create_table(
        "scim_values",
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("attr", sa.String(length=200), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("sub", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_ci", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "attr", "item", "sub", name=op.f("pk_scim_values")),
    )
    op.create_index("ix_scim_values_lookup", "scim_values", ["tenant_id", "attr", "sub", "value_ci"])
    op.create_table(
        "groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=320), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_groups_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
    )
    op.create_index("ix_groups_tenant_created", "groups", ["tenant_id", "created_at", "id"])
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_members_group_id_groups"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_group_members_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "eid_id", name=op.f("pk_group_members")),
    )
    op.create_index("ix_group_members_eid_id", "group_members", ["eid_id"])


def downgrade() -> None:
    op.drop_index("ix_group_members_eid_id", table_name="group_members")
    op.drop_table("group_members")
    op.drop_index("ix_groups_tenant_created", table_name="groups")
    op.drop_table("groups")
    op.drop_index("ix_scim_values_lookup", table_name="scim_values")
    op.drop_table("scim_values")
    op.drop_table("scim_users")
    op.drop_table("scim_tokens")
    op.drop_index("ix_eids_tenant_created", table_name="eids")
    op.drop_index("uq_eids_tenant_username_ci", table_name="eids")
