"""Removing what has expired: codes, links, pending requests, used assertions, old tokens.

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

TOKEN_GRACE = 24 * 3600.0


@dataclass(slots=True, frozen=True)
class Purged:
    codes: int
    links: int
    requests: int
    assertions: int
    tokens: int
    sessions: int

    @property
    def total(self) -> int:
        return self.codes + self.links + self.requests + self.assertions + self.tokens + self.sessions


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
                },
            ),
        )
    return purged
