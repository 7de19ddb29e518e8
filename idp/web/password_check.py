"""Checking the password of an eID, for any page that asks for it.

The sign-in's password step and an invitation to an eID that already has a password both ask
for it, and both must be as hard to guess: this keeps the throttle (idp.lockout: growing delays
per account and per IP, then a lock), verifies on the CPU pool, counts and audits a failure,
and on success clears the account's counter and rehashes when the parameters changed.

The order is the sign-in's: the password first, then whether the eID may sign in (active, not
locked), so only whoever knows the password learns the eID's state.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from starlette.responses import Response

from idp import audit, eids, lockout
from idp.errors import IdPError, LoginError, NotFoundError, RateLimitedError
from idp.storage.database import Tx
from idp.web import security_notice
from idp.web.state import AppState
from levels_of_assurance.authenticators import password

log = logging.getLogger("idp.login")


# the person with their password hash and lock in one statement, not three round trips
_HASH_AND_LOCK = (password.HASH_OF_EID.label("password_hash"), lockout.LOCKED_AT_OF_EID.label("locked_at"))
_PASSWORD_BY_ID = eids.with_attributes(eids.BY_ID, *_HASH_AND_LOCK)
_PASSWORD_BY_EMAIL = eids.with_attributes(eids.BY_EMAIL, *_HASH_AND_LOCK)


def subject(
    conn: Connection, *, tenant_id: str, eid_id: str | None, email: str
) -> tuple[eids.EID | None, str | None, bool]:
    """Whom a password is for: the login's eID ``eid_id`` once identified (:class:`NotFoundError`
    when it is gone), else the eID of ``email`` in the tenant; with its stored hash (None without a
    password) and whether it is locked. ``(None, None, False)`` for an unknown address."""
    if eid_id is not None:
        found = eids.load_with(conn, _PASSWORD_BY_ID, {"id": eid_id})
        if found is None:
            raise NotFoundError(f"no eID {eid_id!r}")
    else:
        try:
            normalized = eids.normalize_email(email)
        except ValueError:
            return None, None, False
        found = eids.load_with(conn, _PASSWORD_BY_EMAIL, {"t": tenant_id, "m": normalized})
        if found is None:
            return None, None, False
    person, row = found
    return person, row["password_hash"], row["locked_at"] is not None


@dataclass(slots=True, frozen=True)
class Attempt:
    """One try at a password: the throttle's ``account`` (``tenant:eid`` for a known eID,
    ``tenant:address`` for an address typed at sign-in), and what its audit events name."""

    tenant_id: str
    account: str
    ip: str | None
    transaction_id: str
    process_state: str | None = None


async def throttled(st: AppState, attempt: Attempt) -> float | None:
    """Seconds to wait while a delay earned by earlier failures runs, else None."""
    try:
        await st.throttle.check("password", account=attempt.account, ip=attempt.ip)
    except RateLimitedError as exc:
        st.metrics.login(method="password", outcome="throttled")
        return exc.retry_after
    return None


def retry_after(response: Response, seconds: float) -> Response:
    response.headers["Retry-After"] = str(int(seconds) + 1)
    return response


async def refusal(
    st: AppState, person: eids.EID | None, stored: str | None, secret: str, *, locked: bool
) -> str | None:
    """None when ``secret`` is ``person``'s password and the eID may sign in, else why not:
    ``unknown_account``, ``no_password``, ``wrong_password``, ``unusable_hash`` (said in the log
    only), ``eid_not_active`` or ``locked``. Unknown addresses take as long as known ones."""
    if person is None or stored is None:
        with contextlib.suppress(LoginError):
            await st.verify_dummy_password(secret)
        return "unknown_account" if person is None else "no_password"
    try:
        await st.verify_password(stored, secret)
    except LoginError:
        return "wrong_password"
    except IdPError as exc:
        log.error("password of eID %s cannot be verified: %s", person.id, exc)
        return "unusable_hash"
    if not person.active:
        return "eid_not_active"
    return "locked" if locked else None


async def failed(st: AppState, attempt: Attempt, person: eids.EID | None, reason: str) -> str:
    """Count and audit a refused password (:func:`refusal`'s ``reason``); lock the eID when this
    wrong password was one too many. Returns what the page says: ``locked``, ``inactive``,
    ``unfinished`` (an eID whose invitation's steps are not done) or ``wrong_credentials``."""
    failures = await st.throttle.failed("password", account=attempt.account, ip=attempt.ip)
    lock_now = person is not None and reason == "wrong_password" and st.throttle.should_lock(failures)

    def unit(tx: Tx) -> bool:
        locked = (
            lock_now
            and person is not None
            and lockout.lock(
                tx,
                eid_id=person.id,
                tenant_id=person.tenant_id,
                reason="password_failures",
                client_ip=attempt.ip,
            )
        )
        audit.record(
            tx,
            _event(
                attempt,
                person,
                "login.failed",
                success=False,
                details={"login_method": "password", "reason": reason, "failures": failures},
            ),
        )
        return locked

    if await st.db.write(unit) and person is not None:
        security_notice.send(st, person=person, notice=security_notice.Notice.LOCKED, ip=attempt.ip)
    st.metrics.login(method="password", outcome=f"failed_{reason}")
    if reason == "eid_not_active":  # whoever knows the password may learn why
        return "unfinished" if person is not None and person.status == eids.EIDStatus.PENDING else "inactive"
    return "locked" if reason == "locked" or lock_now else "wrong_credentials"


async def succeeded(st: AppState, attempt: Attempt, stored: str, secret: str) -> str | None:
    """Clear the account's failures; the password hashed anew when the hasher's parameters
    changed since ``stored`` was made (else None), for :func:`record_proven`."""
    await st.throttle.succeeded("password", account=attempt.account)
    return await st.hash_password(secret) if st.hasher.needs_rehash(stored) else None


def record_proven(tx: Tx, attempt: Attempt, person: eids.EID, new_hash: str | None) -> None:
    """In the unit that uses the proven password: the rehash, and ``login.factor_proven``; raises
    :class:`idp.lockout.LockedError` (the unit writes nothing) if the eID was locked meanwhile."""
    lockout.refuse_if_locked(tx.conn, eid_id=person.id)
    if new_hash is not None:
        password.set_hash(
            tx, eid_id=person.id, tenant_id=person.tenant_id, new_hash=new_hash, reason="rehashed"
        )
    audit.record(tx, _event(attempt, person, "login.factor_proven", details={"login_method": "password"}))


def _event(
    attempt: Attempt,
    person: eids.EID | None,
    event_type: str,
    *,
    details: dict[str, Any],
    success: bool = True,
) -> audit.AuditEvent:
    return audit.AuditEvent(
        event_type,
        success=success,
        tenant_id=attempt.tenant_id,
        eid_id=person.id if person else None,
        username=person.username if person else None,
        client_ip=attempt.ip,
        transaction_id=attempt.transaction_id,
        details=details,
        process_state=attempt.process_state,
    )
