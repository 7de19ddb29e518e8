"""TOTP, the time-based one-time password of RFC 6238, on pyotp.

The parameters are the ones authenticator apps assume (Google Authenticator, FreeOTP, Aegis …):
HMAC-SHA1, 6 digits, 30-second steps (RFC 6238 §4 and §5.2). The caller stores the secret and
the time step returned by :func:`verify`; nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote, urlencode

import pyotp

from idp.errors import LoginError

DIGITS = 6
PERIOD = 30
ALGORITHM = "SHA1"
SECRET_BYTES = 20  # 160 bits, RFC 4226 §4 R6 (at least 128, 160 recommended)

_DIGESTS: dict[str, Callable[..., Any]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}

OTPErrorCode = Literal["malformed", "invalid", "expired", "replayed", "exhausted", "not_enrolled"]


class OTPError(LoginError):
    """A one-time code was refused; ``code`` says why.

    - ``malformed``: not ``DIGITS`` ASCII digits (spaces aside).
    - ``invalid``: does not match (the current time step and the window; or the code sent).
    - ``expired``: the code's lifetime is over, or a newer code replaced it (``otp.sms``), or the
      enrolment waited too long (``otp.authenticator_app``).
    - ``replayed``: matched a time step already used (RFC 6238 §5.2), or a code already used.
    - ``exhausted``: too many wrong attempts; the code is dead and a new one must be asked for.
    - ``not_enrolled``: the eID has no authenticator app (``otp.authenticator_app``).

    ``attempts_left`` is set where a code allows a limited number of tries (``otp.sms``).
    Sits under ``IdPError → LoginError`` (see ``idp.errors``).
    """

    def __init__(self, code: OTPErrorCode, message: str, *, attempts_left: int | None = None) -> None:
        super().__init__(code, message)
        self.attempts_left = attempts_left


def _normalise_secret(secret: str) -> str:
    """Upper-case base32 without spaces or padding; raises ValueError if it is not base32."""
    cleaned = "".join(secret.split()).upper().rstrip("=")
    try:
        base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except binascii.Error as exc:
        message = f"expected base32 (A-Z, 2-7), got {len(cleaned)} characters that are not"
        raise ValueError(f"TOTP secret: {message}") from exc
    if not cleaned:
        raise ValueError("TOTP secret: expected base32, got an empty string")
    return cleaned


def _step(for_time: float) -> int:
    if for_time < 0:
        raise ValueError(f"time: expected seconds since the Unix epoch ≥ 0, got {for_time}")
    # RFC 6238 §4.2: T = floor((Current Unix time - T0) / X), T0 = 0.
    return int(for_time) // PERIOD


def _totp(secret: str, *, digits: int = DIGITS, algorithm: str = ALGORITHM) -> pyotp.TOTP:
    try:
        digest = _DIGESTS[algorithm.upper()]
    except KeyError:
        raise ValueError(f"algorithm: expected one of {sorted(_DIGESTS)}, got {algorithm!r}") from None
    return pyotp.TOTP(_normalise_secret(secret), digits=digits, digest=digest, interval=PERIOD)


def new_secret() -> str:
    """A fresh random shared secret, base32 without padding (32 characters, 160 bits).

    RFC 4226 §4 R6 requires at least 128 bits and recommends 160; RFC 6238 §5.1 asks for a
    cryptographically strong random source (``secrets``, via pyotp).
    """
    return pyotp.random_base32(length=SECRET_BYTES * 8 // 5)


def manual_entry_key(*, secret: str) -> str:
    """The secret in groups of four for typing into an app by hand (``ABCD EFGH …``)."""
    cleaned = _normalise_secret(secret)
    return " ".join(cleaned[i : i + 4] for i in range(0, len(cleaned), 4))


def provisioning_uri(*, secret: str, account_name: str, issuer_name: str) -> str:
    """The ``otpauth://totp/Issuer:account?…`` URI an authenticator app reads from a QR code.

    Follows Google Authenticator's Key Uri Format: the issuer both as label prefix and as the
    ``issuer`` parameter, and the RFC 6238 §5.2 / app defaults (SHA1, 6 digits, 30 s) stated
    explicitly. Neither name may contain a colon, which separates them in the label.
    """
    for field, value in (("account_name", account_name), ("issuer_name", issuer_name)):
        if not value or ":" in value:
            raise ValueError(f"{field}: expected a non-empty name without ':', got {value!r}")
    label = f"{quote(issuer_name, safe='')}:{quote(account_name, safe='@')}"
    query = urlencode(
        {
            "secret": _normalise_secret(secret),
            "issuer": issuer_name,
            "algorithm": ALGORITHM,
            "digits": str(DIGITS),
            "period": str(PERIOD),
        },
        quote_via=quote,  # %20 rather than '+', which some apps show literally
    )
    return f"otpauth://totp/{label}?{query}"


def code_at(*, secret: str, for_time: float, digits: int = DIGITS, algorithm: str = ALGORITHM) -> str:
    """The code for the time step containing ``for_time`` (RFC 6238 §4.2, Appendix A)."""
    return _totp(secret, digits=digits, algorithm=algorithm).generate_otp(_step(for_time))


# what people type or paste between groups of digits ("214 836", "214-836", "214.836")
_SEPARATORS = str.maketrans("", "", "-.\u2010\u2011\u2012\u2013\u2014\u2212\u00b7")


def clean_code(code: str) -> str:
    """A one-time code as typed, without whitespace and the separators people put between
    groups of digits; whatever else it holds is left for the caller to refuse."""
    return "".join(code.split()).translate(_SEPARATORS)


def verify(*, secret: str, code: str, now: float, last_used_step: int | None, window: int = 1) -> int:
    """Check a 6-digit code and return the time step it matched (RFC 6238 §5.2).

    Accepts the step containing ``now`` and up to ``window`` steps either side to absorb clock
    drift and network delay. The comparison is constant-time. Whitespace and the separators of
    :func:`clean_code` in the code are ignored.
    A step not greater than ``last_used_step`` is refused, since RFC 6238 §5.2 says "the verifier
    MUST NOT accept the second attempt of the same OTP"; the caller stores the returned step.

    Raises :class:`OTPError` with code ``malformed``, ``invalid`` or ``replayed``.
    """
    if window < 0:
        raise ValueError(f"window: expected ≥ 0 steps, got {window}")
    cleaned = clean_code(code)
    if len(cleaned) != DIGITS or not (cleaned.isascii() and cleaned.isdigit()):
        raise OTPError("malformed", f"expected {DIGITS} digits, got {len(cleaned)} characters")
    totp = _totp(secret)
    current = _step(now)
    matched = [
        step
        for step in range(max(0, current - window), current + window + 1)
        if hmac.compare_digest(totp.generate_otp(step).encode(), cleaned.encode())
    ]
    if not matched:
        raise OTPError("invalid", f"the code matches no time step within {current}±{window}")
    fresh = [step for step in matched if last_used_step is None or step > last_used_step]
    if not fresh:
        raise OTPError(
            "replayed", f"expected a time step after {last_used_step}, got the code of step {max(matched)}"
        )
    # Two steps sharing a code is a 1-in-10^6 chance; taking the later one keeps that same code
    # from being accepted again.
    return max(fresh)
