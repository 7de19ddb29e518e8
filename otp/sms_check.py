"""Checking a one-time code sent by SMS against the row :mod:`otp.sms` issued it in.

Policy (NIST SP 800-63B §5.1.3 out-of-band authenticators, §5.2.2 rate limiting): a code is
accepted once, for the purpose it was issued for, before its row expires and before
``max_attempts`` wrong tries; a code replaced by a resend, or whose SMS was never handed over, is
expired. A try is settled in one transaction on the locked row, with updates that hold only while
the code is alive, so concurrent tries of one code cannot both pass. With Twilio Verify the code
is compared at Twilio, before that transaction (it is a network call), and the row keeps the
state. Every try writes its audit event in the transaction that settles it; codes never appear in
the trail.

What the sending side shares with the checking one is here: the challenge id format
(:func:`new_challenge_id`), the digest kept instead of the code (:func:`code_digest`), reading a
row (:func:`code_row`) and the audit event that names it (:func:`row_event`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Connection, select, update

from idp import audit
from idp.errors import IdPError
from idp.storage import tables
from idp.storage.database import Database, Tx
from otp.phone import mask_phone
from otp.totp import OTPError, clean_code

DIGITS = 6
CHALLENGE_BYTES = 24


class CodePurpose(StrEnum):
    """What a code confirms; a code issued for one purpose is refused for any other."""

    LOGIN = "login"
    ENROL_PHONE = "enrol_phone"
    RESET = "reset"
    CHANGE_PHONE = "change_phone"
    VIDEOID = "videoid"


@dataclass(slots=True, frozen=True)
class Checked:
    """A code that matched: ``phone`` is proven to be in the person's hands."""

    challenge_id: str
    phone: str
    eid_id: str | None
    purpose: CodePurpose


class VerifyCheck(Protocol):
    """The checking half of Twilio Verify: ``None`` when Twilio holds no pending verification."""

    async def check(self, *, to: str, code: str) -> bool | None: ...


@dataclass(slots=True, frozen=True)
class _Outcome:
    checked: Checked | None = None
    error: OTPError | None = None


_C = tables.otp_codes.c

# what ``secrets.token_urlsafe`` makes; anything else names no challenge (and NUL, which a form can
# carry, is text PostgreSQL refuses: the query would fail instead of finding nothing)
_CHALLENGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_challenge_id() -> str:
    return secrets.token_urlsafe(CHALLENGE_BYTES)


def code_digest(key: bytes, challenge_id: str, code: str) -> str:
    """What the row keeps of a code: an HMAC keyed with the instance secret, since six digits are
    a million guesses and a bare digest would give the code back to anyone who reads the table."""
    message = f"{challenge_id}:{code}".encode()
    if key:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def code_row(conn: Connection, challenge_id: str, *, lock: bool = False) -> Any:
    if not _CHALLENGE_ID.fullmatch(challenge_id):
        return None
    query = select(tables.otp_codes).where(_C.id == challenge_id)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).mappings().first()


def row_event(row: Any, event_type: str, *, success: bool, **details: Any) -> audit.AuditEvent:
    return audit.AuditEvent(
        event_type,
        success=success,
        tenant_id=row["tenant_id"],
        eid_id=row["eid_id"],
        client_ip=details.pop("client_ip", None) or row["client_ip"],
        details={
            "purpose": row["purpose"],
            "challenge_id": row["id"],
            "phone": mask_phone(row["phone"]),
            "provider": row["provider"],
            **details,
        },
    )


async def check_code(
    db: Database,
    *,
    challenge_id: str,
    code: str,
    at: float,
    purpose: CodePurpose | None,
    client_ip: str | None,
    key: bytes,
    ttl: float,
    max_attempts: int,
    verify: VerifyCheck | None,
) -> Checked:
    """Accept ``code`` for the challenge once, or raise :class:`~otp.totp.OTPError`.

    ``malformed`` (not six digits; not counted as an attempt), ``invalid`` (wrong; carries
    ``attempts_left``), ``exhausted`` (the last wrong attempt, or any try after it),
    ``expired`` (too late, replaced by a resend, never sent, or unknown), ``replayed``
    (already used). With ``purpose`` a code issued for another purpose is ``invalid``.
    A failure of Twilio Verify itself raises its :class:`~idp.errors.DeliveryError`.
    ``ttl`` only words the message of a code that expired: the row holds its expiry.
    """
    cleaned = clean_code(code)
    malformed = len(cleaned) != DIGITS or not (cleaned.isascii() and cleaned.isdigit())
    verdict: bool | None = None
    row = await db.read(lambda conn: code_row(conn, challenge_id))
    if row is not None and row["provider"] == "verify" and not malformed:
        if _problem(row, at, purpose, ttl=ttl, max_attempts=max_attempts) is None:
            if verify is None:
                raise IdPError("this code was sent through Twilio Verify, which is not configured")
            try:
                verdict = await verify.check(to=row["phone"], code=cleaned)
            except IdPError as exc:
                event = row_event(
                    row, "otp.sms.failed", success=False, reason="provider_error", client_ip=client_ip
                )
                await db.write(lambda tx: audit.record(tx, event))
                raise exc from None
    outcome = await db.write(
        lambda tx: _settle(
            tx,
            challenge_id,
            cleaned,
            malformed,
            verdict,
            at,
            purpose,
            client_ip,
            key=key,
            ttl=ttl,
            max_attempts=max_attempts,
        )
    )
    if outcome.error is not None:
        raise outcome.error
    assert outcome.checked is not None
    return outcome.checked


def _problem(
    row: Any, at: float, purpose: CodePurpose | None, *, ttl: float, max_attempts: int
) -> OTPError | None:
    if purpose is not None and row["purpose"] != CodePurpose(purpose).value:
        return OTPError("invalid", f"this code was sent for {row['purpose']}, not for {purpose}")
    if row["used_at"] is not None:
        return OTPError("replayed", "this code was already used; ask for a new one")
    if row["dead_reason"] == "exhausted" or row["attempts"] >= max_attempts:
        return OTPError(
            "exhausted", "too many wrong attempts for this code; ask for a new one", attempts_left=0
        )
    if row["dead_reason"] == "resent":
        return OTPError("expired", "a newer code was sent; use the code from the latest message")
    if row["dead_at"] is not None:
        return OTPError("expired", "this code could not be sent; ask for a new one")
    if row["expires_at"] <= at:
        return OTPError("expired", f"this code expired after {int(ttl // 60)} minutes; ask for a new one")
    return None


def _settle(
    tx: Tx,
    challenge_id: str,
    cleaned: str,
    malformed: bool,
    verdict: bool | None,
    at: float,
    purpose: CodePurpose | None,
    client_ip: str | None,
    *,
    key: bytes,
    ttl: float,
    max_attempts: int,
) -> _Outcome:
    row = code_row(tx.conn, challenge_id, lock=True)
    if row is None:
        audit.record(
            tx,
            audit.AuditEvent(
                "otp.sms.failed",
                success=False,
                client_ip=client_ip,
                details={"challenge_id": challenge_id[:64], "reason": "unknown"},
            ),
        )
        return _Outcome(error=OTPError("expired", "this code is unknown or has expired; ask for a new one"))

    def fail(error: OTPError, **details: Any) -> _Outcome:
        event = row_event(
            row, "otp.sms.failed", success=False, reason=error.code, client_ip=client_ip, **details
        )
        audit.record(tx, event)
        return _Outcome(error=error)

    problem = _problem(row, at, purpose, ttl=ttl, max_attempts=max_attempts)
    if problem is not None:
        return fail(problem)
    if malformed:
        return fail(OTPError("malformed", f"expected {DIGITS} digits, got {len(cleaned)} characters"))
    if row["provider"] == "verify":
        if verdict is None:  # Twilio holds no pending verification: it expired or was exhausted there
            tx.conn.execute(
                update(tables.otp_codes)
                .where(_C.id == challenge_id)
                .values(dead_at=at, dead_reason="expired")
            )
            return fail(OTPError("expired", "this code has expired; ask for a new one"))
        matched = verdict
    else:
        matched = hmac.compare_digest(code_digest(key, challenge_id, cleaned), row["code_digest"] or "")
    alive = (_C.id == challenge_id) & _C.used_at.is_(None) & _C.dead_at.is_(None)
    if not matched:
        tx.conn.execute(
            update(tables.otp_codes)
            .where(alive & (_C.attempts < max_attempts))
            .values(attempts=_C.attempts + 1)
        )
        attempts = int(row["attempts"]) + 1
        left = max(max_attempts - attempts, 0)
        if left == 0:
            tx.conn.execute(update(tables.otp_codes).where(alive).values(dead_at=at, dead_reason="exhausted"))
            return fail(
                OTPError(
                    "exhausted", "wrong code, and no attempts are left; ask for a new one", attempts_left=0
                ),
                attempts=attempts,
            )
        return fail(
            OTPError("invalid", f"wrong code; {left} attempts left", attempts_left=left),
            attempts=attempts,
        )
    used = tx.conn.execute(
        update(tables.otp_codes).where(alive & (_C.attempts < max_attempts)).values(used_at=at)
    )
    if used.rowcount != 1:
        return fail(OTPError("replayed", "this code was already used; ask for a new one"))
    audit.record(
        tx,
        row_event(
            row, "otp.sms.verified", success=True, attempts=int(row["attempts"]) + 1, client_ip=client_ip
        ),
    )
    checked = Checked(challenge_id, row["phone"], row["eid_id"], CodePurpose(row["purpose"]))
    return _Outcome(checked=checked)
