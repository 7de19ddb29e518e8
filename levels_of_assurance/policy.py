"""Which level a set of proven factors reaches, and what is missing for a requested level.

A login proves *factors* one at a time (an email link, a password, a one-time code, a passkey),
each at its own time. The level of assurance is a property of the combination (DESIGN.md's
ladder; NIST SP 800-63B §4.2 for multi-factor):

- basic: an email link (control of the address);
- advanced: a password together with a one-time code (SMS, authenticator app, or a recovery
  code standing in for the device), or a passkey with user verification (multi-factor in one
  phishing-resistant device);
- qualified: an advanced login by an eID whose identity was proofed by video identification,
  or a qualified certificate.

``max_age`` (OIDC Core §3.1.2.1) and ``prompt=login`` limit which factors still count: an old
factor has to be proven again, a fresh one does not, so step-up asks only for what is missing.
Pure functions; nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from levels_of_assurance.ladder import AMR, Level


class Method(StrEnum):
    """The authenticators a factor can come from (one module each under ``authenticators/``)."""

    EMAIL_LINK = "email_link"
    PASSWORD = "password"
    TOTP = "totp"
    SMS = "sms"
    RECOVERY_CODE = "recovery_code"
    PASSKEY = "passkey"
    CERTIFICATE = "certificate"
    # an SSO login token from an enterprise portal the tenant trusts (idp.login_tokens): the portal
    # vouches for the person at the level the tenant set for it, never above advanced
    LOGIN_TOKEN = "login_token"  # trusted for basic
    LOGIN_TOKEN_ADVANCED = "login_token_advanced"  # trusted for advanced


class Step(StrEnum):
    """What the person can be asked to do next; several methods can answer one step."""

    EMAIL_LINK = "email_link"
    PASSWORD = "password"
    ONE_TIME_CODE = "one_time_code"  # SMS, authenticator app or a recovery code
    PASSKEY = "passkey"


_ONE_TIME = frozenset({Method.TOTP, Method.SMS, Method.RECOVERY_CODE})
# factors another party vouches for: enough for the apps of the tenant that trusts the portal,
# not for binding or changing the eID's own authenticators (NIST SP 800-63B §6.1.2.1)
VOUCHED = frozenset({Method.LOGIN_TOKEN, Method.LOGIN_TOKEN_ADVANCED})


@dataclass(slots=True, frozen=True)
class Factor:
    """One proven factor: which method, the amr values it contributes (RFC 8176), and when."""

    method: Method
    amr: tuple[str, ...]
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"method": str(self.method), "amr": list(self.amr), "at": self.at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Factor:
        return cls(Method(data["method"]), tuple(str(a) for a in data.get("amr") or ()), float(data["at"]))


def factors_from_json(data: object) -> list[Factor]:
    """Factors stored as JSON; unknown or malformed entries are ignored (they prove nothing)."""
    out: list[Factor] = []
    if isinstance(data, list):
        for item in data:
            try:
                out.append(Factor.from_json(item))
            except (KeyError, TypeError, ValueError):
                continue
    return out


@dataclass(slots=True, frozen=True)
class Decision:
    """The level the counted factors reach, and, when short of the request, the ways to get there.

    ``missing`` lists alternatives; each alternative is the steps still to do, in order. An empty
    ``missing`` with ``satisfied`` False means no way exists (e.g. qualified without proofing).
    """

    level: Level | None
    satisfied: bool
    missing: tuple[tuple[Step, ...], ...]
    counted: tuple[Factor, ...]


def fresh(factors: Iterable[Factor], *, not_before: float | None) -> list[Factor]:
    """The factors proven at or after ``not_before`` (all when it is None)."""
    return [f for f in factors if not_before is None or f.at >= not_before]


def own(factors: Iterable[Factor]) -> list[Factor]:
    """The factors the person proved to us themselves: without those a portal vouched for."""
    return [f for f in factors if f.method not in VOUCHED]


def level_of(factors: Sequence[Factor], *, identity_proofed: bool = False) -> Level | None:
    """The highest level the factors reach together, or None when they reach none."""
    methods = {f.method for f in factors}
    # a one-time code alone identifies nobody (it is the second factor of a known person)
    identifying = {Method.EMAIL_LINK, Method.PASSWORD, Method.PASSKEY, Method.LOGIN_TOKEN}
    level = Level.BASIC if methods & (identifying | {Method.LOGIN_TOKEN_ADVANCED}) else None
    advanced = Method.PASSKEY in methods or (Method.PASSWORD in methods and bool(methods & _ONE_TIME))
    if advanced:
        level = Level.ADVANCED
        if identity_proofed:
            level = Level.QUALIFIED
    elif Method.LOGIN_TOKEN_ADVANCED in methods:
        level = Level.ADVANCED  # what the portal is trusted for; proofing does not raise it
    if Method.CERTIFICATE in methods:
        level = Level.QUALIFIED
    return level


def amr_of(factors: Sequence[Factor]) -> list[str]:
    """The amr claim for these factors: each value once, in proof order, plus ``mfa`` when the
    factors are of more than one kind (RFC 8176 §2)."""
    out: list[str] = []
    for f in factors:
        for value in f.amr:
            if value not in out:
                out.append(value)
    methods = {f.method for f in factors}
    if Method.PASSWORD in methods and methods & _ONE_TIME and AMR.MFA not in out:
        out.append(AMR.MFA)
    return out


def decide(
    factors: Sequence[Factor],
    *,
    requested: Level,
    not_before: float | None = None,
    identity_proofed: bool = False,
    passkey_available: bool = True,
) -> Decision:
    """Whether the factors proven since ``not_before`` reach ``requested``; if not, what is missing.

    ``not_before`` is ``now - max_age`` or the start of a ``prompt=login`` request; older factors
    do not count. ``passkey_available`` says whether a passkey is a way for this person (an eID
    with none registered is not offered one; an unknown person is).
    """
    counted = fresh(factors, not_before=not_before)
    level = level_of(counted, identity_proofed=identity_proofed)
    if level is not None and level >= requested:
        return Decision(level, True, (), tuple(counted))
    methods = {f.method for f in counted}
    missing: list[tuple[Step, ...]] = []
    if requested == Level.BASIC:
        missing.append((Step.EMAIL_LINK,))
        missing.append((Step.PASSWORD,))
        if passkey_available:
            missing.append((Step.PASSKEY,))
    elif requested == Level.ADVANCED or (requested == Level.QUALIFIED and identity_proofed):
        pair: list[Step] = []
        if Method.PASSWORD not in methods:
            pair.append(Step.PASSWORD)
        if not methods & _ONE_TIME:
            pair.append(Step.ONE_TIME_CODE)
        missing.append(tuple(pair))
        if passkey_available:
            missing.append((Step.PASSKEY,))
    return Decision(level, False, tuple(missing), tuple(counted))
