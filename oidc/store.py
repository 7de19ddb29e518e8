"""Units of work for the provider: loading what grants ask for and writing what they issue.

Single use is enforced by conditional updates inside the writing transaction, so two requests
racing with one code or one refresh token cannot both win: the loser sees ``rowcount == 0`` and
the whole grant it came from is revoked (RFC 9700 §4.14, OAuth 2.1 §4.3.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from idp import audit, eids
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared, insert_rows, prefixed, unprefixed
from oidc.models import CodeRecord, TokenRecord


class Outcome(StrEnum):
    OK = "ok"
    REPLAYED = "replayed"
    ASSERTION_REUSED = "assertion_reused"  # a private_key_jwt's jti came twice (RFC 7523 §3 item 7)


_C = tables.authorization_codes.c
# every login ends with these: built once, run on the driver (idp.storage.prepared)
_CODE = Prepared(select(tables.authorization_codes).where(_C.digest == bindparam("digest")))
_NEW_CODE = Prepared(tables.authorization_codes.insert())
_USE_CODE = Prepared(
    update(tables.authorization_codes)
    .where(
        (_C.digest == bindparam("code_digest")) & _C.used_at.is_(None) & (_C.expires_at > bindparam("now"))
    )
    .values(used_at=bindparam("now"))
)


def load_code(conn: Connection, digest: str) -> CodeRecord | None:
    row = _CODE.first(conn, {"digest": digest})
    return CodeRecord.from_row(row) if row else None


# the code with the whole eID it was issued to (the ID token releases its claims): one round trip
_AS_CODE = "code_"
_CODE_AND_EID = eids.with_attributes(
    (_C.digest == bindparam("digest")) & (tables.eids.c.id == _C.eid_id),
    *prefixed(_AS_CODE, tables.authorization_codes.c),
)


def load_code_and_eid(conn: Connection, digest: str) -> tuple[CodeRecord | None, eids.EID | None]:
    """The code and its eID (with attributes), in one statement; no eID when it is gone."""
    found = eids.load_with(conn, _CODE_AND_EID, {"digest": digest})
    if found is None:  # no such code, or its eID was erased since
        return load_code(conn, digest), None
    person, row = found
    return CodeRecord.from_row(unprefixed(row, _AS_CODE)), person


_TOKEN_BY_DIGEST = Prepared(select(tables.tokens).where(tables.tokens.c.digest == bindparam("digest")))
_e = tables.eids.c
_TOKEN_AND_EID = Prepared(
    select(
        tables.tokens,
        _e.tenant_id.label("eid_tenant_id"),
        _e.username.label("eid_username"),
        _e.status.label("eid_status"),
        _e.created_at.label("eid_created_at"),
        _e.updated_at.label("eid_updated_at"),
    )
    .select_from(tables.tokens.outerjoin(tables.eids, _e.id == tables.tokens.c.eid_id))
    .where(tables.tokens.c.digest == bindparam("digest"))
)


def load_token(conn: Connection, digest: str) -> TokenRecord | None:
    row = _TOKEN_BY_DIGEST.first(conn, {"digest": digest})
    return TokenRecord.from_row(row) if row else None


def load_token_and_eid(conn: Connection, digest: str) -> tuple[TokenRecord | None, eids.EID | None]:
    """A token and the eID it was issued to, in one statement.

    The eID comes without its attributes: enough for its status and username, which is all that
    refresh, revocation and introspection look at. Grants that release claims load it whole.
    """
    row = _TOKEN_AND_EID.first(conn, {"digest": digest})
    if row is None:
        return None, None
    record = TokenRecord.from_row(row)
    if record.eid_id is None or row["eid_tenant_id"] is None:
        return record, None
    person = eids.EID(
        record.eid_id,
        row["eid_tenant_id"],
        row["eid_username"],
        row["eid_status"],
        {},
        row["eid_created_at"],
        row["eid_updated_at"],
    )
    return record, person


_u = tables.used_assertions.c
_ASSERTION = Prepared(
    select(_u.jti).where((_u.client_id == bindparam("client_id")) & (_u.jti == bindparam("jti")))
)


def assertion_seen(conn: Connection, client_id: str, jti: str) -> bool:
    return _ASSERTION.first(conn, {"client_id": client_id, "jti": jti}) is not None


def _record_assertion(tx: Tx, assertion: tuple[str, str, float] | None) -> bool:
    """Remember a client assertion's jti; False when it was used before (a racing request won)."""
    if assertion is None:
        return True
    client_id, jti, exp = assertion
    # the primary key decides a race; a conflict must not abort the transaction (PostgreSQL would)
    insert = postgresql.insert if tx.conn.dialect.name == "postgresql" else sqlite.insert
    result = tx.conn.execute(
        insert(tables.used_assertions)
        .values(client_id=client_id, jti=jti, expires_at=exp)
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount == 1)


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
    if not _record_assertion(tx, assertion):
        return Outcome.ASSERTION_REUSED
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
    if not _record_assertion(tx, assertion):
        return Outcome.ASSERTION_REUSED
    used = _USE_CODE.run(tx.conn, {"code_digest": code_digest, "now": tx.now})
    if used != 1:
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
    _insert_tokens(tx, rows)
    audit.record(tx, event)
    return Outcome.OK


def _insert_tokens(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    """Tokens a racing redemption may have to revoke: on SQLite inserted now, not deferred.

    On SQLite two redemptions of one code (or one refresh token) can share a group-commit
    transaction; the loser's revocation must see the winner's tokens, and deferred rows are
    inserted only after every unit of the batch has run. On PostgreSQL each unit is a transaction
    of its own: the loser's conditional update waits for the winner's commit, and its revocation,
    a later statement, sees everything that commit wrote, deferred rows included (which then go
    in one statement with the audit event, :mod:`idp.storage.database`).
    """
    if tx.conn.dialect.name == "postgresql":
        for row in rows:
            tx.defer_insert(tables.tokens, row)
    else:
        insert_rows(tx.conn, tables.tokens, list(rows))


_ROTATE = Prepared(
    update(tables.tokens)
    .where(
        (tables.tokens.c.digest == bindparam("old_digest"))
        & tables.tokens.c.rotated_at.is_(None)
        & tables.tokens.c.revoked_at.is_(None)
        & (tables.tokens.c.expires_at > bindparam("now"))
    )
    .values(rotated_at=bindparam("now"))
)


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
    if not _record_assertion(tx, assertion):
        return Outcome.ASSERTION_REUSED
    if _ROTATE.run(tx.conn, {"old_digest": old_digest, "now": tx.now}) != 1:
        return _reuse_detected(tx, grant_id=grant_id, event=event)
    _insert_tokens(tx, rows)
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


def revoke(
    tx: Tx,
    *,
    token: TokenRecord,
    whole_grant: bool,
    event: audit.AuditEvent,
    assertion: tuple[str, str, float] | None = None,
) -> Outcome:
    """RFC 7009 §2.1: revoking a refresh token also revokes the access tokens of its grant."""
    if not _record_assertion(tx, assertion):
        return Outcome.ASSERTION_REUSED
    t = tables.tokens.c
    if whole_grant:
        _revoke_grant(tx, token.grant_id)
    else:
        tx.conn.execute(
            update(tables.tokens)
            .where((t.digest == token.digest) & t.revoked_at.is_(None))
            .values(revoked_at=tx.now)
        )
    audit.record(tx, event)
    return Outcome.OK


def save_code(tx: Tx, *, row: dict[str, Any], event: audit.AuditEvent) -> None:
    _NEW_CODE.run(tx.conn, row)
    audit.record(tx, event)
