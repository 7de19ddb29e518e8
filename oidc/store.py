"""Units of work for the provider: loading what grants ask for and writing what they issue.

Single use is enforced by conditional updates inside the writing transaction, so two requests
racing with one code or one refresh token cannot both win: the loser sees ``rowcount == 0`` and
the whole grant it came from is revoked (RFC 9700 §4.14, OAuth 2.1 §4.3.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select, update

from idp import audit
from idp.storage import tables
from idp.storage.database import Tx
from oidc.models import CodeRecord, TokenRecord


class Outcome(StrEnum):
    OK = "ok"
    REPLAYED = "replayed"


def load_code(conn: Connection, digest: str) -> CodeRecord | None:
    row = (
        conn.execute(select(tables.authorization_codes).where(tables.authorization_codes.c.digest == digest))
        .mappings()
        .first()
    )
    return CodeRecord.from_row(row) if row else None


def load_token(conn: Connection, digest: str) -> TokenRecord | None:
    row = conn.execute(select(tables.tokens).where(tables.tokens.c.digest == digest)).mappings().first()
    return TokenRecord.from_row(row) if row else None


def assertion_seen(conn: Connection, client_id: str, jti: str) -> bool:
    u = tables.used_assertions.c
    return conn.execute(select(u.jti).where((u.client_id == client_id) & (u.jti == jti))).first() is not None


def _record_assertion(tx: Tx, assertion: tuple[str, str, float] | None) -> None:
    if assertion is not None:
        client_id, jti, exp = assertion
        # the primary key makes a second use of the same jti fail this unit
        tx.conn.execute(tables.used_assertions.insert().values(client_id=client_id, jti=jti, expires_at=exp))


def _revoke_grant(tx: Tx, grant_id: str) -> int:
    t = tables.tokens.c
    result = tx.conn.execute(
        update(tables.tokens)
        .where((t.grant_id == grant_id) & t.revoked_at.is_(None))
        .values(revoked_at=tx.now)
    )
    return int(result.rowcount)


def issue(
    tx: Tx,
    *,
    rows: Sequence[dict[str, Any]],
    event: audit.AuditEvent,
    assertion: tuple[str, str, float] | None,
) -> Outcome:
    """Tokens from a grant that consumes nothing (client_credentials)."""
    _record_assertion(tx, assertion)
    for row in rows:
        tx.defer_insert(tables.tokens, row)
    audit.record(tx, event)
    return Outcome.OK


def redeem_code(
    tx: Tx,
    *,
    code_digest: str,
    grant_id: str,
    rows: Sequence[dict[str, Any]],
    event: audit.AuditEvent,
    assertion: tuple[str, str, float] | None,
) -> Outcome:
    """Mark the code used and store its tokens; a code used before revokes what it issued."""
    _record_assertion(tx, assertion)
    c = tables.authorization_codes.c
    used = tx.conn.execute(
        update(tables.authorization_codes)
        .where((c.digest == code_digest) & c.used_at.is_(None) & (c.expires_at > tx.now))
        .values(used_at=tx.now)
    )
    if used.rowcount != 1:
        revoked = _revoke_grant(tx, grant_id)
        audit.record(
            tx,
            audit.AuditEvent(
                "code.replayed",
                success=False,
                tenant_id=event.tenant_id,
                eid_id=event.eid_id,
                details={
                    "client_id": event.details.get("client_id"),
                    "grant_id": grant_id,
                    "revoked": revoked,
                },
                client_ip=event.client_ip,
            ),
        )
        return Outcome.REPLAYED
    for row in rows:
        tx.defer_insert(tables.tokens, row)
    audit.record(tx, event)
    return Outcome.OK


def rotate_refresh(
    tx: Tx,
    *,
    old_digest: str,
    grant_id: str,
    rows: Sequence[dict[str, Any]],
    event: audit.AuditEvent,
    assertion: tuple[str, str, float] | None,
) -> Outcome:
    """Retire the presented refresh token and store its successors; reuse revokes the family."""
    _record_assertion(tx, assertion)
    t = tables.tokens.c
    rotated = tx.conn.execute(
        update(tables.tokens)
        .where(
            (t.digest == old_digest)
            & t.rotated_at.is_(None)
            & t.revoked_at.is_(None)
            & (t.expires_at > tx.now)
        )
        .values(rotated_at=tx.now)
    )
    if rotated.rowcount != 1:
        return _reuse_detected(tx, grant_id=grant_id, event=event)
    for row in rows:
        tx.defer_insert(tables.tokens, row)
    audit.record(tx, event)
    return Outcome.OK


def _reuse_detected(tx: Tx, *, grant_id: str, event: audit.AuditEvent) -> Outcome:
    revoked = _revoke_grant(tx, grant_id)
    audit.record(
        tx,
        audit.AuditEvent(
            "refresh_token.reused",
            success=False,
            tenant_id=event.tenant_id,
            eid_id=event.eid_id,
            details={"client_id": event.details.get("client_id"), "grant_id": grant_id, "revoked": revoked},
            client_ip=event.client_ip,
        ),
    )
    return Outcome.REPLAYED


def refresh_reused(tx: Tx, *, grant_id: str, event: audit.AuditEvent) -> Outcome:
    """A rotated refresh token came back: revoke everything of its grant (RFC 9700 §4.14.2)."""
    return _reuse_detected(tx, grant_id=grant_id, event=event)


def revoke(tx: Tx, *, token: TokenRecord, whole_grant: bool, event: audit.AuditEvent) -> int:
    """RFC 7009 §2.1: revoking a refresh token also revokes the access tokens of its grant."""
    t = tables.tokens.c
    if whole_grant:
        count = _revoke_grant(tx, token.grant_id)
    else:
        count = int(
            tx.conn.execute(
                update(tables.tokens)
                .where((t.digest == token.digest) & t.revoked_at.is_(None))
                .values(revoked_at=tx.now)
            ).rowcount
        )
    audit.record(tx, event)
    return count


def save_code(tx: Tx, *, row: dict[str, Any], event: audit.AuditEvent) -> None:
    tx.conn.execute(tables.authorization_codes.insert().values(**row))
    audit.record(tx, event)
