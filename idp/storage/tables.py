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
    false,
    func,
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
    # what a portal's login token for a person without an eID here does: refuse | create
    Column(
        "login_token_unknown_users", String(16), nullable=False, default="refuse", server_default="refuse"
    ),
    # video identification policy (videoid.policy.TenantPolicy): mode, accepted documents, retention
    Column("videoid", JSON, nullable=True),
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
    # SSO login tokens (idp.login_tokens): the level the tenant trusts this portal for; None: the
    # client may not mint login tokens
    Column("login_token_acr", String(64), nullable=True),
    # the client secret sealed with the instance secret, kept only for portals that sign login
    # tokens with HS256 (a digest cannot check an HMAC)
    Column("login_token_secret", LargeBinary, nullable=True),
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
    # the factors behind acr/amr, each {"method", "amr", "at"}: step-up asks only for what is missing
    Column("factors", JSON, nullable=True),
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
    # the login in progress for this request: the level it needs, who was identified, and the
    # factors proven so far (each {"method", "amr", "at"}), until the level is reached
    Column("acr", String(64), nullable=True),
    Column("eid_id", String(36), nullable=True),
    Column("factors", JSON, nullable=True),
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
    Column("purpose", String(16), nullable=False, default="login"),  # login | reset
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

password_credentials = Table(
    "password_credentials",
    metadata,
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), primary_key=True),
    Column("hash", Text, nullable=False),  # argon2id, PHC string format (parameters inside)
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# an administrator's lock after repeated failures; lifted by `idp user unlock`
login_locks = Table(
    "login_locks",
    metadata,
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), primary_key=True),
    Column("reason", String(64), nullable=False),
    Column("locked_at", Float, nullable=False),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("client_id", String(64), ForeignKey("clients.client_id", ondelete="SET NULL"), nullable=True),
    Column("return_url", Text, nullable=True),
    Column("email", String(320), nullable=False),
    Column("given_name", String(200), nullable=True),
    Column("family_name", String(200), nullable=True),
    Column("phone_number", String(32), nullable=True),
    Column("country", String(2), nullable=True),
    Column("acr", String(64), nullable=False),
    Column("language", String(8), nullable=True),
    Column("created_by", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    # the browser that opened the link first; nobody else can continue the onboarding
    Column("browser_digest", String(64), nullable=True),
    Column("opened_at", Float, nullable=True),
    Column("progress", JSON, nullable=False, default=dict),
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="SET NULL"), nullable=True),
    Column("completed_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Index("ix_invitations_tenant_email", "tenant_id", "email"),
)

# one-time codes sent by SMS (otp.sms); in Twilio Verify mode Twilio holds the code and
# code_digest is empty
otp_codes = Table(
    "otp_codes",
    metadata,
    Column("id", String(64), primary_key=True),  # the challenge id the browser holds
    Column("purpose", String(16), nullable=False),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=True),
    Column("phone", String(16), nullable=False),  # E.164
    Column("code_digest", String(64), nullable=True),  # HMAC-SHA256 keyed with the instance secret
    Column("provider", String(16), nullable=False),  # sender | verify
    Column("message_id", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_sent_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("used_at", Float, nullable=True),
    Column("dead_at", Float, nullable=True),
    Column("dead_reason", String(16), nullable=True),  # resent | exhausted | not_sent
    Column("client_ip", String(64), nullable=True),
    Index("ix_otp_codes_tenant_phone", "tenant_id", "phone"),
)

# authenticator apps (otp.authenticator_app): at most one confirmed per eID, plus pending enrolments
totp_credentials = Table(
    "totp_credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=False),
    Column("secret_sealed", LargeBinary, nullable=False),  # AES-GCM sealed with the instance secret
    Column("confirmed_at", Float, nullable=True),
    Column("last_used_step", BigInteger, nullable=True),  # RFC 6238 §5.2: no step accepted twice
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Index("ix_totp_credentials_eid_id", "eid_id"),
)

# WebAuthn public key credentials (levels_of_assurance.authenticators.passkey)
passkey_credentials = Table(
    "passkey_credentials",
    metadata,
    Column("credential_id", String(1400), primary_key=True),  # base64url; at most 1023 bytes (§5.8.3)
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=False),
    Column("public_key", LargeBinary, nullable=False),  # COSE_Key
    Column("sign_count", BigInteger, nullable=False),
    Column("transports", JSON, nullable=False, default=list),
    Column("aaguid", String(36), nullable=False),
    Column("backup_eligible", Boolean, nullable=False),
    Column("backup_state", Boolean, nullable=False),
    Column("user_verified", Boolean, nullable=False),  # at registration
    Column("name", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Index("ix_passkey_credentials_eid_id", "eid_id"),
)

# single-use WebAuthn ceremony challenges; the browser holds the id, only its digest is stored
passkey_challenges = Table(
    "passkey_challenges",
    metadata,
    Column("id_digest", String(64), primary_key=True),
    Column("challenge", LargeBinary, nullable=False),  # sent in the options; not a secret
    Column("ceremony", String(16), nullable=False),  # registration | authentication
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=True),
    Column("rp_id", String(253), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
)

# recovery codes (levels_of_assurance.authenticators.recovery_codes), SHA-256 digests
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    # the set the code belongs to (NULL for a set put in use at once) and whether it is pending:
    # shown but not yet confirmed as saved. A pending set takes the place of the one in use only
    # when the person confirms it, so codes they never saw cannot have replaced codes they have
    Column("set_id", String(22), nullable=True),
    Column("pending", Boolean, nullable=False, server_default=false()),
)


# -- provisioning (SCIM 2.0, RFC 7643/7644) and groups ----------------------------------------------

# userName is unique per tenant without regard to case (RFC 7643 §4.1.1); the same index answers
# `userName eq "…"` filters
Index("uq_eids_tenant_username_ci", eids.c.tenant_id, func.lower(eids.c.username), unique=True)
# a stable order for paging through one tenant's eIDs
Index("ix_eids_tenant_created", eids.c.tenant_id, eids.c.created_at, eids.c.id)

scim_tokens = Table(
    "scim_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

# what SCIM says about an eID beyond its attributes: the whole resource as last written (for
# attributes with no eID counterpart), the ETag counter
scim_users = Table(
    "scim_users",
    metadata,
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(320), nullable=True),
    Column("document", JSON, nullable=False),
    Column("version", Integer, nullable=False),
)

# one row per leaf value of a SCIM resource (attribute names lowercased, ``item`` numbers the
# values of a multi-valued attribute), so that filters on any attribute become SQL
scim_values = Table(
    "scim_values",
    metadata,
    Column("owner_id", String(36), primary_key=True),
    Column("attr", String(200), primary_key=True),
    Column("item", Integer, primary_key=True),
    Column("sub", String(64), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("value", Text, nullable=False),
    Column("value_ci", Text, nullable=False),
    Index("ix_scim_values_lookup", "tenant_id", "attr", "sub", "value_ci"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("external_id", String(320), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_groups_tenant_created", "tenant_id", "created_at", "id"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", String(36), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_group_members_eid_id", "eid_id"),
)

# identity proofing records of eIDs (idp.proofing): how, at which level, when, and the evidence
eid_proofings = Table(
    "eid_proofings",
    metadata,
    Column("id", String(64), primary_key=True),  # the evidence id (a video identification session)
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=False),
    Column("method", String(32), nullable=False),  # videoid
    Column("level", String(64), nullable=False),  # the acr the proofing supports
    Column("proofed_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index("ix_eid_proofings_eid_id", "eid_id"),
)

# video identification sessions (videoid.records): the state machine and its outcome
videoid_sessions = Table(
    "videoid_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), nullable=False),
    Column("browser_digest", String(64), nullable=False),
    Column("request_id", String(64), nullable=True),  # the authorization request to resume afterwards
    Column("mode", String(24), nullable=False),  # automated | reviewed | agent_led
    Column("status", String(24), nullable=False),
    Column("challenges", JSON, nullable=False, default=list),
    Column("steps", JSON, nullable=False, default=dict),  # step -> {"passed": bool, "at": t, ...}
    Column("scores", JSON, nullable=False, default=dict),
    Column("decision", String(16), nullable=True),  # approved | rejected
    Column("reasons", JSON, nullable=False, default=list),
    Column("review", JSON, nullable=False, default=dict),  # agents, assignments, their decisions
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("consent_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("expires_at", Float, nullable=False),  # the evidence's retention ends here
    Index("ix_videoid_sessions_eid_id", "eid_id"),
    Index("ix_videoid_sessions_status", "status"),
)

# the evidence of a session, sealed (AES-256-GCM with the instance secret; videoid.evidence)
videoid_evidence = Table(
    "videoid_evidence",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("session_id", String(64), ForeignKey("videoid_sessions.id", ondelete="CASCADE"), nullable=False),
    Column("tenant_id", String(36), nullable=False),
    Column("kind", String(24), nullable=False),  # face | document_front | document_back | report
    Column("media_type", String(64), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),  # of the plaintext
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_videoid_evidence_session_id", "session_id"),
    Index("ix_videoid_evidence_expires_at", "expires_at"),
)


# one random key per eID for the personal data in its audit events (the username): the events
# keep it encrypted, and erasing the eID deletes the key with it (crypto-shredding), so the
# hash-chained trail stays intact and pseudonymous (idp.audit)
audit_subject_keys = Table(
    "audit_subject_keys",
    metadata,
    Column("eid_id", String(36), ForeignKey("eids.id", ondelete="CASCADE"), primary_key=True),
    Column("key", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)
