"""Server-side SSO sessions. The browser holds only an opaque random id; we store its digest.

The id is rotated at every authentication (a new cookie value, the old one dead at once), so a
value captured before a login is useless after it. ``sid`` is the stable session identifier used
in ID tokens and logout; it never appears in the cookie.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from idp import audit, secrets
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared
from levels_of_assurance.policy import Factor, Method, factors_from_json

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
    factors: tuple[Factor, ...] = ()


# sessions from before factors were kept: what their amr says was proven, at auth_time
_METHOD_OF_AMR = {"email": Method.EMAIL_LINK, "pwd": Method.PASSWORD, "otp": Method.TOTP, "sms": Method.SMS}


def _factors(row: Any) -> tuple[Factor, ...]:
    if row["factors"] is not None:
        return tuple(factors_from_json(row["factors"]))
    by_method = {_METHOD_OF_AMR[a]: a for a in row["amr"] if a in _METHOD_OF_AMR}
    return tuple(Factor(m, (a,), row["auth_time"]) for m, a in by_method.items())


@dataclass(slots=True, frozen=True)
class Issued:
    session: Session
    cookie_value: str


_S = tables.sso_sessions.c
# built once, run on the driver (idp.storage.prepared): every sign-in reads or writes a session
_BY_COOKIE = Prepared(
    select(tables.sso_sessions).where(
        (_S.cookie_digest == bindparam("digest")) & _S.ended_at.is_(None) & (_S.expires_at > bindparam("now"))
    )
)
_INSERT = Prepared(tables.sso_sessions.insert())
_CONTINUE = Prepared(
    update(tables.sso_sessions)
    .where(_S.sid == bindparam("session_id"))
    .values(
        cookie_digest=bindparam("new_digest"),
        auth_time=bindparam("new_auth_time"),
        acr=bindparam("new_acr"),
        amr=bindparam("new_amr", type_=_S.amr.type),
        expires_at=bindparam("new_expires_at"),
        client_ip=bindparam("new_client_ip"),
        factors=bindparam("new_factors", type_=_S.factors.type),
    )
)


def load(conn: Connection, cookie_value: str | None, *, now: float) -> Session | None:
    if not cookie_value or len(cookie_value) > 128:
        return None
    row = _BY_COOKIE.first(conn, {"digest": secrets.digest(cookie_value), "now": now})
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
        _factors(row),
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
    factors: Sequence[Factor] = (),
) -> Issued:
    """Record a completed authentication; continue ``previous`` for the same person or start anew."""
    cookie = secrets.new_secret()
    if previous is not None and previous.eid_id == eid_id and previous.tenant_id == tenant_id:
        sid = previous.sid
        _CONTINUE.run(
            tx.conn,
            {
                "session_id": sid,
                "new_digest": secrets.digest(cookie),
                "new_auth_time": tx.now,
                "new_acr": acr,
                "new_amr": list(amr),
                "new_expires_at": tx.now + ttl,
                "new_client_ip": client_ip,
                "new_factors": [f.to_json() for f in factors],
            },
        )
    else:
        if previous is not None:
            end(tx, sid=previous.sid, reason="replaced")
        sid = str(uuid.uuid4())
        _INSERT.run(
            tx.conn,
            {
                "sid": sid,
                "cookie_digest": secrets.digest(cookie),
                "tenant_id": tenant_id,
                "eid_id": eid_id,
                "auth_time": tx.now,
                "acr": acr,
                "amr": list(amr),
                "created_at": tx.now,
                "expires_at": tx.now + ttl,
                "ended_at": None,
                "client_ip": client_ip,
                "factors": [f.to_json() for f in factors],
            },
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
    session = Session(sid, tenant_id, eid_id, tx.now, acr, tuple(amr), tx.now + ttl, tuple(factors))
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
