"""The relational schema: SQLAlchemy Core tables shared by SQLite and PostgreSQL.

Times are stored as UTC epoch seconds (``Float``) so that expiry checks are plain numeric
comparisons on both engines; the audit trail also keeps an ISO 8601 string, which is what its
hash chain covers. Secrets (session cookies, codes, tokens, links) are stored only as SHA-256
digests: they are random, so a fast digest is enough and a leaked table cannot be replayed.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("slug", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("branding", JSON, nullable=False, default=dict),
    Column("status", String(16), nullable=False, default="active"),
    Column("created_at", Float, nullable=False),
)

eids = Table(
    "eids",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("username", String(320), nullable=False),
    # the normalised address used to find the eID at login; the attribute row keeps the value as given
    Column("email_normalized", String(320), nullable=True),
    Column("status", String(16), nullable=False, default="active"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "username", name="uq_eids_tenant_username"),
    UniqueConstraint("tenant_id", "email_normalized", name="uq_eids_tenant_email"),
)

eid_attributes = Table(
    "eid_attributes",
    metadata,
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("verified_method", String(64), nullable=True),
    Column("verified_at", Float, nullable=True),
    Column("evidence_ref", String(200), nullable=True),
    Column("updated_at", Float, nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("client_type", String(16), nullable=False),
    Column("secret_digest", String(64), nullable=True),
    Column("token_endpoint_auth_method", String(32), nullable=False),
    Column("redirect_uris", JSON, nullable=False, default=list),
    Column("post_logout_redirect_uris", JSON, nullable=False, default=list),
    Column("grant_types", JSON, nullable=False, default=list),
    Column("scopes", JSON, nullable=False, default=list),
    Column("jwks", JSON, nullable=True),
    Column("id_token_signed_response_alg", String(16), nullable=False, default="RS256"),
    Column("default_acr", String(64), nullable=True),
    Column("minimum_acr", String(64), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("private_key", LargeBinary, nullable=False),  # AES-GCM sealed with the instance secret
    Column("public_jwk", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # active | retired
    Column("created_at", Float, nullable=False),
    Column("retired_at", Float, nullable=True),
    Column("not_after", Float, nullable=True),  # retired keys leave the JWKS after this
)

sso_sessions = Table(
    "sso_sessions",
    metadata,
    Column("sid", String(36), primary_key=True),
    Column("cookie_digest", String(64), nullable=False, unique=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=False),
    Column("auth_time", Float, nullable=False),
    Column("acr", String(64), nullable=False),
    Column("amr", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("client_ip", String(64), nullable=True),
)

auth_requests = Table(
    "auth_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("params", JSON, nullable=False),
    Column("browser_digest", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("completed_at", Float, nullable=True),
)

email_links = Table(
    "email_links",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("browser_digest", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Column("client_ip", String(64), nullable=True),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("grant_id", String(36), nullable=False),
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=False),
    Column("sid", String(36), nullable=True),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", Text, nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(8), nullable=True),
    Column("auth_time", Float, nullable=False),
    Column("acr", String(64), nullable=False),
    Column("amr", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),  # access | refresh
    Column("grant_id", String(36), nullable=False),  # one login's tokens; revoked together
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("tenant_id", String(36), nullable=False),
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=True),
    Column("sid", String(36), nullable=True),
    Column("scope", Text, nullable=False),
    Column("auth_time", Float, nullable=True),
    Column("acr", String(64), nullable=True),
    Column("amr", JSON, nullable=True),
    Column("issued_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("rotated_at", Float, nullable=True),  # refresh tokens: used once, then replaced
    Column("revoked_at", Float, nullable=True),
    Index("ix_tokens_grant_id", "grant_id"),
)

used_assertions = Table(
    "used_assertions",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", Float, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("tenant_id", String(36), nullable=True),
    Column("eid_id", String(36), nullable=True),
    Column("username", String(320), nullable=True),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", String(32), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("transaction_id", String(64), nullable=True),
    Column("transaction_name", String(200), nullable=True),
    Column("details", JSON, nullable=False),
    Column("process_state", String(64), nullable=True),
    Column("client_ip", String(64), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_transaction_id", "transaction_id"),
    Index("ix_audit_events_eid_id", "eid_id"),
)

# one row: the chain's head, locked by every transaction that appends (SELECT … FOR UPDATE)
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
