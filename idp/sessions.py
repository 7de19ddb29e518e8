"""Server-side SSO sessions. The browser holds only an opaque random id; we store its digest.

The id is rotated at every authentication (a new cookie value, the old one dead at once), so a
value captured before a login is useless after it. ``sid`` is the stable session identifier used
in ID tokens and logout; it never appears in the cookie.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from idp import audit, secrets
from idp.storage import tables
from idp.storage.database import Tx

COOKIE_NAME = "__Host-idp_session"


@dataclass(slots=True, frozen=True)
class Session:
    sid: str
    tenant_id: str
    eid_id: str
    auth_time: float
    acr: str
    amr: tuple[str, ...]
    expires_at: float


@dataclass(slots=True, frozen=True)
class Issued:
    session: Session
    cookie_value: str


def load(conn: Connection, cookie_value: str | None, *, now: float) -> Session | None:
    if not cookie_value or len(cookie_value) > 128:
        return None
    s = tables.sso_sessions.c
    row = (
        conn.execute(
            select(tables.sso_sessions).where(
                (s.cookie_digest == secrets.digest(cookie_value))
                & s.ended_at.is_(None)
                & (s.expires_at > now)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Session(
        row["sid"],
        row["tenant_id"],
        row["eid_id"],
        row["auth_time"],
        row["acr"],
        tuple(row["amr"]),
        row["expires_at"],
    )


def authenticate(
    tx: Tx,
    *,
    previous: Session | None,
    tenant_id: str,
    eid_id: str,
    username: str,
    acr: str,
    amr: Sequence[str],
    ttl: float,
    client_ip: str | None,
    method: str,
) -> Issued:
    """Record a completed authentication; continue ``previous`` for the same person or start anew."""
    cookie = secrets.new_secret()
    s = tables.sso_sessions.c
    if previous is not None and previous.eid_id == eid_id and previous.tenant_id == tenant_id:
        sid = previous.sid
        tx.conn.execute(
            update(tables.sso_sessions)
            .where(s.sid == sid)
            .values(
                cookie_digest=secrets.digest(cookie),
                auth_time=tx.now,
                acr=acr,
                amr=list(amr),
                expires_at=tx.now + ttl,
                client_ip=client_ip,
            )
        )
    else:
        if previous is not None:
            end(tx, sid=previous.sid, reason="replaced")
        sid = str(uuid.uuid4())
        tx.conn.execute(
            tables.sso_sessions.insert().values(
                sid=sid,
                cookie_digest=secrets.digest(cookie),
                tenant_id=tenant_id,
                eid_id=eid_id,
                auth_time=tx.now,
                acr=acr,
                amr=list(amr),
                created_at=tx.now,
                expires_at=tx.now + ttl,
                client_ip=client_ip,
            )
        )
    audit.record(
        tx,
        audit.AuditEvent(
            "session.authenticated",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            client_ip=client_ip,
            details={"sid": sid, "login_method": method, "acr": acr, "amr": list(amr)},
        ),
    )
    session = Session(sid, tenant_id, eid_id, tx.now, acr, tuple(amr), tx.now + ttl)
    return Issued(session, cookie)


def end(tx: Tx, *, sid: str, reason: str, client_ip: str | None = None) -> bool:
    s = tables.sso_sessions.c
    row = tx.conn.execute(select(s.tenant_id, s.eid_id).where((s.sid == sid) & s.ended_at.is_(None))).first()
    if row is None:
        return False
    tx.conn.execute(update(tables.sso_sessions).where(s.sid == sid).values(ended_at=tx.now))
    audit.record(
        tx,
        audit.AuditEvent(
            "session.ended",
            tenant_id=row.tenant_id,
            eid_id=row.eid_id,
            client_ip=client_ip,
            details={"sid": sid, "reason": reason},
        ),
    )
    return True
