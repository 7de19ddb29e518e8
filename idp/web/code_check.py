"""Checking a one-time code of an eID (authenticator app, SMS or recovery code), for any page.

The sign-in's code step and the password reset both ask for a second factor: this checks it,
counts a failure towards the growing delays and the lock (idp.lockout), audits the failure, and
says what the code proved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from idp import audit, eids, lockout
from idp.errors import LoginError
from idp.storage.database import Tx
from idp.web import security_notice
from idp.web.browser import client_ip, state
from levels_of_assurance.authenticators import recovery_codes
from levels_of_assurance.ladder import AMR
from levels_of_assurance.policy import Factor, Method
from otp import authenticator_app
from otp.sms import CodePurpose
from otp.totp import OTPError

T = TypeVar("T")


@dataclass(slots=True)
class CodeRefusedError(Exception):
    """The code was refused: ``reason`` for the page (``locked`` when this failure locked the eID),
    ``attempts_left`` for an SMS code, and the SMS challenge worth keeping on the page."""

    reason: str
    attempts_left: int | None
    keep_challenge: str | None


async def prove(
    request: Request,
    person: eids.EID,
    *,
    method: str,
    code: str,
    challenge_id: str | None,
    purpose: CodePurpose,
    failure_event: str,
    transaction_id: str | None = None,
) -> Factor:
    """The factor a correct code proves; :class:`CodeRefusedError` after recording a wrong one."""
    factor, _ = await prove_then(
        request,
        person,
        method=method,
        code=code,
        challenge_id=challenge_id,
        purpose=purpose,
        failure_event=failure_event,
        transaction_id=transaction_id,
        then=lambda _tx, _factor: None,
    )
    return factor


async def prove_then(
    request: Request,
    person: eids.EID,
    *,
    method: str,
    code: str,
    challenge_id: str | None,
    purpose: CodePurpose,
    failure_event: str,
    transaction_id: str | None = None,
    then: Callable[[Tx, Factor], T],
) -> tuple[Factor, T]:
    """:func:`prove`, and ``then`` with the factor in the transaction that accepted the code (an
    app or recovery code; for an SMS code, checked by the phone verifier, in the one after).
    What ``then`` raises fails the whole: an app or recovery code stays unused; an SMS code is
    spent by then (it cannot be replayed, and nothing of ``then`` is written: the person asks for
    a new one). ``then`` must not raise :class:`LoginError`, which would count as a wrong code."""
    st = state(request)
    ip = client_ip(request)
    now = time.time()
    secret = st.settings.secret_key
    try:
        if method == "sms":
            if challenge_id is None:
                raise OTPError("expired", "send a code first")
            checked = await st.phones.check(
                st.db, challenge_id=challenge_id, code=code, purpose=purpose, client_ip=ip
            )
            if checked.eid_id != person.id:
                raise OTPError("invalid", "this code was sent to someone else")
            sms = Factor(Method.SMS, (AMR.SMS,), now)

            def by_sms(tx: Tx) -> T:
                lockout.refuse_if_locked(tx.conn, eid_id=person.id)
                return then(tx, sms)

            return sms, await st.db.write(by_sms)
        if method == "totp":
            factor = Factor(Method.TOTP, (AMR.OTP,), now)

            def app(tx: Tx) -> T:
                # locked meanwhile (wrong codes sent together with this one): refused, as a wrong code
                lockout.refuse_if_locked(tx.conn, eid_id=person.id)
                authenticator_app.verify(tx, eid_id=person.id, code=code, sealing_key=secret, now=now)
                return then(tx, factor)

            return factor, await st.db.write(app)
        # a look-up secret (SP 800-63B §5.1.2) stands in for the lost device: a one-time password
        factor = Factor(Method.RECOVERY_CODE, (AMR.OTP,), now)

        def recovery(tx: Tx) -> T:
            lockout.refuse_if_locked(tx.conn, eid_id=person.id)
            recovery_codes.use(tx, eid_id=person.id, code=code, now=now)
            return then(tx, factor)

        return factor, await st.db.write(recovery)
    except LoginError as exc:
        reason = str(exc.code)
        account = f"{person.tenant_id}:{person.id}"
        failures = await st.throttle.failed("code", account=account, ip=ip) if reason != "malformed" else 0
        lock_now = st.throttle.should_lock(failures)

        def unit(tx: Any) -> bool:
            locked = lock_now and lockout.lock(
                tx, eid_id=person.id, tenant_id=person.tenant_id, reason="code_failures", client_ip=ip
            )
            audit.record(
                tx,
                audit.AuditEvent(
                    failure_event,
                    success=False,
                    tenant_id=person.tenant_id,
                    eid_id=person.id,
                    username=person.username,
                    client_ip=ip,
                    transaction_id=transaction_id,
                    details={"login_method": method, "reason": reason, "failures": failures},
                ),
            )
            return locked

        if await st.db.write(unit):
            security_notice.send(st, person=person, notice=security_notice.Notice.LOCKED, ip=ip)
        st.metrics.login(method=method, outcome=f"failed_{reason}")
        keep = challenge_id if method == "sms" and reason in ("invalid", "malformed") else None
        raise CodeRefusedError(
            "locked" if lock_now else reason, getattr(exc, "attempts_left", None), keep
        ) from None
