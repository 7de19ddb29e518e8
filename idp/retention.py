"""Removing what has expired: codes, links, pending requests, used assertions, old tokens,
SMS codes, passkey challenges, abandoned authenticator-app enrolments, recovery codes shown but
never confirmed as saved, and the evidence of video identifications whose retention (the
tenant's, default five years) has ended.

Expired rows are useless to everyone (every check already refuses them) but would grow the
tables and their indexes forever. Refresh tokens are kept a grace period past expiry so that a
late reuse is still recognised as reuse. The audit trail is never purged here: its retention is
a tenant's legal decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, delete

from idp import audit
from idp.storage import tables
from idp.storage.database import Tx
from levels_of_assurance.authenticators import recovery_codes
from otp import authenticator_app
from videoid import evidence

TOKEN_GRACE = 24 * 3600.0
SMS_CODE_GRACE = 3600.0


@dataclass(slots=True, frozen=True)
class Purged:
    codes: int
    links: int
    requests: int
    assertions: int
    tokens: int
    sessions: int
    sms_codes: int = 0
    passkey_challenges: int = 0
    totp_enrolments: int = 0
    recovery_proposals: int = 0  # codes of sets shown but never confirmed
    videoid_evidence: int = 0

    @property
    def total(self) -> int:
        return (
            self.codes
            + self.links
            + self.requests
            + self.assertions
            + self.tokens
            + self.sessions
            + self.sms_codes
            + self.passkey_challenges
            + self.totp_enrolments
            + self.recovery_proposals
            + self.videoid_evidence
        )


def purge_expired(tx: Tx) -> Purged:
    now = tx.now
    t = tables

    def gone(table: Table, condition: ColumnElement[bool]) -> int:
        return int(tx.conn.execute(delete(table).where(condition)).rowcount)

    purged = Purged(
        codes=gone(t.authorization_codes, t.authorization_codes.c.expires_at < now),
        links=gone(t.email_links, t.email_links.c.expires_at < now),
        requests=gone(t.auth_requests, t.auth_requests.c.expires_at < now),
        assertions=gone(t.used_assertions, t.used_assertions.c.expires_at < now),
        tokens=gone(t.tokens, t.tokens.c.expires_at < now - TOKEN_GRACE),
        sessions=gone(
            t.sso_sessions,
            (t.sso_sessions.c.expires_at < now - TOKEN_GRACE)
            | (t.sso_sessions.c.ended_at < now - TOKEN_GRACE),
        ),
        # kept an hour past expiry: a resend's cooldown and a late check still find them
        sms_codes=gone(t.otp_codes, t.otp_codes.c.expires_at < now - SMS_CODE_GRACE),
        passkey_challenges=gone(t.passkey_challenges, t.passkey_challenges.c.expires_at < now),
        totp_enrolments=gone(
            t.totp_credentials,
            t.totp_credentials.c.confirmed_at.is_(None)
            & (t.totp_credentials.c.created_at < now - authenticator_app.ENROLMENT_TTL),
        ),
        recovery_proposals=gone(
            t.recovery_codes,
            t.recovery_codes.c.pending & (t.recovery_codes.c.created_at < now - recovery_codes.PROPOSAL_TTL),
        ),
        videoid_evidence=evidence.purge_expired(tx),  # audited per session, in the trail of each
    )
    if purged.total:
        audit.record(
            tx,
            audit.AuditEvent(
                "retention.purged",
                details={
                    "codes": purged.codes,
                    "links": purged.links,
                    "requests": purged.requests,
                    "assertions": purged.assertions,
                    "tokens": purged.tokens,
                    "sessions": purged.sessions,
                    "sms_codes": purged.sms_codes,
                    "passkey_challenges": purged.passkey_challenges,
                    "totp_enrolments": purged.totp_enrolments,
                    "recovery_proposals": purged.recovery_proposals,
                    "videoid_evidence": purged.videoid_evidence,
                },
            ),
        )
    return purged
