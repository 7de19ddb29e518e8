"""One-time codes sent by SMS: issue, send and resend, with their limits; :class:`PhoneVerifier`.

Policy (NIST SP 800-63B §5.1.3 out-of-band authenticators, with the limits of issue 3): a code
is ``DIGITS`` random digits (``secrets.randbelow``), valid ``ttl`` seconds. A resend issues a
fresh code and kills the previous one, and may come only ``cooldown`` seconds after the previous
send. Sends are limited per number, per client IP and per tenant per hour against SMS pumping
(toll fraud that makes an IdP send SMS to premium numbers it does not own).

The code row is committed *before* the SMS is handed over, so a code never exists only in a
message; when the handover fails the row is marked dead. Only an HMAC of the code is stored
(:func:`otp.sms_check.code_digest`). With Twilio Verify (``verify_service``) Twilio generates and
sends the code; the row then keeps the same state (expiry, single use, attempts) without the code.
Every issue, send and failed handover writes its audit event in the transaction that changes the
row, every refusal its own; codes never appear in the trail. :mod:`otp.sms_check` checks the codes
(attempts, expiry, single use); :meth:`PhoneVerifier.check` is its entry point with this
verifier's settings.

A code sent here ends with the origin-bound line of the SMS one-time codes format
(https://wicg.github.io/sms-one-time-codes/), ``@idp.example.org #123456``, when the IdP is
served over HTTPS on a domain name (``bound_to``): phones then offer the code for the code field
of that site, and only of that site, so a look-alike page gets no help to phish it.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import Connection, select, update

from idp import audit
from idp.delivery.sms import SMSSender
from idp.errors import IdPError, RateLimitedError
from idp.ratelimit import RateLimiter, subject_key
from idp.storage import tables
from idp.storage.database import Database, Tx
from otp.phone import mask_phone, parse_phone
from otp.sms_check import (
    DIGITS,
    Checked,
    CodePurpose,
    VerifyCheck,
    check_code,
    code_digest,
    code_row,
    new_challenge_id,
    row_event,
)

__all__ = ["DIGITS", "Challenge", "Checked", "CodePurpose", "PhoneVerifier", "VerifyService", "origin_host"]

HOUR = 3600.0


@dataclass(slots=True, frozen=True)
class Challenge:
    """A code on its way: the page keeps ``challenge_id`` and shows ``masked_phone``."""

    challenge_id: str
    phone: str
    masked_phone: str
    expires_at: float
    resend_at: float


class VerifyService(VerifyCheck, Protocol):
    """Twilio Verify (:class:`idp.delivery.twilio.TwilioVerify`) or anything that works like it."""

    async def start(self, *, to: str, locale: str | None = None) -> str: ...


_C = tables.otp_codes.c


def origin_host(issuer: str) -> str | None:
    """The host an SMS code is bound to: the issuer's, when it is served over HTTPS on a domain
    name (phones fill in codes on secure sites only, and the format names no IP address)."""
    parts = urlsplit(issuer)
    host = parts.hostname
    if parts.scheme != "https" or not host or parts.port not in (None, 443):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


class PhoneVerifier:
    """Sends codes to phone numbers (module docstring) and checks them (:mod:`otp.sms_check`).

    Exactly one of ``sender`` (the code is generated here and sent as an ordinary SMS) and
    ``verify_service`` (Twilio Verify) is used; when both are given, Verify wins.
    """

    def __init__(
        self,
        *,
        sender: SMSSender | None,
        verify_service: VerifyService | None,
        limiter: RateLimiter,
        ttl: float = 300,
        cooldown: float = 30,
        max_attempts: int = 5,
        sends_per_number_hour: int = 5,
        sends_per_ip_hour: int = 20,
        sends_per_tenant_hour: int = 1000,
        code_key: str | bytes = b"",
        default_region: str | None = None,
        bound_to: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if sender is None and verify_service is None:
            raise ValueError("PhoneVerifier needs an SMS sender or a verify service")
        if ttl <= 0 or cooldown < 0 or cooldown >= ttl:
            raise ValueError(f"expected 0 ≤ cooldown < ttl, got cooldown={cooldown}, ttl={ttl}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        for name, limit in (
            ("sends_per_number_hour", sends_per_number_hour),
            ("sends_per_ip_hour", sends_per_ip_hour),
            ("sends_per_tenant_hour", sends_per_tenant_hour),
        ):
            if limit < 1:
                raise ValueError(f"{name} must be at least 1, got {limit}")
        self._sender = sender
        self._verify = verify_service
        self._limiter = limiter
        self.ttl = float(ttl)
        self.cooldown = float(cooldown)
        self.max_attempts = max_attempts
        self._limits = (sends_per_number_hour, sends_per_ip_hour, sends_per_tenant_hour)
        self._key = code_key.encode() if isinstance(code_key, str) else code_key
        self._region = default_region
        self._bound_to = bound_to
        self._clock = clock

    @property
    def provider(self) -> str:
        return "verify" if self._verify is not None else "sender"

    async def send(
        self,
        db: Database,
        *,
        tenant_id: str,
        eid_id: str | None,
        phone: str,
        purpose: CodePurpose,
        client_ip: str | None,
        message: Callable[[str], str],
        now: float | None = None,
        locale: str | None = None,
    ) -> Challenge:
        """Issue a code for ``phone`` and send it; ``message(code)`` gives the SMS text.

        Raises :class:`~idp.errors.InvalidPhoneError` for a number that cannot take SMS,
        :class:`~idp.errors.RateLimitedError` (``retry_after`` set) inside the resend cooldown or
        past an hourly limit, and :class:`~idp.errors.DeliveryError` when the SMS could not be
        handed over (the code is then dead). ``locale`` is passed to Twilio Verify, which writes
        its own text; ``message`` is not used then.
        """
        e164 = parse_phone(phone, default_region=self._region)
        purpose = CodePurpose(purpose)
        at = self._clock() if now is None else now
        scope = (tenant_id, eid_id, e164, purpose)
        last = await db.read(lambda conn: self._last_sent(conn, scope, at))
        if last is not None and last + self.cooldown > at:
            await self._refuse(db, scope, client_ip, reason="cooldown")
            raise RateLimitedError("sms-resend", last + self.cooldown - at)
        await self._throttle(db, scope, client_ip)

        challenge_id = new_challenge_id()
        code = None if self._verify is not None else f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
        digest = None if code is None else code_digest(self._key, challenge_id, code)
        await db.write(lambda tx: self._issue(tx, scope, challenge_id, digest, client_ip, at))
        try:
            if self._verify is not None:
                message_id = await self._verify.start(to=e164, locale=locale)
            else:
                assert self._sender is not None and code is not None
                body = message(code)
                if self._bound_to:
                    body = f"{body}\n\n@{self._bound_to} #{code}"
                message_id = await self._sender.send(to=e164, body=body)
        except Exception as exc:
            reason = getattr(exc, "code", None) if isinstance(exc, IdPError) else type(exc).__name__
            await db.write(lambda tx: self._not_sent(tx, challenge_id, str(reason), at))
            raise
        await db.write(lambda tx: self._sent(tx, challenge_id, message_id))
        return Challenge(challenge_id, e164, mask_phone(e164), at + self.ttl, at + self.cooldown)

    def _live(self, scope: tuple[str, str | None, str, CodePurpose]) -> Any:
        tenant_id, eid_id, phone, purpose = scope
        owner = _C.eid_id.is_(None) if eid_id is None else _C.eid_id == eid_id
        return (
            (_C.tenant_id == tenant_id)
            & (_C.phone == phone)
            & (_C.purpose == purpose.value)
            & owner
            & _C.used_at.is_(None)
            & _C.dead_at.is_(None)
        )

    def _last_sent(
        self, conn: Connection, scope: tuple[str, str | None, str, CodePurpose], at: float
    ) -> float | None:
        latest = conn.execute(
            select(_C.last_sent_at)
            .where(self._live(scope) & (_C.expires_at > at))
            .order_by(_C.last_sent_at.desc())
            .limit(1)
        ).scalar()
        return None if latest is None else float(latest)

    async def _throttle(
        self, db: Database, scope: tuple[str, str | None, str, CodePurpose], client_ip: str | None
    ) -> None:
        tenant_id, _eid_id, phone, _purpose = scope
        per_number, per_ip, per_tenant = self._limits
        if client_ip:
            # not audited: a flood from one address would otherwise flood the trail
            await self._limiter.hit(subject_key("sms:ip", client_ip), limit=per_ip, window=HOUR)
        for kind, subject, limit in (("number", phone, per_number), ("tenant", tenant_id, per_tenant)):
            try:
                await self._limiter.hit(subject_key(f"sms:{kind}", subject), limit=limit, window=HOUR)
            except RateLimitedError:
                await self._refuse(db, scope, client_ip, reason=f"limit_per_{kind}")
                raise

    async def _refuse(
        self,
        db: Database,
        scope: tuple[str, str | None, str, CodePurpose],
        client_ip: str | None,
        *,
        reason: str,
    ) -> None:
        tenant_id, eid_id, phone, purpose = scope
        event = audit.AuditEvent(
            "otp.sms.refused",
            success=False,
            tenant_id=tenant_id,
            eid_id=eid_id,
            client_ip=client_ip,
            details={"purpose": purpose.value, "phone": mask_phone(phone), "reason": reason},
        )
        await db.write(lambda tx: audit.record(tx, event))

    def _issue(
        self,
        tx: Tx,
        scope: tuple[str, str | None, str, CodePurpose],
        challenge_id: str,
        digest: str | None,
        client_ip: str | None,
        at: float,
    ) -> None:
        tenant_id, eid_id, phone, purpose = scope
        last = self._last_sent(tx.conn, scope, at)
        if last is not None and last + self.cooldown > at:  # a racing send won
            raise RateLimitedError("sms-resend", last + self.cooldown - at)
        replaced = tx.conn.execute(
            update(tables.otp_codes).where(self._live(scope)).values(dead_at=at, dead_reason="resent")
        ).rowcount
        tx.conn.execute(
            tables.otp_codes.insert().values(
                id=challenge_id,
                purpose=purpose.value,
                tenant_id=tenant_id,
                eid_id=eid_id,
                phone=phone,
                code_digest=digest,
                provider=self.provider,
                created_at=at,
                expires_at=at + self.ttl,
                last_sent_at=at,
                attempts=0,
                client_ip=client_ip,
            )
        )
        audit.record(
            tx,
            audit.AuditEvent(
                "otp.sms.issued",
                tenant_id=tenant_id,
                eid_id=eid_id,
                client_ip=client_ip,
                details={
                    "purpose": purpose.value,
                    "challenge_id": challenge_id,
                    "phone": mask_phone(phone),
                    "provider": self.provider,
                    "replaced": int(replaced),
                    "ttl": int(self.ttl),
                },
            ),
        )

    def _sent(self, tx: Tx, challenge_id: str, message_id: str) -> None:
        tx.conn.execute(
            update(tables.otp_codes).where(_C.id == challenge_id).values(message_id=message_id[:64])
        )
        row = code_row(tx.conn, challenge_id)
        audit.record(tx, row_event(row, "otp.sms.sent", success=True, message_id=message_id[:64]))

    def _not_sent(self, tx: Tx, challenge_id: str, reason: str, at: float) -> None:
        tx.conn.execute(
            update(tables.otp_codes)
            .where((_C.id == challenge_id) & _C.dead_at.is_(None))
            .values(dead_at=at, dead_reason="not_sent")
        )
        row = code_row(tx.conn, challenge_id)
        audit.record(tx, row_event(row, "otp.sms.send_failed", success=False, reason=reason))

    async def check(
        self,
        db: Database,
        *,
        challenge_id: str,
        code: str,
        now: float | None = None,
        purpose: CodePurpose | None = None,
        client_ip: str | None = None,
    ) -> Checked:
        """Accept ``code`` for the challenge once, or raise :class:`~otp.totp.OTPError`:
        :func:`otp.sms_check.check_code` with this verifier's limits, key and Verify service."""
        return await check_code(
            db,
            challenge_id=challenge_id,
            code=code,
            at=self._clock() if now is None else now,
            purpose=purpose,
            client_ip=client_ip,
            key=self._key,
            ttl=self.ttl,
            max_attempts=self.max_attempts,
            verify=self._verify,
        )
