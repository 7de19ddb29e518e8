"""Email link: a single-use, short-lived link proves control of the eID's email address (basic).

The link carries a 256-bit random token; only its digest is stored. It is bound to the browser
that asked for it, so a link intercepted in transit is useless elsewhere, and it dies on first
use, so one read from a mailbox later is useless too. Opening it shows a confirmation page and
only the POST from there consumes it: mail scanners that fetch links do not log anyone in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, select, update

from idp import audit, secrets
from idp.errors import LoginError
from idp.storage import tables
from idp.storage.database import Tx
from levels_of_assurance.authenticators import Proves
from levels_of_assurance.ladder import AMR, Level

PROVES = Proves(
    method="email_link", amr=(AMR.EMAIL,), factor="possession", phishing_resistant=False, level=Level.BASIC
)


class LinkProblem(StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    OTHER_BROWSER = "other_browser"


@dataclass(slots=True, frozen=True)
class Link:
    digest: str
    tenant_id: str
    eid_id: str
    request_id: str | None
    expires_at: float


def issue(
    tx: Tx,
    *,
    tenant_id: str,
    eid_id: str,
    username: str,
    request_id: str | None,
    browser: str,
    ttl: float,
    client_ip: str | None,
    purpose: str = "login",
) -> str:
    """Create a link for the eID; returns the token to put in the mail. ``purpose`` is ``login``
    or ``reset`` (a password reset); a link works only for its own purpose."""
    token = secrets.new_secret()
    tx.conn.execute(
        tables.email_links.insert().values(
            digest=secrets.digest(token),
            tenant_id=tenant_id,
            eid_id=eid_id,
            request_id=request_id,
            browser_digest=secrets.digest(browser),
            created_at=tx.now,
            expires_at=tx.now + ttl,
            client_ip=client_ip,
            purpose=purpose,
        )
    )
    audit.record(
        tx,
        audit.AuditEvent(
            "email_link.sent",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            client_ip=client_ip,
            transaction_id=request_id,
            details={"login_method": PROVES.method, "ttl": int(ttl), "purpose": purpose},
        ),
    )
    return token


def check(conn: Connection, *, token: str, browser: str | None, now: float, purpose: str = "login") -> Link:
    """The link a token names, if it can still be used from this browser for ``purpose``; else
    :class:`LoginError` (a link made for another purpose is as unknown as no link)."""
    row = (
        conn.execute(select(tables.email_links).where(tables.email_links.c.digest == secrets.digest(token)))
        .mappings()
        .first()
    )
    if row is None or (row["purpose"] or "login") != purpose:
        raise LoginError(LinkProblem.UNKNOWN, "no such sign-in link")
    if row["used_at"] is not None:
        raise LoginError(LinkProblem.USED, "this sign-in link was already used")
    if row["expires_at"] <= now:
        raise LoginError(LinkProblem.EXPIRED, "this sign-in link has expired")
    if browser is None or not secrets.matches(browser, row["browser_digest"]):
        raise LoginError(LinkProblem.OTHER_BROWSER, "this sign-in link was requested in another browser")
    return Link(row["digest"], row["tenant_id"], row["eid_id"], row["request_id"], row["expires_at"])


def tenant_of(conn: Connection, *, token: str, purpose: str = "login") -> str | None:
    """The tenant a link was made in, used or not, expired or not (None for no such link): where
    a person whose link cannot be used any more can start again."""
    e = tables.email_links.c
    row = conn.execute(select(e.tenant_id, e.purpose).where(e.digest == secrets.digest(token))).first()
    if row is None or (row.purpose or "login") != purpose:
        return None
    return str(row.tenant_id)


def consume(tx: Tx, *, token: str, browser: str | None, purpose: str = "login") -> Link:
    """Use the link once; a second use, even racing, fails with :class:`LoginError`."""
    link = check(tx.conn, token=token, browser=browser, now=tx.now, purpose=purpose)
    e = tables.email_links.c
    used = tx.conn.execute(
        update(tables.email_links)
        .where((e.digest == link.digest) & e.used_at.is_(None))
        .values(used_at=tx.now)
    )
    if used.rowcount != 1:
        raise LoginError(LinkProblem.USED, "this sign-in link was already used")
    return link
