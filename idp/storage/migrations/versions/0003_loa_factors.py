"""loa factors: sms codes, authenticator apps, passkeys, recovery codes

Revision ID: 0003_loa_factors
Revises: 0002_loa
Create Date: 2026-11-22 03:52:42.737944
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_loa_factors"
down_revision = "0002_loa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "otp_codes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("eid_id", sa.String(length=36), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("last_sent_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.Column("dead_at", sa.Float(), nullable=True),
        sa.Column("dead_reason", sa.String(length=16), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_otp_codes_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_otp_codes_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_otp_codes")),
    )
    with op.batch_alter_table("otp_codes", schema=None) as batch_op:
        batch_op.create_index("ix_otp_codes_tenant_phone", ["tenant_id", "phone"], unique=False)

    op.create_table(
        "passkey_challenges",
        sa.Column("id_digest", sa.String(length=64), nullable=False),
        sa.Column("challenge", sa.LargeBinary(), nullable=False),
        sa.Column("ceremony", sa.String(length=16), nullable=False),
        sa.Column("eid_id", sa.String(length=36), nullable=True),
        sa.Column("rp_id", sa.String(length=253), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_passkey_challenges_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id_digest", name=op.f("pk_passkey_challenges")),
    )
    op.create_table(
        "passkey_credentials",
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", sa.JSON(), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("backup_state", sa.Boolean(), nullable=False),
        sa.Column("user_verified", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_passkey_credentials_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("credential_id", name=op.f("pk_passkey_credentials")),
    )
    with op.batch_alter_table("passkey_credentials", schema=None) as batch_op:
        batch_op.create_index("ix_passkey_credentials_eid_id", ["eid_id"], unique=False)

    op.create_table(
        "recovery_codes",
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_recovery_codes_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("eid_id", "digest", name=op.f("pk_recovery_codes")),
    )
    op.create_table(
        "totp_credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("eid_id", sa.String(length=36), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("confirmed_at", sa.Float(), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["eid_id"], ["eids.id"], name=op.f("fk_totp_credentials_eid_id_eids"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_credentials")),
    )
    with op.batch_alter_table("totp_credentials", schema=None) as batch_op:
        batch_op.create_index("ix_totp_credentials_eid_id", ["eid_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("totp_credentials", schema=None) as batch_op:
        batch_op.drop_index("ix_totp_credentials_eid_id")

    op.drop_table("totp_credentials")
    op.drop_table("recovery_codes")
    with op.batch_alter_table("passkey_credentials", schema=None) as batch_op:
        batch_op.drop_index("ix_passkey_credentials_eid_id")

    op.drop_table("passkey_credentials")
    op.drop_table("passkey_challenges")
    with op.batch_alter_table("otp_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_otp_codes_tenant_phone")

    op.drop_table("otp_codes")
